"""Chairs: four-legged side chairs, armchairs and office chairs on a star base with casters.

Build frame: seat centred on x = z = 0, floor y = 0, the sitter faces +z (the back is at -z), the sitter's left
is +x. ``build`` then centres the bounding box in z.

Slots (fixed order; * = optional):
    seat; leg_{front,back}_{left,right}* (absent on office chairs); back_post_{left,right}; back_top_rail;
    back slats, count-tagged*: ``back_slat_n{n}_center`` (odd n) and ``back_slat_n{n}_{left,right}_{i}``, the i-th
    slat from the centre on that side of a back with n slats, n = 1..5 (n = 1 is a solid panel);
    armrest_{left,right}*, arm_support_{left,right}*; stretcher_{left,right,front,back}* (legged chairs only);
    office chairs*: column, base_arm_front, base_arm_{left,right}_{1,2}, caster_front, caster_{left,right}_{1,2}
    (5 arms at 72 degree steps from the front, i = 1 front-side, i = 2 back-side).

Repeated parts whose count varies (slats) only correspond between backs with the same count (count-tagged names,
as ``base.py`` recommends): slat 2 of 4 and slat 2 of 5 are different things.

Keypoints (SPair-71k chair index in brackets; SPair's ``SPAIR_LR`` marks the even index of each pair right, the
odd index left, and the legs as (4 right, 5 left) and (6 right, 7 left); which leg pair is front is not stated
in the sources we found, we take 4/5 = front):
    seat_front_{left,right} [1, 0] (GeoAware "cushion_front"), seat_back_{left,right} [3, 2] ("cushion_back"),
    foot_front_{left,right} [5, 4], foot_back_{left,right} [7, 6] ("legs"; absent on office chairs),
    backrest_top_{left,right} [9, 8], armrest_front_{left,right} [11, 10], armrest_back_{left,right} [13, 12];
    extra centre points (not in SPair): seat_center, backrest_top_center.
Symmetric groups follow GeoAware's ``SPAIR_GEO_AWARE['chair']``: the seat front pair, the seat back pair, the four
feet, the backrest top pair, the armrest front pair, the armrest back pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import (
    PartMesh,
    lathe,
    rotation_x,
    rotation_y,
    rounded_box,
    rounded_rect_profile,
    tube,
)
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["ChairFamily"]

MAX_SLATS = 5
_SQ = 3  # points per quadrant of square-ish sections (rounded_rect_profile: 4 * _SQ points)
_LEG_RINGS = 6


def _slat_slots() -> list[SlotDef]:
    out = []
    for n in range(1, MAX_SLATS + 1):
        if n % 2:
            out.append(SlotDef(f"back_slat_n{n}_center", "back_slat", "back", "center", True))
        for i in range(1, n // 2 + 1):
            out.append(SlotDef(f"back_slat_n{n}_left_{i}", "back_slat", "back", "left", True))
            out.append(SlotDef(f"back_slat_n{n}_right_{i}", "back_slat", "back", "right", True))
    return out


def _slat_index(name: str) -> tuple[int, int]:
    """(n, k) of a centre or left slat slot: n slats, k the 0-based slat index counted from -x to +x."""
    words = name.split("_")  # back, slat, n{n}, center | left, {i}
    n = int(words[2][1:])
    if words[3] == "center":
        return n, n // 2
    if words[3] != "left":
        raise ValueError(f"chair: slat {name!r} is built as the mirror of its left twin")
    return n, (n - 1) // 2 + int(words[4])


_SLOTS: list[SlotDef] = [
    SlotDef("seat", "seat", "seat"),
    SlotDef("leg_front_left", "leg", "legs", "left", True),
    SlotDef("leg_front_right", "leg", "legs", "right", True),
    SlotDef("leg_back_left", "leg", "legs", "left", True),
    SlotDef("leg_back_right", "leg", "legs", "right", True),
    SlotDef("back_post_left", "back_post", "frame", "left"),
    SlotDef("back_post_right", "back_post", "frame", "right"),
    SlotDef("back_top_rail", "back_rail", "frame"),
    *_slat_slots(),
    SlotDef("armrest_left", "armrest", "arms", "left", True),
    SlotDef("armrest_right", "armrest", "arms", "right", True),
    SlotDef("arm_support_left", "arm_support", "arms", "left", True),
    SlotDef("arm_support_right", "arm_support", "arms", "right", True),
    SlotDef("stretcher_left", "stretcher", "legs", "left", True),
    SlotDef("stretcher_right", "stretcher", "legs", "right", True),
    SlotDef("stretcher_front", "stretcher", "legs", "center", True),
    SlotDef("stretcher_back", "stretcher", "legs", "center", True),
    SlotDef("column", "column", "base", "center", True),
    SlotDef("base_arm_front", "base_arm", "base", "center", True),
    SlotDef("base_arm_left_1", "base_arm", "base", "left", True),
    SlotDef("base_arm_right_1", "base_arm", "base", "right", True),
    SlotDef("base_arm_left_2", "base_arm", "base", "left", True),
    SlotDef("base_arm_right_2", "base_arm", "base", "right", True),
    SlotDef("caster_front", "caster", "casters", "center", True),
    SlotDef("caster_left_1", "caster", "casters", "left", True),
    SlotDef("caster_right_1", "caster", "casters", "right", True),
    SlotDef("caster_left_2", "caster", "casters", "left", True),
    SlotDef("caster_right_2", "caster", "casters", "right", True),
]


# ---- geometry helpers (build frame) ----------------------------------------------------------------------------------
def _leg_top(p: Mapping[str, Any], front: bool) -> np.ndarray:
    """Centre of the left leg's top, at the underside of the seat."""
    x = p["seat_w"] / 2 - p["leg_inset"] - p["leg_w"] / 2
    z = (p["seat_d"] / 2 - p["leg_inset"] - p["leg_w"] / 2) * (1 if front else -1)
    return np.array([x, p["seat_h"] - p["seat_t"] + 0.004, z])


