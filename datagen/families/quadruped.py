"""Quadrupeds: an articulated four-legged animal (dog / horse / cow / sheep proportions) posed per instance.

Build frame: the head points to +z, y up, the animal's own left legs are at +x. ``build`` puts the lowest foot on
y = 0 and centres the bounding box in z. Legs bend differently per instance: each leg has its own hip swing and
knee flex (the left and right legs of a pair are posed independently), the neck, head and tail are posed too.

Slots (fixed order; * = optional): body (a lofted barrel), neck, head (skull to muzzle), ear_{left,right},
leg_{front,back}_{left,right} (one tube from inside the body through the knee to the hoof / paw; the knee ring is
fixed, so a knee maps to the knee whatever the pose), tail, horn_{left,right}* (cow / sheep-like instances).

Keypoints, with the SPair-71k horse index in brackets (cow and sheep use the same indices, plus horns 19/20; GeoAware
``SPAIR_LR`` marks the even index of each pair right; which hoof / knee pair is front is not stated in the sources
we found, we take the first as front):
    ear_base_{left,right} [1, 0] (GeoAware "below ear"), ear_tip_{left,right} [3, 2], eye_{left,right} [5, 4],
    nostril_{left,right} [7, 6], hoof_front_{left,right} [11, 10], hoof_back_{left,right} [13, 12],
    knee_front_{left,right} [17, 16], knee_back_{left,right} [19, 18], horn_tip_{left,right} [cow/sheep 20, 19];
    centre points nose_tip, chin, withers, tail_base, tail_tip (SPair's centre keypoints 8, 9, 14, 15 of the horse
    are not named in the sources we found; we do not map them).
Symmetric groups: each left/right pair, the four hooves, the four knees (as GeoAware's horse / cow groups).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["QuadrupedFamily"]

_LEGS = ("front_left", "front_right", "back_left", "back_right")
_SEG = 16
_LEG_RINGS = 11
_KNEE = 5  # index of the knee ring

_SLOTS = [
    SlotDef("body", "body", "coat"),
    SlotDef("neck", "neck", "coat"),
    SlotDef("head", "head", "coat"),
    SlotDef("ear_left", "ear", "coat", "left"),
    SlotDef("ear_right", "ear", "coat", "right"),
    SlotDef("leg_front_left", "leg", "legs", "left"),
    SlotDef("leg_front_right", "leg", "legs", "right"),
    SlotDef("leg_back_left", "leg", "legs", "left"),
    SlotDef("leg_back_right", "leg", "legs", "right"),
    SlotDef("tail", "tail", "coat"),
    SlotDef("horn_left", "horn", "horns", "left", True),
    SlotDef("horn_right", "horn", "horns", "right", True),
]


def _body_y(p: Mapping[str, Any]) -> float:
    return p["leg_len"] + 0.55 * p["body_ry"]


def _body_stations(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Spine points [R, 3] (tail to chest) and radii [R, 2] (vertical, horizontal) of the barrel."""
    L = p["body_len"]
    t = np.linspace(-1.0, 1.0, 13)[1:-1]
    s = np.sqrt(1.0 - np.abs(t) ** 3)
    z = 0.5 * L * t
    y = _body_y(p) + 0.08 * p["body_ry"] * t  # withers slightly higher than the croup
    belly = 1.0 - p["belly_tuck"] * np.exp(-(((t + 0.1) / 0.35) ** 2))
    return np.stack([np.zeros_like(t), y, z], 1), np.stack([p["body_ry"] * s * belly, p["body_rx"] * s], 1)


def _hip(p: Mapping[str, Any], front: bool) -> np.ndarray:
    z = (0.36 if front else -0.36) * p["body_len"]
    return np.array([0.55 * p["body_rx"], _body_y(p) - 0.25 * p["body_ry"], z])


