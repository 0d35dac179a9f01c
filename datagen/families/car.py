"""Cars: sedans, hatchbacks, wagons and SUVs as a lofted body with a cabin, glass, lights, plates and four wheels.

Build frame: floor y = 0, the car drives towards +z, the driver's-eye left is +x. ``build`` centres the bounding
box in z.

Slots (fixed order; * = optional): body (a loft of rounded-rectangle sections), cabin (a loft from the belt line
to the roof), windshield, rear_window, side windows count-tagged per side*: ``window_n{n}_{left,right}_{i}`` the
i-th window from the front of a side with n windows, n = 1..3; mirror_{left,right}; headlight_{left,right},
taillight_{left,right}; plate_front, plate_rear; wheel_{front,rear}_{left,right} (tyres) and
hub_{front,rear}_{left,right} (hub caps); spoiler*.

Keypoints, with the SPair-71k car index in brackets (GeoAware ``SPAIR_LR`` marks 0, 2, 6, 10-16, 18, 26, 28 right
and their twins left; which light pair is front, which wheel group is front and which window group is the
windshield are not stated in the sources we found — we take the first of each as front):
    mirror_{left,right} [1, 0]; headlight_{left,right} [3, 2]; taillight_{left,right} [7, 6]; plate_front [4],
    plate_rear [8]; logo_front [5], logo_rear [9]; per side (right [10-15], left [20-25]) front wheel arch back
    edge, front wheel centre, front wheel arch front edge [10, 11, 12 / 20, 21, 22] and the same for the rear wheel
    [13, 14, 15 / 23, 24, 25] (GeoAware names them rear_fender, wheel, front_fender); windshield bottom corners
    [16 right, 17 left], top corners [18, 19]; rear window bottom corners [26, 27], top corners [28, 29].
Symmetric groups follow GeoAware's ``SPAIR_GEO_AWARE['car']``.

One module per family, over ~400 lines: its slots, part builders, keypoints and SPair index map are one
contract and are read together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, concat, lathe, rounded_box, rounded_rect_profile, slab_on_quad, sweep
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["CarFamily"]

MAX_WINDOWS = 3
_K = 6  # points per quadrant of body and cabin sections (24-point rings, rounded_rect_profile)
_GLASS = (0.004, 0.006)  # offset from the cabin surface and thickness of glass slabs, metres
_ROT_Y_TO_X = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +y -> +x, det +1


def _window_slots() -> list[SlotDef]:
    out = []
    for n in range(1, MAX_WINDOWS + 1):
        for i in range(1, n + 1):
            for side in ("left", "right"):
                out.append(SlotDef(f"window_n{n}_{side}_{i}", "side_window", "glass", side, True))
    return out


_SLOTS = [
    SlotDef("body", "body", "paint"),
    SlotDef("cabin", "cabin", "paint"),
    SlotDef("windshield", "windshield", "glass"),
    SlotDef("rear_window", "rear_window", "glass"),
    *_window_slots(),
    SlotDef("mirror_left", "mirror", "trim", "left"),
    SlotDef("mirror_right", "mirror", "trim", "right"),
    SlotDef("headlight_left", "headlight", "headlights", "left"),
    SlotDef("headlight_right", "headlight", "headlights", "right"),
    SlotDef("taillight_left", "taillight", "taillights", "left"),
    SlotDef("taillight_right", "taillight", "taillights", "right"),
    SlotDef("plate_front", "plate", "plates"),
    SlotDef("plate_rear", "plate", "plates"),
    SlotDef("wheel_front_left", "wheel", "tyres", "left"),
    SlotDef("wheel_front_right", "wheel", "tyres", "right"),
    SlotDef("wheel_rear_left", "wheel", "tyres", "left"),
    SlotDef("wheel_rear_right", "wheel", "tyres", "right"),
    SlotDef("hub_front_left", "hub", "rims", "left"),
    SlotDef("hub_front_right", "hub", "rims", "right"),
    SlotDef("hub_rear_left", "hub", "rims", "left"),
    SlotDef("hub_rear_right", "hub", "rims", "right"),
    SlotDef("spoiler", "spoiler", "trim", "center", True),
]


# ---- layout ----------------------------------------------------------------------------------------------------------
def _axles(p: Mapping[str, Any]) -> tuple[float, float]:
    """z of the front and rear axles."""
    return p["length"] / 2 - p["overhang_front"], -p["length"] / 2 + p["overhang_rear"]


def _body_stations(p: Mapping[str, Any]) -> list[tuple[float, float, float, float, float]]:
    """Body sections from the rear to the front: (z, half width, y bottom, y top, corner radius)."""
    L, hw, c = p["length"], p["width"] / 2, p["clearance"]
    zf, zr = _axles(p)
    r = p["wheel_r"]
    deck, belt, nose = p["deck_h"], p["belt_h"], p["nose_h"]
    cr = p["body_round"]
    z_hood = L / 2 - p["hood_len"]

    def top(z: float) -> float:  # the body's upper line: deck at the rear, belt in the middle, hood to the nose
        if z <= -L / 2 + p["trunk_len"]:
            return deck + (belt - deck) * (z + L / 2) / p["trunk_len"]
        if z <= z_hood:
            return belt
        return belt + (nose - belt) * ((z - z_hood) / p["hood_len"]) ** 1.5

    # a short overhang with a big wheel would put the wheel arch's edge beyond the bumper section and fold the
    # body's skin back on itself: the arch edges keep at least 6 cm from the bumper sections
    zs = [
        -L / 2,
        -L / 2 + 0.05,
        -L / 2 + 0.16,
        max(zr - 1.15 * r, -L / 2 + 0.22),
        zr,
        zr + 1.15 * r,
        0.5 * (zr + zf),
        zf - 1.15 * r,
        zf,
        min(zf + 1.15 * r, L / 2 - 0.22),
        L / 2 - 0.16,
        L / 2 - 0.05,
        L / 2,
    ]
    ends = {0: (0.9, 0.1, 0.06), 1: (0.97, 0.035, 0.015), 11: (0.97, 0.035, 0.015), 12: (0.9, 0.1, 0.06)}
    out = []
    for i, z in enumerate(zs):
        s, dy0, dy1 = ends.get(i, (1.0, 0.0, 0.0))
        out.append((z, hw * s, c + dy0, top(z) - dy1, cr))
    return out


def _section_xy(prof: np.ndarray, y0: float, y1: float, taper: float) -> np.ndarray:
    """Profile points [N, 2] (x, y - centre) of a section from y0 to y1 placed in (x, y), x scaled by ``taper``
    at the top (tumblehome) linearly in y."""
    hv = max((y1 - y0) / 2, 1e-3)
    f = (prof[:, 1] + hv) / (2 * hv)
    return np.stack([prof[:, 0] * (1 + (taper - 1) * f), prof[:, 1] + (y0 + y1) / 2], 1)


def _ring_xy(half_w: float, y0: float, y1: float, radius: float, taper: float = 1.0) -> np.ndarray:
    """A rounded-rectangle section [4 K, 2] in (x, y), counter-clockwise about +z (:func:`_section_xy`)."""
    hv = max((y1 - y0) / 2, 1e-3)
    return _section_xy(rounded_rect_profile(half_w, hv, radius, _K), y0, y1, taper)


def _section_flat_ends(p: Mapping[str, Any], i: int, which: str) -> np.ndarray:
    """[2, 3] the ends of a flat segment of cabin section ``i``: ``"top"`` (+x end first) or ``"side"`` (the +x
    side, bottom end first), where the corner arcs meet the straight sides."""
    z, y0, y1, r = _cabin_stations(p)[i]
    half_w, hv = p["width"] / 2 - 0.04, max((y1 - y0) / 2, 1e-3)
    r = float(np.clip(r, 1e-3 * min(half_w, hv), 0.999 * min(half_w, hv)))  # as rounded_rect_profile clips it
    if which == "top":
        prof = np.array([[half_w - r, hv], [-(half_w - r), hv]])
    else:
        prof = np.array([[half_w, -(hv - r)], [half_w, hv - r]])
    xy = _section_xy(prof, y0, y1, p["tumblehome"])
    return np.concatenate([xy, np.full((2, 1), z)], 1)


def _cabin_stations(p: Mapping[str, Any]) -> list[tuple[float, float, float, float]]:
    """Cabin sections from the rear to the front: (z, y bottom, y top, top-corner radius)."""
    L = p["length"]
    belt, roof = p["belt_h"], p["height"]
    zb = -L / 2 + p["trunk_len"]  # rear window base
    zw = L / 2 - p["hood_len"]  # windshield base
    zr = zb + p["rear_slope"] * (roof - belt)
    zf = zw - p["windshield_slope"] * (roof - belt)
    low = belt + 0.03
    return [(zb, belt - 0.06, low, 0.012), (zr, belt - 0.06, roof, p["roof_round"]),
            (zf, belt - 0.06, roof, p["roof_round"]), (zw, belt - 0.06, low, 0.012)]  # fmt: skip


def _cabin_ring(p: Mapping[str, Any], station: tuple[float, float, float, float]) -> np.ndarray:
    z, y0, y1, r = station
    xy = _ring_xy(p["width"] / 2 - 0.04, y0, y1, r, p["tumblehome"])
    return np.concatenate([xy, np.full((xy.shape[0], 1), z)], 1)


def _top_flat(p: Mapping[str, Any], i: int) -> np.ndarray:
    """[2, 3] the ends (+x first) of the flat top segment of cabin section ``i``."""
    return _section_flat_ends(p, i, "top")


def _side_flat(p: Mapping[str, Any], i: int) -> np.ndarray:
    """[2, 3] the ends (bottom first) of the flat +x side segment of cabin section ``i``."""
    return _section_flat_ends(p, i, "side")


def _glass_quad(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray, m: tuple[float, ...]) -> np.ndarray:
    """Sub-quad of the planar quad with edge a0->a1 (one section) and b0->b1 (the next), margins
    (along a, along a->b) as fractions; corners counter-clockwise as given by the caller."""
    ma, mb0, mb1 = m

    def at(s: float, t: float) -> np.ndarray:
        return (1 - t) * ((1 - s) * a0 + s * a1) + t * ((1 - s) * b0 + s * b1)

    return np.stack([at(ma, mb0), at(1 - ma, mb0), at(1 - ma, 1 - mb1), at(ma, 1 - mb1)])


def _windshield_quad(p: Mapping[str, Any]) -> np.ndarray:
    """Windshield corners (outer surface plane): [bottom right, bottom left, top left, top right]... ordered
    counter-clockwise seen from outside (front)."""
    lo = _top_flat(p, 3)  # at the windshield base (+x first)
    hi = _top_flat(p, 2)  # at the roof's front end
    # quad from the low section to the high one; seen from the front, +x (left) is on the viewer's right
    q = _glass_quad(lo[1], lo[0], hi[1], hi[0], (0.04, 0.05, 0.06))
    return q


def _rear_window_quad(p: Mapping[str, Any]) -> np.ndarray:
    lo = _top_flat(p, 0)
    hi = _top_flat(p, 1)
    return _glass_quad(lo[0], lo[1], hi[0], hi[1], (0.05, 0.06, 0.07))


def _side_window_quad(p: Mapping[str, Any], n: int, i: int) -> np.ndarray:
    """The i-th (1 = front) of n side windows on the +x side, counter-clockwise seen from +x."""
    rear, front = _side_flat(p, 1), _side_flat(p, 2)  # each [bottom, top]
    z0, z1 = rear[0, 2], front[0, 2]
    pillar = 0.07
    span = (z1 - z0 - pillar * (n + 1)) / n
    # window i from the front: z range
    zf = z1 - pillar - (i - 1) * (span + pillar)
    zb = zf - span
    bot, top = rear[0], rear[1]
    y0 = bot[1] + 0.05 * (top[1] - bot[1])
    y1 = top[1] - 0.02

    def side_x(y: float) -> float:
        t = (y - bot[1]) / (top[1] - bot[1])
        return bot[0] + t * (top[0] - bot[0])

    # seen from +x, +z is to the viewer's right... counter-clockwise about +x: (z, y) -> bottom-back, top-back ...
    return np.array([[side_x(y0), y0, zb], [side_x(y0), y0, zf], [side_x(y1), y1, zf], [side_x(y1), y1, zb]])[
        [0, 3, 2, 1]
    ]


def _wheel_centre(p: Mapping[str, Any], front: bool) -> np.ndarray:
    zf, zr = _axles(p)
    x = p["width"] / 2 - p["wheel_w"] / 2 + 0.02
    return np.array([x, p["wheel_r"], zf if front else zr])


def _mirror_tip(p: Mapping[str, Any]) -> np.ndarray:
    st = _cabin_stations(p)
    return np.array([p["width"] / 2 + p["mirror_size"] * 1.6, p["belt_h"] + 0.09, st[3][0] - 0.12])


def _lamp_quad(p: Mapping[str, Any], front: bool) -> np.ndarray:
    """Headlight (front) / taillight (rear) on the left half of the flat end face, counter-clockwise from outside."""
    st = _body_stations(p)
    z, hw, y0, y1, _ = st[-1] if front else st[0]
    ya, yb = y1 - 0.02 - p["lamp_h"], y1 - 0.02
    xa, xb = hw * 0.35, hw * 0.35 + p["lamp_w"]
    xb = min(xb, hw - 0.07)
    if front:  # seen from +z: +x on the viewer's right
        return np.array([[xa, ya, z], [xb, ya, z], [xb, yb, z], [xa, yb, z]])
    return np.array([[xb, ya, z], [xa, ya, z], [xa, yb, z], [xb, yb, z]])


def _plate_quad(p: Mapping[str, Any], front: bool) -> np.ndarray:
    st = _body_stations(p)
    z, hw, y0, y1, _ = st[-1] if front else st[0]
    yc = y0 + 0.32 * (y1 - y0)
    w, h = 0.26, 0.06
    q = np.array([[-w, yc - h, z], [w, yc - h, z], [w, yc + h, z], [-w, yc + h, z]])
    return q if front else q[[1, 0, 3, 2]]


def _slab_center(q: np.ndarray, outward: float) -> np.ndarray:
    n = np.cross(q[1] - q[0], q[3] - q[0])
    return q.mean(0) + outward * n / np.linalg.norm(n)


class CarFamily(ProceduralFamily):
    name = "car"
    description = "cars: sedans, hatchbacks, wagons and SUVs with 1-3 side windows, mirrors, lights, optional spoiler"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("mirror_left", "mirror_left", _mirror_tip, "left", "1/0"),
        KeypointDef(
            "headlight_left", "headlight_left", lambda p: _slab_center(_lamp_quad(p, True), 0.01), "left", "3/2"
        ),
        KeypointDef(
            "taillight_left", "taillight_left", lambda p: _slab_center(_lamp_quad(p, False), 0.01), "left", "7/6"
        ),
        KeypointDef("plate_front", "plate_front", lambda p: _slab_center(_plate_quad(p, True), 0.01), "center", "4"),
        KeypointDef("plate_rear", "plate_rear", lambda p: _slab_center(_plate_quad(p, False), 0.01), "center", "8"),
        KeypointDef(
            "logo_front",
            "body",
            lambda p: (0.0, _body_stations(p)[-1][3] - 0.04, _body_stations(p)[-1][0]),
            "center",
            "5",
        ),
        KeypointDef(
            "logo_rear", "body", lambda p: (0.0, _body_stations(p)[0][3] - 0.04, _body_stations(p)[0][0]), "center", "9"
        ),
        KeypointDef(
            "front_arch_back_left",
            "body",
            lambda p: (p["width"] / 2, p["wheel_r"], _axles(p)[0] - 1.15 * p["wheel_r"]),
            "left",
            "20/10",
        ),
        KeypointDef(
            "front_wheel_left",
            "hub_front_left",
            lambda p: _wheel_centre(p, True) + [p["wheel_w"], 0, 0],
            "left",
            "21/11",
        ),
        KeypointDef(
            "front_arch_front_left",
            "body",
            lambda p: (p["width"] / 2, p["wheel_r"], _axles(p)[0] + 1.15 * p["wheel_r"]),
            "left",
            "22/12",
        ),
        KeypointDef(
            "rear_arch_back_left",
            "body",
            lambda p: (p["width"] / 2, p["wheel_r"], _axles(p)[1] - 1.15 * p["wheel_r"]),
            "left",
            "23/13",
        ),
        KeypointDef(
            "rear_wheel_left",
            "hub_rear_left",
            lambda p: _wheel_centre(p, False) + [p["wheel_w"], 0, 0],
            "left",
            "24/14",
        ),
        KeypointDef(
            "rear_arch_front_left",
            "body",
            lambda p: (p["width"] / 2, p["wheel_r"], _axles(p)[1] + 1.15 * p["wheel_r"]),
            "left",
            "25/15",
        ),
        KeypointDef("windshield_bottom_left", "windshield", lambda p: _windshield_quad(p)[1] + 0.02, "left", "17/16"),
        KeypointDef("windshield_top_left", "windshield", lambda p: _windshield_quad(p)[2] + 0.02, "left", "19/18"),
        KeypointDef(
            "rear_window_bottom_left", "rear_window", lambda p: _rear_window_quad(p)[0] + 0.02, "left", "27/26"
        ),
        KeypointDef("rear_window_top_left", "rear_window", lambda p: _rear_window_quad(p)[3] + 0.02, "left", "29/28"),
    ]
    group_defs = [
        ["mirror_left", "mirror_right"],
        ["headlight_left", "headlight_right", "taillight_left", "taillight_right"],
        ["plate_front", "plate_rear"],
        ["logo_front", "logo_rear"],
        ["front_arch_back_left", "front_arch_back_right", "rear_arch_back_left", "rear_arch_back_right"],
        ["front_wheel_left", "front_wheel_right", "rear_wheel_left", "rear_wheel_right"],
        ["front_arch_front_left", "front_arch_front_right", "rear_arch_front_left", "rear_arch_front_right"],
        ["windshield_bottom_left", "windshield_bottom_right", "rear_window_bottom_left", "rear_window_bottom_right"],
        ["windshield_top_left", "windshield_top_right", "rear_window_top_left", "rear_window_top_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        kind = ["sedan", "hatchback", "wagon", "suv"][int(rng.integers(0, 4))]
        length = u(3.5, 5.0)
        height = {"sedan": u(1.35, 1.5), "hatchback": u(1.4, 1.55), "wagon": u(1.42, 1.58), "suv": u(1.6, 1.85)}[kind]
        clearance = u(0.2, 0.28) if kind == "suv" else u(0.12, 0.2)
        belt = clearance + (u(0.62, 0.75) if kind == "suv" else u(0.55, 0.68))
        trunk = {"sedan": u(0.17, 0.24), "hatchback": u(0.03, 0.07), "wagon": u(0.03, 0.06), "suv": u(0.03, 0.07)}
        p: dict[str, Any] = {
            "kind": kind,
            "n_windows": int(rng.integers(1, MAX_WINDOWS + 1)),
            "spoiler": bool(rng.random() < 0.3),
            "length": length,
            "width": u(1.62, 1.95),
            "height": height,
            "clearance": clearance,
            "belt_h": belt,
            "deck_h": belt - u(0.0, 0.06),
            "nose_h": belt - u(0.1, 0.2),
            "hood_len": length * u(0.2, 0.3),
            "trunk_len": length * trunk[kind],
            "windshield_slope": u(0.9, 1.6),  # metres back per metre up
            "rear_slope": {"sedan": u(0.9, 1.5), "hatchback": u(0.3, 0.7), "wagon": u(0.05, 0.25), "suv": u(0.1, 0.35)}[
                kind
            ],  # fmt: skip
            "tumblehome": u(0.78, 0.92),
            "roof_round": u(0.05, 0.14),
            "body_round": u(0.08, 0.2),
            "overhang_front": u(0.75, 1.0),
            "overhang_rear": u(0.6, 1.0),
            "wheel_r": u(0.34, 0.4) if kind == "suv" else u(0.29, 0.35),
            "wheel_w": u(0.18, 0.26),
            "hub_frac": u(0.5, 0.72),
            "mirror_size": u(0.06, 0.1),
            "lamp_w": u(0.18, 0.35),
            "lamp_h": u(0.06, 0.14),
        }
        # keep a roof at least 0.3 L long (room for three side windows): scale the glass slopes down if needed
        rise = p["height"] - p["belt_h"]
        room = length - p["hood_len"] - p["trunk_len"] - 0.3 * length
        slopes = (p["windshield_slope"] + p["rear_slope"]) * rise
        if slopes > room:
            p["windshield_slope"] *= room / slopes
            p["rear_slope"] *= room / slopes
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "kind": "sedan", "n_windows": 2, "spoiler": True, "length": 4.4, "width": 1.8, "height": 1.45,
            "clearance": 0.16, "belt_h": 0.78, "deck_h": 0.76, "nose_h": 0.64, "hood_len": 1.1, "trunk_len": 0.9,
            "windshield_slope": 1.2, "rear_slope": 1.2, "tumblehome": 0.85, "roof_round": 0.1, "body_round": 0.14,
            "overhang_front": 0.9, "overhang_rear": 0.8, "wheel_r": 0.32, "wheel_w": 0.22, "hub_frac": 0.6,
            "mirror_size": 0.08, "lamp_w": 0.25, "lamp_h": 0.1,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name.startswith("window_n"):
            return int(name.split("_")[1][1:]) == params["n_windows"]
        if name == "spoiler":
            return bool(params["spoiler"])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "body":
            rings = []
            for z, hw, y0, y1, r in _body_stations(p):
                xy = _ring_xy(hw, y0, y1, r)
                rings.append(np.concatenate([xy, np.full((xy.shape[0], 1), z)], 1))
            return sweep(np.stack(rings))
        if name == "cabin":
            return sweep(np.stack([_cabin_ring(p, s) for s in _cabin_stations(p)]))
        if name == "windshield":
            return slab_on_quad(_windshield_quad(p), *_GLASS)
        if name == "rear_window":
            return slab_on_quad(_rear_window_quad(p), *_GLASS)
        if name.startswith("window_n"):
            w = name.split("_")
            return slab_on_quad(_side_window_quad(p, int(w[1][1:]), int(w[3])), *_GLASS)
        if name == "mirror_left":
            tip = _mirror_tip(p)
            s = p["mirror_size"]
            head = rounded_box(tip - [0.8 * s, 0.0, -0.02], [1.6 * s, 1.1 * s, 0.05], 0.02, 0.006, 3)
            arm_x0 = p["width"] / 2 - 0.06
            arm = rounded_box([(arm_x0 + tip[0] - 1.6 * s) / 2 + 0.01, tip[1] - 0.02, tip[2] + 0.03],
                              [tip[0] - 1.6 * s - arm_x0 + 0.04, 0.03, 0.04], 0.01, 0.004, 3)  # fmt: skip
            return concat([head, arm])
        if name in ("headlight_left", "taillight_left"):
            return slab_on_quad(_lamp_quad(p, name.startswith("head")), 0.0, 0.012)
        if name.startswith("plate_"):
            return slab_on_quad(_plate_quad(p, name.endswith("front")), 0.0, 0.008)
        if name.startswith(("wheel_", "hub_")):
            c = _wheel_centre(p, "front" in name)
            r, w = p["wheel_r"], p["wheel_w"]
            if name.startswith("wheel_"):
                radii = [0.6 * r, 0.9 * r, 0.98 * r, r, r, 0.98 * r, 0.9 * r, 0.6 * r]
                xs = np.array([-0.5, -0.47, -0.4, -0.25, 0.25, 0.4, 0.47, 0.5]) * w
                return lathe(radii, xs, 32).transformed(_ROT_Y_TO_X, c)
            hr = p["hub_frac"] * r
            xs = np.array([0.5 * w - 0.02, 0.5 * w + 0.004, 0.5 * w + 0.012])
            return lathe([hr, hr, 0.5 * hr], xs, 32).transformed(_ROT_Y_TO_X, c)
        if name == "spoiler":
            z0 = _body_stations(p)[0][0] + 0.14
            y = p["deck_h"]
            hw = p["width"] / 2 - 0.12
            wing = rounded_box([0.0, y + 0.1, z0], [2 * hw, 0.025, 0.22], 0.01, 0.006, 3)
            struts = [
                rounded_box([sx * (hw - 0.2), y + 0.03, z0 + 0.02], [0.03, 0.12, 0.08], 0.01, 0.004, 3)
                for sx in (1, -1)
            ]
            return concat([wing, *struts])
        raise KeyError(f"car: no part builder for slot {name!r}")
