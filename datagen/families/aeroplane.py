"""Aeroplanes: airliners, regional and light aircraft — fuselage, swept tapered wings with dihedral, tailplane, fin,
0-2 engines per wing, landing gear down or retracted.

Build frame: the nose points to +z, y up, the pilot's left wing is +x. ``build`` puts the lowest point (wheels,
or the belly / nacelles with the gear up) on y = 0 and centres the bounding box in z.

Slots (fixed order; * = optional): fuselage (a loft of circles with a rising tail cone); wing_{left,right};
tailplane_{left,right} (horizontal stabilisers); fin (vertical stabiliser); engines, count-tagged per wing*:
``engine_n1_{left,right}`` (one engine per wing), ``engine_n2_{left,right}_{inner,outer}`` (two per wing), each a
nacelle with its pylon; gear_front*, gear_{left,right}* (strut and wheel, present together).

Keypoints with the SPair-71k aeroplane index (names from the GeoAware-SC / 3D-SC keypoint tables; SPair lists the
right one of each pair first: 4 right, 5 left, ...):
    nose [0], cockpit [1], forehead [2] (fuselage top behind the cockpit), landing_gear_front [3],
    landing_gear_{left,right} [5, 4], engine fronts [7, 6] and backs [11, 10] (``engine_n1_front_left``,
    ``engine_n2_inner_front_left``, ``engine_n2_outer_front_left`` ... all map to SPair's engine_front_left),
    wing_end_{left,right} [9, 8] (tip), wing_foot_front_{left,right} [13, 12], wing_foot_back_{left,right}
    [15, 14] (the wing root's leading / trailing edge where it leaves the fuselage), tailplane_end [17, 16],
    tailplane_foot_front [19, 18], tailplane_foot_back [21, 20], stabilizer_vertical_foot [22] (fin root leading
    edge), stabilizer_vertical_end [23] (fin tip), rear [24] (tail cone end).
Symmetric groups follow GeoAware's ``SPAIR_GEO_AWARE['aeroplane']`` (left/right pairs), with the engine fronts
(backs) of all engine slots in one group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import (
    PartMesh,
    airfoil_profile,
    concat,
    lathe,
    place_rings,
    rotation_x,
    sweep,
    tube,
)
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["AeroplaneFamily"]

_FUS_SEG = 32
_FOIL_SEG = 24
_WING_ST = 8
_ROT_Y_TO_X = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
_ROT_Y_TO_Z = rotation_x(np.pi / 2)

_SLOTS = [
    SlotDef("fuselage", "fuselage", "fuselage"),
    SlotDef("wing_left", "wing", "wings", "left"),
    SlotDef("wing_right", "wing", "wings", "right"),
    SlotDef("tailplane_left", "tailplane", "tail", "left"),
    SlotDef("tailplane_right", "tailplane", "tail", "right"),
    SlotDef("fin", "fin", "tail"),
    SlotDef("engine_n1_left", "engine", "engines", "left", True),
    SlotDef("engine_n1_right", "engine", "engines", "right", True),
    SlotDef("engine_n2_left_inner", "engine", "engines", "left", True),
    SlotDef("engine_n2_right_inner", "engine", "engines", "right", True),
    SlotDef("engine_n2_left_outer", "engine", "engines", "left", True),
    SlotDef("engine_n2_right_outer", "engine", "engines", "right", True),
    SlotDef("gear_front", "gear", "gear", "center", True),
    SlotDef("gear_left", "gear", "gear", "left", True),
    SlotDef("gear_right", "gear", "gear", "right", True),
]


# ---- fuselage ------------------------------------------------------------------------------------------
def _fus_stations(p: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(z, centre y, radius) from the tail to the nose (the fuselage axis is y = 0)."""
    L, R = p["length"], p["radius"]
    zt, zn = -L / 2, L / 2
    tail = p["tail_frac"] * L
    nose = p["nose_frac"] * L
    rise = p["tail_rise"] * R
    st = []
    for t in np.linspace(0.0, 1.0, 5)[:-1]:  # tail cone: centre rises, radius shrinks towards the tail end
        s = 1 - t
        st.append((zt + t * tail, rise * s**1.3, R * (0.12 + 0.88 * (1 - s**1.6))))
    st += [(zt + tail, 0.0, R), (zn - nose, 0.0, R)]
    for t in np.linspace(0.0, 1.0, 6)[1:-1]:  # nose: an ogive, slightly drooping
        st.append((zn - nose + t * nose, -0.15 * R * t, R * np.sqrt(max(1 - t**2, 0.0)) * 0.96 + 0.04 * R))
    return st


