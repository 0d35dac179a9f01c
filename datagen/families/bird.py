"""Birds: songbird to duck, gull and heron proportions, perched / standing with the wings folded or flying with
them spread, posed per instance (each wing, leg and foot on its own).

Build frame: the beak points to +z, y up, the bird's own left wing and leg are at +x. ``build`` puts the lowest
point (a foot, or a flying bird's lowest feather) on y = 0 and centres the bounding box in z. The body is a loft
along its axis, pitched nose-up by ``body_pitch_deg`` (upright perching birds) or level (flying, swimming ducks).
The neck is an S-curve (two bends of fixed arc length, :mod:`datagen.families.limbs`), the head and beak follow.

A wing is one flat tube from inside the shoulder to the tip whose pose is a single parameter on the same
topology: ``spread`` = 1 stretches it sideways (flapped up or down by ``flap_deg``), ``spread`` = 0 lies it
folded along the body's side, dorsal face out, its tip over the tail; between, the wing's frame turns along the
geodesic between the two (and its span shortens, as a folding wing does). Each station of the wing is a fixed
fraction of the span, so the wing tip is the tip in every pose. A leg is one tube from the hip (inside the body)
down the drumstick, through the "knee" (the backward-bending ankle joint that SPair calls the knee; its ring is
fixed) and the shank to the foot; flying birds swing the drumstick back and fold the shank forward under it, the
toes curled. Each foot is three toes.

Slots (fixed order; * = optional): body, neck, head, beak, wing_{left,right}, tail (a fan of feathers, spread
by ``tail_fan``), leg_{left,right}, foot_{left,right}, crest* (a feather crest on the crown).

Keypoints, with the SPair-71k bird index where it is known (GeoAware-SC ``utils_geoware.py``: its comments name
1/2 wing ends, 4/5 mouth, 7/8 eyes, 10/11 feet, 12/13 knees, 14/15 hips; ``SPAIR_LR`` marks the odd index of
these pairs right and the even one left, as ``datagen.real.tables`` records):
    wing_end_{left,right} [2, 1] (the wing tip), mouth_corner_{left,right} [5, 4] (the side of the beak at its
    base), eye_{left,right} [8, 7], foot_{left,right} [11, 10] (where the toes meet), knee_{left,right} [13, 12]
    (outer side of the knee ring), hip_{left,right} [15, 14] (the body's flank over the hip joint);
    centre points beak_tip, crown, breast, back, tail_tip. SPair's five centre keypoints 0, 3, 6, 9 and 16 are
    not named in the sources we found (they are probably the beak tip, the crown, the tail and two points of the
    head or body), so these are not mapped.
Symmetric groups follow GeoAware's ``SPAIR_GEO_AWARE['bird']``: the wing ends, feet, knees and hips (pairs);
mouth corners and eyes are left/right pairs but not geometry-aware groups there.

One module per family, over ~400 lines: its slots, part builders, keypoints and SPair index map are one
contract and are read together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.limbs import Bend, Chain, Line, axis_angle, frame, loft, ring_surface_point, slerp, walk
from datagen.families.parts import PartMesh, concat, rotation_x, rotation_z
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["BirdFamily"]

_SLOTS = [
    SlotDef("body", "body", "plumage"),
    SlotDef("neck", "neck", "plumage"),
    SlotDef("head", "head", "plumage"),
    SlotDef("beak", "beak", "beak"),
    SlotDef("wing_left", "wing", "wings", "left"),
    SlotDef("wing_right", "wing", "wings", "right"),
    SlotDef("tail", "tail", "wings"),
    SlotDef("leg_left", "leg", "legs", "left"),
    SlotDef("leg_right", "leg", "legs", "right"),
    SlotDef("foot_left", "foot", "legs", "left"),
    SlotDef("foot_right", "foot", "legs", "right"),
    SlotDef("crest", "crest", "crest", "center", True),
]

_BODY_T = np.linspace(-1.0, 1.0, 16)[1:-1]  # body ring stations along the axis (tail end -1 .. chest +1)
_WING_S = np.array([0.0, 0.06, 0.14, 0.24, 0.34, 0.44, 0.53, 0.62, 0.7, 0.78, 0.85, 0.91, 0.96, 1.0])
_WING_SEG = 20


def _pitch(p: Mapping[str, Any]) -> np.ndarray:
    """The body's rotation: nose up by ``body_pitch_deg`` (about -x)."""
    return rotation_x(-np.radians(p["body_pitch_deg"]))


