"""Bicycles: road, mountain, city and kids' bikes with diamond or step-through frames and optional accessories.

Build frame: the bike rides towards +z, y up, the rider's left is +x; ``build`` puts the tyres on y = 0 and
centres the bounding box in z. Sizes are metric (a 700c road wheel is 0.34 m in radius, a kids' wheel 0.2-0.27 m).
Chainstay and stack follow from drawn tyre clearances (``_fit_frame``) and the cranks stay within 35 degrees of
level, left crank forward: both keep the tube-tyre and crank-frame overlaps in place between instances, where a
thin part's edge in one view otherwise borders a surface whose counterpart lies elsewhere (raw cycle misses).

Slots (fixed order; * = optional): tyre_{front,back}, rim_{front,back}, hub_{front,back} (centre slots about the
axle, ``datagen.families.wheels``); spokes count-tagged per side*: ``spokes_n{n}_{front,back}_{left,right}`` (n
spokes per side, n = 8, 12, 16; spokes only correspond between wheels with the same count); head_tube, down_tube,
seat_tube, bottom_bracket; top_tube* (diamond frames), step_tube* (step-through frames: a low curved tube);
chainstay_{left,right}, seatstay_{left,right}, fork_{left,right}; seatpost, saddle; stem, handlebar_{left,right}
(drop, flat or swept bars: one tube of fixed ring count from the stem clamp to the grip end);
crank_{left,right} (crank arm and pedal); mudguard_{front,back}*, rack*, basket*, kickstand* (a centre stand).

Keypoints with the SPair-71k bicycle index in brackets. Sources: GeoAware-SC ``utils_geoware.py`` (``SPAIR_LR``
marks ids 2, 6, 9 right and 3, 7, 10 left, ids 11 and 12 unused; ``SPAIR_GEO_AWARE`` comments "01 front and back
wheel, 23 handle, 67 seat_back_end, 910 pedal") and the PASCAL3D+ bicycle set (head_center, seat_front,
seat_back, pedal_center, handle, wheels), which SPair's ids 4, 5 and 8 appear to follow — **those three are our
reading, not stated by a source**; id 13 is not named anywhere we found and is not mapped:
    front_wheel [0], back_wheel [1]: SPair marks the wheel centre as one centre keypoint; a surface point on the
    plane x = 0 at the axle is inside the hub, so we place it on each visible axle end (``front_wheel_left`` /
    ``front_wheel_right`` both map to SPair 0, the back wheel's to 1); handle_{left,right} [3, 2] (grip ends);
    head_center [4] (top of the stem above the head tube, guess); seat_front [5] (saddle nose, guess);
    seat_back_{left,right} [7, 6] (the saddle's rear upper corners); bottom_bracket [8] (underside of the crank
    axle shell, guess); pedal_{left,right} [10, 9] (outer face of the pedal).
Symmetric groups: each left/right pair (handles, saddle back ends, pedals, as GeoAware's), and each wheel's two
axle ends.

One module per family, over ~400 lines: its slots, part builders, keypoints and SPair index map are one
contract and are read together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, concat, lathe, rounded_box, rounded_rect_profile, sweep, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform
from datagen.families.wheels import ROT_Y_TO_X, hub, rim, spokes, tyre

__all__ = ["BicycleFamily"]

SPOKE_COUNTS = (8, 12, 16)
_N_THETA = 48  # sections around a tyre / rim
_TUBE_SEG = 8
_BAR_RINGS = 9
_UP_X = (1.0, 0.0, 0.0)  # frame for tubes in the plane x = 0: N = +x, so sections are mirror symmetric


def _spoke_slots() -> list[SlotDef]:
    out = []
    for n in SPOKE_COUNTS:
        for w in ("front", "back"):
            for side in ("left", "right"):
                out.append(SlotDef(f"spokes_n{n}_{w}_{side}", "spokes", "spokes", side, True))
    return out


_SLOTS = [
    SlotDef("tyre_front", "tyre", "tyres"),
    SlotDef("tyre_back", "tyre", "tyres"),
    SlotDef("rim_front", "rim", "rims"),
    SlotDef("rim_back", "rim", "rims"),
    SlotDef("hub_front", "hub", "metal"),
    SlotDef("hub_back", "hub", "metal"),
    *_spoke_slots(),
    SlotDef("head_tube", "frame", "frame"),
    SlotDef("down_tube", "frame", "frame"),
    SlotDef("seat_tube", "frame", "frame"),
    SlotDef("bottom_bracket", "frame", "frame"),
    SlotDef("top_tube", "frame", "frame", "center", True),
    SlotDef("step_tube", "frame", "frame", "center", True),
    SlotDef("chainstay_left", "frame", "frame", "left"),
    SlotDef("chainstay_right", "frame", "frame", "right"),
    SlotDef("seatstay_left", "frame", "frame", "left"),
    SlotDef("seatstay_right", "frame", "frame", "right"),
    SlotDef("fork_left", "fork", "frame", "left"),
    SlotDef("fork_right", "fork", "frame", "right"),
    SlotDef("seatpost", "seatpost", "metal"),
    SlotDef("saddle", "saddle", "saddle"),
    SlotDef("stem", "stem", "metal"),
    SlotDef("handlebar_left", "handlebar", "bar", "left"),
    SlotDef("handlebar_right", "handlebar", "bar", "right"),
    SlotDef("crank_left", "crank", "metal", "left"),
    SlotDef("crank_right", "crank", "metal", "right"),
    SlotDef("mudguard_front", "mudguard", "mudguards", "center", True),
    SlotDef("mudguard_back", "mudguard", "mudguards", "center", True),
    SlotDef("rack", "rack", "accessories", "center", True),
    SlotDef("basket", "basket", "accessories", "center", True),
    SlotDef("kickstand", "kickstand", "metal", "center", True),
]


# ---- geometry (build frame: bottom bracket at z = 0, tyres on y = 0) ----------------------------------------------
def _u(deg: float) -> np.ndarray:
    """Unit vector in the plane x = 0 rising at ``deg`` degrees and leaning back (-z)."""
    a = np.radians(deg)
    return np.array([0.0, np.sin(a), -np.cos(a)])


def _points(p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Key frame points [3] (x = 0): bottom bracket, axles, seat tube top, head tube ends, bar clamp."""
    R = p["wheel_r"]
    bb = np.array([0.0, p["bb_h"], 0.0])
    back = np.array([0.0, R, -p["chainstay"]])
    st_top = bb + p["seat_len"] * _u(p["seat_angle"])
    uh = _u(p["head_angle"])
    ht_top = bb + np.array([0.0, p["stack"], p["reach"]])
    ht_bot = ht_top - p["head_len"] * uh
    t = (ht_bot[1] - R) / uh[1]
    front = ht_bot - t * uh + np.array([0.0, 0.0, p["rake"]])
    front[1] = R
    clamp = ht_top + p["spacer"] * uh + np.array([0.0, 0.0, p["stem_len"]]) + np.array([0.0, p["stem_rise"], 0.0])
    post_top = st_top + p["post_len"] * _u(p["seat_angle"])
    return {"bb": bb, "back": back, "front": front, "st_top": st_top, "ht_top": ht_top, "ht_bot": ht_bot,
            "clamp": clamp, "post_top": post_top}  # fmt: skip


