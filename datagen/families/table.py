"""Tables: rectangular, rounded, oval and round tops on four legs or on a pedestal, dining and coffee heights.

Build frame: top centred on x = z = 0, floor y = 0. A table's long side runs along x; "front" (+z) is one of the
long sides, the table's left is +x (a table's front is a convention here: it has no preferred side in the real
world, so matchers should expect the front/back ambiguity that SPair-style benchmarks avoid for this class).

Slots (fixed order; * = optional): top; leg_{front,back}_{left,right}* (four-legged tables);
apron_{front,back}*, apron_{left,right}* (boards under the top between the legs); stretcher_{left,right}*,
stretcher_middle* (an H stretcher between the side stretchers); pedestal_column*, pedestal_foot* (pedestal tables).

The top's outline is one fixed-topology rounded rectangle (36 points): a small corner radius gives a rectangle,
the largest gives an oval or, when width = depth, a round top, so round and rectangular tops correspond.

Keypoints (SPair-71k has no table category; none map to it): top_front_{left,right}, top_back_{left,right} (the
top's upper corners; on a round top the points at +-45 degrees), top_center, foot_{front,back}_{left,right}
(four-legged), pedestal_foot_front, pedestal_foot_back (pedestal). Symmetric groups: the four top corners,
the four feet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, lathe, rounded_box, rounded_rect_point, rounded_rect_profile, sweep, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["TableFamily"]

_TOP_N = 16  # top outline points per quadrant (even: the corner at 45 degrees is a vertex) -> 64 points
_SQ = 4  # points per quadrant of leg, apron and stretcher sections

_SLOTS = [
    SlotDef("top", "top", "top"),
    SlotDef("leg_front_left", "leg", "legs", "left", True),
    SlotDef("leg_front_right", "leg", "legs", "right", True),
    SlotDef("leg_back_left", "leg", "legs", "left", True),
    SlotDef("leg_back_right", "leg", "legs", "right", True),
    SlotDef("apron_front", "apron", "frame", "center", True),
    SlotDef("apron_back", "apron", "frame", "center", True),
    SlotDef("apron_left", "apron", "frame", "left", True),
    SlotDef("apron_right", "apron", "frame", "right", True),
    SlotDef("stretcher_left", "stretcher", "legs", "left", True),
    SlotDef("stretcher_right", "stretcher", "legs", "right", True),
    SlotDef("stretcher_middle", "stretcher", "legs", "center", True),
    SlotDef("pedestal_column", "pedestal", "legs", "center", True),
    SlotDef("pedestal_foot", "pedestal_foot", "legs", "center", True),
]


def _top_outline(p: Mapping[str, Any]) -> np.ndarray:
    """[36, 2] (z, x) outline of the top, counter-clockwise about +y."""
    half_w, half_d = p["top_w"] / 2, p["top_d"] / 2
    r = p["corner"] * min(half_w, half_d)
    return rounded_rect_profile(half_d, half_w, r, _TOP_N)


def _corner_xz(p: Mapping[str, Any]) -> tuple[float, float]:
    """(x, z) of the top's front-left corner: its outline point at the normalised angle of 45 degrees (the corner
    itself on a sharp rectangle, the middle of the arc on a rounded one, +-45 degrees on a round top), a vertex of
    the top's outline."""
    half_w, half_d = p["top_w"] / 2, p["top_d"] / 2
    z, x = rounded_rect_point(half_d, half_w, p["corner"] * min(half_w, half_d), np.array([np.pi / 4]))[0]
    return float(x), float(z)


def _leg_top(p: Mapping[str, Any], front: bool) -> np.ndarray:
    """Top centre of the left legs, under the top, inside the corner."""
    half_w, half_d = p["top_w"] / 2, p["top_d"] / 2
    r = p["corner"] * min(half_w, half_d)
    # keep legs inside a rounded outline: pull them in along the diagonal by the corner rounding
    pull = r * (1 - 1 / np.sqrt(2))
    x = half_w - p["leg_inset"] - p["leg_w"] / 2 - pull
    z = (half_d - p["leg_inset"] - p["leg_w"] / 2 - pull) * (1 if front else -1)
    return np.array([x, p["height"] - p["top_t"] + 0.004, z])


