"""Thin layers (glass on a cabin, a label on a bottle): found by geometry on any mesh, labelled as layers on a user's
mesh, and told apart by the template search (how many windows a car has)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from datagen.canonical import RegisteredSurface
from datagen.families import get_family
from datagen.meshes import layers as layers_mod
from datagen.meshes.accuracy import exact_registration
from datagen.meshes.layers import layer_components, layer_faces
from datagen.meshes.sampling import rest_shift, sample_surface
from datagen.meshes.search import build_candidate, fit_distance, make_target


def _box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return trimesh.creation.box(extents=hi - lo, transform=trimesh.transformations.translation_matrix((lo + hi) / 2))


def _concat(*meshes: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces and the part index of every face."""
    v, f, part, n = [], [], [], 0
    for i, m in enumerate(meshes):
        v.append(m.vertices)
        f.append(m.faces + n)
        part.append(np.full(len(m.faces), i))
        n += len(m.vertices)
    return np.concatenate(v), np.concatenate(f), np.concatenate(part)


def test_a_thin_slab_on_a_box_is_a_layer_and_nothing_else_is():
    box = _box([0, 0, 0], [1, 1, 1])
    slab = _box([0.2, 1.003, 0.2], [0.8, 1.006, 0.8])  # 3 mm over the top face, 3 mm thick
    block = _box([0.3, -0.5, 0.3], [0.7, -0.002, 0.7])  # a thick block under the box: no skin
    far = _box([3.0, 0, 0], [3.4, 0.004, 0.4])  # a thin plate far from everything
    v, f, part = _concat(box, slab, block, far)
    layer = layer_faces(v, f)
    assert layer[part == 1].all()
    assert not layer[part != 1].any()
    comp = layer_components(v, f)
    assert np.unique(comp[part == 1]).size == 1 and (comp[part != 1] == -1).all()
    # one component only: nothing lies on anything else
    assert not layer_faces(*_concat(box)[:2]).any()


def test_both_searches_find_the_same_layers_on_a_dense_mesh_and_on_a_template():
    """The per-component search (dense meshes) and the shared tree (small meshes) agree face for face."""
    box = trimesh.creation.box(extents=(1, 1, 1))
    for _ in range(4):  # 12 -> 3072 faces
        box = box.subdivide()
    slab = _box([-0.3, 0.503, -0.3], [0.3, 0.506, 0.3])  # 3 mm over the top face ...
    for _ in range(3):  # ... and dense: hundreds of vertices, the per-component search's case
        slab = slab.subdivide()
    near_not_thin = _box([-0.2, -1.0, -0.2], [0.2, -0.502, 0.2])  # 2 mm under the box, half a metre thick
    v, f, part = _concat(box, slab, near_not_thin)
    fam = get_family("car")
    inst = fam.build(fam.sample_params(np.random.default_rng(3)), "car")
    for vv, ff in ((v, f), (inst.vertices, inst.faces)):
        shared = layer_components(vv, ff, by_component=False)
        per_component = layer_components(vv, ff, by_component=True)
        np.testing.assert_array_equal(shared, per_component)
        assert (shared >= 0).any()
    layer = layer_faces(v, f)
    assert layer[part == 1].all() and not layer[part != 1].any()


@pytest.mark.slow
def test_layers_of_the_families_are_their_skins():
    """Glass, lamps, plates and hub caps of a car, a bottle's label; no part of a chair or a table."""
    fam = get_family("car")
    inst = fam.build(fam.sample_params(np.random.default_rng(3)), "car")
    layer = layer_faces(inst.vertices, inst.faces)
    parts = {fam.slots[s].part for s in np.unique(inst.face_slot[layer])}
    assert {"windshield", "rear_window", "side_window"} <= parts
    assert not ({"body", "cabin", "wheel", "mirror"} & parts)
    fam = get_family("bottle")
    params = {**fam.sample_params(np.random.default_rng(0)), "label": True}
    inst = fam.build(params, "bottle")
    layer = layer_faces(inst.vertices, inst.faces)
    assert {fam.slots[s].name for s in np.unique(inst.face_slot[layer])} == {"label"}
    for category in ("chair", "table"):
        fam = get_family(category)
        inst = fam.build(fam.sample_params(np.random.default_rng(0)), category)
        assert not layer_faces(inst.vertices, inst.faces).any()