def _body_axes(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The body's forward axis and its up axis (unit [3] each)."""
    R = _pitch(p)
    return R @ np.array([0.0, 0.0, 1.0]), R @ np.array([0.0, 1.0, 0.0])


def _body_chain(p: Mapping[str, Any]) -> Chain:
    fwd, up = _body_axes(p)
    L = p["body_len"]
    start = _BODY_T[0] * 0.5 * L * fwd
    return walk(start, frame(fwd, up), [Line(0.5 * L * (_BODY_T[-1] - _BODY_T[0]), _BODY_T.size - 1)])


def _body_radii(p: Mapping[str, Any]) -> np.ndarray:
    """(vertical, horizontal) radii of the body rings: a full chest, tapering to the tail."""
    t = _BODY_T
    s = np.where(t > 0, np.sqrt(np.clip(1.0 - t**2, 0.0, 1.0)), np.sqrt(np.clip(1.0 - np.abs(t) ** 1.6, 0.0, 1.0)))
    s = 0.12 + 0.88 * s
    return np.stack([p["body_ry"] * s, p["body_rx"] * s], 1)


def _body_point(p: Mapping[str, Any], t: float, up: float, side: float) -> np.ndarray:
    """A point of the body: ``t`` along the axis (-1 tail .. 1 chest), ``up`` / ``side`` fractions of the local
    vertical / horizontal radius (side > 0 is +x)."""
    fwd, upv = _body_axes(p)
    r = _body_radii(p)
    ry, rx = np.interp(t, _BODY_T, r[:, 0]), np.interp(t, _BODY_T, r[:, 1])
    return 0.5 * p["body_len"] * t * fwd + up * ry * upv + np.array([side * rx, 0.0, 0.0])


# ---- neck, head, beak ----------------------------------------------------------------------------------------------
def _neck_chain(p: Mapping[str, Any]) -> Chain:
    base = _body_point(p, 0.62, 0.3, 0.0)
    e = np.radians(p["neck_deg"])
    F = frame((0.0, np.sin(e), np.cos(e)), (0.0, np.cos(e), -np.sin(e)))
    nl, r = p["neck_len"], p["neck_r"]
    # a bend of a short thick neck is limited so its inner side keeps 40 % of its length (limbs module docstring)
    b1 = np.clip(np.radians(p["neck_bend1_deg"]), -0.6 * 0.3 * nl / (1.3 * r), 0.6 * 0.3 * nl / (1.3 * r))
    b2 = np.clip(np.radians(p["neck_bend2_deg"]), -0.6 * 0.35 * nl / r, 0.6 * 0.35 * nl / r)
    pieces = [
        Line(0.2 * nl, 2),
        Bend(0.3 * nl, b1, (0.0, 0.0, 1.0), 3),  # > 0 turns up / back
        Line(0.15 * nl, 2),
        Bend(0.35 * nl, b2, (0.0, 0.0, 1.0), 3),
    ]
    return walk(base, F, pieces)


def _head_chain(p: Mapping[str, Any]) -> Chain:
    a = np.radians(p["head_pitch_deg"])
    d = np.array([0.0, -np.sin(a), np.cos(a)])
    F = frame(d, (0.0, np.cos(a), np.sin(a)))
    hl = p["head_len"]
    start = _neck_chain(p).end - 0.45 * hl * d + 0.1 * p["head_r"] * F[:, 1]
    return walk(start, F, [Line(hl, 9)])


def _head_radii(p: Mapping[str, Any]) -> np.ndarray:
    s = np.linspace(0.0, 1.0, 10)
    bh, bw = 0.5 * p["beak_h"], 0.5 * p["beak_w"]
    r = p["head_r"]
    v = np.interp(s, [0.0, 0.2, 0.45, 0.7, 0.9, 1.0], [0.55 * r, 0.9 * r, r, 0.9 * r, 1.2 * bh, 1.05 * bh])
    h = np.interp(s, [0.0, 0.2, 0.45, 0.7, 0.9, 1.0], [0.5 * r, 0.82 * r, 0.9 * r, 0.8 * r, 1.2 * bw, 1.05 * bw])
    return np.stack([v, h], 1)


def _head_point(p: Mapping[str, Any], along: float, up: float, side: float) -> np.ndarray:
    """``along`` the head (0 back .. 1 front), ``up`` and ``side`` (+x) as fractions of the local radii."""
    ch = _head_chain(p)
    return ring_surface_point(ch, _head_radii(p), along, (up, -side))  # B = -x


def _beak_chain(p: Mapping[str, Any]) -> Chain:
    hc = _head_chain(p)
    bl = p["beak_len"]
    base = hc.points[-2]
    pieces = [Line(0.55 * bl, 4), Bend(0.45 * bl, np.radians(p["beak_droop_deg"]), (0.0, 0.0, -1.0), 3)]
    return walk(base, hc.frames[-1], pieces)


def _beak_radii(p: Mapping[str, Any], chain: Chain) -> np.ndarray:
    s = chain.station / 2.0  # 0 base .. 1 tip
    bh, bw = 0.5 * p["beak_h"], 0.5 * p["beak_w"]
    tip_w = p["beak_tip_w"]
    v = bh * np.interp(s, [0.0, 0.15, 0.6, 1.0], [1.0, 0.9, 0.55, 0.18])
    h = bw * np.interp(s, [0.0, 0.15, 0.6, 1.0], [1.0, 0.95, 0.4 + 0.5 * tip_w, 0.15 + 0.6 * tip_w])
    return np.stack([v, h], 1)


def _crest_chain(p: Mapping[str, Any]) -> Chain:
    """A feather crest rising from the crown, up and back, in the symmetry plane."""
    hc = _head_chain(p)
    base = _head_point(p, 0.4, 0.8, 0.0)
    a = np.radians(p["crest_deg"])  # from straight up towards the back
    F = hc.frames[0]
    T = np.cos(a) * F[:, 1] - np.sin(a) * F[:, 0]
    return walk(base, frame(T, F[:, 0]), [Line(p["crest_len"], 4)])


def _crest_radii(p: Mapping[str, Any]) -> np.ndarray:
    w = np.array([0.8, 1.0, 0.8, 0.5, 0.2]) * p["head_r"] * 0.6
    return np.stack([w, np.full(5, 0.12 * p["head_r"])], 1)


# ---- wings ---------------------------------------------------------------------------------------------------------
def _wing_frame(p: Mapping[str, Any], side: str) -> np.ndarray:
    """The left-built wing's frame (T span, N leading edge, B = T x N ventral) for ``side``'s pose."""
    f = p["pose"][side]["spread"]
    spread = rotation_z(np.radians(p["pose"][side]["flap_deg"])) @ frame((1.0, 0.0, 0.12), (0.0, 0.0, 1.0))
    roll = np.radians(p["fold_roll_deg"])
    dorsal = np.array([np.sin(roll), np.cos(roll), 0.0])
    back = np.array([0.0, -0.18, -1.0])
    folded = frame(back, np.cross(-dorsal, back))  # B = -dorsal (ventral side in), N = B x T
    return _pitch(p) @ slerp(folded, spread, f)


def _wing_geom(p: Mapping[str, Any], side: str) -> tuple[Chain, np.ndarray, np.ndarray]:
    f = p["pose"][side]["spread"]
    F = _wing_frame(p, side)
    span = p["wing_len"] * (0.6 + 0.4 * f)
    root = (1.0 - f) * _body_point(p, 0.35, 0.25, 1.0) + f * _body_point(p, 0.3, 0.35, 0.45)
    ch = walk(root, F, [Line(span * (b - a), 1) for a, b in zip(_WING_S[:-1], _WING_S[1:])])
    s = _WING_S
    c0 = p["wing_chord"] * (0.7 + 0.3 * f)  # a folded wing is narrower (its feathers overlap)
    tip = p["wing_tip"]
    chord = c0 * np.interp(s, [0.0, 0.1, 0.45, 0.75, 1.0], [0.8, 1.0, 0.95, 0.55 + 0.3 * tip, 0.12 + 0.25 * tip])
    thick = chord * np.interp(s, [0.0, 0.2, 1.0], [0.35, 0.17, 0.12]) * p["wing_thick"]
    sweep = p["wing_sweep"] * c0 * np.clip((s - 0.4) / 0.6, 0.0, 1.0) ** 2
    # the leading edge runs straight to the wrist, then sweeps back; ring centres sit half a chord behind it
    offs = np.stack([0.5 * c0 - sweep - 0.5 * chord, np.zeros_like(s)], 1)
    return ch, np.stack([0.5 * chord, 0.5 * thick], 1), offs


# ---- tail ---------------------------------------------------------------------------------------------------------
def _tail_chain(p: Mapping[str, Any]) -> Chain:
    base = _body_point(p, -0.78, 0.2, 0.0)
    fwd, up = _body_axes(p)
    a = np.radians(p["tail_pitch_deg"])
    back = axis_angle((1.0, 0.0, 0.0), -a) @ -fwd  # tail pitch > 0 lifts the tail
    return walk(base, frame(back, up), [Line(p["tail_len"], 7)])


def _tail_radii(p: Mapping[str, Any]) -> np.ndarray:
    s = np.linspace(0.0, 1.0, 8)
    w = p["tail_w"] * np.interp(s, [0.0, 0.3, 1.0], [1.0, 1.0, p["tail_fan"]])
    t = p["tail_w"] * np.interp(s, [0.0, 0.3, 1.0], [0.6, 0.3, 0.16])
    return np.stack([t, w], 1)


# ---- legs and feet ------------------------------------------------------------------------------------------------
def _hip(p: Mapping[str, Any]) -> np.ndarray:
    return _body_point(p, -0.05, -0.45, 0.5)


def _leg_geom(p: Mapping[str, Any], side: str) -> tuple[Chain, np.ndarray]:
    """The left-built leg for ``side``'s pose: hip ring (station 1), knee ring (2.5), foot end (4)."""
    swing, knee = p["pose"][side]["leg"]
    r = p["leg_r"]
    lk = 3.0 * r
    back = np.radians(swing + 0.5 * knee)
    F0 = rotation_z(np.radians(p["leg_splay_deg"])) @ rotation_x(back) @ frame((0.0, -1.0, 0.0), (0.0, 0.0, 1.0))
    a, b = p["tibia_len"], p["tarsus_len"]
    pieces = [
        Line(1.5 * r, 1),
        Line(a - 0.5 * lk, 5),
        Bend(lk, np.radians(knee), (0.0, 0.0, 1.0), 4),  # the shank swings forward (towards +N)
        Line(b - 0.5 * lk, 5),
    ]
    hip = _hip(p)
    ch = walk(hip - 1.5 * r * F0[:, 0], F0, pieces)
    knots = [0.0, 1.0, 1.7, 2.0, 2.5, 3.0, 4.0]
    radius = np.interp(ch.station, knots, [2.2 * r, 2.4 * r, 1.6 * r, 1.05 * r, r, 0.85 * r, 0.8 * r])
    return ch, radius


def _foot_chains(p: Mapping[str, Any], side: str) -> list[Chain]:
    """Three toes from the end of the left-built leg: forward along the leg's +N turned towards -T, spread."""
    ch, radius = _leg_geom(p, side)
    F = ch.frames[-1]
    curl = np.radians(p["pose"][side]["toe_curl_deg"])
    fwd = axis_angle(F[:, 2], np.pi / 2 - curl) @ F  # T -> towards +N
    toes = []
    for ang in (-p["toe_spread_deg"], 0.0, p["toe_spread_deg"]):
        Ft = axis_angle(fwd[:, 1], np.radians(ang)) @ fwd  # spread about the foot's normal
        start = ch.end - 0.3 * radius[-1] * Ft[:, 0]
        toes.append(walk(start, Ft, [Line(p["toe_len"] * (0.85 if ang else 1.0), 4)]))
    return toes


def _toe_radii(p: Mapping[str, Any]) -> np.ndarray:
    return p["leg_r"] * np.array([0.85, 0.75, 0.65, 0.5, 0.35])


class BirdFamily(ProceduralFamily):
    name = "bird"
    description = "birds (songbird, duck, gull, heron proportions) perched or flying, wings folded or spread"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("wing_end_left", "wing_left", lambda p: _wing_tip(p), "left", "2/1"),
        KeypointDef(
            "mouth_corner_left",
            "beak",
            lambda p: ring_surface_point(_beak_chain(p), _beak_radii(p, _beak_chain(p)), 0.6, (0.0, -1.0)),
            "left",
            "5/4",
        ),
        KeypointDef("eye_left", "head", lambda p: _head_point(p, 0.62, 0.35, 0.92), "left", "8/7"),
        KeypointDef(
            "foot_left",
            "foot_left",
            lambda p: ring_surface_point(_foot_chains(p, "left")[1], _toe_radii(p), 0.5, (0.0, -1.0)),
            "left",
            "11/10",
        ),
        KeypointDef(
            "knee_left",
            "leg_left",
            lambda p: ring_surface_point(*_leg_geom(p, "left"), 2.5, (0.0, -1.0)),
            "left",
            "13/12",
        ),
        KeypointDef("hip_left", "body", lambda p: _body_point(p, -0.05, -0.2, 0.98), "left", "15/14"),
        KeypointDef(
            "beak_tip",
            "beak",
            lambda p: _beak_chain(p).end + 0.05 * p["beak_len"] * _beak_chain(p).frames[-1][:, 0],
            "center",
            "-",
        ),
        KeypointDef("crown", "head", lambda p: _head_point(p, 0.45, 1.0, 0.0), "center", "-"),
        KeypointDef("breast", "body", lambda p: _body_point(p, 0.6, -0.75, 0.0), "center", "-"),
        KeypointDef("back", "body", lambda p: _body_point(p, -0.2, 1.0, 0.0), "center", "-"),
        KeypointDef(
            "tail_tip",
            "tail",
            lambda p: _tail_chain(p).end + 0.06 * p["tail_len"] * _tail_chain(p).frames[-1][:, 0],
            "center",
            "-",
        ),
    ]
    group_defs = [
        ["wing_end_left", "wing_end_right"],
        ["foot_left", "foot_right"],
        ["knee_left", "knee_right"],
        ["hip_left", "hip_right"],
    ]

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        flying = bool(rng.random() < 0.35)
        L = u(0.09, 0.45)
        ry = L * u(0.24, 0.32)
        head_len = L * u(0.34, 0.5)
        head_r = head_len * u(0.32, 0.42)
        leg_len = L * 0.35 * float(np.exp(u(0.0, np.log(1.1 / 0.35))))  # log-uniform: most birds short-legged
        pose: dict[str, Any] = {}
        for s in ("left", "right"):
            spread_fly, spread_rest = u(0.8, 1.0), u(0.0, 0.12)
            swing_fly, swing_rest = u(25.0, 40.0), u(-15.0, 15.0)
            knee_fly, knee_rest = u(115.0, 135.0), u(15.0, 70.0)  # flying: folded under the belly
            pose[s] = {
                "spread": spread_fly if flying else spread_rest,
                "flap_deg": u(-25.0, 45.0),
                "leg": [swing_fly if flying else swing_rest, knee_fly if flying else knee_rest],
                "toe_curl_deg": u(40.0, 80.0) if flying else u(-5.0, 10.0),
            }
        beak_h = head_r * u(0.5, 1.0)
        p: dict[str, Any] = {
            "flying": flying,
            "body_len": L,
            "body_ry": ry,
            "body_rx": ry * u(0.8, 1.0),
            "body_pitch_deg": u(-6.0, 8.0) if flying else u(0.0, 40.0),
            "neck_len": L * 0.15 * float(np.exp(u(0.0, np.log(0.8 / 0.15)))),  # log-uniform, herons rarer
            "neck_r": head_r * u(0.8, 1.0),
            "neck_deg": u(0.0, 30.0) if flying else u(35.0, 85.0),  # flying birds stretch the neck forward
            "neck_bend1_deg": u(-40.0, 20.0),
            "neck_bend2_deg": u(-20.0, 45.0),
            "head_len": head_len,
            "head_r": head_r,
            "head_pitch_deg": u(-20.0, 20.0),
            "beak_len": head_len * u(0.35, 2.0),
            "beak_h": beak_h,
            "beak_w": beak_h * u(0.8, 1.6),
            "beak_tip_w": u(0.0, 1.0),
            "beak_droop_deg": u(-5.0, 30.0),
            "wing_len": L * u(0.8, 1.3),
            "wing_chord": L * u(0.32, 0.5),
            "wing_tip": u(0.0, 1.0),
            "wing_sweep": u(0.0, 0.5),
            "wing_thick": u(0.8, 1.2),
            "fold_roll_deg": u(70.0, 85.0),
            "tail_len": L * u(0.25, 0.6),
            "tail_w": ry * u(0.45, 0.8),
            "tail_fan": u(1.0, 2.2) if flying else u(0.9, 1.4),
            "tail_pitch_deg": u(-10.0, 25.0),
            "tibia_len": 0.45 * leg_len,
            "tarsus_len": 0.55 * leg_len,
            "leg_r": L * u(0.032, 0.045),
            "leg_splay_deg": u(0.0, 8.0),
            "toe_len": L * u(0.12, 0.25),
            "toe_spread_deg": u(20.0, 35.0),
            "crest": bool(rng.random() < 0.25),
            "crest_len": head_r * u(0.8, 2.0),
            "crest_deg": u(20.0, 70.0),
            "pose": pose,
        }
        return p

    def template_params(self) -> dict[str, Any]:
        L = 0.25
        return {
            "flying": False, "body_len": L, "body_ry": 0.0625, "body_rx": 0.056, "body_pitch_deg": 15.0,
            "neck_len": 0.1, "neck_r": 0.028, "neck_deg": 55.0, "neck_bend1_deg": -10.0, "neck_bend2_deg": 10.0,
            "head_len": 0.09, "head_r": 0.034, "head_pitch_deg": 0.0, "beak_len": 0.07, "beak_h": 0.026,
            "beak_w": 0.03, "beak_tip_w": 0.5, "beak_droop_deg": 10.0, "wing_len": 0.35, "wing_chord": 0.1,
            "wing_tip": 0.5, "wing_sweep": 0.25, "wing_thick": 1.0, "fold_roll_deg": 78.0, "tail_len": 0.13,
            "tail_w": 0.04, "tail_fan": 1.2, "tail_pitch_deg": 5.0, "tibia_len": 0.09, "tarsus_len": 0.11,
            "leg_r": 0.007, "leg_splay_deg": 4.0, "toe_len": 0.045, "toe_spread_deg": 28.0, "crest": True,
            "crest_len": 0.045, "crest_deg": 45.0,
            "pose": {s: {"spread": 0.5, "flap_deg": 0.0, "leg": [0.0, 40.0], "toe_curl_deg": 0.0}
                     for s in ("left", "right")},
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        left = params["pose"]["left"]
        out["pose"] = {"left": left, "right": {k: (list(v) if isinstance(v, list) else v) for k, v in left.items()}}
        return out

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        return bool(params["crest"]) if name == "crest" else True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "body":
            ch = _body_chain(p)
            ext = 0.5 * p["body_len"] * (1.0 - _BODY_T[-1]) + 0.04 * p["body_len"]
            return loft(ch, _body_radii(p), 24, start_ext=ext, end_ext=ext)
        if name == "neck":
            ch = _neck_chain(p)
            r = p["neck_r"] * np.interp(ch.station, [0.0, 1.0, 4.0], [1.5, 1.2, 0.95])
            return loft(ch, r, 16)
        if name == "head":
            ch = _head_chain(p)
            return loft(ch, _head_radii(p), 20, start_ext=0.08 * p["head_len"])
        if name == "beak":
            ch = _beak_chain(p)
            return loft(ch, _beak_radii(p, ch), 16, end_ext=0.05 * p["beak_len"])
        if name == "wing_left":
            ch, radii, offs = _wing_geom(p, side)
            return loft(ch, radii, _WING_SEG, offs, end_ext=0.06 * p["wing_len"])
        if name == "tail":
            ch = _tail_chain(p)
            return loft(ch, _tail_radii(p), 20, end_ext=0.06 * p["tail_len"])
        if name == "leg_left":
            ch, r = _leg_geom(p, side)
            return loft(ch, r, 12, end_ext=0.5 * r[-1])
        if name == "foot_left":
            r = _toe_radii(p)
            return concat([loft(t, r, 8, end_ext=0.6 * r[-1]) for t in _foot_chains(p, side)])
        if name == "crest":
            return loft(_crest_chain(p), _crest_radii(p), 12, end_ext=0.1 * p["crest_len"])
        raise KeyError(f"bird: no part builder for slot {name!r}")


def _wing_tip(p: Mapping[str, Any]) -> np.ndarray:
    ch, _, offs = _wing_geom(p, "left")
    F = ch.frames[-1]
    return ch.end + offs[-1, 0] * F[:, 1] + 0.06 * p["wing_len"] * F[:, 0]