def _leg_foot(p: Mapping[str, Any], front: bool) -> np.ndarray:
    top = _leg_top(p, front)
    s = np.tan(np.radians(p["leg_splay_deg"])) * top[1]
    return np.array([top[0] + s, 0.0, top[2] + s * np.sign(top[2])])


def _leg_at(p: Mapping[str, Any], front: bool, y: float) -> np.ndarray:
    top, foot = _leg_top(p, front), _leg_foot(p, front)
    return top + (top[1] - y) / top[1] * (foot - top)


class TableFamily(ProceduralFamily):
    name = "table"
    description = "tables: rectangular, oval and round tops on four legs (apron, stretchers) or a pedestal"
    # From at least 15 degrees above: a top seen nearly edge-on (8 degrees puts a 1 m round top 3 px tall at 256 px)
    # leaves a band of shared surface a few pixels thick, where one pixel stands for a long strip of the top and
    # the dense field cannot be read between pixel centres (the raw cycle of such pairs is ~40 %); tables are
    # photographed from above anyway.
    camera_elevation_deg = (15.0, 50.0)
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("top_front_left", "top", lambda p: (_corner_xz(p)[0], p["height"], _corner_xz(p)[1]), "left", "-"),
        KeypointDef("top_back_left", "top", lambda p: (_corner_xz(p)[0], p["height"], -_corner_xz(p)[1]), "left", "-"),
        KeypointDef("top_center", "top", lambda p: (0.0, p["height"], 0.0)),
        KeypointDef("foot_front_left", "leg_front_left", lambda p: _leg_foot(p, True), "left", "-"),
        KeypointDef("foot_back_left", "leg_back_left", lambda p: _leg_foot(p, False), "left", "-"),
        KeypointDef("pedestal_foot_front", "pedestal_foot", lambda p: (0.0, p["foot_h"], p["foot_r"])),
        KeypointDef("pedestal_foot_back", "pedestal_foot", lambda p: (0.0, p["foot_h"], -p["foot_r"])),
    ]
    group_defs = [
        ["top_front_left", "top_front_right", "top_back_left", "top_back_right"],
        ["foot_front_left", "foot_front_right", "foot_back_left", "foot_back_right"],
        ["pedestal_foot_front", "pedestal_foot_back"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        shape = ["rect", "rounded", "oval", "round"][int(rng.integers(0, 4))]
        coffee = bool(rng.random() < 0.3)
        top_w = u(0.7, 1.9) if not coffee else u(0.6, 1.3)
        top_d = u(0.6, min(1.05, top_w)) if not coffee else u(0.45, min(0.8, top_w))
        if shape == "round":
            top_d = top_w = min(top_w, u(0.6, 1.3))
        p: dict[str, Any] = {
            "shape": shape,
            "coffee": coffee,
            "pedestal": bool(rng.random() < (0.55 if shape in ("round", "oval") else 0.15)) and top_w < 1.4,
            "apron": bool(rng.random() < 0.5),
            "stretchers": bool(rng.random() < 0.35),
            "top_w": top_w,
            "top_d": top_d,
            "corner": {"rect": u(0.01, 0.06), "rounded": u(0.1, 0.4), "oval": 1.0, "round": 1.0}[shape],
            "height": u(0.40, 0.50) if coffee else u(0.68, 0.78),
            "top_t": u(0.02, 0.06),
            "edge_bevel": u(0.08, 0.25),  # fraction of the top's thickness
            "leg_w": u(0.03, 0.08),
            "leg_round": u(0.0, 1.0),
            "leg_inset": u(0.0, 0.08),
            "leg_splay_deg": u(0.0, 6.0),
            "leg_taper": u(0.5, 1.0),
            "apron_h": u(0.05, 0.12),
            "stretcher_h": u(0.08, 0.2),
            "column_r": u(0.03, 0.08),
            "foot_r": u(0.2, 0.36),
            "foot_h": u(0.025, 0.06),
        }
        p["foot_r"] = min(p["foot_r"], 0.45 * min(top_w, top_d))
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "shape": "rounded", "coffee": False, "pedestal": False, "apron": True, "stretchers": True,
            "top_w": 1.2, "top_d": 0.8, "corner": 0.2, "height": 0.74, "top_t": 0.04, "edge_bevel": 0.125,
            "leg_w": 0.05, "leg_round": 0.5, "leg_inset": 0.04, "leg_splay_deg": 2.0, "leg_taper": 0.8,
            "apron_h": 0.08, "stretcher_h": 0.15, "column_r": 0.05, "foot_r": 0.3, "foot_h": 0.04,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        ped = bool(params["pedestal"])
        if name.startswith("leg_"):
            return not ped
        if name.startswith("apron_"):
            return not ped and bool(params["apron"])
        if name.startswith("stretcher_"):
            return not ped and bool(params["stretchers"])
        if name.startswith("pedestal_"):
            return ped
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "top":
            # the top slab with its upper and lower edges chamfered by b: the chamfer's inner outline is the outer
            # one inset by b (the same rounded rectangle, halves and radius less b), sampled at the same canonical
            # angles, so every ring point keeps its place on the outline whatever the shape
            b = p["edge_bevel"] * p["top_t"]
            half_w, half_d = p["top_w"] / 2, p["top_d"] / 2
            r = p["corner"] * min(half_w, half_d)
            outer = _top_outline(p)  # (u, v) = (z, x)
            inner = rounded_rect_profile(half_d - b, half_w - b, max(r - b, 0.0), _TOP_N)
            y1, y0 = p["height"], p["height"] - p["top_t"]
            rings = []
            for y, prof in ((y0, inner), (y0 + b, outer), (y1 - b, outer), (y1, inner)):
                rings.append(np.stack([prof[:, 1], np.full(len(prof), y), prof[:, 0]], 1))
            return sweep(np.stack(rings))
        if name.startswith("leg_"):
            front = "front" in name
            top, foot = _leg_top(p, front), _leg_foot(p, front)
            t = np.linspace(0.0, 1.0, 8)
            pts = top[None] + t[:, None] * (foot - top)[None]
            half = p["leg_w"] / 2 * (1.0 + t * (p["leg_taper"] - 1.0))
            prof = rounded_rect_profile(1.0, 1.0, max(p["leg_round"], 0.05), _SQ)
            return tube(pts, half, prof.shape[0], profile=prof)
        if name.startswith("apron_"):
            which = name.split("_")[1]
            y = p["height"] - p["top_t"] - p["apron_h"] / 2 + 0.002
            fl, bl = _leg_top(p, True), _leg_top(p, False)
            t = 0.02
            if which in ("front", "back"):
                z = fl[2] if which == "front" else bl[2]
                return rounded_box([0.0, y, z], [2 * fl[0], p["apron_h"], t], 0.004, 0.002, _SQ)
            return rounded_box([fl[0], y, 0.0], [t, p["apron_h"], fl[2] - bl[2]], 0.004, 0.002, _SQ)
        if name.startswith("stretcher_"):
            y = p["stretcher_h"]
            prof = rounded_rect_profile(1.0, 1.0, 0.6, _SQ)
            w = 0.4 * p["leg_w"]
            if name == "stretcher_middle":
                a, b = _leg_at(p, False, y), _leg_at(p, True, y)
                mid = 0.5 * (a + b)
                pts = np.stack([mid * [-1, 1, 1], mid * [0, 1, 1], mid])
            else:
                a, b = _leg_at(p, False, y), _leg_at(p, True, y)
                pts = np.stack([a, 0.5 * (a + b), b])
            return tube(pts, w, prof.shape[0], up=(0.0, 1.0, 0.0), profile=prof)
        if name == "pedestal_column":
            r = p["column_r"]
            under = p["height"] - p["top_t"]
            fh = p["foot_h"]
            radii = [1.4 * r, 1.4 * r, r, 0.8 * r, r, 1.8 * r, 1.8 * r]
            heights = [fh - 0.005, fh + 0.03, fh + 0.08, 0.5 * (fh + under), under - 0.08, under - 0.03, under + 0.003]
            return lathe(radii, heights, 32)
        if name == "pedestal_foot":
            R, fh = p["foot_r"], p["foot_h"]
            return lathe([0.92 * R, R, R, 0.7 * R, 0.3 * R], [0.0, 0.006, 0.5 * fh, fh, fh + 0.01], 48)
        raise KeyError(f"table: no part builder for slot {name!r}")
