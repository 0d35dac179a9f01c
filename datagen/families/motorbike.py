"""Motorbikes: sport, cruiser, dirt and scooter-like bikes — wheels, fork, tank, seat, engine, exhausts, fenders,
optional fairing, windscreen, mirrors and top box.

Build frame: the bike rides towards +z, y up, the rider's left is +x; ``build`` puts the tyres on y = 0 and
centres the bounding box in z. Parts meet at the same place of their canonical coordinates on every instance where
they touch: the seat ends 1 cm behind the tank (``seat_len`` only sizes a scooter's seat), and the seat with the
rear cowl under it rises above ``seat_h`` where needed to clear the rear tyre and fender (low cruiser seats would
otherwise run through the tyre, a seam that lies elsewhere on every instance: raw cycle at 256 px, seeds 11-12,
96.5 % -> 96.9 %).

Slots (fixed order; * = optional): tyre_{front,back}, rim_{front,back}, hub_{front,back} (centre slots about the
axle, ``datagen.families.wheels``); spokes count-tagged per side*: ``spokes_n{n}_{front,back}_{left,right}`` (n = 3
or 5 flat cast spokes, 12 wire spokes per side); fork_{left,right}, swingarm_{left,right}; frame (a spine tube in
the plane x = 0), engine, rear_cowl, seat, headlight, taillight, fender_{front,back}, handlebar_{left,right};
tank* (absent on scooters), floorboard* (scooters), exhaust_{left,right}* (one side or both), mirror_{left,right}*,
fairing*, windscreen*, top_box*.

Keypoints with the SPair-71k motorbike index in brackets. Sources: GeoAware-SC ``utils_geoware.py`` (``SPAIR_LR``
marks ids 0 and 2 right, 1 and 3 left, ids 4-12 centre; ``SPAIR_GEO_AWARE`` comments "01 rearview_mirror, 23
handle, 67 front back wheel") and the PASCAL3D+ motorbike set (headlight_center, head_center, front_seat,
back_seat, handles, wheels). Ids 4, 5 and 8-12 are not named in the sources we found: **the mapping of
headlight [4], taillight [5], seat_front [8], seat_back [9] is our guess**; ids 10-12 are not mapped:
    mirror_{left,right} [1, 0] (mirror head, outer end), handle_{left,right} [3, 2] (grip ends), headlight [4],
    taillight [5], front_wheel [6] and back_wheel [7] (as for the bicycle, SPair's centre wheel keypoint sits on
    each visible axle end: ``front_wheel_left`` / ``front_wheel_right`` both map to 6), seat_front [8], seat_back
    [9], exhaust_end_{left,right} (not in SPair).
Symmetric groups: mirrors, handles (as GeoAware's), each wheel's two axle ends, the two exhaust ends.

One module per family, over ~400 lines: its slots, part builders, keypoints and SPair index map are one
contract and are read together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import (
    PartMesh,
    concat,
    lathe,
    rotation_x,
    rounded_box,
    rounded_rect_profile,
    slab_on_quad,
    sweep,
    tube,
)
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform
from datagen.families.wheels import hub, rim, spokes, tyre

__all__ = ["MotorbikeFamily"]

SPOKE_COUNTS = (3, 5, 12)
_N_THETA = 48
_SEG = 12
_UP_X = (1.0, 0.0, 0.0)
_ROT_Y_TO_Z = rotation_x(np.pi / 2)


def _spoke_slots() -> list[SlotDef]:
    return [
        SlotDef(f"spokes_n{n}_{w}_{side}", "spokes", "rims", side, True)
        for n in SPOKE_COUNTS
        for w in ("front", "back")
        for side in ("left", "right")
    ]


_SLOTS = [
    SlotDef("tyre_front", "tyre", "tyres"),
    SlotDef("tyre_back", "tyre", "tyres"),
    SlotDef("rim_front", "rim", "rims"),
    SlotDef("rim_back", "rim", "rims"),
    SlotDef("hub_front", "hub", "metal"),
    SlotDef("hub_back", "hub", "metal"),
    *_spoke_slots(),
    SlotDef("fork_left", "fork", "metal", "left"),
    SlotDef("fork_right", "fork", "metal", "right"),
    SlotDef("swingarm_left", "swingarm", "frame", "left"),
    SlotDef("swingarm_right", "swingarm", "frame", "right"),
    SlotDef("frame", "frame", "frame"),
    SlotDef("engine", "engine", "engine"),
    SlotDef("rear_cowl", "body", "paint"),
    SlotDef("seat", "seat", "seat"),
    SlotDef("headlight", "headlight", "lights"),
    SlotDef("taillight", "taillight", "taillights"),
    SlotDef("fender_front", "fender", "paint"),
    SlotDef("fender_back", "fender", "paint"),
    SlotDef("handlebar_left", "handlebar", "bar", "left"),
    SlotDef("handlebar_right", "handlebar", "bar", "right"),
    SlotDef("tank", "tank", "paint", "center", True),
    SlotDef("floorboard", "floorboard", "paint", "center", True),
    SlotDef("exhaust_left", "exhaust", "chrome", "left", True),
    SlotDef("exhaust_right", "exhaust", "chrome", "right", True),
    SlotDef("mirror_left", "mirror", "trim", "left", True),
    SlotDef("mirror_right", "mirror", "trim", "right", True),
    SlotDef("fairing", "fairing", "paint", "center", True),
    SlotDef("windscreen", "windscreen", "glass", "center", True),
    SlotDef("top_box", "top_box", "trim", "center", True),
]


# ---- layout (build frame: rear axle at z = 0) ---------------------------------------------------------------------
def _u(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([0.0, np.sin(a), -np.cos(a)])


def _pts(p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Frame points [3] in the plane x = 0: axles, steering head top and bottom, swingarm pivot, seat ends."""
    Rf, Rb = p["wheel_rf"], p["wheel_rb"]
    back = np.array([0.0, Rb, 0.0])
    front = np.array([0.0, Rf, p["wheelbase"]])
    uh = _u(p["rake_deg"])
    head_bot = front + p["fork_len"] * uh
    head_top = head_bot + 0.16 * uh
    pivot = np.array([0.0, Rb + 0.06, p["swingarm"]])
    zb, zf = 0.05 * p["wheelbase"] - 0.1, pivot[2] + p["seat_len"] - 0.1
    if p["tank"]:  # the seat ends 1 cm behind the tank's rear: the same junction on every instance
        zf = head_top[2] - 0.06 - p["tank_l"] - 0.01
    seat_y = p["seat_h"] + _seat_lift(p, zb, zf, pivot[2])
    seat_back = np.array([0.0, seat_y, zb])
    seat_front = np.array([0.0, seat_y + 0.02, zf])
    return {"back": back, "front": front, "head_bot": head_bot, "head_top": head_top, "pivot": pivot,
            "seat_back": seat_back, "seat_front": seat_front}  # fmt: skip


