"""Bicycle and motorbike families: sizes, wheels, mirror exactness, keypoint sides, optional slots, distortion."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from datagen.families import get_family
from datagen.families.distortion import STRETCH_LIMIT, family_distortion
from datagen.families.parts import signed_volume, weld
from datagen.families.wheels import ring_sweep, tyre

NAMES = ("bicycle", "motorbike")


@functools.cache
def _insts(name: str) -> tuple:
    fam = get_family(name)
    rng = np.random.default_rng(5)
    params = [fam.sample_params(rng) for _ in range(40)]
    return fam, params, [fam.build(p, str(i)) for i, p in enumerate(params)]


def _slot_vertices(fam, inst, slot: str) -> np.ndarray:
    m = inst.face_slot == fam.slot_index(slot)
    return inst.vertices[np.unique(inst.faces[m])]


def test_ring_sweep_is_closed_outward_and_round():
    t = tyre((0.5, 0.0), 0.34, 0.03, 0.028, 48, 8)
    v, f = weld(t.vertices, t.faces)
    assert signed_volume(v, f) > 0
    # Pappus: the section's area (an 8-gon inscribed in the ellipse) times the path of its centroid
    R, a, b = 0.34 - 0.015, 0.015, 0.014
    section = 4 * np.sin(2 * np.pi / 8) * a * b
    assert abs(signed_volume(v, f) / (section * 2 * np.pi * R) - 1) < 0.01
    prof = np.array([[0.01, 0.0], [0.0, 0.01], [-0.01, 0.0], [0.0, -0.01]])
    assert ring_sweep((0.0, 0.0), 0.3, prof, 12).n_faces == 2 * 12 * 4


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_realistic_sizes(name):
    _, params, insts = _insts(name)
    dims = np.array([np.ptp(i.vertices, axis=0) for i in insts])
    lo, hi = {"bicycle": ((0.3, 0.6, 1.0), (0.95, 1.4, 2.0)), "motorbike": ((0.5, 0.9, 1.5), (1.1, 1.7, 2.6))}[name]
    assert (dims >= lo).all() and (dims <= hi).all(), dims
    assert np.ptp(dims[:, 2]) > 0.2  # kids' bikes / scooters against full-size ones


@pytest.mark.parametrize("name", NAMES)
def test_wheels_are_round_and_touch_the_ground(name):
    fam, params, insts = _insts(name)
    for inst in insts[:10]:
        for w in ("front", "back"):
            v = _slot_vertices(fam, inst, f"tyre_{w}")
            c = 0.5 * (v.min(0) + v.max(0))
            r = np.hypot(v[:, 1] - c[1], v[:, 2] - c[2])
            assert abs(v[:, 1].min()) < 1e-9  # both tyres stand on y = 0
            np.testing.assert_allclose(np.ptp(v[:, 1]), np.ptp(v[:, 2]), rtol=1e-9)  # round in the wheel plane
            assert abs(c[0]) < 1e-12 and r.max() > 0.19
            hub = _slot_vertices(fam, inst, f"hub_{w}")
            np.testing.assert_allclose(0.5 * (hub.min(0) + hub.max(0))[1:], c[1:], atol=1e-9)  # hub on the axle


@pytest.mark.parametrize("name", NAMES)
def test_front_is_plus_z_and_keypoints_on_their_side(name):
    fam, _, insts = _insts(name)
    names = fam.keypoint_names
    for inst in insts[:10]:
        pos = fam.keypoint_positions(inst)
        k = dict(zip(names, pos))
        assert k["front_wheel_left"][2] > k["back_wheel_left"][2] + 0.8  # the front wheel is ahead (+z)
        assert k["handle_left"][0] > 0.1 and k["handle_right"][0] < -0.1
        np.testing.assert_allclose(k["handle_left"] * [-1, 1, 1], k["handle_right"], atol=1e-9)
        assert k["seat_front"][2] > k["handle_left"][2] - 1.0
        for n, p in k.items():
            if np.isnan(p[0]):
                continue
            if n.endswith("_left"):
                assert p[0] > 0.0, n
            elif n.endswith("_right"):
                assert p[0] < 0.0, n
            else:
                assert abs(p[0]) < 1e-9, n


@pytest.mark.parametrize("name", NAMES)
def test_spair_notes_and_groups(name):
    fam = get_family(name)
    notes = fam.spair_notes
    want = {
        "bicycle": {"front_wheel_left": "0", "front_wheel_right": "0", "handle_left": "3", "handle_right": "2",
                    "seat_back_left": "7", "seat_back_right": "6", "pedal_left": "10", "pedal_right": "9"},
        "motorbike": {"mirror_left": "1", "mirror_right": "0", "handle_left": "3", "handle_right": "2",
                      "front_wheel_left": "6", "back_wheel_right": "7"},
    }[name]  # fmt: skip
    for k, v in want.items():
        assert notes[k] == v, k
    perm = fam.flip_permutation
    for g in fam.symmetric_groups:
        assert sorted(perm[i] for i in g) == sorted(g)  # groups are closed under the mirror


def test_bicycle_frames_and_accessories_vary():
    fam, params, insts = _insts("bicycle")
    kinds = {p["kind"] for p in params}
    assert kinds == {"road", "mountain", "city", "kids"}
    present = np.array([fam.present_slots(i) for i in insts])
    top, step = fam.slot_index("top_tube"), fam.slot_index("step_tube")
    assert (present[:, top] ^ present[:, step]).all()  # exactly one of the two frame styles
    for s in ("rack", "basket", "kickstand", "mudguard_front"):
        assert 0 < present[:, fam.slot_index(s)].sum() < len(insts)
    # spokes: exactly one count per wheel and side
    for w in ("front", "back"):
        for side in ("left", "right"):
            cols = [fam.slot_index(f"spokes_n{n}_{w}_{side}") for n in (8, 12, 16)]
            assert (present[:, cols].sum(1) == 1).all()


def test_bicycle_clearances_and_cranks_keep_the_junctions_in_place():
    """The front tyre clears the head tube, the rear tyre the seat tube, by wheel-scaled margins in a narrow band,
    and the cranks stay near level (a crank at any angle overlaps unrelated parts between instances: the raw
    cycle's commonest miss)."""
    from datagen.families.bicycle import _points, _u

    fam, params, insts = _insts("bicycle")
    for p in params:
        P, R = _points(p), p["wheel_r"]
        s = R / 0.34
        crown = (P["ht_bot"][1] - 2 * R) / s
        assert 0.045 - 1e-9 <= crown <= 0.075 + 1e-9
        d = _u(p["seat_angle"])
        v = P["back"] - P["bb"]
        rear = (np.linalg.norm(v - (v @ d) * d) - R) / s  # axle to the seat tube's axis, less the wheel radius
        assert 0.03 - 1e-9 <= rear <= 0.05 + 1e-9
        assert 0.39 < p["chainstay"] / s < 0.44 and 0.5 < p["stack"] / s < 0.7
        assert abs(p["crank_angle_left"] - np.pi / 2) <= 0.6 + 1e-9
        assert abs((p["crank_angle_right"] - p["crank_angle_left"]) % (2 * np.pi) - np.pi) < 1e-9


def test_motorbike_variants():
    fam, params, insts = _insts("motorbike")
    present = np.array([fam.present_slots(i) for i in insts])
    for p, row in zip(params, present):
        assert row[fam.slot_index("tank")] == (p["kind"] != "scooter")
        assert row[fam.slot_index("exhaust_left")] or row[fam.slot_index("exhaust_right")]
    both = present[:, fam.slot_index("exhaust_left")] & present[:, fam.slot_index("exhaust_right")]
    assert 0 < both.sum() < len(insts)  # one exhaust or two


@pytest.mark.parametrize("name", NAMES)
def test_crossed_parts_stay_mirror_exact(name):
    """Right slots are the exact mirror of their left twins once the side-specific parameters are equal."""
    fam, params, _ = _insts(name)
    inst = fam.build(fam.symmetrize(params[0]), "s")
    for spec in fam.slots:
        if spec.side != "left" or not fam.present_slots(inst)[fam.slot_index(spec.name)]:
            continue
        a = inst.vertices[inst.faces[inst.face_slot == fam.slot_index(spec.name)]]
        b = inst.vertices[inst.faces[inst.face_slot == fam.slot_index(fam.mirror_slot(spec.name))]]
        np.testing.assert_allclose(a[:, [0, 2, 1]] * [-1, 1, 1], b, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_distortion_bound(name):
    fam = get_family(name)
    for slot, d in family_distortion(fam, n_pairs=12, seed=3).items():
        assert d["area_frac_outside"] <= 0.005, (slot, d)
        assert d["worst"] < 4 * STRETCH_LIMIT, (slot, d)
