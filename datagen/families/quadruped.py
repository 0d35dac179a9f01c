"""Quadrupeds: an articulated four-legged animal (dog / horse / cow / sheep proportions) posed per instance.

Build frame: the head points to +z, y up, the animal's own left legs are at +x. ``build`` puts the lowest foot on
y = 0 and centres the bounding box in z. Legs bend differently per instance: each leg has its own hip swing and
knee flex (the left and right legs of a pair are posed independently), the neck, head and tail are posed too.

Slots (fixed order; * = optional): body (a lofted barrel), neck, head (skull to muzzle), ear_{left,right},
leg_{front,back}_{left,right} (one tube from inside the body through the knee to the hoof / paw; the knee ring is
fixed, so a knee maps to the knee whatever the pose), tail, horn_{left,right}* (cow / sheep-like instances).

The SPair-71k animal categories are presets of these parts (same slots, same face counts; only the parameters
differ): ``cat``, ``cow``, ``dog``, ``horse``, ``sheep`` (:class:`AnimalFamily`, ranges in ``PRESETS``), each with
its category's proportions, pointed or floppy ears (``ear_droop_deg``), tail, horns (cows, some sheep), fur palette
(``AnimalFamily.sample_appearance``), SPair keypoint ids (``spair_notes``; cat 12 of 15, dog 10 of 16, horse 16 of
20, cow and sheep 18 of 21, from GeoAware-SC's ``SPAIR_FLIP`` / ``SPAIR_LR`` / ``SPAIR_GEO_AWARE`` tables) and
AP-10K's 17 (``ap10k_notes``; names in ``ANIMAL_AP10K``). ``quadruped`` itself is kept as it was (its draws, its
keypoints and notes).

Keypoints of ``quadruped``, with the SPair-71k horse index in brackets (the cow and sheep ids differ from the
horse's after 8: see ``_animal_keypoints``; GeoAware ``SPAIR_LR`` marks the even index of each pair right; which
hoof / knee pair is front is not stated in the sources we found, we take the first as front):
    ear_base_{left,right} [1, 0] (GeoAware "below ear"), ear_tip_{left,right} [3, 2], eye_{left,right} [5, 4],
    nostril_{left,right} [7, 6], hoof_front_{left,right} [11, 10], hoof_back_{left,right} [13, 12],
    knee_front_{left,right} [17, 16], knee_back_{left,right} [19, 18], horn_tip_{left,right} [cow/sheep 20, 19];
    centre points nose_tip, chin, withers, tail_base, tail_tip (SPair's centre keypoints 8, 9, 14, 15 of the horse
    are not named in the sources we found; we do not map them).
Symmetric groups: each left/right pair, the four hooves, the four knees (as GeoAware's horse / cow groups).

One module, over ~400 lines: the five SPair animals are presets of these same part builders and place their
keypoints (and AP-10K's layout) with the builders' private geometry (leg joints, neck and head points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

if TYPE_CHECKING:
    from datagen.render.appearance import Appearance

__all__ = [
    "QuadrupedFamily",
    "AnimalFamily",
    "CatFamily",
    "DogFamily",
    "HorseFamily",
    "CowFamily",
    "SheepFamily",
    "PRESETS",
    "ANIMAL_AP10K",
]

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
    """The ear's 5 spine points, base to tip. ``ear_droop_deg`` (default 0: a straight, pointed ear) bends the ear
    progressively towards the ground along its length (a floppy ear hangs beside the head)."""
    base = _head_point(p, 0.0, 0.75, 0.55)
    a = np.radians(p["ear_deg"])  # 0 = straight up, 90 = sideways
    d = np.array([np.sin(a), np.cos(a), -0.25])
    d /= np.linalg.norm(d)
    t = np.linspace(-0.15, 1.0, 5)
    droop = np.radians(float(p.get("ear_droop_deg", 0.0)))
    if droop == 0.0:
        return base[None] + t[:, None] * (p["ear_len"] * d)[None]
    down = np.array([0.35, -1.0, 0.1])  # down, a little outwards (left-built ear) and forwards
    e = down - (down @ d) * d
    e /= np.linalg.norm(e)
    mid = 0.5 * (t[1:] + t[:-1])
    ang = droop * np.clip(mid, 0.0, 1.0)
    dirs = np.cos(ang)[:, None] * d[None] + np.sin(ang)[:, None] * e[None]
    steps = np.diff(t)[:, None] * p["ear_len"] * dirs
    return base[None] + t[0] * p["ear_len"] * d[None] + np.concatenate([np.zeros((1, 3)), np.cumsum(steps, 0)])


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
            w = float(p.get("ear_w", 0.35)) * p["ear_len"]
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


# ---------------------------------------------------------------------------------------------------------------
# SPair-71k's animal categories: presets of the same parts (same slots, same topology; only parameters differ)

ANIMAL_AP10K = (
    "left_eye", "right_eye", "nose", "neck", "root_of_tail", "left_shoulder", "left_elbow", "left_front_paw",
    "right_shoulder", "right_elbow", "right_front_paw", "left_hip", "left_knee", "left_back_paw", "right_hip",
    "right_knee", "right_back_paw",
)  # fmt: skip
"""AP-10K's 17 animal keypoints in its index order (COCO-style annotation, one layout for every species)."""