def _rear_clear(p: Mapping[str, Any], z: np.ndarray) -> np.ndarray:
    """y [N] of the top of the rear wheel's tyre and fender (outer surface) at ``z`` (build frame), -inf off it."""
    Rb = p["wheel_rb"]
    ang = np.arcsin(np.clip(z / (Rb + 0.036), -1.0, 1.0))  # the fender spans -1.6 .. 0.2 rad from +y towards +z
    fender = np.where(
        (np.abs(z) < Rb + 0.036) & (ang <= 0.2), Rb + np.sqrt(np.maximum((Rb + 0.036) ** 2 - z**2, 0.0)), -np.inf
    )
    tyre = np.where(np.abs(z) < Rb, Rb + np.sqrt(np.maximum(Rb**2 - z**2, 0.0)), -np.inf)
    return np.maximum(fender, tyre)


def _seat_lift(p: Mapping[str, Any], zb: float, zf: float, z_pivot: float) -> float:
    """How far the seat (and the rear cowl under it) must rise above ``seat_h`` so that the cowl's underside clears
    the rear tyre and fender by 2 cm: a low cruiser seat over a big rear wheel would otherwise run through the
    tyre, and the seam where the tyre leaves the bodywork would lie elsewhere on every instance."""
    big = 1.6 if p["kind"] != "scooter" else 1.8
    step = p["seat_step"]
    # the cowl's three stations (``build_part("rear_cowl")``) at seat_y = seat_h: (z, underside y)
    z2 = zb + 0.4 * (zf - zb)
    z3 = max(z_pivot + 0.1, z2 + 0.12)
    y = p["seat_h"]
    st = [(zb - 0.02, y + step - 0.06 - 0.04 * big), (z2, y + 0.008 + step - 0.14 * big),
          (z3, y + 0.015 - 0.17 * big)]  # fmt: skip
    z = np.concatenate([np.linspace(a[0], b[0], 8) for a, b in zip(st[:-1], st[1:])])
    under = np.concatenate([np.linspace(a[1], b[1], 8) for a, b in zip(st[:-1], st[1:])])
    return float(max(0.0, np.max(_rear_clear(p, z) + 0.02 - under)))