def _tube_r(p: Mapping[str, Any]) -> float:
    return p["tube_r"]


def _bar_path(p: Mapping[str, Any]) -> np.ndarray:
    """The left half of the handlebar [_BAR_RINGS, 3]: from the stem clamp (x = 0) to the grip end."""
    c = _points(p)["clamp"]
    hw = p["bar_half"]
    s = np.linspace(0.0, 1.0, _BAR_RINGS)
    if p["bar"] == "drop":
        # straight tops to 60 %, then forward, down and back along a half loop (the drops)
        t = np.clip((s - 0.55) / 0.45, 0.0, 1.0)
        x = hw * np.minimum(s / 0.55, 1.0)
        ang = np.pi * t
        r = p["drop"] / 2
        y = -r * (1 - np.cos(ang))
        z = p["drop_reach"] * np.sin(ang) - 0.25 * r * t
    elif p["bar"] == "flat":
        x = hw * s
        y = p["bar_rise"] * np.clip((s - 0.2) / 0.3, 0.0, 1.0)
        z = -0.05 * hw * s**2
    else:  # swept: rises and sweeps back towards the rider
        x = hw * np.sin(0.5 * np.pi * s) * 0.85 + 0.15 * hw * s
        y = p["bar_rise"] * np.sin(0.5 * np.pi * np.clip(s / 0.6, 0.0, 1.0))
        z = -p["bar_sweep"] * s**1.5
    return c + np.stack([x, y, z], 1)