# parameter -> the parameter it is a fraction of (the others are absolute: metres, degrees, fractions)
_REL = {
    "body_ry": "body_len", "body_rx": "body_ry", "leg_len": "body_len", "leg_r": "body_ry",
    "neck_len": "body_len", "neck_r": "body_ry", "head_len": "body_len", "head_r": "body_ry",
    "ear_len": "body_len", "tail_len": "body_len", "tail_r": "body_ry", "horn_len": "body_len",
}  # fmt: skip

Range = tuple[float, float]

# Per-category ranges (drawn in this order; fractions per _REL). ``horns``: probability of horns; ``floppy``:
# probability of floppy ears (then ``ear_droop_deg`` is drawn from ``floppy_droop_deg``); ``hip_deg``/``knee_deg``:
# the per-leg pose ranges.
PRESETS: dict[str, dict[str, Any]] = {
    "cat": {
        "body_len": (0.38, 0.55), "body_ry": (0.17, 0.22), "body_rx": (0.75, 0.95), "belly_tuck": (0.05, 0.25),
        "leg_len": (0.45, 0.62), "leg_r": (0.14, 0.2), "leg_spread_deg": (0.0, 5.0),
        "neck_len": (0.18, 0.3), "neck_r": (0.5, 0.65), "neck_deg": (25.0, 60.0),
        "head_len": (0.2, 0.26), "head_r": (0.6, 0.8), "head_pitch_deg": (0.0, 30.0), "muzzle": (0.55, 0.8),
        "ear_len": (0.09, 0.14), "ear_deg": (10.0, 35.0), "ear_w": (0.45, 0.6), "ear_droop_deg": (0.0, 10.0),
        "tail_len": (0.6, 0.95), "tail_lift_deg": (-10.0, 70.0), "tail_droop_deg": (0.0, 120.0),
        "tail_r": (0.1, 0.15), "horn_len": (0.05, 0.1), "horn_curl": (0.0, 1.0),
        "horns": 0.0, "floppy": 0.0, "floppy_droop_deg": (100.0, 160.0), "hip_deg": (-25.0, 25.0),
        "knee_deg": (0.0, 45.0),
    },
    "dog": {
        "body_len": (0.45, 1.0), "body_ry": (0.19, 0.25), "body_rx": (0.7, 0.95), "belly_tuck": (0.05, 0.2),
        "leg_len": (0.5, 0.78), "leg_r": (0.15, 0.22), "leg_spread_deg": (0.0, 6.0),
        "neck_len": (0.22, 0.45), "neck_r": (0.45, 0.65), "neck_deg": (25.0, 65.0),
        "head_len": (0.22, 0.36), "head_r": (0.45, 0.65), "head_pitch_deg": (5.0, 40.0), "muzzle": (0.35, 0.7),
        "ear_len": (0.08, 0.16), "ear_deg": (5.0, 50.0), "ear_w": (0.35, 0.6), "ear_droop_deg": (0.0, 15.0),
        "tail_len": (0.4, 0.6), "tail_lift_deg": (-10.0, 50.0), "tail_droop_deg": (0.0, 100.0),
        "tail_r": (0.1, 0.15), "horn_len": (0.05, 0.1), "horn_curl": (0.0, 1.0),
        "horns": 0.0, "floppy": 0.5, "floppy_droop_deg": (100.0, 160.0), "hip_deg": (-22.0, 22.0),
        "knee_deg": (0.0, 45.0),
    },
    "horse": {
        "body_len": (1.4, 1.9), "body_ry": (0.2, 0.25), "body_rx": (0.75, 0.9), "belly_tuck": (0.0, 0.12),
        "leg_len": (0.82, 1.0), "leg_r": (0.14, 0.19), "leg_spread_deg": (0.0, 4.0),
        "neck_len": (0.45, 0.65), "neck_r": (0.45, 0.6), "neck_deg": (40.0, 70.0),
        "head_len": (0.34, 0.42), "head_r": (0.36, 0.46), "head_pitch_deg": (35.0, 70.0), "muzzle": (0.55, 0.75),
        "ear_len": (0.06, 0.09), "ear_deg": (5.0, 25.0), "ear_w": (0.3, 0.4), "ear_droop_deg": (0.0, 10.0),
        "tail_len": (0.4, 0.65), "tail_lift_deg": (0.0, 35.0), "tail_droop_deg": (60.0, 110.0),
        "tail_r": (0.12, 0.2), "horn_len": (0.05, 0.1), "horn_curl": (0.0, 1.0),
        "horns": 0.0, "floppy": 0.0, "floppy_droop_deg": (100.0, 160.0), "hip_deg": (-20.0, 20.0),
        "knee_deg": (0.0, 50.0),
    },
    "cow": {
        "body_len": (1.5, 2.0), "body_ry": (0.26, 0.32), "body_rx": (0.8, 1.0), "belly_tuck": (0.0, 0.08),
        "leg_len": (0.5, 0.65), "leg_r": (0.16, 0.21), "leg_spread_deg": (0.0, 5.0),
        "neck_len": (0.22, 0.35), "neck_r": (0.55, 0.7), "neck_deg": (5.0, 35.0),
        "head_len": (0.26, 0.33), "head_r": (0.36, 0.46), "head_pitch_deg": (30.0, 65.0), "muzzle": (0.6, 0.85),
        "ear_len": (0.07, 0.11), "ear_deg": (60.0, 90.0), "ear_w": (0.4, 0.55), "ear_droop_deg": (0.0, 30.0),
        "tail_len": (0.45, 0.65), "tail_lift_deg": (-5.0, 15.0), "tail_droop_deg": (80.0, 110.0),
        "tail_r": (0.05, 0.08), "horn_len": (0.06, 0.14), "horn_curl": (0.1, 0.6),
        "horns": 0.7, "floppy": 0.0, "floppy_droop_deg": (100.0, 160.0), "hip_deg": (-15.0, 15.0),
        "knee_deg": (0.0, 35.0),
    },
    "sheep": {
        "body_len": (0.9, 1.3), "body_ry": (0.3, 0.36), "body_rx": (0.85, 1.0), "belly_tuck": (0.0, 0.05),
        "leg_len": (0.42, 0.58), "leg_r": (0.1, 0.14), "leg_spread_deg": (0.0, 5.0),
        "neck_len": (0.2, 0.32), "neck_r": (0.55, 0.7), "neck_deg": (15.0, 50.0),
        "head_len": (0.22, 0.28), "head_r": (0.35, 0.45), "head_pitch_deg": (35.0, 65.0), "muzzle": (0.5, 0.7),
        "ear_len": (0.07, 0.11), "ear_deg": (65.0, 95.0), "ear_w": (0.35, 0.5), "ear_droop_deg": (0.0, 40.0),
        "tail_len": (0.1, 0.25), "tail_lift_deg": (-10.0, 20.0), "tail_droop_deg": (40.0, 90.0),
        "tail_r": (0.12, 0.2), "horn_len": (0.12, 0.22), "horn_curl": (0.7, 1.0),
        "horns": 0.4, "floppy": 0.0, "floppy_droop_deg": (100.0, 160.0), "hip_deg": (-15.0, 15.0),
        "knee_deg": (0.0, 35.0),
    },
}  # fmt: skip

