"""Family-specific checks: metric sizes in plausible ranges, front is +z, left is +x."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from datagen.families import family_names, get_family


@functools.cache
def _insts(name: str, n: int = 25) -> tuple:
    fam = get_family(name)
    rng = np.random.default_rng(99)
    return fam, [fam.build(fam.sample_params(rng), str(i)) for i in range(n)]


def _centroid(fam, inst, slot: str) -> np.ndarray:
    return inst.vertices[np.unique(inst.faces[inst.face_slot == fam.slot_index(slot)])].mean(0)


def _has(fam, inst, slot: str) -> bool:
    return bool(fam.present_slots(inst)[fam.slot_index(slot)])


def _kp(fam, inst, name: str) -> np.ndarray:
    return fam.keypoint_positions(inst)[fam.keypoint_names.index(name)]


def test_chair_sizes_and_orientation():
    fam, insts = _insts("chair")
    for inst in insts:
        size = np.ptp(inst.vertices, axis=0)
        assert 0.38 < size[0] < 0.8 and 0.65 < size[1] < 1.15 and 0.38 < size[2] < 0.9, size
        seat_top = _kp(fam, inst, "seat_center")[1]
        assert 0.39 < seat_top < 0.52
        # the back is behind the seat (-z), the backrest top above the seat
        assert _centroid(fam, inst, "back_top_rail")[2] < _centroid(fam, inst, "seat")[2] - 0.1
        assert _kp(fam, inst, "backrest_top_center")[1] > seat_top + 0.2
        assert _kp(fam, inst, "seat_front_left")[2] > _kp(fam, inst, "seat_back_left")[2]
        if _has(fam, inst, "leg_front_left"):
            for leg in ("front_left", "front_right", "back_left", "back_right"):
                foot = _kp(fam, inst, f"foot_{leg}")
                assert abs(foot[1]) < 0.01
                assert np.sign(foot[0]) == (1 if leg.endswith("left") else -1)
                assert np.sign(foot[2] - _centroid(fam, inst, "seat")[2]) == (1 if leg.startswith("front") else -1)
        if _has(fam, inst, "armrest_left"):
            assert _centroid(fam, inst, "armrest_left")[0] > 0.15 and _centroid(fam, inst, "armrest_right")[0] < -0.15
        if _has(fam, inst, "column"):
            assert not _has(fam, inst, "leg_front_left")
            assert _centroid(fam, inst, "caster_front")[2] > _centroid(fam, inst, "column")[2] + 0.2
            assert _centroid(fam, inst, "caster_left_1")[0] > 0.2


def test_chair_variants_occur():
    fam, insts = _insts("chair")
    assert any(i.params["office"] for i in insts) and not all(i.params["office"] for i in insts)
    assert len({i.params["n_slats"] for i in insts}) == 5


@pytest.mark.slow
@pytest.mark.parametrize("name", family_names())
def test_instance_face_counts_are_moderate(name):
    fam, insts = _insts(name)
    counts = [i.n_faces for i in insts]
    assert min(counts) >= 800 and max(counts) <= 25000, (min(counts), max(counts))


def test_car_sizes_and_orientation():
    fam, insts = _insts("car")
    for inst in insts:
        size = np.ptp(inst.vertices, axis=0)
        assert 1.6 < size[0] < 2.4 and 1.3 < size[1] < 1.9 and 3.5 <= size[2] <= 5.05, size
        # front bumper (+z): headlights and the front plate at the front, taillights at the back, roof on top
        assert (
            _kp(fam, inst, "headlight_left")[2] > 0.4 * size[2] > -_kp(fam, inst, "taillight_left")[2] - 0.9 * size[2]
        )
        assert _kp(fam, inst, "plate_front")[2] > 0 > _kp(fam, inst, "plate_rear")[2]
        assert _kp(fam, inst, "windshield_top_left")[2] > _kp(fam, inst, "rear_window_top_left")[2]
        assert _centroid(fam, inst, "wheel_front_left")[2] > _centroid(fam, inst, "wheel_rear_left")[2]
        assert _centroid(fam, inst, "wheel_front_left")[0] > 0.5 and _centroid(fam, inst, "mirror_right")[0] < -0.8
        wheel = _centroid(fam, inst, "wheel_front_left")
        assert 0.28 < wheel[1] < 0.41  # wheel centre height = radius: the car stands on its wheels
        n = inst.params["n_windows"]
        for i in range(1, n + 1):
            assert _centroid(fam, inst, f"window_n{n}_left_{i}")[0] > 0.5
        zs = [_centroid(fam, inst, f"window_n{n}_left_{i}")[2] for i in range(1, n + 1)]
        assert np.all(np.diff(zs) < 0)  # window 1 is the front-most


def test_aeroplane_sizes_and_orientation():
    fam, insts = _insts("aeroplane")
    for inst in insts:
        size = np.ptp(inst.vertices, axis=0)
        assert 7.0 < size[2] < 47.0 and 0.7 * size[2] < size[0] < 1.4 * size[2], size
        # the nose is the front (+z), the fin on top at the back, the left wing at +x
        nose, rear = _kp(fam, inst, "nose"), _kp(fam, inst, "rear")
        assert nose[2] > 0.45 * size[2] and rear[2] < -0.4 * size[2]
        assert _kp(fam, inst, "stabilizer_vertical_end")[1] > nose[1] + 0.5 * inst.params["radius"]
        assert _kp(fam, inst, "wing_end_left")[0] > 0.4 * size[0] > -_kp(fam, inst, "wing_end_right")[0] - 0.2 * size[0]
        assert _kp(fam, inst, "wing_foot_front_left")[2] > _kp(fam, inst, "wing_foot_back_left")[2]
        n = inst.params["n_engines"]
        assert fam.keypoint_present(inst)[fam.keypoint_names.index("engine_n1_front_left")] == (n == 1)
        if inst.params["gear_down"]:
            assert _kp(fam, inst, "landing_gear_front")[1] < 0.05 * inst.params["radius"]


def test_bottle_sizes_and_parts_stack_up():
    fam, insts = _insts("bottle")
    for inst in insts:
        size = np.ptp(inst.vertices, axis=0)
        assert 0.15 < size[1] < 0.37 and 0.04 < size[0] < 0.17, size
        ys = [_kp(fam, inst, f"{k}_left")[1] for k in ("base", "body", "shoulder", "neck", "cap")]
        assert np.all(np.diff(ys) > 0)  # base < body < shoulder < neck < cap
        assert abs(_kp(fam, inst, "cap_top")[1] - size[1]) < 1e-9
        if inst.params["handle"]:
            assert _centroid(fam, inst, "handle")[2] < -0.03  # the handle is at the back


def test_quadruped_sizes_orientation_and_poses():
    fam, insts = _insts("quadruped")
    knees = []
    for inst in insts:
        size = np.ptp(inst.vertices, axis=0)
        assert 0.5 < size[2] < 3.8 and 0.3 < size[1] < 3.0, size
        # head at +z, tail at -z, left legs at +x, the lowest hoof on the ground
        assert _kp(fam, inst, "nose_tip")[2] > _centroid(fam, inst, "body")[2] > _kp(fam, inst, "tail_base")[2]
        assert _kp(fam, inst, "eye_left")[0] > 0 > _kp(fam, inst, "eye_right")[0]
        assert _centroid(fam, inst, "leg_back_left")[0] > 0 > _centroid(fam, inst, "leg_back_right")[0]
        hooves = [_kp(fam, inst, f"hoof_{leg}")[1] for leg in ("front_left", "front_right", "back_left", "back_right")]
        assert min(hooves) < 0.05
        assert _kp(fam, inst, "knee_front_left")[1] > _kp(fam, inst, "hoof_front_left")[1]
        knees.append([inst.params["pose"][leg][1] for leg in ("front_left", "front_right", "back_left", "back_right")])
    knees = np.array(knees)
    assert knees.std(0).min() > 5.0  # every leg bends differently across instances
    assert np.abs(knees[:, 0] - knees[:, 1]).mean() > 5.0  # left and right legs are posed independently
