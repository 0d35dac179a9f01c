"""Persons: an articulated human body (child to adult proportions) posed per instance, standing, walking or
sitting, each arm hanging, reaching forward or raised, the left and right limbs posed independently.

Build frame: the face looks to +z, y up, the person's own left arm and leg are at +x. ``build`` puts the lowest
point (a sole, or the seat of a sitting person's feet) on y = 0 and centres the bounding box in z. Limbs are
:mod:`datagen.families.limbs` chains: one tube per limb from inside the torso through joint arcs of fixed length
(the shoulder, elbow and wrist rings of an arm, the hip, knee and ankle rings of a leg, whose foot is the same
tube bent forward at the ankle), so a ring at the elbow is the elbow on every instance whatever the pose, and a
bent joint never folds its inner side through itself.

Slots (fixed order; * = optional): torso (a lofted trunk from the crotch to the neck base that leans forward at
the waist), neck, head (a lofted skull whose face is +z; the head nods), nose, ear_{left,right},
arm_{left,right} (shoulder to finger tips), leg_{left,right} (hip to toes), hat* (a brimmed hat, the one
clothing-like part: an optional slot).

Keypoints, with the SPair-71k person index where it is known (GeoAware-SC ``utils_geoware.py``: ``SPAIR_LR``
marks the even index of each pair right, 1 = left; its comments name 0/1 eyes, 2/3 ears, 8/9 shoulders, 10/11
elbows, 12/13 wrists, 14/15 knees, 16/17 ankles, 18/19 feet; the same table is ``datagen.real.tables``):
    eye_{left,right} [1, 0], ear_{left,right} [3, 2], shoulder_{left,right} [9, 8], elbow_{left,right} [11, 10],
    wrist_{left,right} [13, 12], knee_{left,right} [15, 14], ankle_{left,right} [17, 16], foot_{left,right}
    [19, 18] (the toe tip); hip_{left,right} (no SPair index: SPair's person set has no hips in those comments);
    centre points nose, chin, neck (the front of the neck), head_top. SPair's four centre keypoints 4-7 are not
    named in the sources we found, so they are not mapped (likely the nose and mouth among them).
Joint keypoints are surface points of the joint ring: the lateral side of the shoulder, elbow, wrist, hip and
ankle (visible from the front, the side and the back), the front of the knee (the kneecap).
Symmetric groups follow GeoAware's ``SPAIR_GEO_AWARE['person']``: the shoulder, elbow, wrist, knee, ankle and
foot pairs (plus our hip pair); eyes and ears are left/right pairs but not geometry-aware groups there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.limbs import Bend, Chain, Line, frame, loft, ring_surface_point, walk
from datagen.families.parts import PartMesh, lathe, rotation_x, rotation_z
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["PersonFamily"]

_KINDS = ("stand", "walk", "sit")
_ARM_MODES = ("down", "forward", "up")
_LIMB_SEG = 16

_SLOTS = [
    SlotDef("torso", "torso", "top"),
    SlotDef("neck", "neck", "skin"),
    SlotDef("head", "head", "skin"),
    SlotDef("nose", "nose", "skin"),
    SlotDef("ear_left", "ear", "skin", "left"),
    SlotDef("ear_right", "ear", "skin", "right"),
    SlotDef("arm_left", "arm", "skin", "left"),
    SlotDef("arm_right", "arm", "skin", "right"),
    SlotDef("leg_left", "leg", "trousers", "left"),
    SlotDef("leg_right", "leg", "trousers", "right"),
    SlotDef("hat", "hat", "hat", "center", True),
]

# ---- pose ranges (degrees): per kind for the legs and the trunk, per mode for an arm ---------------------------
_LEG_RANGES = {  # hip flexion (forward), hip abduction (outward), knee flexion, ankle (foot up)
    "stand": ((-6.0, 10.0), (2.0, 9.0), (0.0, 15.0), (-8.0, 10.0)),
    "walk": ((-25.0, 35.0), (0.0, 6.0), (0.0, 60.0), (-15.0, 20.0)),
    "sit": ((70.0, 100.0), (4.0, 20.0), (70.0, 110.0), (-15.0, 20.0)),
}
_ARM_RANGES = {  # shoulder flexion (forward), shoulder abduction (outward), elbow flexion, wrist flexion
    "down": ((-15.0, 25.0), (10.0, 30.0), (0.0, 45.0), (-10.0, 25.0)),
    "forward": ((35.0, 100.0), (8.0, 35.0), (0.0, 80.0), (-20.0, 30.0)),
    "up": ((0.0, 50.0), (100.0, 170.0), (0.0, 70.0), (-20.0, 25.0)),
}
_LEAN = {"stand": (-4.0, 10.0), "walk": (0.0, 14.0), "sit": (-8.0, 22.0)}


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


# ---- torso, neck, head ---------------------------------------------------------------------------------------------
def _torso_len(p: Mapping[str, Any]) -> float:
    return p["height"] - p["leg_len"] - p["head_h"] - p["neck_len"] + 0.06 * p["height"]


def _torso_chain(p: Mapping[str, Any]) -> Chain:
    """Crotch (below the hip joints) to the neck base; bends forward by ``lean`` at the waist (about +x)."""
    L = _torso_len(p)
    start = np.array([0.0, -0.06 * p["height"], 0.0])
    pieces = [Line(0.4 * L, 6), Bend(0.18 * L, np.radians(p["lean_deg"]), (0.0, 0.0, 1.0), 3), Line(0.42 * L, 7)]
    return walk(start, frame((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), pieces)


def _torso_radii(p: Mapping[str, Any], chain: Chain) -> np.ndarray:
    """(half depth along N = z, half width along B = x) per ring."""
    hw, sw, d = 0.5 * p["hip_w"], 0.5 * p["shoulder_w"], 0.5 * p["chest_d"]
    nr = p["neck_r"]
    knots = np.array([0.0, 0.35, 1.0, 1.5, 2.0, 2.45, 2.8, 2.93, 3.0])
    width = np.array([0.8 * hw, hw, 0.86 * hw, 0.8 * sw, 0.86 * sw, 0.96 * sw, 0.93 * sw, 0.6 * sw, 1.3 * nr])
    depth = np.array([0.8 * d, 0.95 * d, 0.85 * d, 0.85 * d, 0.95 * d, d, 0.8 * d, 0.6 * d, 1.2 * nr])
    return np.stack([np.interp(chain.station, knots, depth), np.interp(chain.station, knots, width)], 1)


def _torso_top(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The neck base point (on the torso axis near its top) and the trunk's top frame."""
    ch = _torso_chain(p)
    k = int(np.searchsorted(ch.station, 2.85))
    return ch.points[k], ch.frames[-1]


