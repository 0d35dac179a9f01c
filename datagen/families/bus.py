"""Buses: city single-deckers, coaches, minibuses and double-deckers as a lofted box body with glass, doors, lights,
plates, mirrors, wheel arches and four wheels.

Build frame: floor y = 0 (the tyres stand on it), the bus drives towards +z, the driver's-eye left is +x. ``build``
centres the bounding box in z. Sizes are metric (a city bus is 10-12.5 m long, 2.55 m wide, 3 m high).

Slots (fixed order; * = optional): body (a loft of rounded-rectangle sections, ``vehicle_parts.loft``);
windshield, windshield_upper* (double-deckers), rear_window (glass slabs on the flat end faces); side windows
count-tagged per side and row: ``window_n{n}_{left,right}_{i}`` (lower row) and ``upper_window_n{n}_{left,right}_{i}``
(upper deck*), the i-th window from the front of a row of n, n = 4..6 (windows only correspond between rows of the
same count); cab_window_{left,right} (the driver's window ahead of the door); door_{left,right}* (the kerb-side
door is the right one, a left door occurs on some instances); mirror_{left,right}; headlight_{left,right},
taillight_{left,right}; plate_front, plate_rear; arch_{front,rear}_{left,right} (wheel-arch trims);
wheel_{front,rear}_{left,right} (tyres) and hub_{front,rear}_{left,right}.

Keypoints with the SPair-71k bus id in brackets. Source: GeoAware-SC ``utils_geoware.py`` (``SPAIR_LR`` marks ids
0, 2, 5, 10-16, 18, 26, 28 right and their twins left, ids 8 and 9 unused; ``SPAIR_GEO_AWARE['bus']`` comments
"01 rearview_mirror, 2356 light, 47 licence_plate, 10132023 front_fender, 11142124 wheel, 12152225 rear_fender,
16172627 window_top_corner, 18192829 window_bottom_corner"). Which light pair / plate / wheel group / window group
is the front one is **our reading** (the first of each, as car.py reads SPair's car table):
    mirror_{left,right} [1, 0]; headlight_{left,right} [3, 2]; taillight_{left,right} [6, 5]; plate_front [4],
    plate_rear [7]; per side (right [10-15], left [20-25]) the front wheel's arch front end, wheel centre (hub
    face) and arch back end [10, 11, 12 / 20, 21, 22], the same for the rear wheel [13, 14, 15 / 23, 24, 25];
    windshield top corners [16 right, 17 left], bottom corners [18, 19]; rear window top corners [26, 27], bottom
    corners [28, 29].
Symmetric groups are GeoAware's ``SPAIR_GEO_AWARE['bus']``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, concat
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform
from datagen.families.vehicle_parts import Station, arch, box, loft, panel, road_wheel, wheel_hub

__all__ = ["BusFamily"]

WINDOW_COUNTS = (4, 5, 6)
KINDS = ("city", "coach", "minibus", "double")
_PILLAR = 0.12  # window pillar width, metres
_ENDS = {0: (0.94, 0.012), 1: (0.985, 0.003)}  # end station: (half-width factor, inset as a fraction of height)


def _window_slots(prefix: str) -> list[SlotDef]:
    out = []
    for n in WINDOW_COUNTS:
        for i in range(1, n + 1):
            for side in ("left", "right"):
                out.append(SlotDef(f"{prefix}_n{n}_{side}_{i}", "side_window", "glass", side, True))
    return out


_SLOTS = [
    SlotDef("body", "body", "paint"),
    SlotDef("windshield", "windshield", "glass"),
    SlotDef("windshield_upper", "windshield", "glass", "center", True),
    SlotDef("rear_window", "rear_window", "glass"),
    *_window_slots("window"),
    *_window_slots("upper_window"),
    SlotDef("cab_window_left", "side_window", "glass", "left"),
    SlotDef("cab_window_right", "side_window", "glass", "right"),
    SlotDef("door_left", "door", "doors", "left", True),
    SlotDef("door_right", "door", "doors", "right", True),
    SlotDef("mirror_left", "mirror", "trim", "left"),
    SlotDef("mirror_right", "mirror", "trim", "right"),
    SlotDef("headlight_left", "headlight", "headlights", "left"),
    SlotDef("headlight_right", "headlight", "headlights", "right"),
    SlotDef("taillight_left", "taillight", "taillights", "left"),
    SlotDef("taillight_right", "taillight", "taillights", "right"),
    SlotDef("plate_front", "plate", "plates"),
    SlotDef("plate_rear", "plate", "plates"),
    SlotDef("arch_front_left", "wheel_arch", "trim", "left"),
    SlotDef("arch_front_right", "wheel_arch", "trim", "right"),
    SlotDef("arch_rear_left", "wheel_arch", "trim", "left"),
    SlotDef("arch_rear_right", "wheel_arch", "trim", "right"),
    SlotDef("wheel_front_left", "wheel", "tyres", "left"),
    SlotDef("wheel_front_right", "wheel", "tyres", "right"),
    SlotDef("wheel_rear_left", "wheel", "tyres", "left"),
    SlotDef("wheel_rear_right", "wheel", "tyres", "right"),
    SlotDef("hub_front_left", "hub", "rims", "left"),
    SlotDef("hub_front_right", "hub", "rims", "right"),
    SlotDef("hub_rear_left", "hub", "rims", "left"),
    SlotDef("hub_rear_right", "hub", "rims", "right"),
]


# ---- layout ----------------------------------------------------------------------------------------------------------
def _axles(p: Mapping[str, Any]) -> tuple[float, float]:
    """z of the front and rear axles."""
    return p["length"] / 2 - p["overhang_front"], -p["length"] / 2 + p["overhang_rear"]


def _bands(p: Mapping[str, Any]) -> tuple[float, float]:
    """Lengths of the two end bands of the body (the rounded edge and the flat end zone), metres."""
    return 0.012 * p["length"], 0.04 * p["length"]


def _stations(p: Mapping[str, Any]) -> list[Station]:
    """Body sections from the rear to the front."""
    L, hw, H, c, r = p["length"], p["width"] / 2, p["height"], p["clearance"], p["body_round"]
    zf, zr = _axles(p)
    R = p["wheel_r"]
    e1, e2 = _bands(p)
    a = 1.3 * R  # arch half-length: sections clear of the wheel
    zs = [-L / 2, -L / 2 + e1, -L / 2 + e2, max(zr - a, -L / 2 + e2 + 0.1), zr, zr + a, 0.5 * (zr + zf), zf - a, zf,
          min(zf + a, L / 2 - e2 - 0.1), L / 2 - e2, L / 2 - e1, L / 2]  # fmt: skip
    out = []
    for i, z in enumerate(zs):
        s, d = _ENDS.get(i, _ENDS.get(len(zs) - 1 - i, (1.0, 0.0)))
        out.append((z, hw * s, c + d * H, H - d * H, r))
    return out


def _end_face(p: Mapping[str, Any], front: bool) -> tuple[float, float, float, float]:
    """(z, half width, y bottom, y top) of the flat front or rear end face (the end cap)."""
    z, hw, y0, y1, _ = _stations(p)[-1 if front else 0]
    return z, hw, y0, y1


def _end_quad(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def _on_end(p: Mapping[str, Any], front: bool, fx0: float, fx1: float, fy0: float, fy1: float) -> np.ndarray:
    """A quad on an end face at fractions of its half width (x) and of its height from the bottom (y): end-cap
    glass and lamps sit at the same place of the cap's canonical (normalised) coordinates on every instance, so the
    map is continuous across their edges. With ``body_round`` <= 0.18 m the corners stay clear of the cap's
    rounded corners."""
    z, hw, y0, y1 = _end_face(p, front)
    return _end_quad(z, fx0 * hw, fx1 * hw, y0 + fy0 * (y1 - y0), y0 + fy1 * (y1 - y0))


def _windshield_quad(p: Mapping[str, Any], upper: bool = False) -> np.ndarray:
    """Corners [4, 3] of the (lower or upper) windshield: (x0, y0), (x1, y0), (x1, y1), (x0, y1) with x0 = +x."""
    if p["kind"] == "double":
        fy = (0.58, 0.93) if upper else (0.65 * p["ws_bottom"], 0.46)
    else:
        fy = (p["ws_bottom"], 0.93)
    return _on_end(p, True, 0.8, -0.8, *fy)


def _rear_window_quad(p: Mapping[str, Any]) -> np.ndarray:
    return _on_end(p, False, 0.72, -0.72, p["rear_win_bottom"], 0.92)


# Side glass and doors sit at fixed places of the body's canonical side coordinates: along the body at fixed
# fractional station indices u (the loft is linear in z between stations), across it at fixed fractions of the
# side's height (the sections' side points sit at fixed normalised heights), so the cross-instance map is
# continuous across their edges.
_ROW_F = {"single": (0.88,), "double_lower": (0.27, 0.45), "double_upper": (0.59, 0.9)}
_U_WINDOWS = {"lower": (2.5, 6.3), "upper": (2.5, 9.8)}
_U_DOOR = (6.4, 6.95)
_U_CAB = (7.05, 9.8)
_U_PILLAR = 0.04  # pillar width in station-index units


def _z_at(p: Mapping[str, Any], u: float) -> float:
    """z of the fractional station index ``u`` (linear between stations, as the loft)."""
    zs = [s[0] for s in _stations(p)]
    return float(np.interp(u, np.arange(len(zs)), zs))


def _rows(p: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """y ranges of the window rows on the side: ``lower`` and ``upper`` (double-deckers)."""
    c, H = p["clearance"], p["height"]

    def y(f: float) -> float:
        return c + f * (H - c)

    if p["kind"] == "double":
        lo, up = _ROW_F["double_lower"], _ROW_F["double_upper"]
        return {"lower": (y(lo[0]), y(lo[1])), "upper": (y(up[0]), y(up[1]))}
    return {"lower": (y(p["win_lo"]), y(_ROW_F["single"][0]))}


def _door_z(p: Mapping[str, Any]) -> tuple[float, float]:
    """z range of the doors: between the middle section and the front wheel's arch."""
    return _z_at(p, _U_DOOR[0]), _z_at(p, _U_DOOR[1])