def _car_with_small_glass(scale: float):
    """A car instance as the user's mesh and its exact registration with every side window of the template shrunk
    about its centre to ``scale`` of its length and height: the fit's error on thin parts."""
    fam = get_family("car")
    params = {**fam.sample_params(np.random.default_rng(5)), "n_windows": 2}
    inst = fam.build(params, "car")
    reg = exact_registration("car", fam, inst, inst.vertices, np.eye(4))
    tv = reg.template_vertices.copy()
    for s, slot in enumerate(fam.slots):
        if slot.part == "side_window" and (inst.face_slot == s).any():
            idx = np.unique(inst.faces[inst.face_slot == s])
            c = tv[idx].mean(0)
            tv[idx, 1:] = c[1:] + scale * (tv[idx, 1:] - c[1:])
    reg.template_vertices = tv
    return fam, inst, reg


@pytest.mark.slow
def test_the_faces_of_a_layer_take_the_layer_slot_under_a_misplaced_template(monkeypatch):
    """The side windows of the template shrunk to half their size: the mesh's window faces still take the window
    slots (the glass lies 4-10 mm over the cabin, so beyond the shrunk pane the cabin is nearer)."""
    fam, inst, reg = _car_with_small_glass(0.5)
    surf = RegisteredSurface(fam, inst.vertices, inst.faces, reg)
    window = np.array([fam.slots[s].part == "side_window" for s in inst.face_slot])
    tri = inst.vertices[inst.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    right = surf.mesh_face_slot == inst.face_slot
    assert area[window & right].sum() > 0.95 * area[window].sum()
    assert area[~window & right].sum() > 0.97 * area[~window].sum()
    # without telling layers apart (every face one kind) the cabin takes much of the glass
    monkeypatch.setattr(layers_mod, "layer_components", lambda v, f, *a, **k: np.full(len(f), -1, np.int64))
    plain = RegisteredSurface(fam, inst.vertices, inst.faces, reg).mesh_face_slot == inst.face_slot
    assert area[window & plain].sum() < 0.8 * area[window].sum()


@pytest.mark.slow
def test_the_search_counts_windows_by_their_panes():
    """The car's surfaces hardly differ with 1, 2 or 3 side windows (7 cm pillars); the search's score, with its
    layer term, prefers the true count."""
    fam = get_family("car")
    for n_true in (1, 2, 3):
        params = {**fam.sample_params(np.random.default_rng(10 + n_true)), "n_windows": n_true}
        inst = fam.build(params, "car")
        v = inst.vertices + rest_shift(inst.vertices)
        pts, _, _ = sample_surface(v, inst.faces, 4000, np.random.default_rng(0))
        placed = (pts, cKDTree(pts), pts.min(0), pts.max(0))
        target = make_target(placed, v, inst.faces, np.eye(3), np.zeros(3), 0)
        scores = {n: fit_distance("car", target, build_candidate(fam, {**params, "n_windows": n})) for n in (1, 2, 3)}
        assert min(scores, key=scores.get) == n_true, scores


def test_small_parts_are_joined_to_the_part_they_are_set_in():
    """The deformation's smoothness carries a quadruped's ears with its head (their own closest points, on a thin
    cone, would leave them behind); a chair's legs and seat stay free to move apart."""
    from datagen.meshes.deform import small_part_joins
    from datagen.meshes.register import _weld_index

    for category, joined in (("quadruped", {"ear"}), ("chair", set())):
        fam = get_family(category)
        inst = fam.build(fam.sample_params(np.random.default_rng(2)), category)
        w, inverse = _weld_index(inst.vertices)
        wf = inverse[inst.faces]
        edges = small_part_joins(w, wf, float(np.linalg.norm(np.ptp(w, axis=0))))
        part = np.zeros(len(w), np.int64)
        part[wf.ravel()] = np.repeat(inst.face_slot, 3)
        small = {fam.slots[s].part for s in part[np.unique(edges[:, 0])]} if len(edges) else set()
        assert joined <= small and "body" not in small and "seat" not in small, small
        if category == "quadruped":
            ear = edges[part[edges[:, 0]] == fam.slot_index("ear_left")]
            assert {fam.slots[s].part for s in part[ear[:, 1]]} == {"head"}