_SHAPE_KEYS = [k for k in PRESETS["cat"] if k not in ("horns", "floppy", "floppy_droop_deg", "hip_deg", "knee_deg")]


def _shoulder(p: Mapping[str, Any], leg: str) -> np.ndarray:
    """The outside of the leg at its hip (shoulder for a front leg) joint, on the left-built leg."""
    return _leg_joints(p, leg)[0] + np.array([1.5 * p["leg_r"], 0.0, 0.0])


def _neck_base(p: Mapping[str, Any]) -> np.ndarray:
    """The top of the neck where it leaves the body (AP-10K's "neck")."""
    return _neck_points(p)[1] + np.array([0.0, 1.1 * p["neck_r"], 0.0])


def _animal_keypoints(category: str) -> tuple[list[KeypointDef], list[list[str]]]:
    """Keypoint definitions and symmetric groups of one SPair animal category.

    SPair indices as ``"left/right"`` (``SPAIR_LR`` of GeoAware-SC marks the even index of a pair right); AP-10K
    indices are in ``ANIMAL_AP10K``. Keypoints SPair lacks for the category carry ``"-"``.
    """
    hoofed = category in ("horse", "cow", "sheep")
    foot = "hoof" if hoofed else "paw"
    # SPair indices: ear base, ear tip, eye, nostril (None: not in the category's set), front and back feet, knees,
    # horns; the centre keypoints of SPair's sets are not named in the sources we found and stay unmapped
    idx: dict[str, str | None] = {
        "cat": {"nostril": "7/6", "front": "10/9", "back": "12/11", "knee_front": None, "knee_back": None,
                "horn": None},
        "dog": {"nostril": None, "front": "10/9", "back": "12/11", "knee_front": None, "knee_back": None,
                "horn": None},
        "horse": {"nostril": "7/6", "front": "11/10", "back": "13/12", "knee_front": "17/16", "knee_back": "19/18",
                  "horn": None},
        "cow": {"nostril": "7/6", "front": "10/9", "back": "12/11", "knee_front": "16/15", "knee_back": "18/17",
                "horn": "20/19"},
        "sheep": {"nostril": "7/6", "front": "10/9", "back": "12/11", "knee_front": "16/15", "knee_back": "18/17",
                  "horn": "20/19"},
    }[category]  # fmt: skip
    kps = [
        KeypointDef("ear_base_left", "head", lambda p: _head_point(p, 0.05, 0.35, 0.95), "left", "1/0"),
        KeypointDef("ear_tip_left", "ear_left", lambda p: _ear_points(p)[-1], "left", "3/2"),
        KeypointDef("eye_left", "head", lambda p: _head_point(p, 0.3, 0.4, 0.9), "left", "5/4"),
    ]
    if idx["nostril"] is not None:
        kps.append(
            KeypointDef("nostril_left", "head", lambda p: _head_point(p, 0.97, 0.3, 0.5), "left", idx["nostril"])
        )
    kps += [
        KeypointDef(
            f"{foot}_front_left", "leg_front_left", lambda p: _leg_joints(p, "front_left")[2], "left", idx["front"]
        ),
        KeypointDef(
            f"{foot}_back_left", "leg_back_left", lambda p: _leg_joints(p, "back_left")[2], "left", idx["back"]
        ),
        KeypointDef(
            "knee_front_left",
            "leg_front_left",
            lambda p: _leg_joints(p, "front_left")[1] + [0, 0, p["leg_r"]],
            "left",
            idx["knee_front"] or "-/-",
        ),
        KeypointDef(
            "knee_back_left",
            "leg_back_left",
            lambda p: _leg_joints(p, "back_left")[1] - [0, 0, p["leg_r"]],
            "left",
            idx["knee_back"] or "-/-",
        ),
        KeypointDef("shoulder_left", "leg_front_left", lambda p: _shoulder(p, "front_left"), "left", "-/-"),
        KeypointDef("hip_left", "leg_back_left", lambda p: _shoulder(p, "back_left"), "left", "-/-"),
    ]
    if idx["horn"] is not None:
        kps.append(KeypointDef("horn_tip_left", "horn_left", lambda p: _horn_points(p)[-1], "left", idx["horn"]))
    kps += [
        KeypointDef("nose_tip", "head", lambda p: _head_stations(p)[0][-1] + _head_frame(p)[1] * 0.05, "center", "-"),
        KeypointDef("chin", "head", lambda p: _head_point(p, 0.75, -1.0, 0.0), "center", "-"),
        KeypointDef("neck_base", "neck", _neck_base, "center", "-"),
        KeypointDef(  # on the back's surface (the quadruped's 1.2 radii above the spine is off a woolly sheep)
            "withers", "body", lambda p: (0.0, _body_y(p) + 0.95 * p["body_ry"], 0.3 * p["body_len"]), "center", "-"
        ),
        KeypointDef("tail_base", "tail", lambda p: _tail_points(p)[1] + [0.0, 0.05, 0.0], "center", "-"),
        KeypointDef("tail_tip", "tail", lambda p: _tail_points(p)[-1], "center", "-"),
    ]
    # GeoAware's SPAIR_GEO_AWARE groups (ear tips, the four feet, the four knees, the horns), AP-10K's for the rest
    groups = [
        ["ear_tip_left", "ear_tip_right"],
        [f"{foot}_front_left", f"{foot}_front_right", f"{foot}_back_left", f"{foot}_back_right"],
        ["knee_front_left", "knee_front_right", "knee_back_left", "knee_back_right"],
        ["shoulder_left", "shoulder_right"],
        ["hip_left", "hip_right"],
    ]
    if idx["horn"] is not None:
        groups.append(["horn_tip_left", "horn_tip_right"])
    return kps, groups


