"""Boats from dinghies to ships: a hull lofted from canonical sections, with an optional deckhouse (cabin or
superstructure) and its front windows, bridge, mast and sail, outboard motor and funnel.

Build frame: the keel's lowest point on y = 0 (``build`` rests the hull there; the waterline is not modelled), the
bow points to +z, the helmsman's left (port) is +x. ``build`` centres the bounding box in z. Sizes are metric (a
dinghy 2.5-4.5 m, sail and motor boats 5-12 m, ships 30-70 m long).

Hull: ``N_ST`` sections at fixed stations ``s`` (0 = transom, 1 = bow tip) along the length. Each section is sampled
at the canonical normalised polar angles of ``rounded_rect_point`` (``K_HULL`` points per quadrant, point ``K_HULL / 2``
the (+x, deck) gunwale corner, point ``-K_HULL / 2`` the (+x, bottom) bilge corner), the upper half with a small gunwale
radius and the lower half with the bilge radius, then sheared into a V by the deadrise (a shift in y that depends
on |x| only, so sections stay mirror symmetric). The half beam, deck height (sheer) and keel height (rising towards
the bow) are smooth functions of ``s``; the bow section is a thin sliver (4 % of the beam) so the bow is pointed on
every instance and the same faces cover it. The transom is the end cap at ``s = 0``.

Slots (fixed order; * = optional): hull; deckhouse* / superstructure* (the same loft of rounded-rectangle sections
standing on the deck: a cabin on sail and motor boats, a ship's superstructure; two slots, so a ship's
superstructure has no counterpart on a small boat's cabin) and deckhouse_windows* (a glass band on its front);
bridge* (a second, smaller tier); mast* and sail* (sailing boats); motor* (an outboard on the transom); funnel*
(ships); deckhouse side windows count-tagged per side*: ``window_n{n}_{left,right}_{i}``, the i-th from the
front of n = 2, 3, 4.

Keypoints with the SPair-71k boat id in brackets (left id / right id). Source: GeoAware-SC ``utils_geoware.py``
(``SPAIR_LR`` marks ids 0 and 13 centre, 1, 3, ..., 11 right and 2, 4, ..., 12 left; ``SPAIR_GEO_AWARE['boat']``
comments "12 upper_front, 34 upper_side, 56 upper_back, 78 lower_front, 910 lower_side, 1112 lower_back"). Ids 0 and
13 are not named by any source we found: **we read them as the bow tip and the stern (transom top middle)**; where
along the hull "front" and "side" sit is also **our reading** (the gunwale / bilge corner of the stations at 85 %
and 50 % of the length from the transom; "back" is the transom's corner):
    bow [0]; upper_front_{left,right} [2, 1]; upper_side [4, 3]; upper_back [6, 5]; lower_front [8, 7];
    lower_side [10, 9]; lower_back [12, 11]; stern [13].
Symmetric groups are GeoAware's ``SPAIR_GEO_AWARE['boat']`` (each left/right pair).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, concat, hexahedron, lathe, rounded_rect_point, sweep
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform
from datagen.families.vehicle_parts import box, loft, panel

__all__ = ["BoatFamily"]

KINDS = ("dinghy", "sailboat", "motorboat", "ship")
STATIONS = (0.0, 0.015, 0.08, 0.16, 0.25, 0.33, 0.42, 0.5, 0.58, 0.66, 0.74, 0.8, 0.85, 0.9, 0.95, 1.0)
N_ST = len(STATIONS)
_I_SIDE, _I_FRONT = STATIONS.index(0.5), STATIONS.index(0.85)
K_HULL = 8  # points per quadrant of a hull section
_PHI = 2.0 * np.pi * np.arange(4 * K_HULL) / (4 * K_HULL)

WINDOW_COUNTS = (2, 3, 4)


def _window_slots() -> list[SlotDef]:
    out = []
    for n in WINDOW_COUNTS:
        for i in range(1, n + 1):
            for side in ("left", "right"):
                out.append(SlotDef(f"window_n{n}_{side}_{i}", "side_window", "glass", side, True))
    return out


_SLOTS = [
    SlotDef("hull", "hull", "hull"),
    SlotDef("deckhouse", "deckhouse", "cabin", "center", True),
    SlotDef("superstructure", "superstructure", "cabin", "center", True),
    SlotDef("deckhouse_windows", "window", "glass", "center", True),
    *_window_slots(),
    SlotDef("bridge", "bridge", "cabin", "center", True),
    SlotDef("mast", "mast", "spars", "center", True),
    SlotDef("sail", "sail", "sails", "center", True),
    SlotDef("motor", "motor", "motor", "center", True),
    SlotDef("funnel", "funnel", "funnel", "center", True),
]


# ---- hull ------------------------------------------------------------------------------------------------------------
def _half_beam(p: Mapping[str, Any], s: float) -> float:
    B, sm, tr = p["beam"] / 2, p["max_at"], p["transom"]
    if s >= sm:
        f = 1.0 - ((s - sm) / (1.0 - sm)) ** p["bow_fine"]
        return B * (0.04 + 0.96 * max(f, 0.0))
    return B * (tr + (1.0 - tr) * (1.0 - ((sm - s) / sm) ** 2))


def _deck_y(p: Mapping[str, Any], s: float) -> float:
    D = p["depth"]
    return D * (1.0 + p["sheer"] * (2.0 * s - 1.0) ** 2 * (1.0 if s > 0.5 else 0.4))


def _keel_y(p: Mapping[str, Any], s: float) -> float:
    D = p["depth"]
    return D * (p["bow_rise"] * max(0.0, (s - 0.55) / 0.45) ** 2 + p["stern_rise"] * max(0.0, (0.3 - s) / 0.3))


def _section(p: Mapping[str, Any], s: float, phi: np.ndarray = _PHI) -> np.ndarray:
    """Hull section points [N, 3] at station ``s`` and normalised polar angles ``phi`` (counter-clockwise about +z)."""
    b, y0, y1 = _half_beam(p, s), _keel_y(p, s), _deck_y(p, s)
    hv = (y1 - y0) / 2
    yc = (y0 + y1) / 2
    m = min(b, hv)
    top = rounded_rect_point(b, hv, p["gunwale_round"] * m, phi)
    bot = rounded_rect_point(b, hv, p["bilge_round"] * m, phi)
    upper = np.sin(phi) >= 0
    xy = np.where(upper[:, None], top, bot)
    below = np.clip(-xy[:, 1] / hv, 0.0, 1.0)  # 0 at mid height, 1 at the keel
    y = xy[:, 1] + p["deadrise"] * hv * below * np.abs(xy[:, 0]) / b
    z = p["length"] * (s - 0.5)
    return np.stack([xy[:, 0], y + yc, np.full(len(phi), z)], 1)


def _hull(p: Mapping[str, Any]) -> PartMesh:
    return sweep(np.stack([_section(p, s) for s in STATIONS]))


def _hull_point(p: Mapping[str, Any], s: float, phi: float) -> np.ndarray:
    return _section(p, s, np.array([phi]))[0]


# ---- superstructure --------------------------------------------------------------------------------------------------
def _house_floor(p: Mapping[str, Any], z: float) -> float:
    """y of the deckhouse's bottom at ``z``: 4 % of its height below the deck there, so the deck meets its walls at
    the same place of their canonical coordinates on every instance."""
    return _deck_y(p, z / p["length"] + 0.5) - 0.04 * p["house_h"]


def _deckhouse_box(p: Mapping[str, Any], tier: int) -> tuple[float, float, float, float, float]:
    """(z rear, z front, half width, y bottom, y top) of the deckhouse (tier 0, its bottom and top at the rear) or
    the bridge (tier 1)."""
    L = p["length"]
    z0 = L * (p["house_at"] - 0.5)
    z1 = z0 + p["house_len"] * L
    s0, s1 = p["house_at"], p["house_at"] + p["house_len"]
    hw = p["house_w"] * min(_half_beam(p, s0), _half_beam(p, s1))
    yb = _house_floor(p, z0)
    yt = yb + p["house_h"]
    if tier == 0:
        return z0, z1, hw, yb, yt
    # on the deckhouse's flat roof (between its first two sections) at fixed fractions of the roof's length and
    # half width, where the roof's canonical coordinates put it on every instance (a continuous map at the junction)
    zs1 = z1 - p["house_slope"] * p["house_h"]
    za, zb = z0 + 0.45 * (zs1 - z0), z0 + 0.95 * (zs1 - z0)
    y0 = min(_house_floor(p, za), _house_floor(p, zb)) + 0.98 * p["house_h"]
    return za, zb, 0.68 * hw, y0, y0 + 0.72 * p["house_h"]


def _house_stations(p: Mapping[str, Any], tier: int) -> list[tuple[float, float, float, float, float]]:
    z0, z1, hw, yb, yt = _deckhouse_box(p, tier)
    h = yt - yb
    r = p["house_round"] * min(hw, h / 2)
    zs = z1 - p["house_slope"] * h
    if tier == 1:
        return [(z0, hw, yb, yt, r), (zs, hw, yb, yt, r), (z1, hw, yb, yb + 0.55 * h, r)]
    y = [_house_floor(p, z) for z in (z0, zs, z1)]
    return [(z0, hw, y[0], y[0] + h, r), (zs, hw, y[1], y[1] + h, r), (z1, hw, y[2], y[2] + 0.55 * h, r)]


def _window_quad(p: Mapping[str, Any]) -> np.ndarray:
    """The glass band on the deckhouse's front slope (between its 2nd and 3rd sections), counter-clockwise.

    It sits at fixed fractions of the slope (x = +-0.7 of the half width, 20-80 % down the slope), where the loft's
    own canonical coordinates put it on every instance, so the map is continuous across its edges (the top's ring
    points sit at fixed fractions of the half width; ``house_round`` <= 0.3 keeps 0.7 on the flat top)."""
    st = _house_stations(p, 0)
    (za, hw, _, ya, _), (zb, _, _, yb2, _) = st[1], st[2]
    x = 0.7 * hw
    ta, tb = 0.2, 0.8
    pa = np.array([za + ta * (zb - za), ya + ta * (yb2 - ya)])
    pb = np.array([za + tb * (zb - za), ya + tb * (yb2 - ya)])
    return np.array([[x, pa[1], pa[0]], [x, pb[1], pb[0]], [-x, pb[1], pb[0]], [-x, pa[1], pa[0]]])


def _side_window_quad(p: Mapping[str, Any], n: int, i: int) -> np.ndarray:
    """The i-th (1 = front) of n windows on the deckhouse's +x side, on its flat side between its first two
    sections, at fixed fractions of the side's length and height (the map stays continuous across its edges)."""
    st = _house_stations(p, 0)
    (z0, hw, ya, yt, _), (z1, _, yb, _, _) = st[0], st[1]
    h = yt - ya
    ln = z1 - z0
    za, zb = z0 + 0.08 * ln, z1 - 0.08 * ln
    gap = 0.06 * ln
    span = (zb - za - gap * (n - 1)) / n
    zf = zb - (i - 1) * (span + gap)

    def floor(z: float) -> float:  # the side's bottom, linear between the two sections as the loft
        return ya + (yb - ya) * (z - z0) / ln

    q = [(zf - span, 0.45), (zf, 0.45), (zf, 0.8), (zf - span, 0.8)]
    return np.array([[hw, floor(z) + f * h, z] for z, f in q])


