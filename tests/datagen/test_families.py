"""The procedural families against the contract of ``datagen/families/base.py`` (every registered family)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.spatial import cKDTree

from datagen.families import face_map, family_names, get_family
from datagen.families.parts import PartMesh, nearest_surface_point, signed_volume, weld
from datagen.families.procedural import swap_side

N_SAMPLES = 50
FAMILIES = family_names()


@functools.cache
def _samples(name: str) -> tuple:
    fam = get_family(name)
    rng = np.random.default_rng(1234)
    params = [fam.sample_params(rng) for _ in range(N_SAMPLES)]
    insts = [fam.build(p, f"{name}_{i}") for i, p in enumerate(params)]
    return fam, params, insts


def _slot_mesh(inst, s: int) -> PartMesh:
    m = inst.face_slot == s
    f = inst.faces[m]
    used = np.unique(f)
    remap = np.full(inst.vertices.shape[0], -1)
    remap[used] = np.arange(used.size)
    return PartMesh(inst.vertices[used], remap[f].astype(np.int32), inst.uv[used])


def test_registry_has_the_required_families():
    assert {"chair", "table", "car", "aeroplane", "bottle", "quadruped"} <= set(FAMILIES)
    with pytest.raises(KeyError, match="known categories"):
        get_family("no_such_thing")


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_slots_have_fixed_topology(name):
    fam, _, insts = _samples(name)
    first: dict[int, np.ndarray] = {}
    for inst in insts:
        assert inst.faces.dtype == np.int32 and inst.face_slot.dtype == np.int32 and inst.vertices.dtype == np.float64
        assert inst.uv is not None and inst.uv.shape == (inst.vertices.shape[0], 2)
        for s in np.unique(inst.face_slot):
            m = inst.face_slot == s
            assert m.sum() == fam.slots[s].n_faces
            np.testing.assert_array_equal(inst.face_local[m], np.arange(fam.slots[s].n_faces))
            f = inst.faces[m]
            rel = f - f.min()
            if s in first:
                np.testing.assert_array_equal(rel, first[s], err_msg=f"{name}: slot {fam.slots[s].name} topology")
            else:
                first[s] = rel
        # slots appear in the family's order, each once
        assert np.all(np.diff(inst.face_slot) >= 0)


@pytest.mark.parametrize("name", FAMILIES)
def test_face_map_identity_and_cross_instance(name):
    fam, _, insts = _samples(name)
    a, b = insts[0], insts[1]
    np.testing.assert_array_equal(face_map(fam, a, a), np.arange(a.n_faces))
    for a, b in [(insts[0], insts[1]), (insts[2], insts[3]), (insts[4], insts[0])]:
        phi = face_map(fam, a, b)
        ok = phi >= 0
        np.testing.assert_array_equal(a.face_slot[ok], b.face_slot[phi[ok]])
        np.testing.assert_array_equal(a.face_local[ok], b.face_local[phi[ok]])
        present_b = fam.present_slots(b)
        np.testing.assert_array_equal(ok, present_b[a.face_slot])


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_instances_rest_on_ground_centred_and_are_closed_outward(name):
    fam, _, insts = _samples(name)
    for inst in insts[:12]:
        lo, hi = inst.vertices.min(0), inst.vertices.max(0)
        assert abs(lo[1]) < 1e-9 and abs(lo[2] + hi[2]) < 1e-9
        tri = inst.vertices[inst.faces]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        assert area.min() > 1e-10, f"{name}: degenerate triangle"
        for s in np.unique(inst.face_slot):
            part = _slot_mesh(inst, s)
            v, f = weld(part.vertices, part.faces)
            edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
            # closed and consistently oriented: every directed edge once, and its reverse exactly once
            directed = {tuple(e) for e in edges.tolist()}
            assert len(directed) == edges.shape[0], f"{name}: slot {fam.slots[s].name} has a repeated directed edge"
            assert all((b, a) in directed for a, b in directed), f"{name}: slot {fam.slots[s].name} is open"
            assert signed_volume(v, f) > 0, f"{name}: slot {fam.slots[s].name} faces point inward"


@pytest.mark.parametrize("name", FAMILIES)
def test_keypoints_on_surface_and_sided(name):
    fam, _, insts = _samples(name)
    names = fam.keypoint_names
    perm = fam.flip_permutation
    assert sorted(perm) == list(range(len(names)))
    assert [perm[p] for p in perm] == list(range(len(names)))
    for i, k in enumerate(fam.keypoints):
        assert names[perm[i]] == (swap_side(k.name) if k.side != "center" else k.name)
        assert fam.keypoints[perm[i]].side == {"left": "right", "right": "left", "center": "center"}[k.side]
        assert 0 <= k.local_face < fam.slots[fam.slot_index(k.slot)].n_faces
        assert min(k.bary) >= 0 and abs(sum(k.bary) - 1) < 1e-9
        slot_side = fam.slots[fam.slot_index(k.slot)].side
        assert slot_side in ("center", k.side), f"{name}: keypoint {k.name} on a slot of the other side"
    for g in fam.symmetric_groups:
        assert len(g) >= 2 and all(0 <= i < len(names) for i in g)
    for inst in insts[:15]:
        pos = fam.keypoint_positions(inst)
        present = fam.keypoint_present(inst)
        np.testing.assert_array_equal(~np.isnan(pos[:, 0]), present)
        scale = np.ptp(inst.vertices, axis=0).max()
        for i, k in enumerate(fam.keypoints):
            if not present[i]:
                continue
            part = _slot_mesh(inst, fam.slot_index(k.slot))
            face, bary = nearest_surface_point(part, pos[i])
            assert np.linalg.norm(np.asarray(bary) @ part.vertices[part.faces[face]] - pos[i]) < 1e-9
            if k.side == "left":
                assert pos[i, 0] > 1e-3 * scale, f"{name}: left keypoint {k.name} at x={pos[i, 0]}"
            elif k.side == "right":
                assert pos[i, 0] < -1e-3 * scale, f"{name}: right keypoint {k.name} at x={pos[i, 0]}"
            else:
                assert abs(pos[i, 0]) < 1e-6 * scale, f"{name}: centre keypoint {k.name} at x={pos[i, 0]}"


@pytest.mark.parametrize("name", FAMILIES)
def test_keypoints_land_on_their_targets_at_the_template(name):
    fam = get_family(name)
    tp = fam.template_params()
    inst = fam.build(tp, "template")
    built = np.concatenate([fam.build_slot(s.name, tp).vertices for s in fam.slots if fam.slot_present(s.name, tp)])
    shift = built.min(0)[1], 0.5 * (built.min(0)[2] + built.max(0)[2])  # build() moves y and z only
    pos = fam.keypoint_positions(inst)
    by_name = {d.name: d for d in fam.keypoint_defs}
    for i, k in enumerate(fam.keypoints):
        if np.isnan(pos[i, 0]):
            continue
        d = by_name.get(k.name) or by_name[swap_side(k.name)]
        target = np.asarray(d.target(tp), np.float64)
        if k.name not in by_name:
            target = target * [-1, 1, 1] if d.twin_target is None else np.asarray(d.twin_target(tp), np.float64)
        target = target - np.array([0.0, shift[0], shift[1]])
        assert np.linalg.norm(pos[i] - target) < 0.05 * np.ptp(inst.vertices, axis=0).max(), k.name


@pytest.mark.parametrize("name", FAMILIES)
def test_mirror_maps_left_slots_onto_right_twins(name):
    fam, params, _ = _samples(name)
    perm = fam.flip_permutation
    for p in params[:6]:
        inst = fam.build(fam.symmetrize(p), "sym")
        present = fam.present_slots(inst)
        flip = np.array([-1.0, 1.0, 1.0])
        for s, spec in enumerate(fam.slots):
            if not present[s]:
                continue
            twin = fam.slot_index(fam.mirror_slot(spec.name))
            assert fam.mirror_slot(fam.slots[twin].name) == spec.name
            assert present[twin], f"{name}: {spec.name} present without its twin"
            a, b = _slot_mesh(inst, s), _slot_mesh(inst, twin)
            if spec.side == "center":
                d, _ = cKDTree(b.vertices).query(a.vertices * flip)
                assert d.max() < 1e-9, f"{name}: centre slot {spec.name} is not mirror symmetric"
            else:
                np.testing.assert_allclose(a.vertices * flip, b.vertices, atol=1e-12, err_msg=spec.name)
                np.testing.assert_array_equal(a.faces[:, [0, 2, 1]], b.faces)
        pos = fam.keypoint_positions(inst)
        ok = ~np.isnan(pos[:, 0])
        np.testing.assert_allclose((pos * flip)[ok], pos[perm][ok], atol=1e-9)


@pytest.mark.parametrize("name", FAMILIES)
def test_instances_vary_and_optional_parts_occur(name):
    fam, params, insts = _samples(name)
    dims = np.array([np.ptp(i.vertices, axis=0) for i in insts])
    rel_std = dims.std(0) / dims.mean(0)
    assert (rel_std > 0.04).sum() >= 2, f"{name}: bbox dims barely vary: {rel_std}"
    present = np.array([fam.present_slots(i) for i in insts])
    unused = set(getattr(fam, "unused_slots", ()))  # slots of a shared topology a preset never builds (horns)
    for s, spec in enumerate(fam.slots):
        if spec.name in unused:
            assert not present[:, s].any(), f"{name}: unused slot {spec.name} present"
        elif spec.optional:
            assert 0 < present[:, s].sum() < len(insts), f"{name}: optional slot {spec.name} always or never present"
        else:
            assert present[:, s].all(), f"{name}: required slot {spec.name} missing"
    optional_parts = {spec.part for spec in fam.slots if spec.optional and spec.name not in unused}
    for part in optional_parts:
        cols = [s for s, spec in enumerate(fam.slots) if spec.part == part]
        has = present[:, cols].any(1)
        assert has.any(), f"{name}: optional part {part} never occurs"
    counts = [k for k in params[0] if k.startswith("n_")]
    for k in counts:
        assert len({p[k] for p in params}) >= 2, f"{name}: count {k} never varies"
    no_counts = ("bottle", "table", "quadruped", "bird", "person", "pottedplant", "tvmonitor")
    no_counts += ("cat", "cow", "dog", "horse", "sheep")
    assert counts or name in no_counts, f"{name}: no count-varying parts"


@pytest.mark.parametrize("name", FAMILIES)
def test_determinism(name):
    fam = get_family(name)
    p1 = fam.sample_params(np.random.default_rng(7))
    p2 = fam.sample_params(np.random.default_rng(7))
    assert p1 == p2
    a, b = fam.build(p1, "x"), fam.build(p2, "x")
    for f in ("vertices", "faces", "face_slot", "face_local", "uv"):
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes()
    import json

    json.dumps(p1)  # parameters are JSON-serialisable


@pytest.mark.parametrize("name", FAMILIES)
def test_material_groups_cover_present_slots(name):
    fam, _, insts = _samples(name)
    inst = insts[0]
    present = [s.name for s, p in zip(fam.slots, fam.present_slots(inst)) if p]
    assert set(inst.material_groups) == set(present)
    groups = {}
    for s in fam.slots:
        groups.setdefault(s.part, set()).add(fam.material_groups[s.name])
    assert all(len(g) == 1 for g in groups.values()), "slots of one part share one material"