def _ap10k_index(category: str) -> dict[str, int]:
    """Our keypoint name -> AP-10K index (the 17 AP-10K keypoints are the same for every animal)."""
    foot = "hoof" if category in ("horse", "cow", "sheep") else "paw"
    return {
        "eye_left": 0, "eye_right": 1, "nose_tip": 2, "neck_base": 3, "tail_base": 4,
        "shoulder_left": 5, "knee_front_left": 6, f"{foot}_front_left": 7,
        "shoulder_right": 8, "knee_front_right": 9, f"{foot}_front_right": 10,
        "hip_left": 11, "knee_back_left": 12, f"{foot}_back_left": 13,
        "hip_right": 14, "knee_back_right": 15, f"{foot}_back_right": 16,
    }  # fmt: skip


# fur palettes (sRGB coat colours, weights); a pattern is drawn per instance (see AnimalFamily.sample_appearance)
_FUR: dict[str, list[tuple[tuple[float, float, float], float]]] = {
    "cat": [((0.08, 0.07, 0.07), 2), ((0.9, 0.88, 0.84), 1), ((0.5, 0.5, 0.52), 2), ((0.85, 0.5, 0.2), 2),
            ((0.45, 0.35, 0.25), 3), ((0.9, 0.8, 0.6), 1)],
    "dog": [((0.08, 0.07, 0.06), 2), ((0.92, 0.9, 0.86), 1), ((0.75, 0.55, 0.3), 2), ((0.4, 0.25, 0.13), 2),
            ((0.85, 0.65, 0.35), 2), ((0.55, 0.55, 0.55), 1), ((0.9, 0.82, 0.65), 1)],
    "horse": [((0.45, 0.22, 0.1), 3), ((0.6, 0.3, 0.12), 2), ((0.08, 0.06, 0.05), 1), ((0.8, 0.8, 0.78), 1),
              ((0.85, 0.7, 0.4), 1), ((0.7, 0.6, 0.4), 1)],
    "cow": [((0.06, 0.06, 0.06), 2), ((0.45, 0.25, 0.12), 2), ((0.6, 0.3, 0.15), 1), ((0.7, 0.5, 0.3), 1),
            ((0.92, 0.9, 0.85), 1)],
    "sheep": [((0.9, 0.87, 0.78), 5), ((0.82, 0.76, 0.62), 2), ((0.55, 0.53, 0.5), 1), ((0.25, 0.18, 0.12), 1)],
}  # fmt: skip
# patterns and their probabilities: plain fur, patches (piebald / pinto / spots), stripes (tabby)
_PATTERNS: dict[str, dict[str, float]] = {
    "cat": {"plain": 0.4, "patches": 0.25, "stripes": 0.35},
    "dog": {"plain": 0.55, "patches": 0.45, "stripes": 0.0},
    "horse": {"plain": 0.85, "patches": 0.15, "stripes": 0.0},
    "cow": {"plain": 0.4, "patches": 0.6, "stripes": 0.0},
    "sheep": {"plain": 1.0, "patches": 0.0, "stripes": 0.0},
}
_HORN = [(0.85, 0.8, 0.68), (0.55, 0.5, 0.45), (0.2, 0.17, 0.14)]