def _saddle_stations(p: Mapping[str, Any]) -> list[tuple[float, float, float, float]]:
    """Saddle sections from the back to the nose: (z, half width, y bottom, y top) about the post top."""
    top = _points(p)["post_top"]
    L, W = p["saddle_len"], p["saddle_w"]
    zc, yb = top[2] + 0.15 * L, top[1] + 0.01
    fr = [(-0.5, 0.92, 0.05), (-0.42, 1.0, 0.06), (-0.15, 0.85, 0.055), (0.15, 0.35, 0.045), (0.4, 0.22, 0.04),
          (0.5, 0.16, 0.03)]  # fmt: skip
    return [(zc + f * L, 0.5 * W * w, yb, yb + h * p["saddle_th"] / 0.05) for f, w, h in fr]


def _saddle(p: Mapping[str, Any]) -> PartMesh:
    rings = []
    for z, hw, y0, y1 in _saddle_stations(p):
        prof = rounded_rect_profile(hw, 0.5 * (y1 - y0), 0.45 * min(hw, 0.5 * (y1 - y0)), 2)
        rings.append(np.stack([prof[:, 0], prof[:, 1] + 0.5 * (y0 + y1), np.full(prof.shape[0], z)], 1))
    return sweep(np.stack(rings))


def _seat_back_corner(p: Mapping[str, Any]) -> np.ndarray:
    z, hw, y0, y1 = _saddle_stations(p)[0]
    return np.array([0.8 * hw, y1, z])


def _crank_geom(p: Mapping[str, Any], side: Side) -> tuple[np.ndarray, np.ndarray, float]:
    """(crank start at the axle, pedal axle point, pedal x centre offset) of the left crank (``side`` picks the
    angle: the right crank's angle is its own parameter, mirrored)."""
    bb = _points(p)["bb"]
    a = p["crank_angle_left"] if side == "left" else p["crank_angle_right"]
    x0 = p["bb_half"] + 0.012
    start = bb + np.array([x0, 0.0, 0.0])
    end = start + p["crank_len"] * np.array([0.0, np.cos(a), np.sin(a)]) + np.array([0.02, 0.0, 0.0])
    return start, end, 0.055


def _pedal_face(p: Mapping[str, Any]) -> np.ndarray:
    _, end, w = _crank_geom(p, "left")
    return end + np.array([0.012 + w, 0.0, 0.0])


def _hub_end(p: Mapping[str, Any], front: bool) -> np.ndarray:
    c = _points(p)["front" if front else "back"]
    return c + np.array([p["hub_half_front" if front else "hub_half_back"], 0.0, 0.0])