def _bar_path(p: Mapping[str, Any]) -> np.ndarray:
    """Left half of the handlebar [9, 3], from the clamp (x = 0) to the grip end."""
    c = _pts(p)["head_top"] + np.array([0.0, p["bar_rise"], 0.0])
    s = np.linspace(0.0, 1.0, 9)
    x = p["bar_half"] * s
    y = p["bar_up"] * np.clip((s - 0.3) / 0.4, 0.0, 1.0) ** 1.5
    z = -p["bar_sweep"] * np.clip((s - 0.35) / 0.65, 0.0, 1.0)
    return c + np.stack([x, y, z], 1)


def _mirror_tip(p: Mapping[str, Any]) -> np.ndarray:
    b = _bar_path(p)[5]
    return b + np.array([0.06, 0.2, -0.03])


def _loft_x(stations: list[tuple[float, float, float, float]], k: int = 3, rnd: float = 0.7) -> PartMesh:
    """A closed loft along +z of rounded-rectangle sections (z, half width, y centre, half height)."""
    rings = []
    for z, hw, yc, hh in stations:
        prof = rounded_rect_profile(hw, hh, rnd * min(hw, hh), k)
        rings.append(np.stack([prof[:, 0], prof[:, 1] + yc, np.full(prof.shape[0], z)], 1))
    return sweep(np.stack(rings))


def _seat_stations(p: Mapping[str, Any]) -> list[tuple[float, float, float, float]]:
    P = _pts(p)
    zb, zf = P["seat_back"][2], P["seat_front"][2]
    yb, yf = P["seat_back"][1], P["seat_front"][1]
    w = p["seat_w"] / 2
    out = []
    for t, ws, hs in ((0.0, 0.7, 0.6), (0.08, 0.95, 0.9), (0.4, 1.0, 1.0), (0.75, 0.8, 1.0), (0.95, 0.45, 0.8),
                      (1.0, 0.3, 0.6)):  # fmt: skip
        step = p["seat_step"] if t < 0.5 else 0.0
        out.append((zb + t * (zf - zb), w * ws, yb + t * (yf - yb) + step, 0.045 * hs))
    return out