def _fur_texture(rng: np.random.Generator, pattern: str, c0: np.ndarray, c1: np.ndarray, fine: float) -> np.ndarray:
    """uint8 [n, n, 3] tileable fur: ``pattern`` between coat colour ``c0`` and the second colour ``c1``, plus
    fine hair grain of amplitude ``fine``."""
    from datagen.render.appearance import TEXTURE_SIZE, _fractal_noise, _mix, _to_u8

    n = TEXTURE_SIZE
    yy, xx = np.mgrid[0:n, 0:n] / n
    if pattern == "patches":
        t = _fractal_noise(rng, n, n, int(rng.integers(2, 5)), 3, wrap=True)
        edge = rng.uniform(0.45, 0.6)
        t = np.clip((t - edge) * 12.0 + 0.5, 0.0, 1.0)
    elif pattern == "stripes":
        warp = _fractal_noise(rng, n, n, 3, 2, wrap=True)
        k = int(rng.integers(4, 9))
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (k * xx + 1.2 * warp))
        t = np.clip((t - 0.55) * 4.0, 0.0, 1.0)
    else:
        t = 0.35 * _fractal_noise(rng, n, n, int(rng.integers(2, 5)), 3, wrap=True)
    grain = _fractal_noise(rng, n, n, 32, 2, wrap=True) - 0.5
    return _to_u8(np.clip(_mix(c0, c1, t) + fine * grain[..., None], 0, 1))