def _wheel_parts(p: Mapping[str, Any], name: str) -> PartMesh:
    w = "front" if name.endswith("front") or "_front_" in name else "back"
    c = _points(p)[w]
    yz = (c[1], c[2])
    R, th, tw = p["wheel_r"], p["tyre_h"], p["tyre_w"]
    rim_depth = p["rim_depth"]
    if name.startswith("tyre"):
        return tyre(yz, R, th, tw, _N_THETA, 8)
    if name.startswith("rim"):
        return rim(yz, R - th + 0.35 * rim_depth, rim_depth, 0.75 * tw + 0.006, _N_THETA)
    half = p[f"hub_half_{w}"]
    if name.startswith("hub"):
        return hub(yz, 0.013, 0.026, 0.006, half, 12)
    n = int(name.split("_")[1][1:])
    return spokes(yz, n, 0.024, 0.72 * half, R - th - 0.2 * rim_depth, p["spoke_r"], 2 * np.pi / n * 1.5 * (n > 8))


def _fit_frame(p: dict[str, Any]) -> dict[str, Any]:
    """Chainstay and stack from the clearances drawn in their place (scaled by the wheel): the seat tube's axis
    passes the rear tyre and the head tube's bottom clears the front tyre's top by those margins. Drawn directly,
    the stack put the front tyre through the head tube and fork crown on a fifth of the bikes, and the rear gap
    varied fourfold."""
    R, bb_h = p["wheel_r"], p["bb_h"]
    a, h = np.radians(p["seat_angle"]), np.radians(p["head_angle"])
    # distance from the rear axle (R - bb_h above the bottom bracket, chainstay behind) to the seat tube's axis
    p["chainstay"] = float((R + p["chainstay"] + (R - bb_h) * np.cos(a)) / np.sin(a))
    p["stack"] = float(2 * R + p["stack"] - bb_h + p["head_len"] * np.sin(h))
    return p