def _mast(p: Mapping[str, Any]) -> PartMesh:
    zm = p["length"] * (p["mast_at"] - 0.5)
    y0 = _deck_y(p, p["mast_at"]) - 0.05
    h = p["mast_h"]
    r = 0.004 * h + 0.03
    mesh = lathe([r, r, 0.6 * r], [y0, y0 + h, y0 + h + 0.02], 12)
    return mesh.transformed(None, [0.0, 0.0, zm])


def _sail(p: Mapping[str, Any]) -> PartMesh:
    zm = p["length"] * (p["mast_at"] - 0.5)
    y0 = _deck_y(p, p["mast_at"])
    h = p["mast_h"]
    r = 0.004 * h + 0.03
    foot = p["sail_foot"] * p["length"]
    ya, yb = y0 + 0.12 * h, y0 + 0.95 * h
    za, zb = zm - r - 0.02, zm - r - 0.02 - foot
    head = 0.06 * foot
    t = 0.01
    # corners indexed x + 2 y + 4 z (bit 0: +x, bit 1: top, bit 2: front)
    C = np.empty((8, 3))
    for i in range(8):
        x = t if i & 1 else -t
        top, front = bool(i & 2), bool(i & 4)
        y = yb if top else ya
        z = (za if front else za - head) if top else (za if front else zb)
        C[i] = (x, y, z)
    return hexahedron(C)