class AnimalFamily(QuadrupedFamily):
    """An SPair-71k animal category: the quadruped's slots and parts with the category's proportions, ears,
    tail, horns, fur colours and SPair keypoint set. Subclasses set ``name`` and ``description``; the keypoints,
    groups and ranges follow from the name."""

    keypoint_defs: list[KeypointDef] = []
    group_defs: list[list[str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.keypoint_defs, cls.group_defs = _animal_keypoints(cls.name)

    def __init__(self) -> None:
        super().__init__()
        idx = _ap10k_index(self.name)
        self.ap10k_notes = {k: str(idx[k]) if k in idx else "-" for k in self.keypoint_names}

    @property
    def preset(self) -> dict[str, Any]:
        return PRESETS[self.name]

    @property
    def unused_slots(self) -> list[str]:
        """Slots of the shared quadruped topology this category never builds (horns of a hornless animal)."""
        return [] if self.preset["horns"] > 0 else ["horn_left", "horn_right"]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        pr = self.preset
        p: dict[str, Any] = {"horns": bool(rng.random() < pr["horns"])}
        floppy = bool(rng.random() < pr["floppy"])
        for k in _SHAPE_KEYS:
            v = uniform(rng, *pr[k])
            p[k] = v * p[_REL[k]] if k in _REL else v
        droop = uniform(rng, *pr["floppy_droop_deg"])
        if floppy:
            p["ear_droop_deg"] = droop
            p["ear_w"] *= 1.3  # floppy ears are broad flaps
        p["pose"] = {leg: [uniform(rng, *pr["hip_deg"]), uniform(rng, *pr["knee_deg"])] for leg in _LEGS}
        return p

    def template_params(self) -> dict[str, Any]:
        pr = self.preset
        p: dict[str, Any] = {"horns": True}
        for k in _SHAPE_KEYS:
            v = 0.5 * (pr[k][0] + pr[k][1])
            p[k] = v * p[_REL[k]] if k in _REL else v
        p["ear_droop_deg"] = 0.0
        p["pose"] = {leg: [0.0, 0.0] for leg in _LEGS}
        return p

    def sample_appearance(self, rng: np.random.Generator, group_names: Sequence[str]) -> Appearance:
        """Fur-coloured materials for the material groups ``group_names`` (coat, legs, horns): a coat colour from
        the category's palette with plain fur, patches or stripes, legs in the coat or a darker / lighter shade,
        horn-coloured horns; no metal."""
        from datagen.render.appearance import Appearance, Material

        def pick(pal: list[tuple[tuple[float, float, float], float]]) -> np.ndarray:
            w = np.array([x[1] for x in pal], np.float64)
            c = np.array(pal[int(rng.choice(len(pal), p=w / w.sum()))][0])
            return np.clip(c * rng.uniform(0.85, 1.15) + rng.uniform(-0.04, 0.04, 3), 0.0, 1.0)

        pats = _PATTERNS[self.name]
        pattern = str(rng.choice(list(pats), p=np.array(list(pats.values())) / sum(pats.values())))
        c0 = pick(_FUR[self.name])
        c1 = pick(_FUR[self.name]) if pattern == "patches" else np.clip(c0 * rng.uniform(0.45, 0.8), 0.0, 1.0)
        fine = rng.uniform(0.04, 0.1) * (1.6 if self.name == "sheep" else 1.0)
        coat = _fur_texture(rng, pattern, c0, c1, fine)
        leg_mode = rng.random()
        mats = []
        for g in group_names:
            rough = float(rng.uniform(0.7, 0.95))
            if g == "horns":
                c = np.clip(np.array(_HORN[int(rng.integers(len(_HORN)))]) * rng.uniform(0.9, 1.1), 0.0, 1.0)
                mats.append(Material("plain", c, 0.0, float(rng.uniform(0.4, 0.7))))
            elif g == "legs" and leg_mode < 0.35:  # socks / dark legs
                c = np.clip(c0 * rng.uniform(0.3, 0.6) if rng.random() < 0.6 else np.full(3, 0.9), 0.0, 1.0)
                mats.append(Material("fur", c, 0.0, rough, _fur_texture(rng, "plain", c, c * 0.8, fine)))
            else:
                mats.append(Material(f"fur_{pattern}", c0, 0.0, rough, coat))
        return Appearance(mats)


class CatFamily(AnimalFamily):
    name = "cat"
    description = "cats: slender body, short legs, round head, pointed ears, long tail; tabby, patched or plain fur"


class DogFamily(AnimalFamily):
    name = "dog"
    description = "dogs: small to large, pointed or floppy ears, short to long muzzles, tails carried up or down"


class HorseFamily(AnimalFamily):
    name = "horse"
    description = "horses: long legs and neck, long head, small pointed ears, hanging tail; bay, chestnut, grey"


class CowFamily(AnimalFamily):
    name = "cow"
    description = "cows: heavy body, short neck, sideways ears, horns on most, thin hanging tail; piebald or plain"


class SheepFamily(AnimalFamily):
    name = "sheep"
    description = "sheep: woolly barrel body on thin legs, sideways ears, short tail, curled horns on some"