def _headlight_geom(p: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    P = _pts(p)
    return P["head_top"] + np.array([0.0, -0.05, 0.09 + p["lamp_r"] * 0.4]), p["lamp_r"]


def _taillight_pos(p: Mapping[str, Any]) -> np.ndarray:
    st = _seat_stations(p)[0]
    return np.array([0.0, st[2] - 0.06, st[0] - 0.02])


def _engine_box(p: Mapping[str, Any]) -> tuple[np.ndarray, list[float]]:
    """Centre [3] and size (x, y, z) of the engine block, between the swingarm pivot and the front tyre."""
    P = _pts(p)
    room = P["front"][2] - p["wheel_rf"] - 0.06 - (P["pivot"][2] + 0.02)
    L = float(np.clip(p["engine_l"], 0.1, room))
    yc = max(P["pivot"][1] + 0.05, 0.22 + 0.5 * p["engine_h"])
    return np.array([0.0, yc, P["pivot"][2] + 0.5 * L + 0.02]), [p["engine_w"], p["engine_h"], L]


def _hub_half(p: Mapping[str, Any], front: bool) -> float:
    """Half length of a hub (x): the fork legs / swingarm arms sit at its ends, clear of the tyre."""
    if front:
        return 0.5 * p["tyre_wf"] + 0.015 + 0.042
    return 0.5 * p["tyre_wb"] + 0.015 + 0.022


def _exhaust_path(p: Mapping[str, Any]) -> np.ndarray:
    P = _pts(p)
    x = 0.5 * p["engine_w"] + 0.04
    start = np.array([0.35 * x, P["pivot"][1] - 0.05, P["pivot"][2] + 0.25])
    low = np.array([x, p["wheel_rb"] * 0.55, P["pivot"][2] + 0.02])
    end = np.array([x + 0.05, p["wheel_rb"] * (0.7 + p["exhaust_up"]), -0.1 - p["exhaust_len"] * 0.5])
    return np.stack([start, 0.5 * (start + low), low, 0.5 * (low + end), end])


class MotorbikeFamily(ProceduralFamily):
    name = "motorbike"
    description = "motorbikes: sport, cruiser, dirt and scooter-like; cast or wire wheels, fairing, screen, top box"
    # photographs of motorbikes are taken from about eye level; higher views see the tank and seat from above,
    # where the many overlapping parts leave more occlusion edges (raw cycle at 256 px: 95.8 % with the default
    # -5..45 degrees, 96.4 % with -5..20)
    camera_elevation_deg = (-5.0, 20.0)
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("mirror_left", "mirror_left", _mirror_tip, "left", "1/0"),
        KeypointDef("handle_left", "handlebar_left", lambda p: _bar_path(p)[-1], "left", "3/2"),
        KeypointDef("headlight", "headlight", lambda p: _headlight_geom(p)[0] + [0.0, 0.0, 0.06], "center", "4"),
        KeypointDef("taillight", "taillight", lambda p: _taillight_pos(p) - [0.0, 0.0, 0.03], "center", "5"),
        KeypointDef(
            "front_wheel_left", "hub_front", lambda p: _pts(p)["front"] + [_hub_half(p, True), 0.0, 0.0], "left", "6/6"
        ),
        KeypointDef(
            "back_wheel_left", "hub_back", lambda p: _pts(p)["back"] + [_hub_half(p, False), 0.0, 0.0], "left", "7/7"
        ),
        KeypointDef(
            "seat_front",
            "seat",
            lambda p: (0.0, _seat_stations(p)[-1][2] + 0.03, _seat_stations(p)[-1][0]),
            "center",
            "8",
        ),
        KeypointDef(
            "seat_back", "seat", lambda p: (0.0, _seat_stations(p)[1][2] + 0.05, _seat_stations(p)[1][0]), "center", "9"
        ),
        KeypointDef(
            "exhaust_end_left", "exhaust_left", lambda p: _exhaust_path(p)[-1] - [0.0, 0.0, 0.05], "left", "-/-"
        ),
    ]
    group_defs = [
        ["mirror_left", "mirror_right"],
        ["handle_left", "handle_right"],
        ["front_wheel_left", "front_wheel_right"],
        ["back_wheel_left", "back_wheel_right"],
        ["exhaust_end_left", "exhaust_end_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        kind = ["sport", "cruiser", "dirt", "scooter"][int(rng.integers(0, 4))]
        r = rng.random(10)
        if kind == "scooter":
            rf = rb = u(0.2, 0.26)
        elif kind == "dirt":
            rf, rb = u(0.34, 0.37), u(0.32, 0.35)
        else:
            rf = u(0.3, 0.34)
            rb = rf * u(0.95, 1.05)
        wb = {"sport": u(1.35, 1.45), "cruiser": u(1.5, 1.7), "dirt": u(1.42, 1.5), "scooter": u(1.25, 1.4)}[kind]
        ex = r[0]
        ex_l, ex_r = (True, True) if ex < 0.35 else ((False, True) if ex < 0.8 else (True, False))
        spokes_n = 12 if kind == "dirt" or (kind == "cruiser" and r[1] < 0.5) else [3, 5][int(r[2] < 0.5)]
        p: dict[str, Any] = {
            "kind": kind,
            "n_spokes": int(spokes_n),
            "tank": kind != "scooter",
            "floorboard": kind == "scooter",
            "exhaust_left": bool(ex_l),
            "exhaust_right": bool(ex_r),
            "mirrors": bool(kind != "dirt" and r[3] < 0.85),
            "fairing": bool(kind == "sport" or (kind == "scooter" and r[4] < 0.7)),
            "windscreen": bool((kind in ("sport", "scooter") and r[5] < 0.7) or (kind == "cruiser" and r[5] < 0.3)),
            "top_box": bool(kind in ("scooter", "cruiser") and r[6] < 0.35),
            "wheel_rf": rf,
            "wheel_rb": rb,
            "tyre_hf": u(0.09, 0.12) if kind != "scooter" else u(0.06, 0.08),
            "tyre_hb": u(0.1, 0.14) if kind != "scooter" else u(0.07, 0.09),
            "tyre_wf": u(0.09, 0.13),
            "tyre_wb": u(0.11, 0.19) if kind != "dirt" else u(0.1, 0.12),
            "wheelbase": wb,
            "rake_deg": {
                "sport": u(64.0, 67.0),
                "cruiser": u(55.0, 61.0),
                "dirt": u(62.0, 64.0),
                "scooter": u(60.0, 66.0),
            }[kind],
            "fork_len": u(0.6, 0.72) * (1.25 if kind == "dirt" else 1.0) * (0.85 if kind == "scooter" else 1.0),
            "swingarm": u(0.5, 0.62) * (0.8 if kind == "scooter" else 1.0),
            "seat_h": {"sport": u(0.8, 0.85), "cruiser": u(0.65, 0.72), "dirt": u(0.9, 0.97), "scooter": u(0.74, 0.8)}[
                kind
            ],
            "seat_len": u(0.55, 0.75),
            "seat_w": u(0.24, 0.34),
            "seat_step": u(0.0, 0.08) if kind in ("sport", "cruiser") else 0.0,
            "engine_w": u(0.3, 0.42) if kind != "dirt" else u(0.22, 0.28),
            "engine_h": u(0.3, 0.4),
            "engine_l": u(0.4, 0.55),
            "tank_l": u(0.38, 0.52),
            "tank_w": u(0.26, 0.36),
            "tank_h": u(0.16, 0.24),
            "lamp_r": u(0.07, 0.11),
            "bar_half": u(0.3, 0.4),
            "bar_rise": u(0.02, 0.18) if kind != "sport" else u(-0.06, 0.0),
            "bar_up": u(0.0, 0.08),
            "bar_sweep": u(0.02, 0.2),
            "exhaust_r": u(0.04, 0.06),
            "exhaust_len": u(0.3, 0.55),
            "exhaust_up": u(0.0, 0.5),
            "fairing_l": u(0.3, 0.5),
            "screen_h": u(0.15, 0.4),
            "box": u(0.3, 0.4),
        }
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "kind": "sport", "n_spokes": 5, "tank": True, "floorboard": True, "exhaust_left": True,
            "exhaust_right": True, "mirrors": True, "fairing": True, "windscreen": True, "top_box": True,
            "wheel_rf": 0.32, "wheel_rb": 0.32, "tyre_hf": 0.1, "tyre_hb": 0.12, "tyre_wf": 0.11, "tyre_wb": 0.15,
            "wheelbase": 1.42, "rake_deg": 65.0, "fork_len": 0.66, "swingarm": 0.56, "seat_h": 0.8, "seat_len": 0.65,
            "seat_w": 0.28, "seat_step": 0.04, "engine_w": 0.36, "engine_h": 0.35, "engine_l": 0.48, "tank_l": 0.45,
            "tank_w": 0.3, "tank_h": 0.2, "lamp_r": 0.09, "bar_half": 0.35, "bar_rise": 0.05, "bar_up": 0.04,
            "bar_sweep": 0.1, "exhaust_r": 0.05, "exhaust_len": 0.4, "exhaust_up": 0.25, "fairing_l": 0.4,
            "screen_h": 0.25, "box": 0.35,
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        out["exhaust_right"] = params["exhaust_left"]
        return out

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name.startswith("spokes_n"):
            return int(name.split("_")[1][1:]) == params["n_spokes"]
        if name.startswith("mirror_"):
            return bool(params["mirrors"])
        if name in ("tank", "floorboard", "exhaust_left", "exhaust_right", "fairing", "windscreen", "top_box"):
            return bool(params[name])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        P = _pts(p)
        if name.startswith(("tyre", "rim", "hub", "spokes")):
            w = "front" if "front" in name else "back"
            R = p["wheel_rf" if w == "front" else "wheel_rb"]
            th = p["tyre_hf" if w == "front" else "tyre_hb"]
            tw = p["tyre_wf" if w == "front" else "tyre_wb"]
            yz = (P[w][1], P[w][2])
            if name.startswith("tyre"):
                return tyre(yz, R, th, tw, _N_THETA, 12)
            if name.startswith("rim"):
                return rim(yz, R - th + 0.005, 0.04, 0.75 * tw, _N_THETA)
            half = _hub_half(p, w == "front")
            if name.startswith("hub"):
                return hub(yz, 0.045, 0.06, 0.015, half, 16)
            n = int(name.split("_")[1][1:])
            r_in = R - th - 0.012
            if n == 12:
                return spokes(yz, n, 0.05, 0.6 * half, r_in, 0.0022, 2 * np.pi / n * 1.5)
            return spokes(yz, n, 0.045, 0.45 * half, r_in, (0.018, 0.008), 0.0, 6)
        if name == "fork_left":
            x = _hub_half(p, True)
            a = P["head_bot"] + np.array([x, 0.06, 0.0])
            b = P["front"] + np.array([x, 0.0, 0.0])
            return tube(np.stack([a, 0.5 * (a + b), b]), np.array([0.042, 0.04, 0.034]), _SEG, _UP_X)
        if name == "swingarm_left":
            x = _hub_half(p, False)
            a = P["pivot"] + np.array([x, 0.0, 0.0])
            b = P["back"] + np.array([x, 0.0, 0.0])
            return tube(np.stack([a, 0.5 * (a + b), b]), np.array([[0.022, 0.04]]), _SEG, _UP_X)
        if name == "frame":  # the down tube: steering head to the engine's front top (its end inside the engine)
            c, size = _engine_box(p)
            a = P["head_top"] - np.array([0.0, 0.02, 0.0])
            d = c + np.array([0.0, 0.3 * size[1], 0.3 * size[2]])
            return tube(np.stack([a, 0.5 * (a + d), d]), 0.045, _SEG, _UP_X)
        if name == "engine":
            c, size = _engine_box(p)
            return rounded_box(c, size, 0.06, 0.02, 3)
        if name == "rear_cowl":
            st = _seat_stations(p)
            big = 1.6 if p["kind"] != "scooter" else 1.8
            stations = [(st[0][0] - 0.02, 0.5 * st[0][1], st[0][2] - 0.06, 0.04 * big),
                        (st[2][0], 0.9 * st[2][1], st[2][2] - 0.08 * big, 0.06 * big),
                        (max(P["pivot"][2] + 0.1, st[2][0] + 0.12), 0.8 * st[2][1], st[3][2] - 0.1 * big,
                         0.07 * big)]  # fmt: skip
            return _loft_x(stations)
        if name == "seat":
            return _loft_x(_seat_stations(p), 3, 0.6)
        if name == "headlight":
            c, r = _headlight_geom(p)
            return lathe([0.6 * r, r, r, 0.95 * r], [-0.05, 0.0, 0.03, 0.06], _SEG * 2).transformed(_ROT_Y_TO_Z, c)
        if name == "taillight":
            return rounded_box(_taillight_pos(p), [0.14, 0.05, 0.05], 0.015, 0.006, 3)
        if name.startswith("fender"):
            front = name.endswith("front")
            c = P["front" if front else "back"]
            R = p["wheel_rf" if front else "wheel_rb"] + 0.03
            w = p["tyre_wf" if front else "tyre_wb"]
            ang = np.linspace(-0.3, 1.5, 7) if front else np.linspace(-1.6, 0.2, 7)
            pts = np.stack([np.zeros(7), c[1] + R * np.cos(ang), c[2] + R * np.sin(ang)], 1)
            return tube(pts, np.array([[0.5 * w + 0.02, 0.006]]), _SEG, _UP_X)
        if name == "handlebar_left":
            return tube(_bar_path(p), 0.018, 8, (0.0, 1.0, 0.0))
        if name == "tank":
            zf = P["head_top"][2] - 0.06
            zb = zf - p["tank_l"]
            y0 = P["seat_front"][1] + 0.04
            w, h = p["tank_w"] / 2, p["tank_h"] / 2
            stations = [(zb, 0.7 * w, y0 + 0.4 * h, 0.6 * h), (zb + 0.3 * p["tank_l"], w, y0 + h, h),
                        (zb + 0.7 * p["tank_l"], w, y0 + 1.1 * h, h), (zf, 0.6 * w, y0 + 1.1 * h, 0.7 * h)]  # fmt: skip
            return _loft_x(stations)
        if name == "floorboard":
            z0, z1 = P["seat_front"][2] + 0.02, P["head_bot"][2] - 0.05
            return rounded_box([0.0, p["wheel_rb"] + 0.02, 0.5 * (z0 + z1)], [0.3, 0.05, max(z1 - z0, 0.1)], 0.05, 0.01)
        if name == "exhaust_left":
            path = _exhaust_path(p)
            rr = p["exhaust_r"]
            return tube(path, np.array([0.4, 0.45, 0.6, 1.0, 1.0]) * rr, _SEG, _UP_X)
        if name == "mirror_left":
            b = _bar_path(p)[5]
            tip = _mirror_tip(p)
            stalk = tube(np.stack([b, 0.5 * (b + tip), tip - [0.03, 0.0, 0.0]]), 0.006, 6, (0.0, 0.0, 1.0))
            head = rounded_box(tip - [0.03, 0.0, 0.0], [0.12, 0.07, 0.025], 0.02, 0.006, 3)
            return concat([stalk, head])
        if name == "fairing":
            c, r = _headlight_geom(p)
            L = p["fairing_l"]
            stations = [(c[2] - L, 0.28, c[1] - 0.12, 0.2), (c[2] - 0.5 * L, 0.26, c[1] - 0.05, 0.2),
                        (c[2] - 0.1, 0.2, c[1], 0.16), (c[2] + 0.04, 0.12, c[1] - 0.02, 0.1)]  # fmt: skip
            return _loft_x(stations, 3, 0.8)
        if name == "windscreen":
            c, r = _headlight_geom(p)
            h = p["screen_h"]
            lo = c + np.array([0.0, 0.12, -0.02])
            hi = lo + h * _u(p["rake_deg"] - 10.0)
            q = np.array([[-0.15, lo[1], lo[2]], [0.15, lo[1], lo[2]], [0.12, hi[1], hi[2]], [-0.12, hi[1], hi[2]]])
            return slab_on_quad(q, 0.0, 0.006)
        if name == "top_box":
            b = p["box"]
            st = _seat_stations(p)[0]
            return rounded_box([0.0, st[2] + 0.05 + 0.4 * b, st[0] + 0.05], [b * 1.1, 0.8 * b, 0.9 * b], 0.05, 0.02)
        raise KeyError(f"motorbike: no part builder for slot {name!r}")
