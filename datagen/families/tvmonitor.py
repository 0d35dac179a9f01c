"""TV monitors: flat panels (thin bezels, 4:3 to 21:9) and old CRT sets (a deep tapered tube housing behind the
screen), on a pedestal, on two feet, or with no stand (wall-mounted).

Build frame: the screen faces +z, y up, the set's own left is +x (on the viewer's right when it faces the camera),
metres. ``build`` puts the lowest point on y = 0 and centres the bounding box in z.

Slots (fixed order; * = optional): bezel (the front frame: a slab between the screen's outline and the frame's
outer outline), screen (a thin slab filling the bezel's opening; its front face is the display, domed on CRTs),
body (the housing behind the bezel, tapered towards the back), crt_tube* (the deep tapered tube housing of a CRT),
stand_neck*, stand_base* (pedestal), foot_{left,right}* (two feet under the panel's ends).

GT exactness: every outline is :func:`parts.rounded_rect_profile` at the same canonical angles (``_NQ`` points per
quadrant, the 45-degree point a vertex), so the bezel's quads join the screen outline's point j to the outer
outline's point j on every set: a corner of the opening is a corner whatever the aspect ratio, corner radius and
bezel widths (top, sides and bottom chin drawn separately), and the screen slot is the screen, the bezel slot the
bezel. The bezel is its own slot so its map is judged against its own scale (a 6 mm bezel against a 60 mm one is a
proportion change of the bezel, not a collapse of the whole housing).

Keypoints (SPair-71k tvmonitor, 16 ids). Sources: GeoAware-SC ``utils_geoware.py`` (``SPAIR_GEO_AWARE``
comment: "0246 outer_corner, 1357 outer_side, 8101214 inner_corner, 9111315 inner_side"; ``SPAIR_LR`` = [R, C, L,
R, R, C, L, L] for 0-7 and again for 8-15; ``SPAIR_FLIP`` pairs (0, 2), (4, 6), (3, 7), (8, 10), (12, 14),
(11, 15)). Read together: ids 0, 1, 2 are one row of the outer outline (right corner, middle, left corner), 4, 5, 6
the other row, 3 / 7 the right / left side middles; 8-15 the same on the inner (screen) outline. Uncertain, not
stated in the sources we found: (a) which row is the top: we take 0-2 = top, 4-6 = bottom; (b) whether SPair's
"left" is the set's own left or the image's left for a set facing the camera: we follow the other families
(``chair.py``, ``aeroplane.py``) and take the object's own left (+x). Names and ids (left / right):
    outer_top_{left,right} [2, 0], outer_top [1], outer_side_{left,right} [7, 3], outer_bottom_{left,right} [6, 4],
    outer_bottom [5]; inner_top_{left,right} [10, 8], inner_top [9], inner_side_{left,right} [15, 11],
    inner_bottom_{left,right} [14, 12], inner_bottom [13]; extra (not in SPair): screen_center.
The outer points lie on the bezel's outer front edge, the inner points on its inner front edge (the screen's
outline). Symmetric groups follow ``SPAIR_GEO_AWARE['tvmonitor']``: the four outer corners, the four outer side
middles, the four inner corners, the four inner side middles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, concat, rounded_box, rounded_rect_point, rounded_rect_profile, sweep, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["TvMonitorFamily"]

_NQ = 12  # outline points per quadrant (even: the 45-degree corner is a vertex) -> 48 points per ring
_SQ = 3  # points per quadrant of stand sections
_EPS = 5e-4  # clearance between slabs that touch (metres), so no two surfaces are coplanar

_SLOTS = [
    SlotDef("bezel", "bezel", "bezel"),
    SlotDef("screen", "screen", "screen"),
    SlotDef("body", "body", "housing"),
    SlotDef("crt_tube", "crt_tube", "housing", "center", True),
    SlotDef("stand_neck", "stand_neck", "stand", "center", True),
    SlotDef("stand_base", "stand_base", "stand", "center", True),
    SlotDef("foot_left", "foot", "stand", "left", True),
    SlotDef("foot_right", "foot", "stand", "right", True),
]


# ---- outlines (x, y) in the plane z = const, counter-clockwise about +z ------------------------------------------
def _outline(hu: float, hv: float, r: float, cy: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """[4 _NQ, 2] (x, y) rounded rectangle of half sizes (hu, hv) centred at (0, cy); point 0 on +x (the set's
    left side middle), point _NQ on +y (top middle), point _NQ / 2 the top-left corner."""
    return rounded_rect_profile(hu * scale, hv * scale, r * scale, _NQ) + np.array([0.0, cy])


def _ring(xy: np.ndarray, z: float) -> np.ndarray:
    return np.concatenate([xy, np.full((xy.shape[0], 1), z)], 1)


def _screen_half(p: Mapping[str, Any]) -> tuple[float, float]:
    """Half width and half height of the screen (the bezel's opening), from its diagonal and aspect ratio."""
    d, a = p["diag"], p["aspect"]
    h = d / np.sqrt(1.0 + a * a)
    return 0.5 * a * h, 0.5 * h


def _inner(p: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(hu, hv, radius, cy) of the screen outline in the panel frame (panel centre = screen centre)."""
    hu, hv = _screen_half(p)
    return hu, hv, p["corner_in"] * min(hu, hv), 0.0


def _outer(p: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(hu, hv, radius, cy) of the bezel's outer outline (side, top and bottom widths drawn separately)."""
    hu, hv = _screen_half(p)
    ou = hu + p["bezel_side"]
    ov = hv + 0.5 * (p["bezel_top"] + p["bezel_bottom"])
    return ou, ov, p["corner_out"] * min(ou, ov), 0.5 * (p["bezel_top"] - p["bezel_bottom"])


def _chamfer(p: Mapping[str, Any]) -> float:
    """The bezel's front chamfer: proportional to the thinnest thing it bevels."""
    return 0.3 * min(p["bezel_t"], p["bezel_side"], p["bezel_top"], p["bezel_bottom"])


def _z(p: Mapping[str, Any]) -> dict[str, float]:
    """z of the bezel front (0), its back, the screen front, the body back and the CRT tube's back."""
    zf = 0.0
    z0 = zf - p["bezel_t"]
    zb = z0 - p["body_d"]
    return {"front": zf, "bezel_back": z0, "screen": zf - p["recess"], "body_back": zb, "crt_back": zb - p["crt_d"]}


def _centre_y(p: Mapping[str, Any]) -> float:
    """Height of the screen centre above the floor (build frame; the floor is y = 0 before ``build``)."""
    ou, ov, _, cy = _outer(p)
    if p["stand"] == "pedestal":
        bottom = p["base_t"] + p["gap"]
    elif p["stand"] == "feet":
        bottom = p["foot_h"]
    else:
        bottom = 0.0
    return bottom + ov - cy


def _outline_point(hu: float, hv: float, r: float, cy: float, phi: float, yc: float, z: float) -> tuple:
    x, y = rounded_rect_point(hu, hv, r, np.array([phi]))[0]
    return (float(x), float(y + cy + yc), z)


def _kp(which: str, phi: float):
    """Target of a keypoint on the bezel's outer (``which`` = "outer") or inner front edge at canonical angle phi."""

    def target(p: Mapping[str, Any]) -> tuple:
        yc = _centre_y(p)
        if which == "outer":
            hu, hv, r, cy = _outer(p)
            return _outline_point(hu, hv, r, cy, phi, yc, -_chamfer(p))
        hu, hv, r, cy = _inner(p)
        return _outline_point(hu, hv, r, cy, phi, yc, 0.0)

    return target


_Q = np.pi / 4
_KPS = [
    KeypointDef("outer_top_left", "bezel", _kp("outer", _Q), "left", "2/0"),
    KeypointDef("outer_top", "bezel", _kp("outer", 2 * _Q), "center", "1"),
    KeypointDef("outer_side_left", "bezel", _kp("outer", 0.0), "left", "7/3"),
    KeypointDef("outer_bottom_left", "bezel", _kp("outer", -_Q), "left", "6/4"),
    KeypointDef("outer_bottom", "bezel", _kp("outer", -2 * _Q), "center", "5"),
    KeypointDef("inner_top_left", "bezel", _kp("inner", _Q), "left", "10/8"),
    KeypointDef("inner_top", "bezel", _kp("inner", 2 * _Q), "center", "9"),
    KeypointDef("inner_side_left", "bezel", _kp("inner", 0.0), "left", "15/11"),
    KeypointDef("inner_bottom_left", "bezel", _kp("inner", -_Q), "left", "14/12"),
    KeypointDef("inner_bottom", "bezel", _kp("inner", -2 * _Q), "center", "13"),
    KeypointDef("screen_center", "screen", lambda p: (0.0, _centre_y(p), _z(p)["screen"] + p["dome"]), "center", "-"),
]


class TvMonitorFamily(ProceduralFamily):
    name = "tvmonitor"
    description = "TV monitors: flat panels (4:3 to 21:9, thin or wide bezels) and CRT sets; pedestal, feet or none"
    slot_defs = _SLOTS
    keypoint_defs = _KPS
    group_defs = [
        ["outer_top_left", "outer_top_right", "outer_bottom_left", "outer_bottom_right"],
        ["outer_top", "outer_bottom", "outer_side_left", "outer_side_right"],
        ["inner_top_left", "inner_top_right", "inner_bottom_left", "inner_bottom_right"],
        ["inner_top", "inner_bottom", "inner_side_left", "inner_side_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        crt = bool(rng.random() < 0.3)
        stand_draw = float(rng.random())
        aspect_flat = [4 / 3, 16 / 10, 16 / 9, 21 / 9][int(rng.integers(0, 4))] * u(0.98, 1.02)
        p: dict[str, Any] = {
            "crt": crt,
            "diag": u(0.3, 0.6) if crt else u(0.45, 1.3),
            "aspect": u(1.25, 1.4) if crt else aspect_flat,
            "corner_in": u(0.04, 0.14) if crt else u(0.005, 0.04),
            "corner_out": u(0.05, 0.18) if crt else u(0.005, 0.06),
            "bezel_side": u(0.022, 0.045) if crt else u(0.008, 0.03),
            "bezel_top": u(0.022, 0.045) if crt else u(0.008, 0.03),
            "bezel_bottom": u(0.03, 0.065) if crt else u(0.008, 0.05),
            "bezel_t": u(0.012, 0.022) if crt else u(0.007, 0.014),
            "recess": 0.0,
            "dome": u(0.006, 0.018) if crt else 0.0,
            "body_d": u(0.04, 0.08) if crt else u(0.015, 0.05),
            "body_taper": u(0.9, 1.0) if crt else u(0.55, 0.95),
            "crt_d": u(0.2, 0.38),
            "crt_taper": u(0.4, 0.65),
            "crt_rise": u(-0.02, 0.03),
            "stand": ("pedestal" if stand_draw < 0.6 else "none")
            if crt
            else ("pedestal" if stand_draw < 0.45 else "feet" if stand_draw < 0.8 else "none"),
            "base_t": u(0.012, 0.03),
            "base_w": u(0.25, 0.6),
            "base_d": u(0.15, 0.28),
            "neck_w": u(0.04, 0.12),
            "neck_d": u(0.015, 0.04),
            "gap": u(0.01, 0.03) if crt else u(0.03, 0.14),
            "foot_h": u(0.03, 0.09),
            "foot_x": u(0.25, 0.42),
            "foot_len": u(0.15, 0.3),
            "foot_w": u(0.012, 0.03),
            "foot_splay": u(0.0, 0.05),
        }
        # the screen sits a little behind the bezel front; proportional to the bezel's depth
        p["recess"] = p["bezel_t"] * u(0.25, 0.55)
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "crt": False, "diag": 0.8, "aspect": 16 / 9, "corner_in": 0.02, "corner_out": 0.03, "bezel_side": 0.015,
            "bezel_top": 0.015, "bezel_bottom": 0.025, "bezel_t": 0.01, "recess": 0.004, "dome": 0.0,
            "body_d": 0.03, "body_taper": 0.8, "crt_d": 0.3, "crt_taper": 0.5, "crt_rise": 0.0, "stand": "pedestal",
            "base_t": 0.02, "base_w": 0.4, "base_d": 0.2, "neck_w": 0.08, "neck_d": 0.025, "gap": 0.08,
            "foot_h": 0.06, "foot_x": 0.35, "foot_len": 0.22, "foot_w": 0.02, "foot_splay": 0.02,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name == "crt_tube":
            return bool(params["crt"])
        if name.startswith("stand_"):
            return params["stand"] == "pedestal"
        if name.startswith("foot_"):
            return params["stand"] == "feet"
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        yc = _centre_y(p)
        z = _z(p)
        lift = np.array([0.0, yc])
        if name == "bezel":
            # outer back -> outer front (chamfer start) -> chamfered front outline -> opening at the front ->
            # opening at the back: sides face out, the front band +z, the opening's wall faces the axis
            hu, hv, r, cy = _outer(p)
            iu, iv, ir, icy = _inner(p)
            c = _chamfer(p)
            outer = _outline(hu, hv, r, cy) + lift
            front = _outline(hu - c, hv - c, max(r - c, 0.0), cy) + lift
            inner = _outline(iu, iv, ir, icy) + lift
            rings = [
                _ring(outer, z["bezel_back"]),
                _ring(outer, z["front"] - c),
                _ring(front, z["front"]),
                _ring(inner, z["front"]),
                _ring(inner, z["bezel_back"]),
            ]
            return sweep(np.stack(rings))
        if name == "screen":
            iu, iv, ir, icy = _inner(p)
            xy = _outline(iu - _EPS, iv - _EPS, max(ir - _EPS, 0.0), icy) + lift
            rings = np.stack([_ring(xy, z["bezel_back"] + _EPS), _ring(xy, z["screen"])])
            apex = np.array([0.0, yc + icy, z["screen"] + p["dome"]])
            return sweep(rings, end_apex=apex)
        if name == "body":
            hu, hv, r, cy = _outer(p)
            e = 0.6 * _EPS
            full = _outline(hu - e, hv - e, max(r - e, 0.0), cy) + lift
            k = p["body_taper"]
            back = _outline(hu - e, hv - e, max(r - e, 0.0), cy, scale=k) + lift
            mid = 0.5 * (full + back)
            d = p["body_d"]
            zb, z0 = z["body_back"], z["bezel_back"] - _EPS
            rings = [_ring(back, zb), _ring(mid, zb + 0.35 * d), _ring(full, zb + 0.75 * d), _ring(full, z0)]
            return sweep(np.stack(rings))
        if name == "crt_tube":
            hu, hv, r, cy = _outer(p)
            k = p["body_taper"] * 0.92
            front = _outline(hu, hv, r, cy, scale=k) + lift
            t = p["crt_taper"]
            back = _outline(hu, hv, r, cy, scale=t) + lift + np.array([0.0, p["crt_rise"] + (1 - t) * 0.15 * hv])
            mid = 0.55 * front + 0.45 * back
            zb, zf = z["crt_back"], z["body_back"] + 0.002
            rings = [_ring(back, zb), _ring(mid, zb + 0.5 * (zf - zb)), _ring(front, zf)]
            return sweep(np.stack(rings))
        if name == "stand_base":
            return rounded_box(
                [0.0, p["base_t"] / 2, self._neck_z(p)],
                [p["base_w"] * _width(p), p["base_t"], p["base_d"]],
                0.3 * p["base_d"],
                0.25 * p["base_t"],
                _SQ,
            )
        if name == "stand_neck":
            hu, hv, r, cy = _outer(p)
            top = yc - 0.35 * hv if not p["crt"] else yc + cy - hv + 0.01
            return rounded_box(
                [0.0, 0.5 * (p["base_t"] - 0.002 + top), self._neck_z(p)],
                [p["neck_w"], top - p["base_t"] + 0.002, p["neck_d"]],
                0.3 * p["neck_d"],
                0.15 * p["neck_d"],
                _SQ,
            )
        if name == "foot_left":
            hu, hv, r, cy = _outer(p)
            x = p["foot_x"] * 2 * hu
            zc = 0.5 * (z["bezel_back"] + z["body_back"])
            top = np.array([x, yc + cy - hv + 0.02, zc])
            bottom = np.array([x + p["foot_splay"], 0.5 * p["foot_w"], zc])
            t = np.linspace(0.0, 1.0, 5)
            pts = top[None] + t[:, None] * (bottom - top)[None]
            prof = rounded_rect_profile(1.0, 1.0, 0.4, _SQ)
            w = p["foot_w"]
            post = tube(pts, np.array([[0.5 * w, 0.3 * w]]), prof.shape[0], up=(1.0, 0.0, 0.0), profile=prof)
            bar = rounded_box(
                [x + p["foot_splay"], 0.5 * w, zc + 0.1 * p["foot_len"]],
                [1.2 * w, w, p["foot_len"]],
                0.4 * w,
                0.15 * w,
                _SQ,
            )
            return concat([post, bar])
        raise KeyError(f"tvmonitor: no part builder for slot {name!r}")

    @staticmethod
    def _neck_z(p: Mapping[str, Any]) -> float:
        z = _z(p)
        if p["crt"]:
            return z["body_back"] + 0.5 * p["body_d"]
        return z["body_back"] - 0.5 * p["neck_d"] + 0.002


def _width(p: Mapping[str, Any]) -> float:
    """Outer width of the panel (metres)."""
    return 2.0 * _outer(p)[0]
