"""Bottles: wine, beer, water and soda bottles and handled jugs as stacked lathe profiles.

Build frame: the bottle stands on y = 0 with its axis on x = z = 0. A bottle is rotationally symmetric, so "front"
is a convention: the handle of a jug is at the back
(-z); the bottle's left is +x.

Slots (fixed order; * = optional): body (base to the top of the straight part, with a bevelled foot and a bulge
or waist), shoulder (body radius to neck radius), neck, cap, label* (a band around the body), handle* (a tube at
the back from the shoulder to the body). Every lathe slot has 48 segments with vertices on +x and -x.

Keypoints (SPair-71k bottle index in brackets; GeoAware ``SPAIR_LR`` marks the even index of each pair left and the
odd one right; SPair's are the silhouette edges of each part, here the points of that part on +x / -x):
    cap_{left,right} [0, 1], neck_{left,right} [2, 3], shoulder_{left,right} [4, 5], body_{left,right} [6, 7],
    base_{left,right} [8, 9]; extra centre points (not in SPair): cap_top, handle_top, handle_bottom.
Symmetric groups follow GeoAware's ``SPAIR_GEO_AWARE['bottle']``: each left/right pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, lathe, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["BottleFamily"]

_SEG = 48
_BODY_RINGS = 12
_SHOULDER_RINGS = 9

_SLOTS = [
    SlotDef("body", "body", "glass"),
    SlotDef("shoulder", "shoulder", "glass"),
    SlotDef("neck", "neck", "glass"),
    SlotDef("cap", "cap", "cap"),
    SlotDef("label", "label", "label", "center", True),
    SlotDef("handle", "handle", "handle", "center", True),
]


def _heights(p: Mapping[str, Any]) -> dict[str, float]:
    """Tops of the body, shoulder, neck and cap, metres."""
    h_body = p["height"] * p["body_frac"]
    h_sh = h_body + p["height"] * p["shoulder_frac"]
    h_neck = p["height"] - p["cap_h"]
    return {"body": h_body, "shoulder": h_sh, "neck": h_neck, "cap": p["height"]}


def _body_radius(p: Mapping[str, Any], y: np.ndarray | float) -> np.ndarray:
    """Radius of the body at height ``y`` (a bulge or waist in the middle, a bevelled foot)."""
    y = np.asarray(y, np.float64)
    t = np.clip(y / _heights(p)["body"], 0.0, 1.0)
    r = p["body_r"] * (1.0 + p["bulge"] * np.sin(np.pi * t))
    foot = np.clip(y / p["foot_bevel"], 0.0, 1.0)
    return r * (0.9 + 0.1 * np.sqrt(foot))


def _body_ys(p: Mapping[str, Any]) -> np.ndarray:
    hb = _heights(p)["body"]
    return np.concatenate(
        [[0.0, 0.3 * p["foot_bevel"], p["foot_bevel"]], np.linspace(p["foot_bevel"], hb, _BODY_RINGS - 2)[1:]]
    )


def _shoulder(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    h = _heights(p)
    t = np.linspace(0.0, 1.0, _SHOULDER_RINGS)
    ys = h["body"] + t * (h["shoulder"] - h["body"])
    r0 = float(_body_radius(p, h["body"]))
    s = (1 - np.cos(np.pi * t)) / 2 if p["shoulder_round"] < 0.5 else np.sin(np.pi / 2 * t)
    return r0 + (p["neck_r"] - r0) * s, ys


def _handle_points(p: Mapping[str, Any]) -> np.ndarray:
    h = _heights(p)
    rs, ys = _shoulder(p)
    y_top = float(ys[len(ys) // 2])
    r_top = float(rs[len(rs) // 2]) - 0.003
    y_bot = h["body"] * 0.55
    r_bot = float(_body_radius(p, y_bot)) - 0.003
    reach = p["handle_reach"]
    t = np.linspace(0.0, 1.0, 9)
    y = y_top + (y_bot - y_top) * t
    z = -(r_top + (r_bot - r_top) * t) - reach * np.sin(np.pi * t) ** 0.7
    return np.stack([np.zeros_like(t), y, z], 1)


class BottleFamily(ProceduralFamily):
    name = "bottle"
    description = "bottles: wine, beer, water and soda bottles, handled jugs; optional label band and handle"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("cap_left", "cap", lambda p: (p["cap_r"], p["height"] - p["cap_h"] / 2, 0.0), "left", "0/1"),
        KeypointDef(
            "neck_left",
            "neck",
            lambda p: (p["neck_r"], 0.5 * (_heights(p)["shoulder"] + _heights(p)["neck"]), 0.0),
            "left",
            "2/3",
        ),
        KeypointDef(
            "shoulder_left",
            "shoulder",
            lambda p: (_shoulder(p)[0][_SHOULDER_RINGS // 2], _shoulder(p)[1][_SHOULDER_RINGS // 2], 0.0),
            "left",
            "4/5",
        ),
        KeypointDef(
            "body_left",
            "body",
            lambda p: (float(_body_radius(p, _heights(p)["body"] / 2)), _heights(p)["body"] / 2, 0.0),
            "left",
            "6/7",
        ),
        KeypointDef("base_left", "body", lambda p: (float(_body_radius(p, 0.0)), 0.0, 0.0), "left", "8/9"),
        KeypointDef("cap_top", "cap", lambda p: (0.0, p["height"], 0.0), "center", "-"),
        KeypointDef("handle_top", "handle", lambda p: _handle_points(p)[1] + [0.0, 0.0, -0.01], "center", "-"),
        KeypointDef("handle_bottom", "handle", lambda p: _handle_points(p)[-2] + [0.0, 0.0, -0.01], "center", "-"),
    ]
    group_defs = [
        ["cap_left", "cap_right"],
        ["neck_left", "neck_right"],
        ["shoulder_left", "shoulder_right"],
        ["body_left", "body_right"],
        ["base_left", "base_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        handle = bool(rng.random() < 0.25)
        height = u(0.26, 0.36) if handle else u(0.16, 0.34)
        body_r = u(0.055, 0.075) if handle else u(0.026, 0.05)
        p: dict[str, Any] = {
            "handle": handle,
            "label": bool(rng.random() < 0.6),
            "height": height,
            "body_r": body_r,
            "body_frac": u(0.42, 0.68),
            "shoulder_frac": u(0.06, 0.22),
            "shoulder_round": u(0.0, 1.0),
            "bulge": u(-0.08, 0.14),
            "foot_bevel": u(0.004, 0.012),
            "neck_r": body_r * u(0.3, 0.55),
            "cap_h": u(0.012, 0.03),
            "cap_over": u(1.04, 1.25),
            "label_lo": u(0.15, 0.3),
            "label_hi": u(0.6, 0.9),
            "handle_reach": u(0.025, 0.045),
            "handle_r": u(0.006, 0.01),
        }
        p["cap_r"] = p["neck_r"] * p["cap_over"]
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "handle": True, "label": True, "height": 0.3, "body_r": 0.04, "body_frac": 0.55, "shoulder_frac": 0.15,
            "shoulder_round": 0.3, "bulge": 0.03, "foot_bevel": 0.008, "neck_r": 0.016, "cap_h": 0.02,
            "cap_over": 1.15, "cap_r": 0.0184, "label_lo": 0.2, "label_hi": 0.8, "handle_reach": 0.035,
            "handle_r": 0.008,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name in ("label", "handle"):
            return bool(params[name])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        h = _heights(p)
        if name == "body":
            ys = _body_ys(p)
            return lathe(_body_radius(p, ys), ys, _SEG)
        if name == "shoulder":
            rs, ys = _shoulder(p)
            return lathe(rs, ys, _SEG)
        if name == "neck":
            ys = np.linspace(h["shoulder"], h["neck"] + 0.002, 5)
            rs = np.full(5, p["neck_r"])
            rs[-2] *= 1.08  # a lip under the cap
            return lathe(rs, ys, _SEG)
        if name == "cap":
            y0, y1 = h["neck"], h["cap"]
            ys = np.array([y0, y0 + 0.002, y1 - 0.003, y1 - 0.0008, y1])
            rc = p["cap_r"]
            return lathe([rc * 0.97, rc, rc, rc * 0.97, rc * 0.9], ys, _SEG)
        if name == "label":
            hb = h["body"]
            ys = hb * np.array([p["label_lo"], p["label_lo"] + 0.005, p["label_hi"] - 0.005, p["label_hi"]])
            off = np.array([0.0008, 0.0015, 0.0015, 0.0008])
            return lathe(_body_radius(p, ys) + off, ys, _SEG)
        if name == "handle":
            pts = _handle_points(p)
            return tube(pts, p["handle_r"], 12, up=(1.0, 0.0, 0.0))
        raise KeyError(f"bottle: no part builder for slot {name!r}")