def _fus_radius_at(p: Mapping[str, Any], z: float) -> tuple[float, float]:
    st = _fus_stations(p)
    zs = [s[0] for s in st]
    return float(np.interp(z, zs, [s[1] for s in st])), float(np.interp(z, zs, [s[2] for s in st]))


def _fus_ends(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Tail and nose apex points."""
    st = _fus_stations(p)
    return np.array([0.0, st[0][1] + 0.02 * p["radius"], -p["length"] / 2 - 0.02 * p["radius"]]), np.array(
        [0.0, st[-1][1] - 0.02 * p["radius"], p["length"] / 2]
    )


# ---- lifting surfaces ------------------------------------------------------------------------------------------
def _surface_stations(p: Mapping[str, Any], which: str) -> tuple[np.ndarray, np.ndarray]:
    """Spine points [S, 3] (chord mid points) and chords [S] of the left wing / left tailplane / fin."""
    R = p["radius"]
    if which == "wing":
        y0, half, c0 = p["wing_y"] * R, p["span"] / 2, p["wing_chord"]
        z_le0 = p["wing_z"] * p["length"] + c0 / 2
        taper, sweep_deg, dihedral = p["wing_taper"], p["wing_sweep_deg"], p["dihedral_deg"]
    elif which == "tailplane":
        y0, half, c0 = p["tail_y"] * R, p["tail_span"] / 2, p["tail_chord"]
        z_le0 = -p["length"] / 2 + p["tail_frac"] * p["length"] * 0.55 + c0 / 2
        taper, sweep_deg, dihedral = 0.55, p["wing_sweep_deg"] + 5.0, p["dihedral_deg"] * 0.5
    else:  # fin: the spine runs up (+y) from inside the fuselage
        c0 = p["fin_chord"]
        z_le0 = -p["length"] / 2 + p["tail_frac"] * p["length"] * 0.75 + c0 / 2
        yc, rz = _fus_radius_at(p, z_le0 - c0 / 2)
        y_exit = yc + 1.03 * rz
        y = np.concatenate([[yc + 0.3 * rz], y_exit + p["fin_h"] * np.linspace(0.0, 1.0, _WING_ST - 1)])
        t = np.clip((y - y_exit) / p["fin_h"], 0.0, 1.0)
        chord = c0 * (1 - (1 - 0.45) * t)
        z_le = z_le0 - np.tan(np.radians(p["fin_sweep_deg"])) * (y - y_exit)
        pts = np.stack([np.zeros_like(y), y, z_le - chord / 2], 1)
        return pts, chord
    # wing / tailplane: root inside the fuselage, station 1 just outside it, then out to the tip
    yc, rz = _fus_radius_at(p, z_le0 - c0 / 2)
    exit_x = np.sqrt(max(rz**2 - (y0 - yc) ** 2, (0.3 * rz) ** 2)) * 1.03
    xs = np.concatenate([[0.3 * exit_x, exit_x], exit_x + (half - exit_x) * np.linspace(0.0, 1.0, _WING_ST - 1)[1:]])
    t = np.clip((xs - exit_x) / (half - exit_x), 0.0, 1.0)
    chord = c0 * (1 - (1 - taper) * t)
    z_le = z_le0 - np.tan(np.radians(sweep_deg)) * (xs - exit_x)
    y = y0 + np.tan(np.radians(dihedral)) * (xs - exit_x)
    return np.stack([xs, y, z_le - chord / 2], 1), chord


def _surface(p: Mapping[str, Any], which: str) -> PartMesh:
    pts, chord = _surface_stations(p, which)
    th = {"wing": p["wing_thickness"], "tailplane": 0.1, "fin": 0.1}[which]
    prof = np.stack([airfoil_profile(_FOIL_SEG, c, th) for c in chord])  # (u along the chord, v thickness)
    up = (0.0, 0.0, 1.0)  # N = +z (chord direction, leading edge at +u), B = T x N
    return sweep(place_rings(pts, prof, up))


def _le_te(p: Mapping[str, Any], which: str, station: int) -> tuple[np.ndarray, np.ndarray]:
    pts, chord = _surface_stations(p, which)
    return pts[station] + [0, 0, chord[station] / 2], pts[station] - [0, 0, chord[station] / 2]


# ---- engines and gear ------------------------------------------------------------------------------------------
def _engine_xs(p: Mapping[str, Any], slot: str) -> float:
    """Span position (x) of the left engine in slot ``slot``."""
    half = p["span"] / 2
    if slot.startswith("engine_n1"):
        return half * p["engine_pos"]
    x = half * (p["engine_pos"] * 0.75 if slot.endswith("inner") else min(p["engine_pos"] * 0.75 + 0.25, 0.72))
    return max(x, p["radius"] + 1.5 * p["engine_r"])


def _engine_geom(p: Mapping[str, Any], slot: str) -> tuple[np.ndarray, float, float]:
    """(centre, radius, length) of a left engine nacelle, hung below and ahead of the wing."""
    x = _engine_xs(p, slot)
    pts, chord = _surface_stations(p, "wing")
    y_w = float(np.interp(x, pts[:, 0], pts[:, 1]))
    z_mid = float(np.interp(x, pts[:, 0], pts[:, 2]))
    c = float(np.interp(x, pts[:, 0], chord))
    r = p["engine_r"]
    length = p["engine_len"] * r
    centre = np.array([x, y_w - 0.08 * c - 1.15 * r, z_mid + c / 2 - 0.05 * length])  # intake ahead of the wing
    return centre, r, length


def _engine(p: Mapping[str, Any], slot: str) -> PartMesh:
    centre, r, length = _engine_geom(p, slot)
    hs = np.array([-0.5, -0.42, -0.2, 0.25, 0.45, 0.5]) * length
    radii = np.array([0.55, 0.75, 0.95, 1.0, 0.98, 0.9]) * r
    nacelle = lathe(radii, hs, 24).transformed(_ROT_Y_TO_Z, centre)
    pts, chord = _surface_stations(p, "wing")
    y_w = float(np.interp(centre[0], pts[:, 0], pts[:, 1]))
    z_mid = float(np.interp(centre[0], pts[:, 0], pts[:, 2]))
    pylon_pts = np.array(
        [[centre[0], centre[1] + 0.7 * r, centre[2] + 0.1 * length], [centre[0], y_w, z_mid + 0.1 * length]]
    )
    pylon = tube(pylon_pts, np.array([[0.12 * r, 0.35 * length]]), 8, up=(0.0, 0.0, 1.0))
    return concat([nacelle, pylon])


def _engine_ends(p: Mapping[str, Any], slot: str) -> tuple[np.ndarray, np.ndarray]:
    centre, _, length = _engine_geom(p, slot)
    return centre + [0, 0, 0.5 * length], centre - [0, 0, 0.5 * length]


def _gear_geom(p: Mapping[str, Any], front: bool) -> tuple[np.ndarray, float]:
    """(wheel centre, wheel radius) of the front gear / the left main gear."""
    R = p["radius"]
    wr = p["gear_wheel"] * R
    drop = p["gear_drop"] * R
    if front:
        return np.array([0.0, -R - drop, p["length"] / 2 - p["nose_frac"] * p["length"] * 1.2]), wr
    z = p["wing_z"] * p["length"] - 0.1 * p["wing_chord"]
    return np.array([0.55 * R, -R - drop, z]), wr


def _gear(p: Mapping[str, Any], front: bool) -> PartMesh:
    c, wr = _gear_geom(p, front)
    w = 0.7 * wr
    hs = np.array([-0.5, -0.4, -0.25, 0.0, 0.25, 0.4, 0.5]) * w
    radii = np.array([0.55, 0.9, 1.0, 1.0, 1.0, 0.9, 0.55]) * wr
    wheel = lathe(radii, hs, 16).transformed(_ROT_Y_TO_X, c)
    top = c + [0.0, wr + 0.8 * p["radius"] + p["gear_drop"] * p["radius"], 0.0]
    strut = tube(np.stack([top, 0.5 * (top + c), c + [0.0, 0.3 * wr, 0.0]]), 0.18 * wr, 8, up=(0.0, 0.0, 1.0))
    return concat([wheel, strut])


def _gear_contact(p: Mapping[str, Any], front: bool) -> np.ndarray:
    c, wr = _gear_geom(p, front)
    return c - [0.0, wr, 0.0]


class AeroplaneFamily(ProceduralFamily):
    name = "aeroplane"
    description = "aeroplanes: airliners to light aircraft, swept wings, 0-2 engines per wing, gear up or down"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("nose", "fuselage", lambda p: _fus_ends(p)[1], "center", "0"),
        KeypointDef(
            "cockpit",
            "fuselage",
            lambda p: (0.0, 0.75 * p["radius"], (0.5 - 0.55 * p["nose_frac"]) * p["length"]),
            "center",
            "1",
        ),
        KeypointDef(
            "forehead",
            "fuselage",
            lambda p: (0.0, p["radius"], p["length"] / 2 - 1.1 * p["nose_frac"] * p["length"]),
            "center",
            "2",
        ),
        KeypointDef("landing_gear_front", "gear_front", lambda p: _gear_contact(p, True), "center", "3"),
        KeypointDef("landing_gear_left", "gear_left", lambda p: _gear_contact(p, False), "left", "5/4"),
        KeypointDef(
            "engine_n1_front_left", "engine_n1_left", lambda p: _engine_ends(p, "engine_n1_left")[0], "left", "7/6"
        ),
        KeypointDef(
            "engine_n1_back_left", "engine_n1_left", lambda p: _engine_ends(p, "engine_n1_left")[1], "left", "11/10"
        ),
        KeypointDef(
            "engine_n2_inner_front_left",
            "engine_n2_left_inner",
            lambda p: _engine_ends(p, "engine_n2_left_inner")[0],
            "left",
            "7/6",
        ),
        KeypointDef(
            "engine_n2_inner_back_left",
            "engine_n2_left_inner",
            lambda p: _engine_ends(p, "engine_n2_left_inner")[1],
            "left",
            "11/10",
        ),
        KeypointDef(
            "engine_n2_outer_front_left",
            "engine_n2_left_outer",
            lambda p: _engine_ends(p, "engine_n2_left_outer")[0],
            "left",
            "7/6",
        ),
        KeypointDef(
            "engine_n2_outer_back_left",
            "engine_n2_left_outer",
            lambda p: _engine_ends(p, "engine_n2_left_outer")[1],
            "left",
            "11/10",
        ),
        KeypointDef("wing_end_left", "wing_left", lambda p: _surface_stations(p, "wing")[0][-1], "left", "9/8"),
        KeypointDef("wing_foot_front_left", "wing_left", lambda p: _le_te(p, "wing", 1)[0], "left", "13/12"),
        KeypointDef("wing_foot_back_left", "wing_left", lambda p: _le_te(p, "wing", 1)[1], "left", "15/14"),
        KeypointDef(
            "tailplane_end_left", "tailplane_left", lambda p: _surface_stations(p, "tailplane")[0][-1], "left", "17/16"
        ),
        KeypointDef(
            "tailplane_foot_front_left", "tailplane_left", lambda p: _le_te(p, "tailplane", 1)[0], "left", "19/18"
        ),
        KeypointDef(
            "tailplane_foot_back_left", "tailplane_left", lambda p: _le_te(p, "tailplane", 1)[1], "left", "21/20"
        ),
        KeypointDef("stabilizer_vertical_foot", "fin", lambda p: _le_te(p, "fin", 1)[0], "center", "22"),
        KeypointDef("stabilizer_vertical_end", "fin", lambda p: _surface_stations(p, "fin")[0][-1], "center", "23"),
        KeypointDef("rear", "fuselage", lambda p: _fus_ends(p)[0], "center", "24"),
    ]
    group_defs = [
        ["landing_gear_left", "landing_gear_right"],
        ["engine_n1_front_left", "engine_n1_front_right", "engine_n2_inner_front_left", "engine_n2_inner_front_right",
         "engine_n2_outer_front_left", "engine_n2_outer_front_right"],
        ["wing_end_left", "wing_end_right"],
        ["engine_n1_back_left", "engine_n1_back_right", "engine_n2_inner_back_left", "engine_n2_inner_back_right",
         "engine_n2_outer_back_left", "engine_n2_outer_back_right"],
        ["wing_foot_front_left", "wing_foot_front_right"],
        ["wing_foot_back_left", "wing_foot_back_right"],
        ["tailplane_end_left", "tailplane_end_right"],
        ["tailplane_foot_front_left", "tailplane_foot_front_right"],
        ["tailplane_foot_back_left", "tailplane_foot_back_right"],
    ]  # fmt: skip

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        length = float(np.exp(rng.uniform(np.log(8.0), np.log(45.0))))
        radius = length * u(0.042, 0.065)
        span = length * u(0.85, 1.3)
        p: dict[str, Any] = {
            "n_engines": int(rng.integers(0, 3)),
            "gear_down": bool(rng.random() < 0.5),
            "length": length,
            "radius": radius,
            "nose_frac": u(0.07, 0.13),
            "tail_frac": u(0.2, 0.3),
            "tail_rise": u(0.3, 0.75),
            "span": span,
            "wing_chord": length * u(0.1, 0.18),
            "wing_taper": u(0.25, 0.6),
            "wing_sweep_deg": u(0.0, 35.0),
            "dihedral_deg": u(0.0, 7.0),
            "wing_y": u(-0.6, 0.6),
            "wing_z": u(-0.02, 0.12),
            "wing_thickness": u(0.09, 0.15),
            "tail_span": span * u(0.3, 0.42),
            "tail_chord": length * u(0.06, 0.1),
            "tail_y": u(0.0, 0.5),
            "fin_h": radius * u(1.6, 2.8),
            "fin_chord": length * u(0.09, 0.15),
            "fin_sweep_deg": u(25.0, 50.0),
            "engine_r": radius * u(0.32, 0.5),
            "engine_len": u(2.6, 4.0),
            "engine_pos": u(0.3, 0.42),
            "gear_wheel": u(0.2, 0.3),
            "gear_drop": u(0.35, 0.6),
        }
        return p

    def template_params(self) -> dict[str, Any]:
        return {
            "n_engines": 2, "gear_down": True, "length": 30.0, "radius": 1.6, "nose_frac": 0.1, "tail_frac": 0.25,
            "tail_rise": 0.5, "span": 30.0, "wing_chord": 4.2, "wing_taper": 0.4, "wing_sweep_deg": 25.0,
            "dihedral_deg": 4.0, "wing_y": -0.3, "wing_z": 0.05, "wing_thickness": 0.12, "tail_span": 11.0,
            "tail_chord": 2.4, "tail_y": 0.2, "fin_h": 3.5, "fin_chord": 3.6, "fin_sweep_deg": 35.0,
            "engine_r": 0.7, "engine_len": 3.2, "engine_pos": 0.36, "gear_wheel": 0.25, "gear_drop": 0.45,
        }  # fmt: skip

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name.startswith("engine_n"):
            return int(name.split("_")[1][1:]) == params["n_engines"]
        if name.startswith("gear_"):
            return bool(params["gear_down"])
        return True

    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "fuselage":
            t = 2.0 * np.pi * np.arange(_FUS_SEG) / _FUS_SEG
            rings = np.stack(
                [
                    np.stack([r * np.cos(t), yc + r * np.sin(t), np.full(_FUS_SEG, z)], 1)
                    for z, yc, r in _fus_stations(p)
                ]
            )
            tail, nose = _fus_ends(p)
            return sweep(rings, True, True, tail, nose)
        if name == "wing_left":
            return _surface(p, "wing")
        if name == "tailplane_left":
            return _surface(p, "tailplane")
        if name == "fin":
            return _surface(p, "fin")
        if name.startswith("engine_n"):
            return _engine(p, name)
        if name == "gear_front":
            return _gear(p, True)
        if name == "gear_left":
            return _gear(p, False)
        raise KeyError(f"aeroplane: no part builder for slot {name!r}")
