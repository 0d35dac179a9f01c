"""Potted plants: round and square pots of varied profiles (tapered, straight, bellied, with a rim lip), soil, an
optional saucer, and one of five habits: upright leaves on stems, a bushy crown, trailing vines hanging over the
rim, a ribbed cactus (with or without two arms), a small palm (trunk and arching fronds).

Build frame: y up, metres, the pot's axis on x = z = 0. A pot is rotationally symmetric, so "front" is a convention
fixed by the plant: +z is the front (the camera at azimuth 0 looks at it), the plant's own left is +x. The foliage
is placed in left/right twins (leaf i on the left at azimuth a, its twin at -a, each with its own pose; the twins
are mirror images only after ``symmetrize``) plus centre pieces in the plane x = 0 (front and back), so the
family's frame is oriented and left/right are never confused.

Slots (fixed order; * = optional): pot (one closed surface: outer wall, rim lip, inner wall, inner floor), soil,
saucer*; per habit (present only on plants of that habit): leaf_front*, leaf_back*, leaf_{left,right}_{1,2,3}*
(stem and blade); bush_top*, bush_{left,right}_{1,2}*; vine_front*, vine_back*, vine_{left,right}_{1,2}* (stem with
four small leaves); cactus_column*, cactus_arm_{left,right}*; palm_trunk*, frond_front*, frond_back*,
frond_{left,right}_{1,2,3}*. Habits keep fixed counts and vary sizes and poses (no count-tagged repeats): a leaf of
an upright plant corresponds to the leaf in the same place on another upright plant, and foliage of different
habits has no counterpart.

GT exactness: the pot's rings are :func:`parts.rounded_rect_profile` at canonical angles (point j at 2 pi j / n
from +z towards +x), so a round pot and a square one correspond point by point (a square pot's corner is at 45
degrees); every ring sits at a fixed fraction of the pot's height or at a fixed feature (foot bevel, lip, rim,
inner wall); leaves are closed lofts of flattened ellipses (a blade 1.5-3 mm thick) with rings at fixed fractions
of the midrib, so thin blades stay exact.

Keypoints (SPair-71k pottedplant, 9 ids). Sources: GeoAware-SC ``utils_geoware.py``: ``SPAIR_GEO_AWARE`` comment
"0123 top, 45 side_wall, 68 bottom" (7 alone), ``SPAIR_LR`` = [R, C, L, C, R, L, R, C, L], ``SPAIR_FLIP`` pairs
(0, 2), (4, 5), (6, 8). SPair annotates the pot only: four points of the rim (its left and right extremes and two
centre points, the near and far sides of the rim's ellipse), the side wall's left and right, and the base's left,
right and one centre point (the near one; the far side of the base is hidden in photographs). Uncertain: which of
ids 1 and 3 is the far (back) rim point: we take 1 = back, 3 = front (ids go right, back, left, front round the
rim); and, as in the other families, SPair's "left" as the object's own left (+x). Names and ids (left / right):
    rim_{left,right} [2, 0], rim_back [1], rim_front [3] (on the rim's flat top, a third of the way in from its
    outer edge), wall_{left,right} [5, 4] (outer wall at mid height), base_{left,right} [8, 6], base_front [7] (the
    outer wall just above the foot bevel); extra (not in SPair): soil_center. Each sits on a vertex whose first face
    is the surface it names (the rim's top, the wall), not the face across a crease: on the lip's outer edge the
    back rim point would be read from the lip's outer side, which faces away from a camera looking down at it.
Symmetric groups follow ``SPAIR_GEO_AWARE['pottedplant']``: the four rim points, the two wall points, the two base
points at the sides.

One module per family, over ~400 lines: its slots, part builders, keypoints and SPair index map are one
contract and are read together.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import comb
from typing import Any

import numpy as np

from datagen.families.base import Side
from datagen.families.parts import PartMesh, concat, ellipsoid, rounded_rect_profile, sweep, tube
from datagen.families.procedural import KeypointDef, ProceduralFamily, SlotDef, uniform

__all__ = ["PottedPlantFamily", "HABITS"]

HABITS = ("leafy", "bushy", "trailing", "cactus", "palm")
# pot ring points per quadrant -> 64 points, point 0 on +z, point 16 on +x. A pot wall seen near grazing in one view
# of a pair is read there by the cycle: 32 facets (11 degrees apart) changed its foreshortening several fold from
# facet to facet (raw cycle at 256 px, seeds 13-15: 96.5 / 96.1 / 96.6 % -> 96.8 / 96.7 / 97.4 % with 64)
_NQ = 16
_N = 4 * _NQ
_BODY_S = (0.03, 0.15, 0.3, 0.5, 0.7, 0.85, 1.0)  # fractions of the pot's wall height of the wall rings
# keypoint rings: each vertex's first face (the one a keypoint on it is read from) lies on the surface the
# keypoint names, not on the face across a crease (the lip's outer side, the downward foot bevel)
_BASE_RING = 2  # s = 0.03, just above the foot bevel
_WALL_RING = 5  # s = 0.5
_LIP_RING = 10  # the lip's outer top edge
_RIM_RING = 11  # on the rim's flat top, a third of the way in from its outer edge
_BLADE_RINGS = 9
_BLADE_SEG = 8
_RIB_SEG = 32
_N_RIBS = 8


def _foliage_slots() -> list[SlotDef]:
    out: list[SlotDef] = []

    def trio(prefix: str, part: str, material: str, n: int, front_back: bool = True) -> None:
        if front_back:
            out.append(SlotDef(f"{prefix}_front", part, material, "center", True))
            out.append(SlotDef(f"{prefix}_back", part, material, "center", True))
        for i in range(1, n + 1):
            out.append(SlotDef(f"{prefix}_left_{i}", part, material, "left", True))
            out.append(SlotDef(f"{prefix}_right_{i}", part, material, "right", True))

    trio("leaf", "leaf", "foliage", 3)
    out.append(SlotDef("bush_top", "bush", "foliage", "center", True))
    trio("bush", "bush", "foliage", 2, front_back=False)
    trio("vine", "vine", "foliage", 2)
    out.append(SlotDef("cactus_column", "cactus", "cactus", "center", True))
    out.append(SlotDef("cactus_arm_left", "cactus_arm", "cactus", "left", True))
    out.append(SlotDef("cactus_arm_right", "cactus_arm", "cactus", "right", True))
    out.append(SlotDef("palm_trunk", "trunk", "trunk", "center", True))
    trio("frond", "frond", "foliage", 3)
    return out


_SLOTS = [
    SlotDef("pot", "pot", "pot"),
    SlotDef("soil", "soil", "soil"),
    SlotDef("saucer", "saucer", "pot", "center", True),
    *_foliage_slots(),
]

_HABIT_OF = {"leaf": "leafy", "bush": "bushy", "vine": "trailing", "cactus": "cactus", "palm": "palm", "frond": "palm"}


# ---- pot ----------------------------------------------------------------------------------------------------------
def _ring(p: Mapping[str, Any], r: float, y: float) -> np.ndarray:
    """[_N, 3] pot ring of "radius" r (half side of a square pot) at height y, counter-clockwise about +y."""
    prof = rounded_rect_profile(r, r, p["corner"] * r, _NQ)  # (u, v) = (z, x)
    return np.stack([prof[:, 1], np.full(_N, y), prof[:, 0]], 1)


def _pot_y0(p: Mapping[str, Any]) -> float:
    """Height of the pot's bottom (on the saucer's floor, or the ground)."""
    return p["saucer_floor"] if p["saucer"] else 0.0


def _r_out(p: Mapping[str, Any], s: np.ndarray | float) -> np.ndarray:
    """Outer wall radius at the fraction s of the wall height (0 foot, 1 under the lip)."""
    s = np.asarray(s, np.float64)
    rt = p["r_top"]
    return p["r_bot"] + (rt - p["r_bot"]) * s + p["bulge"] * rt * np.sin(np.pi * s)


def _pot_profile(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(radii, heights) of the pot's rings, from the bottom edge round the rim to the inner floor."""
    h, y0 = p["pot_h"], _pot_y0(p)
    fb = 0.04 * h
    lip_h = p["lip_h"]
    top = h - lip_h
    s = np.array(_BODY_S)
    rs = [0.94 * float(_r_out(p, 0.0)), float(_r_out(p, 0.0))] + list(_r_out(p, s))
    ys = [0.0, fb] + list(fb + s * (top - fb))
    rt, lw, wall = p["r_top"], p["lip_w"], p["wall"]
    rs += [rt + lw, rt + lw, rt + lw - 0.35 * (lw + wall), rt - wall]
    ys += [top + 0.2 * lip_h, h, h, h]
    y_soil = h - p["soil_depth"]
    y_in = np.array([h - 0.4 * lip_h, y_soil - 0.005])
    s_in = np.clip((y_in - fb) / (top - fb), 0.0, 1.0)
    rs += list(_r_out(p, s_in) - wall)
    ys += list(y_in)
    return np.array(rs), np.array(ys) + y0