def _motor(p: Mapping[str, Any]) -> PartMesh:
    z = -p["length"] / 2
    yd = _deck_y(p, 0.0)
    yk = max(_keel_y(p, 0.0), 0.0)
    s = p["motor_size"]
    head = box([0.0, yd + 0.3 * s, z - 0.3 * s], [0.5 * s, 0.6 * s, 0.55 * s])
    shaft_top, shaft_bot = yd, yk + 0.05
    shaft = box([0.0, (shaft_top + shaft_bot) / 2, z - 0.3 * s], [0.1 * s, shaft_top - shaft_bot, 0.16 * s])
    return concat([head, shaft])


def _funnel(p: Mapping[str, Any]) -> PartMesh:
    """An oval funnel on the deckhouse roof; its footprint sits at fixed fractions of the roof's length and half
    width (semi-axes 0.3 of the half width, 0.1 of the flat roof's length), so the roof's map is continuous around
    it on every instance."""
    st = _house_stations(p, 0)
    (z0, hw, _, ya, _), (zs1, _, _, yb, _) = st[0], st[1]
    zc = z0 + 0.25 * (zs1 - z0)
    rx, rz = 0.3 * hw, 0.1 * (zs1 - z0)
    y0 = ya + 0.25 * (yb - ya) - 0.05 * p["house_h"]
    h = p["funnel_h"]
    mesh = lathe([1.0, 1.0, 0.92], [y0, y0 + h, y0 + h + 0.02 * h], 16)
    v = mesh.vertices * np.array([rx, 1.0, rz]) + np.array([0.0, 0.0, zc])
    return PartMesh(v, mesh.faces, mesh.uv)