def _side_quad(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]])


def _window_quad(p: Mapping[str, Any], row: str, n: int, i: int) -> np.ndarray:
    """The i-th (1 = front) of n windows of a row on the +x side."""
    ub, ut = _U_WINDOWS[row]
    span = (ut - ub - _U_PILLAR * (n - 1)) / n
    u1 = ut - (i - 1) * (span + _U_PILLAR)
    y0, y1 = _rows(p)[row]
    return _side_quad(p["width"] / 2, _z_at(p, u1 - span), _z_at(p, u1), y0, y1)


def _cab_window_quad(p: Mapping[str, Any]) -> np.ndarray:
    y0, y1 = _rows(p)["lower"]
    return _side_quad(p["width"] / 2, _z_at(p, _U_CAB[0]), _z_at(p, _U_CAB[1]), y0, y1)


def _door_quad(p: Mapping[str, Any]) -> np.ndarray:
    z0, z1 = _door_z(p)
    c, H = p["clearance"], p["height"]
    return _side_quad(p["width"] / 2, z0, z1, c + 0.04 * (H - c), _rows(p)["lower"][1])


def _wheel_centre(p: Mapping[str, Any], front: bool) -> np.ndarray:
    zf, zr = _axles(p)
    x = p["width"] / 2 - p["wheel_w"] / 2 - 0.03
    return np.array([x, p["wheel_r"], zf if front else zr])