def _leg_foot(p: Mapping[str, Any], front: bool) -> np.ndarray:
    top = _leg_top(p, front)
    h = top[1]
    s = np.tan(np.radians(p["leg_splay_deg"])) * h
    return np.array([top[0] + s, 0.0, top[2] + s * np.sign(top[2])])


def _leg_at(p: Mapping[str, Any], front: bool, y: float) -> np.ndarray:
    top, foot = _leg_top(p, front), _leg_foot(p, front)
    t = (top[1] - y) / top[1]
    return top + t * (foot - top)


def _back_transform(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) tilting the back (built upright) backwards about its base line (x axis at the seat's back top)."""
    pivot = np.array([0.0, p["seat_h"], -p["seat_d"] / 2 + p["post_w"] / 2 + 0.005])
    R = rotation_x(-np.radians(p["back_tilt_deg"]))
    return R, pivot - R @ pivot


def _post_x(p: Mapping[str, Any]) -> float:
    return p["seat_w"] / 2 - p["post_w"] / 2 - 0.004


def _post_z(p: Mapping[str, Any]) -> float:
    return -p["seat_d"] / 2 + p["post_w"] / 2 + 0.005


def _rail_box(p: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    top = p["seat_h"] + p["back_h"]
    half = _post_x(p) + p["post_w"] / 2
    return [0.0, top - p["rail_h"] / 2, _post_z(p)], [2 * half, p["rail_h"], p["post_w"] * 0.8]


def _arm_y(p: Mapping[str, Any]) -> float:
    return p["seat_h"] + p["arm_h"]


def _arm_x(p: Mapping[str, Any]) -> float:
    return p["seat_w"] / 2 + p["arm_w"] / 2 - 0.01


def _arm_z(p: Mapping[str, Any]) -> tuple[float, float]:
    back = _post_z(p)
    return back, back + p["arm_len"] * p["seat_d"]


def _hub_y(p: Mapping[str, Any]) -> float:
    """Height of the star base's hub centre: the arm tips clear the casters."""
    return 2 * p["caster_r"] + 0.045


def _star_angle(name: str) -> float:
    """Angle of a star-base arm / caster from +z towards +x (left), in radians."""
    return {"front": 0.0, "1": np.radians(72.0), "2": np.radians(144.0)}[name.split("_")[-1]]


class ChairFamily(ProceduralFamily):
    name = "chair"
    description = "chairs: side chairs and armchairs on four legs (slatted or panel backs), office chairs on casters"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef(
            "seat_front_left", "seat", lambda p: (p["seat_w"] / 2, p["seat_h"], p["seat_d"] / 2), "left", "1/0"
        ),
        KeypointDef(
            "seat_back_left", "seat", lambda p: (p["seat_w"] / 2, p["seat_h"], -p["seat_d"] / 2), "left", "3/2"
        ),
        KeypointDef("foot_front_left", "leg_front_left", lambda p: _leg_foot(p, True), "left", "5/4"),
        KeypointDef("foot_back_left", "leg_back_left", lambda p: _leg_foot(p, False), "left", "7/6"),
        KeypointDef(
            "backrest_top_left",
            "back_top_rail",
            lambda p: (
                _back_transform(p)[0] @ (np.array(_rail_box(p)[0]) + np.array(_rail_box(p)[1]) / 2)
                + _back_transform(p)[1]
            ),
            "left",
            "9/8",
        ),
        KeypointDef(
            "armrest_front_left",
            "armrest_left",
            lambda p: (_arm_x(p), _arm_y(p) + 0.015, _arm_z(p)[1]),
            "left",
            "11/10",
        ),
        KeypointDef(
            "armrest_back_left", "armrest_left", lambda p: (_arm_x(p), _arm_y(p) + 0.015, _arm_z(p)[0]), "left", "13/12"
        ),
        KeypointDef("seat_center", "seat", lambda p: (0.0, p["seat_h"], 0.0), "center", "-"),
        KeypointDef(
            "backrest_top_center",
            "back_top_rail",
            lambda p: (
                _back_transform(p)[0] @ (np.array(_rail_box(p)[0]) + [0.0, p["rail_h"], 0.0]) + _back_transform(p)[1]
            ),
            "center",
            "-",
        ),
    ]
    group_defs = [
        ["seat_front_left", "seat_front_right"],
        ["seat_back_left", "seat_back_right"],
        ["foot_front_left", "foot_front_right", "foot_back_left", "foot_back_right"],
        ["backrest_top_left", "backrest_top_right"],
        ["armrest_front_left", "armrest_front_right"],
        ["armrest_back_left", "armrest_back_right"],
    ]

    # ---- parameters ---------------------------------------------------------------------------------------------
    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        p: dict[str, Any] = {
            "office": bool(rng.random() < 0.25),
            "arms": bool(rng.random() < 0.4),
            "stretchers": bool(rng.random() < 0.4),
            "n_slats": int(rng.integers(1, MAX_SLATS + 1)),
            "seat_w": u(0.40, 0.56),
            "seat_d": u(0.38, 0.52),
            "seat_h": u(0.40, 0.50),
            "seat_t": u(0.025, 0.09),
            "seat_round": u(0.005, 0.09),
            "seat_bevel": u(0.12, 0.3),  # fraction of the seat's thickness
            "leg_w": u(0.025, 0.055),
            "leg_round": u(0.0, 1.0),
            "leg_inset": u(0.0, 0.04),
            "leg_splay_deg": u(0.0, 7.0),
            "leg_taper": u(0.55, 1.0),
            "back_h": u(0.28, 0.55),
            "back_tilt_deg": u(2.0, 16.0),
            "post_w": u(0.022, 0.045),
            "rail_h": u(0.04, 0.14),
            "slat_fill": u(0.25, 0.65),
            "slat_t": u(0.012, 0.03),
            "arm_h": u(0.17, 0.26),
            "arm_w": u(0.035, 0.075),
            "arm_len": u(0.75, 1.0),
            "stretcher_h": u(0.08, 0.2),
            "stretcher_w": u(0.015, 0.03),
            "column_r": u(0.022, 0.035),
            "base_r": u(0.26, 0.34),
            "caster_r": u(0.025, 0.035),
        }
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "office": False, "arms": True, "stretchers": True, "n_slats": 3,
            "seat_w": 0.48, "seat_d": 0.45, "seat_h": 0.45, "seat_t": 0.05, "seat_round": 0.03, "seat_bevel": 0.16,
            "leg_w": 0.04, "leg_round": 0.5, "leg_inset": 0.02, "leg_splay_deg": 3.0, "leg_taper": 0.8,
            "back_h": 0.4, "back_tilt_deg": 8.0, "post_w": 0.03, "rail_h": 0.08, "slat_fill": 0.45, "slat_t": 0.02,
            "arm_h": 0.22, "arm_w": 0.05, "arm_len": 0.9, "stretcher_h": 0.14, "stretcher_w": 0.02,
            "column_r": 0.028, "base_r": 0.3, "caster_r": 0.03,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        office = params["office"]
        if name.startswith("leg_"):
            return not office
        if name.startswith("back_slat_"):
            return int(name.split("_")[2][1:]) == params["n_slats"]
        if name.startswith(("armrest_", "arm_support_")):
            return bool(params["arms"])
        if name.startswith("stretcher_"):
            return bool(params["stretchers"]) and not office
        if name.startswith(("column", "base_arm_", "caster_")):
            return bool(office)
        return True

    # ---- parts --------------------------------------------------------------------------------------------------
    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "seat":
            return rounded_box(
                [0.0, p["seat_h"] - p["seat_t"] / 2, 0.0],
                [p["seat_w"], p["seat_t"], p["seat_d"]],
                p["seat_round"],
                p["seat_bevel"] * p["seat_t"],
                n_quadrant=8,
            )
        if name.startswith("leg_"):
            return self._leg(p, front="front" in name)
        if name.startswith("back_post_"):
            return self._post(p)
        if name == "back_top_rail":
            c, s = _rail_box(p)
            R, t = _back_transform(p)
            return rounded_box(c, s, min(s[2], s[1]) * 0.3, 0.004, n_quadrant=_SQ).transformed(R, t)
        if name.startswith("back_slat_"):
            return self._slat(p, *_slat_index(name))
        if name.startswith("armrest_"):
            z0, z1 = _arm_z(p)
            y = _arm_y(p)
            rad = np.array([[p["arm_w"] / 2, 0.015]])
            pts = np.array([[_arm_x(p), y, z0 + f * (z1 - z0)] for f in np.linspace(0, 1, 4)])
            return tube(pts, rad, 4 * _SQ, up=(1.0, 0.0, 0.0), profile=rounded_rect_profile(1, 1, 0.5, _SQ))
        if name.startswith("arm_support_"):
            z1 = _arm_z(p)[1] - 0.03
            x = _arm_x(p)
            pts = np.array([[x, p["seat_h"] - p["seat_t"] * 0.5, z1], [x, _arm_y(p) - 0.01, z1 - 0.02]])
            r = min(0.014, p["arm_w"] / 3)
            return tube(pts, r, 4 * _SQ, profile=rounded_rect_profile(1, 1, 0.7, _SQ))
        if name.startswith("stretcher_"):
            return self._stretcher(p, name.split("_")[1])
        if name == "column":
            r = p["column_r"]
            hub = _hub_y(p)
            under = p["seat_h"] - p["seat_t"]
            heights = [hub - 0.03, hub + 0.01, hub + 0.03, under - 0.06, under - 0.05, under + 0.002]
            return lathe([0.05, 0.05, r, r, 2.2 * r, 2.2 * r], heights, 16)
        if name.startswith("base_arm_"):
            a = _star_angle(name)
            d = np.array([np.sin(a), 0.0, np.cos(a)])
            L = p["base_r"]
            hub = _hub_y(p)
            pts = np.array(
                [[0.0, hub, 0.0] + d * 0.03, [0.0, hub - 0.006, 0.0] + d * L * 0.6, [0.0, hub - 0.015, 0.0] + d * L]
            )
            radii = np.array([[0.025, 0.028], [0.02, 0.024], [0.016, 0.02]])  # (u = vertical, v = horizontal)
            return tube(pts, radii, 4 * _SQ, up=(0.0, 1.0, 0.0), profile=rounded_rect_profile(1, 1, 0.5, _SQ))
        if name.startswith("caster_"):
            a = _star_angle(name)
            d = np.array([np.sin(a), 0.0, np.cos(a)])
            r = p["caster_r"]
            w = 0.8 * r
            radii = [0.55 * r, 0.95 * r, r, r, 0.95 * r, 0.55 * r]
            base = lathe(radii, [-w / 2, -w / 2 + 0.003, -w / 4, w / 4, w / 2 - 0.003, w / 2], 12)
            # wheel axis along the tangent (perpendicular to the arm), rolling along the arm
            axis_to_tangent = rotation_y(a) @ _rot_y_to_x()
            centre = d * p["base_r"] + np.array([0.0, r, 0.0])
            return base.transformed(axis_to_tangent, centre)
        raise KeyError(f"chair: no part builder for slot {name!r}")

    def _leg(self, p: Mapping[str, Any], front: bool) -> PartMesh:
        top, foot = _leg_top(p, front), _leg_foot(p, front)
        t = np.linspace(0.0, 1.0, _LEG_RINGS)
        pts = top[None] + t[:, None] * (foot - top)[None]
        half = p["leg_w"] / 2 * (1.0 + t * (p["leg_taper"] - 1.0))
        prof = rounded_rect_profile(1.0, 1.0, max(p["leg_round"], 0.05), _SQ)
        return tube(pts, np.stack([half, half], 1), prof.shape[0], up=(0.0, 0.0, 1.0), profile=prof)

    def _post(self, p: Mapping[str, Any]) -> PartMesh:
        x, z = _post_x(p), _post_z(p)
        y0 = p["seat_h"] - p["seat_t"] * 0.6
        y1 = p["seat_h"] + p["back_h"] - 0.005
        pts = np.stack([np.full(4, x), np.linspace(y0, y1, 4), np.full(4, z)], 1)
        prof = rounded_rect_profile(1.0, 1.0, 0.35, _SQ)
        R, t = _back_transform(p)
        return tube(pts, p["post_w"] / 2, prof.shape[0], profile=prof).transformed(R, t)

    def _slat(self, p: Mapping[str, Any], n: int, k: int) -> PartMesh:
        inner = 2 * (_post_x(p) - p["post_w"] / 2)
        pitch = inner / n
        w = inner - 0.02 if n == 1 else pitch * p["slat_fill"]
        x = -inner / 2 + pitch * (k + 0.5)
        y0 = p["seat_h"] + (0.03 if n > 1 else 0.06)
        y1 = p["seat_h"] + p["back_h"] - p["rail_h"] + 0.005
        c = [x, (y0 + y1) / 2, _post_z(p)]
        s = [w, y1 - y0, p["slat_t"]]
        R, t = _back_transform(p)
        return rounded_box(c, s, p["slat_t"] * 0.4, 0.003, n_quadrant=_SQ).transformed(R, t)

    def _stretcher(self, p: Mapping[str, Any], which: str) -> PartMesh:
        y = p["stretcher_h"]
        if which == "left":
            a, b = _leg_at(p, False, y), _leg_at(p, True, y)
            up = (0.0, 1.0, 0.0)
        else:
            front = which == "front"
            a = _leg_at(p, front, y) * np.array([-1.0, 1.0, 1.0])
            b = _leg_at(p, front, y)
            up = (0.0, 1.0, 0.0)
        pts = a[None] + np.linspace(0.0, 1.0, 3)[:, None] * (b - a)[None]
        prof = rounded_rect_profile(1.0, 1.0, 0.6, _SQ)
        return tube(pts, p["stretcher_w"] / 2, prof.shape[0], up=up, profile=prof)


def _rot_y_to_x() -> np.ndarray:
    """Proper rotation taking +y to +x (a lathe's axis onto the x axis): -90 degrees about z."""
    return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