def _soil_y(p: Mapping[str, Any]) -> float:
    return _pot_y0(p) + p["pot_h"] - p["soil_depth"]


def _soil_r(p: Mapping[str, Any]) -> float:
    rs, _ = _pot_profile(p)
    return float(min(rs[-1], rs[-2])) - 0.001


def _pot_point(p: Mapping[str, Any], ring: int, angle: float) -> tuple[float, float, float]:
    rs, ys = _pot_profile(p)
    return (float(rs[ring] * np.sin(angle)), float(ys[ring]), float(rs[ring] * np.cos(angle)))


# ---- foliage --------------------------------------------------------------------------------------------------------
def _dirs(az: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal unit direction at azimuth az (from +z towards +x) and the horizontal normal to it."""
    return np.array([np.sin(az), 0.0, np.cos(az)]), np.array([np.cos(az), 0.0, -np.sin(az)])


def _blade(
    base: np.ndarray, az: float, elev: float, length: float, width: float, droop: float, thick: float
) -> PartMesh:
    """A leaf blade: a closed loft of flattened ellipses along an arching midrib from ``base`` towards azimuth
    ``az`` rising at ``elev`` (radians) and drooping by ``droop`` x length at its tip. Faces: fixed."""
    h, lat = _dirs(az)
    s = np.linspace(0.0, 1.0, _BLADE_RINGS)
    pts = (
        base[None]
        + np.outer(length * s * np.cos(elev), h)
        + np.outer(length * s * np.sin(elev) - droop * length * s**2, [0.0, 1.0, 0.0])
    )
    w = width * np.maximum(np.sin(np.pi * (0.06 + 0.88 * s)) ** 0.7, 0.08)
    radii = np.stack([0.5 * w, np.full_like(w, 0.5 * thick)], 1)
    t0 = pts[1] - pts[0]
    t1 = pts[-1] - pts[-2]
    start = pts[0] - 0.03 * length * t0 / np.linalg.norm(t0)
    end = pts[-1] + 0.05 * length * t1 / np.linalg.norm(t1)
    return tube(pts, radii, _BLADE_SEG, up=lat, start_apex=start, end_apex=end)


def _stem(a: np.ndarray, b: np.ndarray, r: float, lat: np.ndarray, n: int = 4) -> PartMesh:
    t = np.linspace(0.0, 1.0, n)
    pts = a[None] + t[:, None] * (b - a)[None]
    return tube(pts, r, 6, up=lat)


def _rib_profile(depth: float) -> np.ndarray:
    """[_RIB_SEG, 2] unit section with _N_RIBS ribs (point 0 on a rib, symmetric about its u axis)."""
    t = 2.0 * np.pi * np.arange(_RIB_SEG) / _RIB_SEG
    r = 1.0 + depth * np.cos(_N_RIBS * t)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _side_pose(p: Mapping[str, Any], side: Side) -> Mapping[str, Any]:
    return p["pose"]["right" if side == "right" else "left"]


def _leaf_index(name: str) -> int:
    return int(name.rsplit("_", 1)[1]) - 1


class PottedPlantFamily(ProceduralFamily):
    name = "pottedplant"
    description = "potted plants: round/square pots, optional saucer; upright leaves, bushy, trailing, cactus, palm"
    slot_defs = _SLOTS
    keypoint_defs = [
        KeypointDef("rim_left", "pot", lambda p: _pot_point(p, _RIM_RING, np.pi / 2), "left", "2/0"),
        KeypointDef("rim_back", "pot", lambda p: _pot_point(p, _RIM_RING, np.pi), "center", "1"),
        KeypointDef("rim_front", "pot", lambda p: _pot_point(p, _RIM_RING, 0.0), "center", "3"),
        KeypointDef("wall_left", "pot", lambda p: _pot_point(p, _WALL_RING, np.pi / 2), "left", "5/4"),
        KeypointDef("base_left", "pot", lambda p: _pot_point(p, _BASE_RING, np.pi / 2), "left", "8/6"),
        KeypointDef("base_front", "pot", lambda p: _pot_point(p, _BASE_RING, 0.0), "center", "7"),
        KeypointDef("soil_center", "soil", lambda p: (0.0, _soil_y(p) + p["mound"], 0.0), "center", "-"),
    ]
    group_defs = [
        ["rim_left", "rim_right", "rim_back", "rim_front"],
        ["wall_left", "wall_right"],
        ["base_left", "base_right"],
    ]

    # ---- parameters ---------------------------------------------------------------------------------------------
    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = lambda lo, hi: uniform(rng, lo, hi)  # noqa: E731
        habit = HABITS[int(rng.integers(0, len(HABITS)))]
        square = bool(rng.random() < 0.3)
        pot_h = u(0.1, 0.32)
        r_top = u(0.06, 0.17)
        p: dict[str, Any] = {
            "habit": habit,
            "corner": u(0.15, 0.6) if square else 1.0,
            "pot_h": pot_h,
            "r_top": r_top,
            "r_bot": r_top * u(0.6, 1.0),
            "bulge": u(-0.04, 0.14),
            "lip_h": pot_h * u(0.04, 0.14),
            "lip_w": r_top * u(0.02, 0.12),
            "wall": r_top * u(0.05, 0.1),
            "soil_depth": pot_h * u(0.05, 0.15),
            "mound": r_top * u(0.0, 0.15),
            "saucer": bool(rng.random() < 0.35),
            "saucer_h": u(0.012, 0.03),
            "saucer_over": u(1.1, 1.35),
            "saucer_floor": 0.0,
            "cactus_arms": bool(rng.random() < 0.5),
            # sizes (metres) of each habit, drawn for every plant
            "leaf_len": u(0.12, 0.35),
            "leaf_w": u(0.04, 0.1),
            "leaf_thick": u(0.0015, 0.003),
            "stem_h": u(0.05, 0.3),
            "stem_r": u(0.003, 0.006),
            "bush_h": u(0.15, 0.45),
            "bush_r": u(0.8, 1.5),
            "vine_r": u(0.006, 0.007),
            "vine_leaf": u(0.04, 0.08),
            "cactus_h": u(0.12, 0.45),
            "cactus_r": u(0.3, 0.65),
            "rib_depth": u(0.03, 0.12),
            "arm_h": u(0.35, 0.65),
            "arm_out": u(0.03, 0.08),
            "arm_up": u(0.05, 0.15),
            "arm_r": u(0.45, 0.7),
            "trunk_h": u(0.1, 0.5),
            "trunk_r": u(0.018, 0.035),
            "frond_len": u(0.25, 0.6),
            "frond_w": u(0.04, 0.1),
            "frond_droop": u(0.3, 0.8),
            "centre_elev": u(0.6, 1.3),
            "centre_droop": u(0.0, 0.5),
            "pose": {},
        }
        p["saucer_floor"] = 0.004
        for side in ("left", "right"):
            p["pose"][side] = {
                "az": [u(25, 55), u(75, 105), u(125, 155)],
                "elev": [u(0.3, 1.3) for _ in range(3)],
                "len": [u(0.7, 1.15) for _ in range(3)],
                "droop": [u(0.0, 0.6) for _ in range(3)],
                "bush_az": [u(40, 70), u(110, 140)],
                "bush_s": [u(0.6, 0.95) for _ in range(2)],
                "vine_az": [u(40, 70), u(110, 140)],
                "hang": [u(0.3, 1.1) for _ in range(2)],
            }
        return p

    def template_params(self) -> dict[str, Any]:
        pose = {
            "az": [40.0, 90.0, 140.0], "elev": [0.8, 0.8, 0.8], "len": [1.0, 1.0, 1.0], "droop": [0.3, 0.3, 0.3],
            "bush_az": [55.0, 125.0], "bush_s": [0.8, 0.8], "vine_az": [55.0, 125.0], "hang": [0.7, 0.7],
        }  # fmt: skip
        return {
            "habit": "leafy", "corner": 1.0, "pot_h": 0.2, "r_top": 0.1, "r_bot": 0.08, "bulge": 0.04,
            "lip_h": 0.018, "lip_w": 0.006, "wall": 0.007, "soil_depth": 0.02, "mound": 0.006, "saucer": True,
            "saucer_h": 0.02, "saucer_over": 1.2, "saucer_floor": 0.004, "cactus_arms": True, "leaf_len": 0.22,
            "leaf_w": 0.06, "leaf_thick": 0.002, "stem_h": 0.15, "stem_r": 0.004, "bush_h": 0.3, "bush_r": 1.1,
            "vine_r": 0.0035, "vine_leaf": 0.05, "cactus_h": 0.25, "cactus_r": 0.45, "rib_depth": 0.07,
            "arm_h": 0.5, "arm_out": 0.05, "arm_up": 0.1, "arm_r": 0.55, "trunk_h": 0.3, "trunk_r": 0.02,
            "frond_len": 0.4, "frond_w": 0.07, "frond_droop": 0.5, "centre_elev": 1.0, "centre_droop": 0.2,
            "pose": {"left": pose, "right": {k: list(v) for k, v in pose.items()}},
        }  # fmt: skip

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        left = params["pose"]["left"]
        out["pose"] = {"left": left, "right": {k: list(v) for k, v in left.items()}}
        return out

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        if name in ("pot", "soil"):
            return True
        if name == "saucer":
            return bool(params["saucer"])
        if name.startswith("cactus_arm"):
            return params["habit"] == "cactus" and bool(params["cactus_arms"])
        return params["habit"] == _HABIT_OF[name.split("_")[0]]

    # ---- meshes -------------------------------------------------------------------------------------------------
    def build_part(self, name: str, p: Mapping[str, Any], side: Side) -> PartMesh:
        if name == "pot":
            rs, ys = _pot_profile(p)
            return sweep(np.stack([_ring(p, r, y) for r, y in zip(rs, ys)]))
        if name == "soil":
            y, r = _soil_y(p), _soil_r(p)
            rings = np.stack([_ring(p, r, y - 0.004), _ring(p, r, y)])
            return sweep(rings, end_apex=np.array([0.0, y + p["mound"], 0.0]))
        if name == "saucer":
            R = float(_r_out(p, 0.0)) * p["saucer_over"] + 0.01
            t, fl = p["saucer_h"], p["saucer_floor"]
            rim = min(0.15 * R, 0.012)
            rs = [0.85 * R, R, R + 0.1 * t, R + 0.1 * t - rim, R - rim - 0.4 * t]
            ys = [0.0, 0.3 * t, t, t, fl]
            return sweep(np.stack([_ring(p, r, y) for r, y in zip(rs, ys)]))
        ys = _soil_y(p)
        sr = _soil_r(p)
        pose = _side_pose(p, side)
        if name.startswith("leaf_"):
            az, elev, ln, droop = self._spread(name, p, pose)
            h, lat = _dirs(az)
            a = np.array([0.0, ys - 0.01, 0.0]) + 0.15 * sr * h
            b = a + np.array([0.0, p["stem_h"] * (0.6 + 0.4 * ln), 0.0]) + 0.15 * sr * h
            blade = _blade(b, az, elev, p["leaf_len"] * ln, p["leaf_w"] * ln, droop, p["leaf_thick"])
            return concat([_stem(a, b + 0.01 * h, p["stem_r"], lat), blade])
        if name.startswith("frond_"):
            az, elev, ln, droop = self._spread(name, p, pose)
            h, _ = _dirs(az)
            top = np.array([0.0, ys + p["trunk_h"] - 0.01, 0.0]) + 0.3 * p["trunk_r"] * h
            d = min(0.95, p["frond_droop"] * (0.6 + 0.6 * droop))
            return _blade(top, az, 0.3 + 0.6 * elev, p["frond_len"] * ln, p["frond_w"] * ln, d, p["leaf_thick"])
        if name == "palm_trunk":
            n = 8
            s = np.linspace(0.0, 1.0, n)
            pts = np.stack([np.zeros(n), ys - 0.01 + s * p["trunk_h"], np.zeros(n)], 1)
            r = p["trunk_r"] * (1.25 - 0.35 * s)
            return tube(pts, r, 12, up=(0.0, 0.0, 1.0), end_apex=pts[-1] + [0.0, 0.4 * r[-1], 0.0])
        if name.startswith("bush_"):
            H, R = p["bush_h"], p["bush_r"] * sr
            if name == "bush_top":
                c = [0.0, ys + 0.55 * H, 0.0]
                return ellipsoid(c, [R, 0.5 * H, 0.9 * R], 8, 16)
            i = _leaf_index(name)
            az = np.radians(pose["bush_az"][i])
            k = pose["bush_s"][i]
            h, _ = _dirs(az)
            c = np.array([0.0, ys + 0.35 * H * k, 0.0]) + 0.75 * R * h
            return ellipsoid(c, [0.6 * R * k, 0.4 * H * k, 0.6 * R * k], 8, 16)
        if name.startswith("vine_"):
            if name.endswith("front") or name.endswith("back"):
                az, hang = (0.0 if name.endswith("front") else np.pi), 0.7
            else:
                i = _leaf_index(name)
                az, hang = np.radians(pose["vine_az"][i]), pose["hang"][i]
            return self._vine(p, az, hang)
        if name == "cactus_column":
            H, R = p["cactus_h"], p["cactus_r"] * sr
            s = np.linspace(0.0, 1.0, 10)
            pts = np.stack([np.zeros(10), ys - 0.01 + s * H, np.zeros(10)], 1)
            r = R * np.sqrt(np.clip(1.0 - (np.maximum(s - 0.7, 0.0) / 0.32) ** 2, 0.05, 1.0))
            prof = _rib_profile(p["rib_depth"])
            return tube(pts, r, _RIB_SEG, up=(0.0, 0.0, 1.0), profile=prof, end_apex=pts[-1] + [0.0, 0.2 * R, 0.0])
        if name == "cactus_arm_left":
            H, R = p["cactus_h"], p["cactus_r"] * sr
            ra = p["arm_r"] * R
            y0 = ys + p["arm_h"] * H
            out, up = R + p["arm_out"] + ra, p["arm_up"] + ra
            t = np.linspace(0.0, 1.0, 10)
            ang = 0.5 * np.pi * np.clip((t - 0.2) / 0.6, 0.0, 1.0)
            x = 0.5 * R + (out - 0.5 * R) * np.where(t < 0.2, t / 0.2 * 0.3, 0.3 + 0.7 * np.sin(ang))
            y = y0 + up * np.where(t < 0.2, 0.0, 1.0 - np.cos(ang)) + 0.6 * up * np.maximum(t - 0.8, 0.0) / 0.2
            pts = np.stack([x, y, np.zeros_like(t)], 1)
            r = ra * np.sqrt(np.clip(1.0 - (np.maximum(t - 0.85, 0.0) / 0.16) ** 2, 0.1, 1.0))
            prof = _rib_profile(p["rib_depth"])
            return tube(pts, r, _RIB_SEG, up=(0.0, 0.0, 1.0), profile=prof, end_apex=pts[-1] + [0.0, 0.2 * ra, 0.0])
        raise KeyError(f"pottedplant: no part builder for slot {name!r}")

    @staticmethod
    def _spread(name: str, p: Mapping[str, Any], pose: Mapping[str, Any]) -> tuple[float, float, float, float]:
        """(azimuth, elevation, length factor, droop) of a leaf or frond slot (centre ones from shared params)."""
        if name.endswith("_front") or name.endswith("_back"):
            az = 0.0 if name.endswith("_front") else np.pi
            return az, p["centre_elev"], 1.0, p["centre_droop"]
        i = _leaf_index(name)
        return np.radians(pose["az"][i]), pose["elev"][i], pose["len"][i], pose["droop"][i]

    @staticmethod
    def _vine(p: Mapping[str, Any], az: float, hang: float) -> PartMesh:
        """A trailing stem from the soil over the rim and down the outside of the pot, with four small leaves."""
        h, lat = _dirs(az)
        rs, ys_ring = _pot_profile(p)
        y_soil, sr = _soil_y(p), _soil_r(p)
        r_clear = float(rs[: _LIP_RING + 1].max()) + 0.012 + p["vine_r"]
        y_rim = float(ys_ring[_LIP_RING]) + 0.015
        drop = hang * p["pot_h"]
        ctrl = np.array(
            [
                [0.4 * sr, y_soil - 0.005],
                [0.6 * sr, y_rim],
                [r_clear, y_rim + 0.01],
                [r_clear + 0.01, y_rim - 0.4 * drop],
                [r_clear + 0.02 + 0.05 * hang, y_rim - drop],
            ]
        )
        t = np.linspace(0.0, 1.0, 14)
        # a Bezier curve through the controls (fixed parameter stations)
        n = ctrl.shape[0] - 1
        basis = np.stack([comb(n, k) * t**k * (1 - t) ** (n - k) for k in range(n + 1)], 1)
        rz = basis @ ctrl
        pts = np.outer(rz[:, 0], h) + np.outer(rz[:, 1], [0.0, 1.0, 0.0])
        stem = tube(pts, p["vine_r"], 6, up=lat)
        leaves = []
        for j, k in enumerate((5, 8, 10, 12)):
            sgn = 1.0 if j % 2 == 0 else -1.0
            laz = az + sgn * 0.9
            base = pts[k] + sgn * 0.6 * p["vine_r"] * lat
            L = p["vine_leaf"]
            leaves.append(_blade(base, laz, -0.2, L, 0.5 * L, 0.3, 0.0035))
        return concat([stem, *leaves])