def _arch_end(p: Mapping[str, Any], front_wheel: bool, front_end: bool) -> np.ndarray:
    """The front (``front_end``) or back end of a wheel arch's trim, on its outer face."""
    c = _wheel_centre(p, front_wheel)
    rho = 1.12 * p["wheel_r"]
    return np.array([p["width"] / 2 + 0.03, c[1], c[2] + (rho if front_end else -rho)])


def _lamp_quad(p: Mapping[str, Any], front: bool) -> np.ndarray:
    w, h = p["lamp_w"], p["lamp_h"] * (1.0 if front else 2.0)
    return _on_end(p, front, 0.8 - w, 0.8, 0.05, 0.05 + h)


def _plate_quad(p: Mapping[str, Any], front: bool) -> np.ndarray:
    return _on_end(p, front, 0.2, -0.2, 0.06, 0.1)


def _mirror_geom(p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Arm and head boxes of the left mirror (centres and sizes) and the head's outer point."""
    L, hw, H = p["length"], p["width"] / 2, p["height"]
    reach, s = p["mirror_reach"], p["mirror_size"]
    y = min(H - 0.35, 2.6) if p["kind"] == "double" else H - 0.35
    z_base, z_head = L / 2 - 0.2, L / 2 + 0.25
    xt = hw + reach
    head_c = np.array([xt, y - 0.55 * s, z_head])
    return {
        "arm1": np.array([(hw - 0.05 + xt) / 2, y, z_base, xt - hw + 0.05 + 0.07, 0.07, 0.07]),
        "arm2": np.array([xt, y, (z_base + z_head) / 2, 0.06, 0.06, z_head - z_base + 0.05]),
        "head": np.array([*head_c, 0.1, 1.1 * s, 0.6 * s]),
        "tip": head_c + np.array([0.05, 0.0, 0.0]),
    }


def _out(q: np.ndarray, d: np.ndarray, off: float = 0.01) -> np.ndarray:
    return q + off * d


_PX, _PZ, _MZ = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, 0, -1.0])


