"""The canonical surface parametrisation of the families: outlines sampled at canonical angles, and the map Φ
between instances free of collapse on every slot of every family (the exact, mesh-level check)."""

import numpy as np
import pytest

from datagen.families import face_map, family_names, get_family
from datagen.families.base import Instance
from datagen.families.distortion import STRETCH_LIMIT, affine_singular_values, family_distortion, slot_distortion
from datagen.families.parts import circle_profile, rounded_rect_point, rounded_rect_profile, sweep


def _normalised_angle(points: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    return np.mod(np.arctan2(points[:, 1] / half_v, points[:, 0] / half_u), 2 * np.pi)


@pytest.mark.parametrize("half_u,half_v,radius", [(0.95, 0.3, 0.005), (0.95, 0.3, 0.3), (0.5, 0.5, 0.5), (1, 2, 0.7)])
def test_rounded_rect_points_sit_at_their_canonical_angles_on_the_outline(half_u, half_v, radius):
    n_quadrant = 16
    pts = rounded_rect_profile(half_u, half_v, radius, n_quadrant)
    phi = 2 * np.pi * np.arange(4 * n_quadrant) / (4 * n_quadrant)
    assert np.allclose(_normalised_angle(pts, half_u, half_v), phi, atol=1e-9)
    # on the outline: inside the bounding box, on its sides or on a corner arc
    r = min(radius, 0.999 * min(half_u, half_v))
    u, v = np.abs(pts[:, 0]), np.abs(pts[:, 1])
    on_side = np.isclose(u, half_u) | np.isclose(v, half_v)
    on_arc = np.isclose(np.hypot(u - (half_u - r), v - (half_v - r)), r) & (u >= half_u - r) & (v >= half_v - r)
    assert np.all((u <= half_u + 1e-12) & (v <= half_v + 1e-12))
    assert np.all(on_side | on_arc)


def test_sharp_rectangle_corner_and_circle_are_exact():
    corner = rounded_rect_point(0.95, 0.3, 0.0, np.array([np.pi / 4]))[0]
    assert np.allclose(corner, [0.95, 0.3], atol=1e-3 * 0.3)  # the radius is clipped to 1e-3 of the short half
    assert np.allclose(rounded_rect_profile(0.4, 0.4, 0.4, 6), circle_profile(24, 0.4), atol=1e-3)


def _toy_instance(outline: np.ndarray, name: str) -> Instance:
    """A flat slab whose top and bottom caps are fans over ``outline`` [S, 2] (one slot)."""
    rings = np.stack([np.stack([outline[:, 1], np.full(len(outline), y), outline[:, 0]], 1) for y in (0.0, 0.03)])
    part = sweep(rings)
    n = part.n_faces
    return Instance("toy", name, {}, part.vertices, part.faces, np.zeros(n, np.int32), np.arange(n, dtype=np.int32))


class _Toy:
    """The minimum of a family that :func:`slot_distortion` needs: one slot, faces in template order."""

    def __init__(self, n_faces: int):
        from datagen.families.base import SlotSpec

        self.slots = [SlotSpec("top", n_faces, "top")]

    slot_offsets = property(lambda self: np.array([0, self.slots[0].n_faces]))

    def canonical_face(self, inst):
        return inst.face_local.astype(np.int64)


def _old_rounded_rect(half_u: float, half_v: float, radius: float, k: int) -> np.ndarray:
    """The outline the table top used before: k + 1 points on each corner arc, none on the straight sides."""
    r = float(np.clip(radius, 1e-3 * min(half_u, half_v), 0.999 * min(half_u, half_v)))
    pts = []
    for q, (cu, cv) in enumerate([(1, 1), (-1, 1), (-1, -1), (1, -1)]):
        a = q * np.pi / 2 + np.linspace(0.0, np.pi / 2, k + 1)
        pts.append(np.stack([cu * (half_u - r) + r * np.cos(a), cv * (half_v - r) + r * np.sin(a)], 1))
    return np.concatenate(pts)


def test_distortion_check_catches_the_collapsing_fan_of_rectangle_against_disc():
    rect_old, disc_old = _old_rounded_rect(0.3, 0.9, 0.01, 8), _old_rounded_rect(0.5, 0.5, 0.5, 8)
    a, b = _toy_instance(rect_old, "rect"), _toy_instance(disc_old, "disc")
    fam = _Toy(a.n_faces)
    (old,) = slot_distortion(fam, a, b)
    assert old.area_frac_outside > 0.3 and old.worst > 100  # sectors of the rectangle squeezed onto slivers
    rect, disc = rounded_rect_profile(0.3, 0.9, 0.01, 16), rounded_rect_profile(0.5, 0.5, 0.5, 16)
    (new,) = slot_distortion(_Toy(_toy_instance(rect, "r").n_faces), _toy_instance(rect, "r"), _toy_instance(disc, "d"))
    assert new.area_frac_outside == 0.0 and new.worst < 4.0  # sqrt(3) each way, more near the corners


def test_affine_singular_values_of_a_known_map():
    rng = np.random.default_rng(0)
    tri_a = rng.normal(size=(5, 3, 3))
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    tri_b = tri_a @ np.diag([3.0, 0.5, 1.0]) @ R.T  # in-plane singular values depend on the plane; check bounds
    sv = affine_singular_values(tri_a, tri_b)
    assert np.all(sv[:, 0] <= 3.0 + 1e-9) and np.all(sv[:, 1] >= 0.5 - 1e-9) and np.all(sv[:, 0] >= sv[:, 1])
    iso = affine_singular_values(tri_a, 2.0 * tri_a @ R.T + 1.0)
    assert np.allclose(iso, 2.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", family_names())
def test_no_slot_of_any_family_collapses(name):
    """Φ between random instances stays within STRETCH_LIMIT of each slot's own scale on all but slivers."""
    report = family_distortion(get_family(name), n_pairs=24, seed=3)
    bad = {slot: r for slot, r in report.items() if r["area_frac_outside"] > 0.005}
    assert not bad, f"{name}: slots whose map leaves {STRETCH_LIMIT}x of their scale: {bad}"


def test_face_map_is_a_bijection_on_shared_slots():
    fam = get_family("table")
    rng = np.random.default_rng(5)
    a = fam.build(fam.sample_params(rng), "a")
    b = fam.build(fam.sample_params(rng), "b")
    fwd, back = face_map(fam, a, b), face_map(fam, b, a)
    has = fwd >= 0
    assert np.array_equal(back[fwd[has]], np.flatnonzero(has))