class BoatFamily(ProceduralFamily):
    name = "boat"
    description = "boats: dinghies, sailing boats, motor boats and ships; lofted hull, deckhouse, mast and sail, motor"
    camera_elevation_deg = (0.0, 45.0)
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("bow", "hull", lambda p: _hull_point(p, 1.0, np.pi / 2), "center", "0"),
        KeypointDef("upper_front_left", "hull", lambda p: _hull_point(p, 0.85, np.pi / 4), "left", "2/1"),
        KeypointDef("upper_side_left", "hull", lambda p: _hull_point(p, 0.5, np.pi / 4), "left", "4/3"),
        KeypointDef("upper_back_left", "hull", lambda p: _hull_point(p, 0.0, np.pi / 4), "left", "6/5"),
        KeypointDef("lower_front_left", "hull", lambda p: _hull_point(p, 0.85, -np.pi / 4), "left", "8/7"),
        KeypointDef("lower_side_left", "hull", lambda p: _hull_point(p, 0.5, -np.pi / 4), "left", "10/9"),
        KeypointDef("lower_back_left", "hull", lambda p: _hull_point(p, 0.0, -np.pi / 4), "left", "12/11"),
        KeypointDef("stern", "hull", lambda p: _hull_point(p, 0.0, np.pi / 2), "center", "13"),
    ]
    group_defs = [
        [f"{k}_left", f"{k}_right"]
        for k in ("upper_front", "upper_side", "upper_back", "lower_front", "lower_side", "lower_back")
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        r = rng.random(6)
        flags = {
            "dinghy": (False, False, False, r[2] < 0.4, False),
            "sailboat": (r[0] < 0.75, False, True, r[2] < 0.2, False),
            "motorboat": (r[0] < 0.9, r[1] < 0.3, False, r[2] < 0.6, False),
            "ship": (True, r[1] < 0.8, False, False, r[3] < 0.8),
        }[kind]
        house, bridge, mast, motor, funnel = (bool(f) for f in flags)
        if kind == "dinghy":
            L = u(2.5, 4.5)
            dims = {"beam": L * u(0.33, 0.42), "depth": u(0.45, 0.6), "transom": u(0.45, 0.7), "deadrise": u(0.0, 0.3)}
        elif kind == "sailboat":
            L = u(6.0, 12.0)
            dims = {
                "beam": L * u(0.28, 0.36),
                "depth": L * u(0.1, 0.14),
                "transom": u(0.5, 0.8),
                "deadrise": u(0.2, 0.5),
            }
        elif kind == "motorboat":
            L = u(5.0, 10.0)
            dims = {
                "beam": L * u(0.3, 0.38),
                "depth": L * u(0.11, 0.16),
                "transom": u(0.7, 0.9),
                "deadrise": u(0.3, 0.6),
            }
        else:
            L = u(30.0, 70.0)
            dims = {
                "beam": L * u(0.14, 0.2),
                "depth": L * u(0.09, 0.12),
                "transom": u(0.55, 0.85),
                "deadrise": u(0.0, 0.15),
            }
        small = kind in ("dinghy", "sailboat", "motorboat")
        n_windows = int(rng.choice(WINDOW_COUNTS))
        return {
            "kind": kind,
            "n_windows": n_windows,
            "deckhouse": house,
            "bridge": bridge,
            "mast": mast,
            "sail": mast and bool(r[4] < 0.85),
            "motor": motor,
            "funnel": funnel,
            "length": L,
            **dims,
            "max_at": u(0.4, 0.55),
            "bow_fine": u(1.6, 2.4),
            "sheer": u(0.05, 0.2),
            "bow_rise": u(0.3, 0.6),
            "stern_rise": u(0.0, 0.15) if small else u(0.05, 0.2),
            "gunwale_round": u(0.05, 0.2),
            "bilge_round": u(0.3, 0.9),
            "house_at": u(0.35, 0.5) if small else u(0.15, 0.35),
            "house_len": u(0.25, 0.35),
            "house_w": u(0.7, 0.85),
            "house_h": dims["depth"] * (u(0.6, 0.9) if small else u(0.7, 1.0)),
            "house_round": u(0.05, 0.2),
            "house_slope": u(0.3, 0.6),
            "mast_at": u(0.55, 0.65),
            "mast_h": L * u(1.0, 1.4),
            "sail_foot": u(0.3, 0.4),
            "motor_size": u(0.5, 1.0),
            "funnel_h": dims["depth"] * u(0.6, 1.0),
        }

    def template_params(self) -> dict[str, Any]:
        return {
            "kind": "motorboat", "n_windows": 3, "deckhouse": True, "bridge": True, "mast": True, "sail": True,
            "motor": True, "funnel": True, "length": 8.0, "beam": 2.7, "depth": 1.1, "transom": 0.75, "deadrise": 0.3,
            "max_at": 0.48, "bow_fine": 2.0, "sheer": 0.12, "bow_rise": 0.45, "stern_rise": 0.05,
            "gunwale_round": 0.12, "bilge_round": 0.6, "house_at": 0.4, "house_len": 0.3, "house_w": 0.78,
            "house_h": 0.8, "house_round": 0.2, "house_slope": 0.5, "mast_at": 0.6, "mast_h": 9.6, "sail_foot": 0.35,
            "motor_size": 0.75, "funnel_h": 0.8,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name == "deckhouse":
            return bool(params["deckhouse"]) and params["kind"] != "ship"
        if name == "superstructure":
            return bool(params["deckhouse"]) and params["kind"] == "ship"
        if name == "deckhouse_windows":
            return bool(params["deckhouse"])
        if name.startswith("window_n"):
            return bool(params["deckhouse"]) and int(name.split("_")[1][1:]) == params["n_windows"]
        if name == "bridge":
            return bool(params["deckhouse"] and params["bridge"])
        if name == "funnel":
            return bool(params["deckhouse"] and params["funnel"])
        if name in ("mast", "sail", "motor"):
            return bool(params[name])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "hull":
            return _hull(p)
        if name in ("deckhouse", "superstructure", "bridge"):
            return loft(_house_stations(p, 1 if name == "bridge" else 0))
        if name == "deckhouse_windows":
            return panel(_window_quad(p), (0.0, 1.0, 1.0), 0.004, 0.01)
        if name.startswith("window_n"):
            w = name.split("_")
            return panel(_side_window_quad(p, int(w[1][1:]), int(w[3])), (1.0, 0.0, 0.0))
        if name == "mast":
            return _mast(p)
        if name == "sail":
            return _sail(p)
        if name == "motor":
            return _motor(p)
        if name == "funnel":
            return _funnel(p)
        raise KeyError(f"boat: no part builder for slot {name!r}")