class BusFamily(ProceduralFamily):
    name = "bus"
    description = "buses: city, coach, minibus and double-decker; 4-6 side windows per row, doors, mirrors, lights"
    camera_elevation_deg = (-5.0, 35.0)
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("mirror_left", "mirror_left", lambda p: _mirror_geom(p)["tip"], "left", "1/0"),
        KeypointDef(
            "headlight_left", "headlight_left", lambda p: _out(_lamp_quad(p, True).mean(0), _PZ), "left", "3/2"
        ),  # fmt: skip
        KeypointDef(
            "taillight_left", "taillight_left", lambda p: _out(_lamp_quad(p, False).mean(0), _MZ), "left", "6/5"
        ),  # fmt: skip
        KeypointDef("plate_front", "plate_front", lambda p: _out(_plate_quad(p, True).mean(0), _PZ), "center", "4"),
        KeypointDef("plate_rear", "plate_rear", lambda p: _out(_plate_quad(p, False).mean(0), _MZ), "center", "7"),
        KeypointDef("front_arch_front_left", "arch_front_left", lambda p: _arch_end(p, True, True), "left", "20/10"),
        KeypointDef(
            "front_wheel_left",
            "hub_front_left",
            lambda p: _wheel_centre(p, True) + [p["wheel_w"], 0, 0],
            "left",
            "21/11",
        ),  # fmt: skip
        KeypointDef("front_arch_back_left", "arch_front_left", lambda p: _arch_end(p, True, False), "left", "22/12"),
        KeypointDef("rear_arch_front_left", "arch_rear_left", lambda p: _arch_end(p, False, True), "left", "23/13"),
        KeypointDef(
            "rear_wheel_left",
            "hub_rear_left",
            lambda p: _wheel_centre(p, False) + [p["wheel_w"], 0, 0],
            "left",
            "24/14",
        ),  # fmt: skip
        KeypointDef("rear_arch_back_left", "arch_rear_left", lambda p: _arch_end(p, False, False), "left", "25/15"),
        KeypointDef(
            "windshield_top_left", "windshield", lambda p: _out(_windshield_quad(p)[3], _PZ), "left", "17/16"
        ),  # fmt: skip
        KeypointDef(
            "windshield_bottom_left", "windshield", lambda p: _out(_windshield_quad(p)[0], _PZ), "left", "19/18"
        ),  # fmt: skip
        KeypointDef(
            "rear_window_top_left", "rear_window", lambda p: _out(_rear_window_quad(p)[3], _MZ), "left", "27/26"
        ),  # fmt: skip
        KeypointDef(
            "rear_window_bottom_left", "rear_window", lambda p: _out(_rear_window_quad(p)[0], _MZ), "left", "29/28"
        ),  # fmt: skip
    ]
    group_defs = [
        ["mirror_left", "mirror_right"],
        ["headlight_left", "headlight_right", "taillight_left", "taillight_right"],
        ["plate_front", "plate_rear"],
        ["front_arch_front_left", "front_arch_front_right", "rear_arch_front_left", "rear_arch_front_right"],
        ["front_wheel_left", "front_wheel_right", "rear_wheel_left", "rear_wheel_right"],
        ["front_arch_back_left", "front_arch_back_right", "rear_arch_back_left", "rear_arch_back_right"],
        ["windshield_top_left", "windshield_top_right", "rear_window_top_left", "rear_window_top_right"],
        ["windshield_bottom_left", "windshield_bottom_right", "rear_window_bottom_left", "rear_window_bottom_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        n_windows = int(rng.choice(WINDOW_COUNTS))
        door_left = bool(rng.random() < 0.25)
        door_right = bool(rng.random() < 0.9)  # the kerb side (right-hand traffic)
        dims = {  # length, width, height, clearance, wheel radius, front / rear overhang
            "city": (u(10.0, 12.5), u(2.45, 2.55), u(2.9, 3.2), u(0.28, 0.36), u(0.47, 0.52), u(2.3, 2.8), u(3.0, 3.6)),
            "coach": (u(11.0, 13.5), u(2.45, 2.55), u(3.4, 3.8), u(0.35, 0.45), u(0.5, 0.55), u(2.4, 2.9), u(3.2, 3.8)),
            "minibus": (u(5.5, 7.5), u(1.95, 2.25), u(2.4, 2.8), u(0.2, 0.28), u(0.34, 0.4), u(0.9, 1.2), u(1.1, 1.8)),
            "double": (u(9.5, 11.5), u(2.45, 2.55), u(4.2, 4.5), u(0.28, 0.34), u(0.47, 0.52), u(2.2, 2.6),
                       u(2.6, 3.2)),
        }  # fmt: skip
        L, W, H, c, R, of, orr = dims[kind]
        p: dict[str, Any] = {
            "kind": kind,
            "n_windows": n_windows,
            "door_left": door_left,
            "door_right": door_right,
            "length": L,
            "width": W,
            "height": H,
            "clearance": c,
            "wheel_r": R,
            "wheel_w": u(0.26, 0.32),
            "overhang_front": of,
            "overhang_rear": orr,
            "body_round": u(0.06, 0.18),
            "ws_bottom": u(0.28, 0.42) if kind != "coach" else u(0.3, 0.36),
            "rear_win_bottom": u(0.5, 0.65),
            "win_lo": u(0.5, 0.62),
            "hub_frac": u(0.45, 0.7),
            "mirror_reach": u(0.18, 0.35),
            "mirror_size": u(0.25, 0.4),
            "lamp_w": u(0.2, 0.35),  # fraction of the end face's half width
            "lamp_h": u(0.04, 0.07),  # fraction of its height
        }
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "kind": "double", "n_windows": 5, "door_left": True, "door_right": True, "length": 11.0, "width": 2.5,
            "height": 4.3, "clearance": 0.32, "wheel_r": 0.5, "wheel_w": 0.3, "overhang_front": 2.5,
            "overhang_rear": 3.2, "body_round": 0.14, "ws_bottom": 0.34, "rear_win_bottom": 0.58, "win_lo": 0.55,
            "hub_frac": 0.6, "mirror_reach": 0.25, "mirror_size": 0.32, "lamp_w": 0.28, "lamp_h": 0.055,
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params, door_right=params["door_left"])

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        double = params["kind"] == "double"
        if name.startswith("window_n"):
            return int(name.split("_")[1][1:]) == params["n_windows"]
        if name.startswith("upper_window_n"):
            return double and int(name.split("_")[2][1:]) == params["n_windows"]
        if name == "windshield_upper":
            return double
        if name in ("door_left", "door_right"):
            return bool(params[name])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "body":
            return loft(_stations(p))
        if name in ("windshield", "windshield_upper"):
            return panel(_windshield_quad(p, name.endswith("upper")), _PZ)
        if name == "rear_window":
            return panel(_rear_window_quad(p), _MZ)
        if name.startswith(("window_n", "upper_window_n")):
            w = name.split("_")
            row = "upper" if w[0] == "upper" else "lower"
            n, i = int(w[-3][1:]), int(w[-1])
            return panel(_window_quad(p, row, n, i), _PX)
        if name == "cab_window_left":
            return panel(_cab_window_quad(p), _PX)
        if name == "door_left":
            return panel(_door_quad(p), _PX, 0.004, 0.02)
        if name == "mirror_left":
            g = _mirror_geom(p)
            return concat([box(g[k][:3], g[k][3:]) for k in ("arm1", "arm2", "head")])
        if name in ("headlight_left", "taillight_left"):
            front = name.startswith("head")
            return panel(_lamp_quad(p, front), _PZ if front else _MZ, 0.0, 0.015)
        if name.startswith("plate_"):
            front = name.endswith("front")
            return panel(_plate_quad(p, front), _PZ if front else _MZ, 0.0, 0.01)
        if name.startswith("arch_"):
            c = _wheel_centre(p, "front" in name)
            return arch(c, 1.12 * p["wheel_r"], p["width"] / 2 + 0.01, 0.05, 0.02)
        if name.startswith(("wheel_", "hub_")):
            c = _wheel_centre(p, "front" in name)
            if name.startswith("wheel_"):
                return road_wheel(c, p["wheel_r"], p["wheel_w"])
            return wheel_hub(c, p["wheel_r"], p["wheel_w"], p["hub_frac"])
        raise KeyError(f"bus: no part builder for slot {name!r}")
