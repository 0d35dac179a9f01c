"""Axis remaps, metric normalisation and placement against analytic answers; the category reference size."""

from __future__ import annotations

import numpy as np
import pytest
from meshes_files import box, write_obj
from scipy.spatial import cKDTree

from datagen.families import get_family
from datagen.meshes.axes import canonical_rotation, parse_axis
from datagen.meshes.intake import IntakeOptions, intake_file
from datagen.meshes.normalize import apply_transform, normalising_transform, reference_size


@pytest.mark.parametrize(
    "up, front, R",
    [
        ("+y", "+z", np.eye(3)),  # glTF / Objaverse: already canonical
        ("+y", "-z", np.diag([-1.0, 1.0, -1.0])),  # ShapeNetCore v2: a half turn about y
        ("+z", "-y", [[1, 0, 0], [0, 0, 1], [0, -1, 0]]),  # z-up, front -y (Blender's default)
        ("z", "x", [[0, 1, 0], [0, 0, 1], [1, 0, 0]]),
    ],
)
def test_canonical_rotation_analytic(up, front, R):
    got = canonical_rotation(up, front)
    np.testing.assert_array_equal(got, R)
    np.testing.assert_allclose(got @ parse_axis(up), [0, 1, 0])
    np.testing.assert_allclose(got @ parse_axis(front), [0, 0, 1])
    assert np.linalg.det(got) == pytest.approx(1.0)  # never a mirror


@pytest.mark.parametrize("up, front", [("+y", "-y"), ("+y", "y"), ("w", "+z"), ("++y", "z"), ("", "z")])
def test_bad_axes_are_refused(up, front):
    with pytest.raises(ValueError):
        canonical_rotation(up, front)


def _marked_body() -> tuple[np.ndarray, np.ndarray]:
    """A 0.4 x 1.0 x 0.5 body in a z-up, front -y file, with a nose on its front and an ear on its left.

    In that file the object's left is up x front = (+z) x (-y) = +x.
    """
    body = box((0.4, 0.5, 1.0), center=(3.0, 2.0, 7.0))  # x, y (depth), z (height)
    nose = box((0.1, 0.1, 0.1), center=(3.0, 2.0 - 0.25 - 0.05, 7.0))  # in front: -y
    ear = box((0.1, 0.1, 0.1), center=(3.0 + 0.2 + 0.05, 2.0, 7.0 + 0.3))  # on the left: +x, high
    parts = [body, nose, ear]
    V = np.vstack([p.vertices for p in parts])
    F = np.vstack([p.faces + 8 * i for i, p in enumerate(parts)])
    return V, F


def test_intake_remaps_axes_scales_and_places_on_the_ground(tmp_path):
    V, F = _marked_body()
    path = write_obj(tmp_path / "zup.obj", V, F)
    r = intake_file(path, "zup", IntakeOptions(up="+z", front="-y", target_diagonal_m=2.0))
    um = r.mesh
    lo, hi = um.vertices.min(0), um.vertices.max(0)
    assert lo[1] == pytest.approx(0.0, abs=1e-12)  # resting on y = 0
    np.testing.assert_allclose((lo + hi)[[0, 2]] / 2, 0.0, atol=1e-12)  # centred in x and z
    assert np.linalg.norm(hi - lo) == pytest.approx(2.0)
    # the transform takes the file's vertices to the canonical ones
    mapped = apply_transform(um.transform, V)
    assert cKDTree(um.vertices).query(mapped)[0].max() < 1e-9
    assert cKDTree(mapped).query(um.vertices)[0].max() < 1e-9
    T = um.transform
    np.testing.assert_allclose(T[:3, :3] / np.cbrt(np.linalg.det(T[:3, :3])), [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    # the marks: nose in front (+z), ear on the object's left (+x), height is y
    nose = apply_transform(T, [[3.0, 2.0 - 0.3, 7.0]])[0]
    ear = apply_transform(T, [[3.0 + 0.25, 2.0, 7.3]])[0]
    centre = apply_transform(T, [[3.0, 2.0, 7.0]])[0]
    assert nose[2] > centre[2] + 0.1 and abs(nose[0] - centre[0]) < 1e-9
    assert ear[0] > centre[0] + 0.1 and ear[1] > centre[1]
    # extents: the file's 0.4 (x) x 1.0 (z, height) x 0.5 (y, depth) body -> canonical x 0.4, y 1.0, z 0.5 (+ marks)
    s = np.cbrt(np.linalg.det(T[:3, :3]))
    body_extent = (hi - lo) / s
    assert body_extent[1] == pytest.approx(1.0)


def test_shapenet_axes_half_turn(tmp_path):
    """ShapeNet v2 (front -z): a nose at -z ends at +z, the object's left (file -x) at +x."""
    body = box((1.0, 1.0, 1.0))
    nose = box((0.2, 0.2, 0.2), center=(0, 0, -0.6))
    ear = box((0.2, 0.2, 0.2), center=(-0.6, 0, 0))
    V = np.vstack([body.vertices, nose.vertices, ear.vertices])
    F = np.vstack([body.faces, nose.faces + 8, ear.faces + 16])
    path = write_obj(tmp_path / "sn.obj", V, F)
    um = intake_file(path, "sn", IntakeOptions(up="+y", front="-z", target_diagonal_m=1.0)).mesh
    nose_c = apply_transform(um.transform, [[0, 0, -0.6]])[0]
    ear_c = apply_transform(um.transform, [[-0.6, 0, 0]])[0]
    assert nose_c[2] > 0.1 and ear_c[0] > 0.1


def test_file_scale_keeps_metric_size(tmp_path):
    m = box((40.0, 90.0, 50.0))  # centimetres
    path = write_obj(tmp_path / "cm.obj", m.vertices, m.faces)
    um = intake_file(path, "cm", IntakeOptions(target_diagonal_m=5.0, scale_m_per_unit=0.01)).mesh
    np.testing.assert_allclose(um.vertices.max(0) - um.vertices.min(0), [0.4, 0.9, 0.5])
    np.testing.assert_allclose(um.transform[:3, :3], 0.01 * np.eye(3))
    assert um.vertices[:, 1].min() == pytest.approx(0.0)


def test_normalising_transform_needs_a_size():
    with pytest.raises(ValueError, match="give target_diagonal_m"):
        normalising_transform(np.eye(3), "+y", "+z", None, None)
    with pytest.raises(ValueError, match="positive"):
        normalising_transform(np.eye(3), "+y", "+z", None, -1.0)


def test_reference_size_is_the_median_diagonal_of_64_seeded_instances():
    family = get_family("bottle")
    rng = np.random.default_rng(0)
    diag = []
    for i in range(64):
        v = family.sample(rng, f"x{i}").vertices
        diag.append(np.linalg.norm(v.max(0) - v.min(0)))
    assert reference_size("bottle") == pytest.approx(float(np.median(diag)), rel=1e-12)
    assert reference_size("bottle") is reference_size("bottle")  # cached
    with pytest.raises(KeyError, match="unknown category"):
        reference_size("sofa")