def _leg_joints(p: Mapping[str, Any], leg: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip, knee and foot of the left-built leg ``leg`` (e.g. "front_right" uses that leg's pose)."""
    front = leg.startswith("front")
    hip_deg, knee_deg = p["pose"][leg]
    hip = _hip(p, front)
    a = np.radians(hip_deg)
    k = np.radians(knee_deg) * (-1.0 if front else 1.0)  # front knees fold the hoof back, hind hocks forward
    l1, l2 = 0.5 * p["leg_len"], 0.5 * p["leg_len"]
    spread = np.radians(p["leg_spread_deg"])
    d1 = np.array([np.sin(spread), -np.cos(a), np.sin(a)])
    d2 = np.array([np.sin(spread), -np.cos(a + k), np.sin(a + k)])
    knee = hip + l1 * d1 / np.linalg.norm(d1)
    foot = knee + l2 * d2 / np.linalg.norm(d2)
    return hip, knee, foot


def _leg(p: Mapping[str, Any], leg: str) -> PartMesh:
    hip, knee, foot = _leg_joints(p, leg)
    top = hip + np.array([0.0, 0.35 * p["body_ry"], 0.0])
    pts = np.concatenate(
        [
            [top],
            hip + np.linspace(0.0, 1.0, 5)[:-1, None] * (knee - hip),  # hip .. before the knee
            [knee],
            knee + np.linspace(0.0, 1.0, 6)[1:, None] * (foot - knee),  # after the knee .. the foot
        ]
    )
    r = p["leg_r"]
    radii = np.array([1.5, 1.5, 1.3, 1.1, 0.95, 0.85, 0.7, 0.62, 0.6, 0.65, 0.75]) * r
    return tube(pts, radii, _SEG, up=(0.0, 0.0, 1.0))


def _neck_points(p: Mapping[str, Any]) -> np.ndarray:
    a = np.radians(p["neck_deg"])
    start = np.array([0.0, _body_y(p) + 0.35 * p["body_ry"], 0.4 * p["body_len"]])
    d = np.array([0.0, np.sin(a), np.cos(a)])
    return start[None] + np.linspace(0.0, 1.0, 6)[:, None] * (p["neck_len"] * d)[None]


def _head_frame(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Skull centre and the head's forward axis (pitched down by ``head_pitch_deg``)."""
    c = _neck_points(p)[-1]
    a = np.radians(p["head_pitch_deg"])
    return c, np.array([0.0, -np.sin(a), np.cos(a)])


def _head_stations(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    c, d = _head_frame(p)
    t = np.linspace(-0.25, 1.0, 9)
    pts = c[None] + (t * p["head_len"])[:, None] * d[None]
    r = p["head_r"]
    muzzle = p["muzzle"]
    f = np.where(t < 0.25, np.sqrt(np.clip(1 - ((0.25 - t) / 0.55) ** 2, 0.2, 1)), 1 - (1 - muzzle) * (t - 0.25) / 0.75)
    return pts, np.stack([r * f, 0.85 * r * f], 1)


def _head_point(p: Mapping[str, Any], along: float, up: float, side: float) -> np.ndarray:
    """A point on the head surface: ``along`` the head axis (fraction of head_len), ``up``/``side`` fractions of
    the local vertical / horizontal radius."""
    pts, radii = _head_stations(p)
    t = np.linspace(-0.25, 1.0, 9)
    c = np.array([np.interp(along, t, pts[:, i]) for i in range(3)])
    ry, rx = np.interp(along, t, radii[:, 0]), np.interp(along, t, radii[:, 1])
    _, d = _head_frame(p)
    upv = np.cross(d, [1.0, 0.0, 0.0])  # perpendicular to the head axis, pointing up
    return c + up * ry * upv + np.array([side * rx, 0.0, 0.0])


def _ear_points(p: Mapping[str, Any]) -> np.ndarray:
    base = _head_point(p, 0.0, 0.75, 0.55)
    a = np.radians(p["ear_deg"])  # 0 = straight up, 90 = sideways
    d = np.array([np.sin(a), np.cos(a), -0.25])
    d /= np.linalg.norm(d)
    return base[None] + np.linspace(-0.15, 1.0, 5)[:, None] * (p["ear_len"] * d)[None]


def _horn_points(p: Mapping[str, Any]) -> np.ndarray:
    base = _head_point(p, 0.05, 0.8, 0.35)
    t = np.linspace(-0.1, 1.0, 6)
    curl = p["horn_curl"]
    d_out = np.array([1.0, 0.35, -0.2])
    d_out /= np.linalg.norm(d_out)
    pts = base[None] + (p["horn_len"] * t)[:, None] * d_out[None]
    pts[:, 1] += curl * p["horn_len"] * t**2 * 0.6
    pts[:, 2] += -curl * p["horn_len"] * t**2 * 0.4
    return pts


def _tail_points(p: Mapping[str, Any]) -> np.ndarray:
    base = np.array([0.0, _body_y(p) + 0.45 * p["body_ry"], -0.47 * p["body_len"]])
    t = np.linspace(-0.1, 1.0, 8)
    a0 = np.radians(p["tail_lift_deg"])  # angle above horizontal at the root (pointing back)
    a1 = a0 - np.radians(p["tail_droop_deg"])
    ang = a0 + (a1 - a0) * np.clip(t, 0, 1)
    step = p["tail_len"] / 7
    d = np.stack([np.zeros_like(ang), np.sin(ang), -np.cos(ang)], 1)
    pts = base[None] + np.cumsum(np.concatenate([[np.zeros(3)], d[1:] * step]), axis=0) + d[0] * (-0.1 * p["tail_len"])
    return pts


class QuadrupedFamily(ProceduralFamily):
    name = "quadruped"
    description = "four-legged animals (dog, horse, cow, sheep proportions), legs posed per instance, optional horns"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("ear_base_left", "head", lambda p: _head_point(p, 0.05, 0.35, 0.95), "left", "1/0"),
        KeypointDef("ear_tip_left", "ear_left", lambda p: _ear_points(p)[-1], "left", "3/2"),
        KeypointDef("eye_left", "head", lambda p: _head_point(p, 0.3, 0.4, 0.9), "left", "5/4"),
        KeypointDef("nostril_left", "head", lambda p: _head_point(p, 0.97, 0.3, 0.5), "left", "7/6"),
        KeypointDef("hoof_front_left", "leg_front_left", lambda p: _leg_joints(p, "front_left")[2], "left", "11/10"),
        KeypointDef("hoof_back_left", "leg_back_left", lambda p: _leg_joints(p, "back_left")[2], "left", "13/12"),
        KeypointDef(
            "knee_front_left",
            "leg_front_left",
            lambda p: _leg_joints(p, "front_left")[1] + [0, 0, p["leg_r"]],
            "left",
            "17/16",
        ),
        KeypointDef(
            "knee_back_left",
            "leg_back_left",
            lambda p: _leg_joints(p, "back_left")[1] - [0, 0, p["leg_r"]],
            "left",
            "19/18",
        ),
        KeypointDef("horn_tip_left", "horn_left", lambda p: _horn_points(p)[-1], "left", "20/19"),
        KeypointDef("nose_tip", "head", lambda p: _head_stations(p)[0][-1] + _head_frame(p)[1] * 0.05, "center", "-"),
        KeypointDef("chin", "head", lambda p: _head_point(p, 0.75, -1.0, 0.0), "center", "-"),
        KeypointDef(
            "withers",
            "body",
            lambda p: (0.0, _body_y(p) + 1.2 * p["body_ry"], 0.3 * p["body_len"]),
            "center",
            "-",
        ),
        KeypointDef("tail_base", "tail", lambda p: _tail_points(p)[1] + [0.0, 0.05, 0.0], "center", "-"),
        KeypointDef("tail_tip", "tail", lambda p: _tail_points(p)[-1], "center", "-"),
    ]
    group_defs = [
        ["ear_base_left", "ear_base_right"],
        ["ear_tip_left", "ear_tip_right"],
        ["eye_left", "eye_right"],
        ["nostril_left", "nostril_right"],
        ["hoof_front_left", "hoof_front_right", "hoof_back_left", "hoof_back_right"],
        ["knee_front_left", "knee_front_right", "knee_back_left", "knee_back_right"],
        ["horn_tip_left", "horn_tip_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        body_len = u(0.5, 1.7)
        body_ry = body_len * u(0.17, 0.28)
        p: dict[str, Any] = {
            "horns": bool(rng.random() < 0.3),
            "body_len": body_len,
            "body_ry": body_ry,
            "body_rx": body_ry * u(0.7, 1.0),
            "belly_tuck": u(0.0, 0.2),
            "leg_len": body_len * u(0.5, 0.95),
            "leg_r": body_ry * u(0.16, 0.26),
            "leg_spread_deg": u(0.0, 6.0),
            "neck_len": body_len * u(0.3, 0.6),
            "neck_r": body_ry * u(0.45, 0.7),
            "neck_deg": u(15.0, 65.0),
            "head_len": body_len * u(0.22, 0.4),
            "head_r": body_ry * u(0.36, 0.56),
            "head_pitch_deg": u(10.0, 55.0),
            "muzzle": u(0.35, 0.75),
            "ear_len": body_len * u(0.05, 0.14),
            "ear_deg": u(5.0, 70.0),
            "tail_len": body_len * u(0.2, 0.8),
            "tail_lift_deg": u(-10.0, 50.0),
            "tail_droop_deg": u(20.0, 110.0),
            "tail_r": body_ry * u(0.06, 0.14),
            "horn_len": body_len * u(0.06, 0.18),
            "horn_curl": u(0.0, 1.0),
            "pose": {leg: [u(-22.0, 22.0), u(0.0, 50.0)] for leg in _LEGS},  # hip swing, knee flex (degrees)
        }
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "horns": True, "body_len": 1.2, "body_ry": 0.27, "body_rx": 0.23, "belly_tuck": 0.1, "leg_len": 0.85,
            "leg_r": 0.055, "leg_spread_deg": 2.0, "neck_len": 0.42, "neck_r": 0.16, "neck_deg": 40.0,
            "head_len": 0.38, "head_r": 0.15, "head_pitch_deg": 30.0, "muzzle": 0.55, "ear_len": 0.1, "ear_deg": 30.0,
            "tail_len": 0.6, "tail_lift_deg": 20.0, "tail_droop_deg": 70.0, "tail_r": 0.025, "horn_len": 0.15,
            "horn_curl": 0.5, "pose": {leg: [0.0, 0.0] for leg in _LEGS},
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        pose = dict(params["pose"])
        pose["front_right"] = list(pose["front_left"])
        pose["back_right"] = list(pose["back_left"])
        out["pose"] = pose
        return out

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name.startswith("horn_"):
            return bool(params["horns"])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "body":
            pts, radii = _body_stations(p)
            tail_apex = pts[0] - [0.0, 0.0, 0.5 * p["body_len"] * 0.12]
            chest_apex = pts[-1] + [0.0, 0.0, 0.5 * p["body_len"] * 0.12]
            return tube(pts, radii, 24, up=(0.0, 1.0, 0.0), start_apex=tail_apex, end_apex=chest_apex)
        if name == "neck":
            pts = _neck_points(p)
            t = np.linspace(0.0, 1.0, pts.shape[0])
            r = p["neck_r"] * (1.25 - 0.45 * t)
            return tube(pts, np.stack([r, 0.85 * r], 1), 20, up=(0.0, 1.0, 0.0))
        if name == "head":
            pts, radii = _head_stations(p)
            _, d = _head_frame(p)
            return tube(pts, radii, 20, up=(0.0, 1.0, 0.0), start_apex=pts[0] - 0.05 * p["head_len"] * d,
                        end_apex=pts[-1] + 0.05 * p["head_len"] * d)  # fmt: skip
        if name == "ear_left":
            pts = _ear_points(p)
            w = 0.35 * p["ear_len"]
            radii = np.array([[0.6, 0.2], [0.9, 0.3], [0.7, 0.22], [0.4, 0.14], [0.12, 0.05]]) * w
            return tube(pts, radii, 12, up=(0.0, 0.0, 1.0))
        if name.startswith("leg_"):
            leg = name[len("leg_") :].replace("left", side)
            return _leg(p, leg)
        if name == "tail":
            pts = _tail_points(p)
            r = p["tail_r"] * np.linspace(1.3, 0.35, pts.shape[0])
            return tube(pts, r, 12, up=(1.0, 0.0, 0.0))
        if name == "horn_left":
            pts = _horn_points(p)
            r = 0.12 * p["horn_len"] * np.linspace(1.0, 0.12, pts.shape[0])
            return tube(pts, r, 12, up=(0.0, 0.0, 1.0))
        raise KeyError(f"quadruped: no part builder for slot {name!r}")