def _neck_chain(p: Mapping[str, Any]) -> Chain:
    base, F = _torso_top(p)
    nl = p["neck_len"]
    pieces = [Line(0.55 * nl, 3), Bend(0.45 * nl, np.radians(p["head_pitch_deg"]), (0.0, 0.0, 1.0), 3)]
    return walk(base, F, pieces)


def _head_chain(p: Mapping[str, Any]) -> Chain:
    """Chin to crown along the head's up axis (the neck's end frame; the head nods with the neck's top bend but
    never turns, so the face's centre keypoints stay on the symmetry plane x = 0)."""
    nk = _neck_chain(p)
    F = nk.frames[-1]
    start = nk.end - 0.12 * p["head_h"] * F[:, 0]
    return walk(start, F, [Line(p["head_h"], 11)])


def _head_shape(p: Mapping[str, Any], chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    """Radii [R, 2] (half depth, half width) and offsets [R, 2] (forward along N) of the head rings."""
    hd, hw = 0.5 * p["head_d"], 0.5 * p["head_w"]
    s = chain.station  # 0 .. 1 chin .. crown
    knots = np.array([0.0, 0.12, 0.3, 0.55, 0.8, 0.93, 1.0])
    depth = np.array([0.35, 0.62, 0.8, 0.95, 0.92, 0.7, 0.45]) * hd
    width = np.array([0.35, 0.7, 0.82, 0.95, 0.97, 0.75, 0.45]) * hw
    fwd = np.array([0.3, 0.26, 0.18, 0.1, 0.05, 0.0, 0.0]) * hd * p["jaw"]
    radii = np.stack([np.interp(s, knots, depth), np.interp(s, knots, width)], 1)
    offs = np.stack([np.interp(s, knots, fwd), np.zeros_like(s)], 1)
    return radii, offs


def _head_point(p: Mapping[str, Any], station: float, azimuth_deg: float, out: float = 1.0) -> np.ndarray:
    """A point on the head at ``station`` (0 chin .. 1 crown), ``azimuth`` from the front towards +x (degrees)."""
    ch = _head_chain(p)
    radii, offs = _head_shape(p, ch)
    a = np.radians(azimuth_deg)
    return ring_surface_point(ch, radii * out, station, (np.cos(a), np.sin(a)), offs)


def _nose_chain(p: Mapping[str, Any]) -> Chain:
    ch = _head_chain(p)
    F = ch.frames[0]
    base = _head_point(p, 0.42, 0.0, 0.8)
    T = np.cos(np.radians(25.0)) * F[:, 1] - np.sin(np.radians(25.0)) * F[:, 0]  # forward and down
    return walk(base, frame(T, F[:, 0]), [Line(p["nose_len"], 3)])


def _ear_chain(p: Mapping[str, Any]) -> Chain:
    """The left ear: a flat lobe on the +x side of the head, along the head's up axis."""
    ch = _head_chain(p)
    F = ch.frames[0]
    centre = _head_point(p, 0.5, 95.0, 0.92)
    eh = p["ear_h"]
    return walk(centre - 0.5 * eh * F[:, 0], frame(F[:, 0], F[:, 2]), [Line(eh, 4)])


def _ear_radii(p: Mapping[str, Any]) -> np.ndarray:
    f = np.array([0.55, 0.9, 1.0, 0.9, 0.6])
    return np.stack([0.12 * p["ear_h"] * f, 0.3 * p["ear_h"] * f], 1)


def _hat(p: Mapping[str, Any]) -> PartMesh:
    """A brimmed hat (a lathe: brim, crown, top) sitting on the head ring at 78 % of its height, tilted with it."""
    ch = _head_chain(p)
    radii, offs = _head_shape(p, ch)
    k = int(np.searchsorted(ch.station, 0.78))
    F = ch.frames[k]
    base = ch.points[k] + offs[k, 0] * F[:, 1]
    r0 = 1.02 * float(radii[k].max())
    ch_h, brim, t = p["hat_crown"], p["hat_brim"], 0.012 * p["height"]
    rad = np.array([r0 + brim, r0 + brim, r0, r0, 0.97 * r0, 0.85 * r0, 0.5 * r0])
    hgt = np.array([0.0, t, t + 1e-3, 0.6 * ch_h, 0.9 * ch_h, ch_h, 1.04 * ch_h])
    hat = lathe(rad, hgt, 24)
    R = np.stack([F[:, 2], F[:, 0], F[:, 1]], axis=1)  # lathe x, y (axis), z -> head B (+x), T (up), N (front)
    return hat.transformed(R, base)


# ---- limbs -------------------------------------------------------------------------------------------------------
_REST = frame((0.0, -1.0, 0.0), (0.0, 0.0, 1.0))  # hanging limb: T down, N front, B = T x N = -x (medial, left)
_LATERAL = (0.0, -1.0)  # -B: the outer side of a left limb


def _arm_geom(p: Mapping[str, Any], side: str) -> tuple[Chain, np.ndarray]:
    """The left-built arm (pose of ``side``): shoulder (station 1), elbow (2.5), wrist (4.5), finger tips (6)."""
    flex, abd, elbow, wrist = p["pose"][side]["arm"]
    ch_t = _torso_chain(p)
    k = int(np.searchsorted(ch_t.station, 2.8))
    Ft = ch_t.frames[k]
    r_sh = p["r_arm"] * 1.25
    joint = ch_t.points[k] + (0.5 * p["shoulder_w"] - 1.05 * r_sh) * Ft[:, 2] - 0.15 * p["chest_d"] * Ft[:, 1]
    R = rotation_x(np.radians(p["lean_deg"])) @ rotation_z(np.radians(abd)) @ rotation_x(-np.radians(flex))
    F0 = R @ _REST
    r_el, r_wr = 0.8 * p["r_arm"], 0.6 * p["r_arm"]
    le, lw = 3.2 * r_el, 3.0 * 0.7 * r_wr
    ua, fa, ha = p["upper_arm"], p["forearm"], p["hand"]
    pieces = [
        Line(0.8 * r_sh, 1),
        Line(ua - 0.5 * le, 5),
        Bend(le, np.radians(elbow), (0.0, 0.0, 1.0), 4),  # the forearm swings forward (towards +N)
        Line(fa - 0.5 * le - 0.5 * lw, 5),
        Bend(lw, np.radians(wrist), (0.0, -1.0, 0.0), 2),  # the hand bends towards the palm (+B, medial)
        Line(ha - 0.5 * lw, 4),
    ]
    ch = walk(joint - 0.8 * r_sh * F0[:, 0], F0, pieces)
    ra, hw, ht = p["r_arm"], 0.5 * p["hand_w"], 0.5 * p["hand_t"]
    knots = np.array([0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.4, 4.0, 4.5, 5.0, 5.5, 6.0])
    ru = np.array([0.9 * r_sh, r_sh, 1.0 * ra, 0.9 * ra, r_el, 0.92 * ra, 0.85 * ra, 1.2 * r_wr, 1.3 * r_wr,
                   hw, 0.95 * hw, 0.7 * hw])  # fmt: skip
    rv = np.array([0.9 * r_sh, r_sh, 1.0 * ra, 0.9 * ra, r_el, 0.85 * ra, 0.75 * ra, 0.8 * r_wr, 0.7 * r_wr,
                   ht, 0.9 * ht, 0.6 * ht])  # fmt: skip
    radii = np.stack([np.interp(ch.station, knots, ru), np.interp(ch.station, knots, rv)], 1)
    return ch, radii


def _leg_geom(p: Mapping[str, Any], side: str) -> tuple[Chain, np.ndarray]:
    """The left-built leg (pose of ``side``): hip (station 1), knee (2.5), ankle (4.5), toe tip (6)."""
    flex, abd, knee, ankle = p["pose"][side]["leg"]
    r_th = p["r_leg"]
    r_kn, r_an = 0.66 * r_th, 0.42 * r_th
    joint = np.array([0.5 * p["hip_w"] - 0.95 * r_th, 0.0, 0.0])
    F0 = rotation_z(np.radians(abd)) @ rotation_x(-np.radians(flex)) @ _REST
    lk, la = 3.0 * r_kn, 2.9 * r_an
    th, sh, ft = p["thigh"], p["shin"], p["foot_len"]
    pieces = [
        Line(0.7 * r_th, 1),
        Line(th - 0.5 * lk, 6),
        Bend(lk, np.radians(knee), (0.0, 0.0, -1.0), 4),  # the shin swings back (towards -N)
        Line(sh - 0.5 * lk - 0.5 * la, 6),
        Bend(la, np.radians(90.0 + ankle), (0.0, 0.0, 1.0), 4),  # the foot points forward (T towards +N)
        Line(ft - 0.5 * la - r_an, 5),
    ]
    ch = walk(joint - 0.7 * r_th * F0[:, 0], F0, pieces)
    fh, fw = 0.5 * p["foot_h"], 0.5 * p["foot_w"]
    knots = np.array([0.0, 1.0, 1.6, 2.0, 2.5, 3.0, 3.35, 4.0, 4.5, 5.0, 5.6, 6.0])
    ru = np.array([0.9 * r_th, r_th, 0.9 * r_th, 0.75 * r_th, r_kn, 0.8 * r_th, 0.75 * r_th, 1.05 * r_an, r_an,
                   fh, 0.8 * fh, 0.6 * fh])  # fmt: skip
    rv = np.array([0.9 * r_th, r_th, 0.9 * r_th, 0.75 * r_th, 1.05 * r_kn, 0.7 * r_th, 0.65 * r_th, r_an,
                   1.05 * r_an, 0.8 * fw, fw, 0.85 * fw])  # fmt: skip
    radii = np.stack([np.interp(ch.station, knots, ru), np.interp(ch.station, knots, rv)], 1)
    return ch, radii


def _limb_point(geom: tuple[Chain, np.ndarray], station: float, direction: tuple[float, float]) -> np.ndarray:
    return ring_surface_point(geom[0], geom[1], station, direction)


def _limb_tip(geom: tuple[Chain, np.ndarray], ext: float) -> np.ndarray:
    ch = geom[0]
    return ch.end + ext * ch.frames[-1][:, 0]


class PersonFamily(ProceduralFamily):
    name = "person"
    description = "people, child to adult, standing / walking / sitting with arms down, forward or raised"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("eye_left", "head", lambda p: _head_point(p, 0.55, 30.0), "left", "1/0"),
        KeypointDef(
            "ear_left",
            "ear_left",
            lambda p: ring_surface_point(_ear_chain(p), _ear_radii(p), 2.0, (1.0, 0.0)),
            "left",
            "3/2",
        ),
        KeypointDef(
            "shoulder_left", "arm_left", lambda p: _limb_point(_arm_geom(p, "left"), 1.0, _LATERAL), "left", "9/8"
        ),
        KeypointDef(
            "elbow_left", "arm_left", lambda p: _limb_point(_arm_geom(p, "left"), 2.5, _LATERAL), "left", "11/10"
        ),
        KeypointDef(
            "wrist_left", "arm_left", lambda p: _limb_point(_arm_geom(p, "left"), 4.5, _LATERAL), "left", "13/12"
        ),
        KeypointDef("hip_left", "leg_left", lambda p: _limb_point(_leg_geom(p, "left"), 1.0, _LATERAL), "left", "-"),
        KeypointDef(
            "knee_left", "leg_left", lambda p: _limb_point(_leg_geom(p, "left"), 2.5, (1.0, 0.0)), "left", "15/14"
        ),
        KeypointDef(
            "ankle_left", "leg_left", lambda p: _limb_point(_leg_geom(p, "left"), 4.5, _LATERAL), "left", "17/16"
        ),
        KeypointDef(
            "foot_left", "leg_left", lambda p: _limb_tip(_leg_geom(p, "left"), 0.4 * p["foot_h"]), "left", "19/18"
        ),
        KeypointDef(
            "nose",
            "nose",
            lambda p: _nose_chain(p).end + 0.3 * p["nose_len"] * _nose_chain(p).frames[-1][:, 0],
            "center",
            "-",
        ),
        KeypointDef("chin", "head", lambda p: _head_point(p, 0.06, 0.0), "center", "-"),
        KeypointDef(
            "neck",
            "neck",
            lambda p: ring_surface_point(_neck_chain(p), np.full(7, p["neck_r"]), 0.6, (1.0, 0.0)),
            "center",
            "-",
        ),
        KeypointDef(
            "head_top",
            "head",
            lambda p: _head_chain(p).end + 0.05 * p["head_h"] * _head_chain(p).frames[-1][:, 0],
            "center",
            "-",
        ),
    ]
    group_defs = [
        ["shoulder_left", "shoulder_right"],
        ["elbow_left", "elbow_right"],
        ["wrist_left", "wrist_right"],
        ["hip_left", "hip_right"],
        ["knee_left", "knee_right"],
        ["ankle_left", "ankle_right"],
        ["foot_left", "foot_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        H = u(1.0, 1.95)
        adult = float(np.clip((H - 1.0) / 0.7, 0.0, 1.0))
        heads = _lerp(5.3, 7.5, adult) + u(-0.3, 0.3)
        build = u(0.82, 1.3)
        kind = _KINDS[int(rng.integers(len(_KINDS)))]
        arm_modes = rng.choice(3, size=2, p=[0.4, 0.3, 0.3])
        pose: dict[str, Any] = {}
        for s, mode in zip(("left", "right"), arm_modes):
            leg = [u(lo, hi) for lo, hi in _LEG_RANGES[kind]]
            arm = [u(lo, hi) for lo, hi in _ARM_RANGES[_ARM_MODES[int(mode)]]]
            pose[s] = {"arm_mode": _ARM_MODES[int(mode)], "arm": arm, "leg": leg}
        head_h = H / heads
        leg_len = H * (_lerp(0.43, 0.48, adult) + u(-0.02, 0.02))
        p: dict[str, Any] = {
            "kind": kind,
            "height": H,
            "head_h": head_h,
            "head_w": head_h * u(0.62, 0.72),
            "head_d": head_h * u(0.78, 0.9),
            "jaw": u(0.6, 1.2),
            "neck_len": head_h * u(0.3, 0.5),
            "neck_r": head_h * u(0.2, 0.26) * np.sqrt(build),
            "nose_len": head_h * u(0.08, 0.14),
            "ear_h": head_h * u(0.24, 0.32),
            "leg_len": leg_len,
            "thigh": 0.5 * leg_len * u(0.98, 1.06),
            "shin": 0.5 * leg_len * u(0.86, 0.94),
            "foot_len": H * u(0.14, 0.16),
            "foot_h": H * u(0.04, 0.05),
            "foot_w": H * u(0.05, 0.06),
            "shoulder_w": H * u(0.2, 0.25) * np.sqrt(build),
            "hip_w": H * u(0.16, 0.2) * build,
            "chest_d": H * u(0.1, 0.125) * build,
            "upper_arm": H * u(0.175, 0.195),
            "forearm": H * u(0.14, 0.155),
            "hand": H * u(0.1, 0.11),
            "hand_w": H * u(0.045, 0.055),
            "hand_t": H * u(0.02, 0.026),
            "r_arm": H * u(0.024, 0.03) * build,
            "r_leg": H * u(0.045, 0.055) * build,
            "lean_deg": u(*_LEAN[kind]),
            "head_pitch_deg": u(-15.0, 20.0),
            "hat": bool(rng.random() < 0.3),
            "hat_crown": head_h * u(0.2, 0.45),
            "hat_brim": head_h * u(0.03, 0.25),
            "pose": pose,
        }
        return p

    def template_params(self) -> dict[str, Any]:
        H = 1.7
        return {
            "kind": "stand", "height": H, "head_h": 0.23, "head_w": 0.155, "head_d": 0.195, "jaw": 0.9,
            "neck_len": 0.09, "neck_r": 0.052, "nose_len": 0.025, "ear_h": 0.065, "leg_len": 0.8, "thigh": 0.41,
            "shin": 0.36, "foot_len": 0.255, "foot_h": 0.075, "foot_w": 0.093, "shoulder_w": 0.385, "hip_w": 0.3,
            "chest_d": 0.2, "upper_arm": 0.315, "forearm": 0.25, "hand": 0.18, "hand_w": 0.085, "hand_t": 0.039,
            "r_arm": 0.046, "r_leg": 0.085, "lean_deg": 0.0, "head_pitch_deg": 0.0, "hat": True,
            "hat_crown": 0.07, "hat_brim": 0.03,
            "pose": {s: {"arm_mode": "down", "arm": [0.0, 12.0, 10.0, 0.0], "leg": [0.0, 5.0, 5.0, 0.0]}
                     for s in ("left", "right")},
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        left = params["pose"]["left"]
        out["pose"] = {"left": left, "right": {k: (list(v) if isinstance(v, list) else v) for k, v in left.items()}}
        return out

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        return bool(params["hat"]) if name == "hat" else True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "torso":
            ch = _torso_chain(p)
            r = _torso_radii(p, ch)
            return loft(ch, r, 28, start_ext=0.5 * r[0, 0], end_ext=0.5 * p["neck_r"])
        if name == "neck":
            ch = _neck_chain(p)
            r = p["neck_r"] * np.interp(ch.station, [0.0, 1.0, 2.0], [1.15, 1.0, 0.95])
            return loft(ch, r, 16)
        if name == "head":
            ch = _head_chain(p)
            radii, offs = _head_shape(p, ch)
            return loft(ch, radii, 24, offs, start_ext=0.05 * p["head_h"], end_ext=0.05 * p["head_h"])
        if name == "nose":
            ch = _nose_chain(p)
            w = p["nose_len"]
            r = np.stack([w * np.array([0.45, 0.42, 0.32, 0.2]), w * np.array([0.4, 0.38, 0.32, 0.22])], 1)
            return loft(ch, r, 12, end_ext=0.3 * w)
        if name == "ear_left":
            return loft(_ear_chain(p), _ear_radii(p), 12, start_ext=0.1 * p["ear_h"], end_ext=0.1 * p["ear_h"])
        if name == "arm_left":
            ch, r = _arm_geom(p, side)
            return loft(ch, r, _LIMB_SEG, start_ext=0.5 * r[0, 0], end_ext=0.7 * r[-1, 0])
        if name == "leg_left":
            ch, r = _leg_geom(p, side)
            return loft(ch, r, _LIMB_SEG, start_ext=0.5 * r[0, 0], end_ext=0.4 * p["foot_h"])
        if name == "hat":
            return _hat(p)
        raise KeyError(f"person: no part builder for slot {name!r}")