class BicycleFamily(ProceduralFamily):
    name = "bicycle"
    description = "bicycles: road, mountain, city and kids' bikes; diamond or step-through; mudguards, rack, basket"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("front_wheel_left", "hub_front", lambda p: _hub_end(p, True), "left", "0/0"),
        KeypointDef("back_wheel_left", "hub_back", lambda p: _hub_end(p, False), "left", "1/1"),
        KeypointDef("handle_left", "handlebar_left", lambda p: _bar_path(p)[-1], "left", "3/2"),
        KeypointDef(
            "head_center",
            "stem",
            lambda p: _points(p)["ht_top"] + 0.5 * p["spacer"] * _u(p["head_angle"]) + [0.0, 0.02, 0.0],
            "center",
            "4",
        ),
        KeypointDef(
            "seat_front",
            "saddle",
            lambda p: (0.0, _saddle_stations(p)[-1][3], _saddle_stations(p)[-1][0]),
            "center",
            "5",
        ),
        KeypointDef("seat_back_left", "saddle", _seat_back_corner, "left", "7/6"),
        KeypointDef("bottom_bracket", "bottom_bracket", lambda p: _points(p)["bb"] - [0.0, 0.025, 0.0], "center", "8"),
        KeypointDef("pedal_left", "crank_left", _pedal_face, "left", "10/9"),
    ]
    group_defs = [
        ["front_wheel_left", "front_wheel_right"],
        ["back_wheel_left", "back_wheel_right"],
        ["handle_left", "handle_right"],
        ["seat_back_left", "seat_back_right"],
        ["pedal_left", "pedal_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        kind = ["road", "mountain", "city", "kids"][int(rng.integers(0, 4))]
        R = {"road": u(0.33, 0.345), "mountain": u(0.33, 0.37), "city": u(0.33, 0.35), "kids": u(0.2, 0.27)}[kind]
        s = R / 0.34
        th = {"road": u(0.026, 0.034), "mountain": u(0.05, 0.065), "city": u(0.035, 0.045), "kids": u(0.035, 0.05)}[
            kind
        ]
        tw = th * u(0.9, 1.1)
        step_p = {"road": 0.0, "mountain": 0.0, "city": 0.6, "kids": 0.5}[kind]
        acc = {"road": 0.1, "mountain": 0.05, "city": 0.7, "kids": 0.3}[kind]
        r = rng.random(8)
        frame = "step" if r[0] < step_p else "diamond"
        bar = {"road": "drop", "mountain": "flat", "city": "swept", "kids": ["swept", "flat"][int(r[1] < 0.5)]}[kind]
        a0 = u(0.5 * np.pi - 0.6, 0.5 * np.pi + 0.6)  # left crank forward, within 35 degrees of level
        p: dict[str, Any] = {
            "kind": kind,
            "frame": frame,
            "bar": bar,
            "n_spokes": int(
                [8, 12, 16][int(rng.integers(0, 2))] if kind in ("road", "kids") else [12, 16][int(r[2] < 0.5)]
            ),
            "mudguards": bool(r[3] < acc),
            "rack": bool(r[4] < acc * 0.8),
            "basket": bool(r[5] < acc * 0.5),
            "kickstand": bool(r[6] < (0.6 if kind in ("city", "kids") else 0.15)),
            "wheel_r": R,
            "tyre_h": th,
            "tyre_w": tw,
            "rim_depth": u(0.018, 0.03) if kind == "road" else u(0.015, 0.022),
            "spoke_r": u(0.0012, 0.0018),
            "hub_half_front": u(0.045, 0.05),
            "hub_half_back": u(0.06, 0.068),
            "bb_h": R - u(0.06, 0.08) * s + (0.03 if kind == "mountain" else 0.0),
            "bb_half": 0.035,
            "chainstay": u(0.03, 0.05) * s,  # the rear clearance for now: see _fit_frame
            "seat_len": u(0.45, 0.6) * s,
            "seat_angle": u(71.0, 75.0),
            "head_angle": u(66.0, 69.0) if kind == "mountain" else u(69.0, 73.5),
            "head_len": u(0.1, 0.2) * s,
            "stack": u(0.045, 0.075) * s,  # the crown clearance for now
            "reach": u(0.36, 0.42) * s,
            "rake": u(0.035, 0.055) * s,
            "spacer": u(0.02, 0.08) if kind != "city" else u(0.08, 0.16),
            "stem_len": u(0.06, 0.12) * (1.0 if kind in ("road", "mountain") else 0.6),
            "stem_rise": u(0.0, 0.04),
            "post_len": u(0.1, 0.25) * s,
            "tube_r": u(0.025, 0.033) if kind == "mountain" else u(0.021, 0.028),
            "saddle_len": u(0.24, 0.29) * (0.85 if kind == "kids" else 1.0),
            "saddle_w": u(0.13, 0.2) if kind == "city" else u(0.12, 0.15),
            "saddle_th": u(0.035, 0.06),
            "bar_half": u(0.19, 0.22) if bar == "drop" else u(0.26, 0.36) * (0.8 if kind == "kids" else 1.0),
            "bar_rise": u(0.0, 0.04) if bar == "flat" else u(0.03, 0.08),
            "bar_sweep": u(0.08, 0.18),
            "drop": u(0.11, 0.15),
            "drop_reach": u(0.07, 0.1),
            "crank_len": u(0.165, 0.175) * (0.75 if kind == "kids" else 1.0),
            "crank_angle_left": a0,
            "crank_angle_right": float((a0 + np.pi) % (2 * np.pi)),
        }
        return _fit_frame(p)

    def template_params(self) -> dict[str, Any]:
        return {
            "kind": "road", "frame": "diamond", "bar": "drop", "n_spokes": 12, "mudguards": True, "rack": True,
            "basket": True, "kickstand": True, "wheel_r": 0.34, "tyre_h": 0.03, "tyre_w": 0.03, "rim_depth": 0.022,
            "spoke_r": 0.0015, "hub_half_front": 0.048, "hub_half_back": 0.064, "bb_h": 0.27, "bb_half": 0.035,
            "chainstay": 0.42, "seat_len": 0.53, "seat_angle": 73.0, "head_angle": 72.0, "head_len": 0.15,
            "stack": 0.57, "reach": 0.39, "rake": 0.045, "spacer": 0.04, "stem_len": 0.1, "stem_rise": 0.02,
            "post_len": 0.18, "tube_r": 0.02, "saddle_len": 0.27, "saddle_w": 0.14, "saddle_th": 0.05,
            "bar_half": 0.21, "bar_rise": 0.05, "bar_sweep": 0.12, "drop": 0.13, "drop_reach": 0.08,
            "crank_len": 0.17, "crank_angle_left": 2.0, "crank_angle_right": 2.0,
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        out["crank_angle_right"] = params["crank_angle_left"]
        return out

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name.startswith("spokes_n"):
            return int(name.split("_")[1][1:]) == params["n_spokes"]
        if name == "top_tube":
            return params["frame"] == "diamond"
        if name == "step_tube":
            return params["frame"] == "step"
        if name.startswith("mudguard"):
            return bool(params["mudguards"])
        if name in ("rack", "basket", "kickstand"):
            return bool(params[name])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        P = _points(p)
        r = _tube_r(p)
        if name.startswith(("tyre", "rim", "hub", "spokes")):
            return _wheel_parts(p, name)
        if name == "head_tube":
            uh = _u(p["head_angle"])
            return tube(np.stack([P["ht_bot"] - 0.01 * uh, P["ht_top"]]), 1.25 * r, _TUBE_SEG, _UP_X)
        if name == "down_tube":
            uh = _u(p["head_angle"])
            a = P["ht_bot"] + 0.3 * p["head_len"] * uh
            return tube(np.stack([a, 0.5 * (a + P["bb"]), P["bb"]]), 1.15 * r, _TUBE_SEG, _UP_X)
        if name == "seat_tube":
            return tube(np.stack([P["bb"], 0.5 * (P["bb"] + P["st_top"]), P["st_top"]]), r, _TUBE_SEG, _UP_X)
        if name == "bottom_bracket":
            h = p["bb_half"]
            return lathe([0.022, 0.022, 0.022], [-h, 0.0, h], _TUBE_SEG).transformed(ROT_Y_TO_X, P["bb"])
        if name == "top_tube":
            a = P["bb"] + 0.93 * (P["st_top"] - P["bb"])
            if p["kind"] == "mountain":
                a = P["bb"] + 0.8 * (P["st_top"] - P["bb"])
            b = P["ht_top"] - 0.15 * p["head_len"] * _u(p["head_angle"])
            return tube(np.stack([a, 0.5 * (a + b), b]), 0.9 * r, _TUBE_SEG, _UP_X)
        if name == "step_tube":
            a = P["ht_top"] - 0.6 * p["head_len"] * _u(p["head_angle"])
            b = P["bb"] + 0.25 * (P["st_top"] - P["bb"])
            mid = 0.5 * (a + b) + np.array([0.0, -0.12 * (a[1] - b[1]) - 0.05, 0.0])
            pts = np.stack([a, 0.5 * (a + mid) + [0.0, -0.015, 0.0], mid, 0.5 * (mid + b) + [0.0, -0.015, 0.0], b])
            return tube(pts, 1.05 * r, _TUBE_SEG, _UP_X)
        if name == "chainstay_left":
            a = P["bb"] + np.array([p["bb_half"] * 0.7, 0.0, -0.02])
            b = P["back"] + np.array([0.9 * p["hub_half_back"], 0.0, 0.0])
            m = 0.5 * (a + b) + np.array([0.02, 0.0, 0.0])
            return tube(np.stack([a, m, b]), 0.85 * r, _TUBE_SEG, _UP_X)
        if name == "seatstay_left":
            a = P["bb"] + 0.9 * (P["st_top"] - P["bb"]) + np.array([0.012, 0.0, -0.01])
            b = P["back"] + np.array([0.9 * p["hub_half_back"], 0.0, 0.0])
            m = 0.5 * (a + b) + np.array([0.02, 0.0, 0.0])
            return tube(np.stack([a, m, b]), 0.75 * r, _TUBE_SEG, _UP_X)
        if name == "fork_left":
            uh = _u(p["head_angle"])
            a = P["ht_bot"] + np.array([0.025, 0.0, 0.0]) - 0.01 * uh
            b = P["front"] + np.array([0.9 * p["hub_half_front"], 0.0, 0.0])
            m = 0.5 * (a + b) + np.array([0.012, 0.0, 0.35 * p["rake"]])
            return tube(np.stack([a, m, b]), np.array([1.0, 0.9, 0.75]) * r, _TUBE_SEG, _UP_X)
        if name == "seatpost":
            a = P["bb"] + 0.85 * (P["st_top"] - P["bb"])
            return tube(np.stack([a, P["st_top"], P["post_top"]]), 0.75 * r, _TUBE_SEG, _UP_X)
        if name == "saddle":
            return _saddle(p)
        if name == "stem":
            uh = _u(p["head_angle"])
            a = P["ht_top"] - 0.02 * uh
            b = P["ht_top"] + p["spacer"] * uh
            return tube(np.stack([a, b, P["clamp"]]), 0.016, _TUBE_SEG, _UP_X)
        if name == "handlebar_left":
            return tube(_bar_path(p), 0.017, _TUBE_SEG, (0.0, 1.0, 0.0))
        if name == "crank_left":
            a, b, w = _crank_geom(p, side)
            arm = tube(np.stack([a, 0.5 * (a + b), b]), np.array([[0.022, 0.014]]), _TUBE_SEG, _UP_X)
            pedal = rounded_box(b + np.array([0.012 + w / 2, 0.0, 0.0]), [w, 0.018, 0.07], 0.006, 0.004, 2)
            return concat([arm, pedal])
        if name.startswith("mudguard"):
            front = name.endswith("front")
            c = P["front" if front else "back"]
            R = p["wheel_r"] + 0.015
            ang = np.linspace(-0.35, 1.9, 9) if front else np.linspace(-1.9, 0.6, 9)
            pts = np.stack([np.zeros(9), c[1] + R * np.cos(ang), c[2] + R * np.sin(ang)], 1)
            return tube(pts, np.array([[0.5 * p["tyre_w"] + 0.012, 0.0025]]), _TUBE_SEG, _UP_X)
        if name == "rack":
            c = P["back"]
            y = max(c[1] + p["wheel_r"] + 0.06, P["st_top"][1] - 0.05)
            z0 = c[2] + 0.02
            plat = rounded_box([0.0, y, z0], [0.13, 0.014, 0.38], 0.02, 0.005, 2)
            stay = tube(np.stack([[0.06, y - 0.007, z0 - 0.15], [0.065, 0.5 * (y + c[1]), c[2] - 0.05],
                                  [0.072, c[1] + 0.01, c[2] - 0.005]]), 0.005, 6, _UP_X)  # fmt: skip
            return concat([plat, stay, stay.mirrored_x()])
        if name == "basket":
            c = P["clamp"]
            return rounded_box([0.0, c[1] - 0.17, c[2] + 0.2], [0.34, 0.24, 0.26], 0.03, 0.01, 2)
        if name == "kickstand":
            bb = P["bb"]
            top = bb + np.array([0.05, -0.02, -0.06])
            foot = np.array([0.16, 0.007, -0.1 - 0.1 * p["chainstay"]])
            leg = tube(np.stack([top, 0.5 * (top + foot), foot]), 0.007, 6, (0.0, 0.0, 1.0))
            return concat([leg, leg.mirrored_x()])
        raise KeyError(f"bicycle: no part builder for slot {name!r}")
