"""The articulated families bird and person, and the limb chains they are built from (datagen.families.limbs)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from datagen.families import get_family
from datagen.families.distortion import STRETCH_LIMIT, family_distortion
from datagen.families.limbs import Bend, Line, axis_angle, frame, loft, ring_surface_point, slerp, walk
from datagen.families.parts import signed_volume, sweep_n_faces, weld
from datagen.families.person import _arm_geom, _leg_geom
from datagen.real.tables import spair_table


@functools.cache
def _insts(name: str, n: int = 24) -> tuple:
    fam = get_family(name)
    rng = np.random.default_rng(5)
    params = [fam.sample_params(rng) for _ in range(n)]
    return fam, params, [fam.build(p, str(i)) for i, p in enumerate(params)]


def _slot_vertices(fam, inst, slot: str) -> np.ndarray:
    return inst.vertices[np.unique(inst.faces[inst.face_slot == fam.slot_index(slot)])]


def _kp(fam, inst, name: str) -> np.ndarray:
    return fam.keypoint_positions(inst)[fam.keypoint_names.index(name)]


def _shift(fam, inst, p, slot: str) -> np.ndarray:
    """The translation ``build`` applied (it moves y and z only): instance slot vertices minus the raw build."""
    raw = fam.build_slot(slot, p).vertices
    start = int(inst.faces[inst.face_slot == fam.slot_index(slot)].min())  # slots keep their vertex blocks
    d = inst.vertices[start : start + raw.shape[0]] - raw
    np.testing.assert_allclose(d, d[:1].repeat(d.shape[0], 0), atol=1e-12)
    assert abs(d[0, 0]) < 1e-12
    return d[0]


# ---- limbs ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("angle", [0.0, 0.4, 1.3, 2.4, -1.0])
def test_bend_is_a_circular_arc_of_fixed_length_turning_the_frame(angle):
    F0 = frame((0.0, -1.0, 0.0), (0.0, 0.0, 1.0))
    ch = walk((0.1, 0.2, 0.3), F0, [Line(0.5, 2), Bend(0.3, angle, (0.0, 0.0, 1.0), 6), Line(0.4, 3)])
    assert ch.points.shape == (12, 3) and ch.frames.shape == (12, 3, 3)
    np.testing.assert_allclose(ch.station, [0, 0.5, 1, *(1 + np.arange(1, 7) / 6), 2 + 1 / 3, 2 + 2 / 3, 3])
    arc = ch.points[2:9]  # the arc's start (end of the first line) and its six rings
    steps = np.linalg.norm(np.diff(arc, axis=0), axis=1)
    if abs(angle) > 1e-9:
        R = 0.3 / abs(angle)
        centre = arc[0] + R * np.sign(angle) * F0[:, 1]  # the turn is towards +N for +angle about +B
        np.testing.assert_allclose(np.linalg.norm(arc - centre, axis=1), R, rtol=1e-9)
        np.testing.assert_allclose(steps, 2 * R * np.sin(abs(angle) / 12), rtol=1e-9)  # equal arc steps
    else:
        np.testing.assert_allclose(steps, 0.05, rtol=1e-9)
    for F in ch.frames:  # frames stay orthonormal and right-handed
        np.testing.assert_allclose(F.T @ F, np.eye(3), atol=1e-12)
        assert np.linalg.det(F) > 0.999
    # the last tangent is the first turned by the angle about the first B; the line after the arc follows it
    np.testing.assert_allclose(ch.frames[-1], axis_angle(F0[:, 2], angle) @ F0, atol=1e-12)
    np.testing.assert_allclose(ch.points[-1] - ch.points[8], 0.4 * ch.frames[-1][:, 0], atol=1e-12)


def test_loft_is_closed_outward_and_ring_points_keep_their_side():
    F0 = frame((0.0, -1.0, 0.0), (0.0, 0.0, 1.0))
    for angle in (0.0, 1.5):
        ch = walk((0.0, 0.0, 0.0), F0, [Line(0.3, 3), Bend(0.2, angle, (0.0, 0.0, 1.0), 4), Line(0.3, 3)])
        radii = np.stack([np.linspace(0.06, 0.04, 11), np.linspace(0.05, 0.03, 11)], 1)
        m = loft(ch, radii, 12, start_ext=0.02, end_ext=0.02)
        assert m.n_faces == sweep_n_faces(11, 12, 2)
        v, f = weld(m.vertices, m.faces)
        assert signed_volume(v, f) > 0
        # ring point 0 sits on +N and point n/4 on +B of its ring's frame, in every pose
        rings = m.vertices[: 11 * 13].reshape(11, 13, 3)
        np.testing.assert_allclose(rings[:, 0], ch.points + radii[:, :1] * ch.frames[:, :, 1], atol=1e-12)
        np.testing.assert_allclose(rings[:, 3], ch.points + radii[:, 1:] * ch.frames[:, :, 2], atol=1e-12)
        p = ring_surface_point(ch, radii, 1.5, (0.0, -1.0))
        np.testing.assert_allclose(p, ch.points[5] - radii[5, 1] * ch.frames[5][:, 2], atol=1e-12)


def test_slerp_ends_and_midpoint():
    Ra = frame((1.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    Rb = axis_angle((0.3, 1.0, -0.2), 2.0) @ Ra
    np.testing.assert_allclose(slerp(Ra, Rb, 0.0), Ra, atol=1e-12)
    np.testing.assert_allclose(slerp(Ra, Rb, 1.0), Rb, atol=1e-12)
    half = slerp(Ra, Rb, 0.5)
    np.testing.assert_allclose(half.T @ half, np.eye(3), atol=1e-12)
    # the half-way rotation is the same angle from both ends
    ang = lambda A, B: np.arccos(np.clip((np.trace(A.T @ B) - 1) / 2, -1, 1))  # noqa: E731
    assert abs(ang(Ra, half) - 1.0) < 1e-9 and abs(ang(half, Rb) - 1.0) < 1e-9


# ---- person ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_person_joint_rings_are_the_anatomical_joints():
    """At a straight pose the shoulder, elbow and wrist rings sit at the bone lengths from each other; in any pose
    the elbow, wrist and knee keypoints lie on their joint rings' surface, on the ring's named side."""
    fam, params, insts = _insts("person")
    p = dict(params[0])
    p["lean_deg"] = 0.0
    p["pose"] = {s: {"arm_mode": "down", "arm": [0.0, 0.0, 0.0, 0.0], "leg": [0.0, 0.0, 0.0, 0.0]}
                 for s in ("left", "right")}  # fmt: skip
    ch, _ = _arm_geom(p, "left")
    at = {s: ch.points[int(np.argmin(np.abs(ch.station - s)))] for s in (1.0, 2.5, 4.5, 6.0)}
    np.testing.assert_allclose(at[1.0] - at[2.5], [0.0, p["upper_arm"], 0.0], atol=1e-12)
    np.testing.assert_allclose(at[2.5] - at[4.5], [0.0, p["forearm"], 0.0], atol=1e-12)
    ch, _ = _leg_geom(p, "left")
    knee = ch.points[int(np.argmin(np.abs(ch.station - 2.5)))]
    np.testing.assert_allclose(
        ch.points[int(np.argmin(np.abs(ch.station - 1.0)))] - knee, [0, p["thigh"], 0], atol=1e-12
    )
    for inst, prm in zip(insts, params):
        for kp, geom, station, side in (
            ("elbow_left", _arm_geom(prm, "left"), 2.5, "lat"),
            ("wrist_left", _arm_geom(prm, "left"), 4.5, "lat"),
            ("knee_left", _leg_geom(prm, "left"), 2.5, "front"),
            ("ankle_left", _leg_geom(prm, "left"), 4.5, "lat"),
        ):
            slot = "arm_left" if kp in ("elbow_left", "wrist_left") else "leg_left"
            ch, radii = geom
            k = int(np.argmin(np.abs(ch.station - station)))
            centre = ch.points[k] + _shift(fam, inst, prm, slot)
            d = _kp(fam, inst, kp) - centre
            axis = -ch.frames[k][:, 2] if side == "lat" else ch.frames[k][:, 1]
            r = radii[k, 1] if side == "lat" else radii[k, 0]
            assert abs(np.linalg.norm(d) - r) < 0.06 * r, (kp, np.linalg.norm(d), r)
            assert d @ axis > 0.97 * np.linalg.norm(d), kp


def test_person_sizes_orientation_and_independent_poses():
    fam, params, insts = _insts("person")
    for inst in insts:
        size = np.ptp(inst.vertices, axis=0)
        assert 0.55 < size[1] < 2.2, size  # sitting children to standing adults
        head = _kp(fam, inst, "head_top")
        assert head[1] > _kp(fam, inst, "chin")[1] > _kp(fam, inst, "knee_left")[1]
        assert _kp(fam, inst, "nose")[2] > _slot_vertices(fam, inst, "head").mean(0)[2]  # the face looks to +z
        assert min(_kp(fam, inst, "foot_left")[1], _kp(fam, inst, "foot_right")[1]) < 0.1
        for side in ("left", "right"):  # feet point forward
            assert _kp(fam, inst, f"foot_{side}")[2] > _kp(fam, inst, f"ankle_{side}")[2]
    kinds = {p["kind"] for p in params}
    assert kinds == {"stand", "walk", "sit"}
    knees = np.array([[p["pose"][s]["leg"][2] for s in ("left", "right")] for p in params])
    assert np.abs(knees[:, 0] - knees[:, 1]).mean() > 5.0  # left and right posed independently
    modes = {p["pose"][s]["arm_mode"] for p in params for s in ("left", "right")}
    assert modes == {"down", "forward", "up"}
    heights = np.array([p["height"] for p in params])
    assert heights.min() < 1.3 and heights.max() > 1.6  # children and adults


# ---- bird -----------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bird_orientation_wing_poses_and_legs():
    fam, params, insts = _insts("bird", 40)
    spans = {True: [], False: []}
    for inst, p in zip(insts, params):
        body = _slot_vertices(fam, inst, "body").mean(0)
        assert _kp(fam, inst, "beak_tip")[2] > body[2] > _kp(fam, inst, "tail_tip")[2]  # beak to +z, tail to -z
        assert _kp(fam, inst, "crown")[1] > _kp(fam, inst, "breast")[1]
        span = _kp(fam, inst, "wing_end_left")[0] - _kp(fam, inst, "wing_end_right")[0]
        spans[p["flying"]].append(span / p["body_len"])
        if not p["flying"]:  # standing: the feet are the lowest points, the folded wing tips behind the shoulder
            assert min(_kp(fam, inst, "foot_left")[1], _kp(fam, inst, "foot_right")[1]) < 0.15 * p["body_len"]
            assert _kp(fam, inst, "wing_end_left")[2] < body[2]
            assert _kp(fam, inst, "knee_left")[1] < body[1]
    assert min(spans[True]) > 1.5 > 1.0 > max(spans[False])  # spread vs folded wings on the same topology
    spread = np.array([[p["pose"][s]["spread"] for s in ("left", "right")] for p in params])
    assert np.abs(spread[:, 0] - spread[:, 1]).max() > 0.05
    legs = np.array([[p["pose"][s]["leg"][1] for s in ("left", "right")] for p in params])
    assert np.abs(legs[:, 0] - legs[:, 1]).mean() > 5.0


# ---- both -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bird", "person"])
def test_template_left_keypoints_on_plus_x_and_spair_notes(name):
    fam = get_family(name)
    inst = fam.build(fam.template_params(), "t")
    pos = fam.keypoint_positions(inst)
    for i, k in enumerate(fam.keypoints):
        if k.side == "left":
            assert pos[i, 0] > 0.01, k.name
        elif k.side == "right":
            assert pos[i, 0] < -0.01, k.name
    # SPair indices: each mapped keypoint has SPair's side for that index (GeoAware SPAIR_LR, datagen.real.tables),
    # a pair's right keypoint is the index just below its left one, and the mapped pairs are SPair's flip pairs
    table = spair_table(name)
    mapped = {k: int(v) for k, v in fam.spair_notes.items() if v not in ("", "-")}
    sides = {k.name: k.side for k in fam.keypoints}
    for k, v in mapped.items():
        assert table.sides[v] == sides[k], (k, v)
        if k.endswith("_left"):
            assert mapped[k[: -len("left")] + "right"] == v - 1, k
            assert (v - 1, v) in table.flip_pairs
    assert len(set(mapped.values())) == len(mapped)
    expected = {"bird": 12, "person": 16}[name]
    assert len(mapped) == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bird", "person"])
def test_mirror_twins_are_exact_and_posed_instances_are_not_mirror_symmetric(name):
    fam, params, _ = _insts(name)
    flip = np.array([-1.0, 1.0, 1.0])
    asym = 0
    for p in params[:8]:
        sym = fam.build(fam.symmetrize(p), "s")
        raw = fam.build(p, "r")
        for s in fam.slots:
            if s.side != "left" or not fam.present_slots(sym)[fam.slot_index(s.name)]:
                continue
            twin = s.name.replace("left", "right")
            np.testing.assert_allclose(
                _slot_vertices(fam, sym, s.name) * flip, _slot_vertices(fam, sym, twin), atol=1e-12
            )
            a, b = _slot_vertices(fam, raw, s.name) * flip, _slot_vertices(fam, raw, twin)
            asym += int(np.abs(a - b).max() > 1e-3)
    assert asym >= 4  # left and right limbs are posed independently


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bird", "person"])
def test_no_slot_collapses_between_random_instances(name):
    rows = family_distortion(get_family(name), n_pairs=40, seed=3)
    for slot, r in rows.items():
        assert r["area_frac_outside"] <= 0.005, (slot, r)
        assert r["worst"] < STRETCH_LIMIT, (slot, r)  # joint arcs never fold: no face beyond the limit at all
