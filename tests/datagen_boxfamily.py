"""A tiny procedural family of fixed topology for the datagen tests: a table made of boxes.

Slots: a top, four legs and an optional shelf (so some pixels have no counterpart). Every slot is a 12-triangle
box; instances differ by axis scales and offsets only, so barycentric keypoints stay on the same spot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import trimesh

from datagen.families import base

_BOX = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
_BOX_V = np.asarray(_BOX.vertices, np.float64)  # unit cube centred at 0
_BOX_F = np.asarray(_BOX.faces, np.int32)

LEGS = ("leg_front_left", "leg_front_right", "leg_back_left", "leg_back_right")


def _locate(point: np.ndarray, normal_axis: int, sign: float) -> tuple[int, tuple[float, float, float]]:
    """(face, barycentrics) of a point on the unit box's face with outward normal ``sign * e_axis``."""
    tri = _BOX_V[_BOX_F]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    for f in np.flatnonzero(np.sign(n[:, normal_axis]) == sign):
        b = trimesh.triangles.points_to_barycentric(tri[f : f + 1], point[None])[0]
        if (b >= -1e-9).all():
            return int(f), tuple(float(x) for x in b)
    raise ValueError(point)


def _kp(name: str, slot: str, point, axis: int, sign: float) -> base.KeypointSpec:
    f, b = _locate(np.asarray(point, np.float64), axis, sign)
    side = "left" if "left" in name else "right" if "right" in name else "center"
    return base.KeypointSpec(name, slot, f, b, side)


class BoxTableFamily(base.Family):
    name = "boxtable"
    description = "test family: a table of boxes"
    slots = (
        base.SlotSpec("top", 12, "top"),
        base.SlotSpec("leg_front_left", 12, "leg", "left"),
        base.SlotSpec("leg_front_right", 12, "leg", "right"),
        base.SlotSpec("leg_back_left", 12, "leg", "left"),
        base.SlotSpec("leg_back_right", 12, "leg", "right"),
        base.SlotSpec("shelf", 12, "shelf"),
    )
    keypoints = (
        _kp("top_front_left", "top", (0.4, 0.5, 0.4), 1, 1.0),
        _kp("top_front_right", "top", (-0.4, 0.5, 0.4), 1, 1.0),
        _kp("top_back_left", "top", (0.4, 0.5, -0.4), 1, 1.0),
        _kp("top_back_right", "top", (-0.4, 0.5, -0.4), 1, 1.0),
        _kp("top_front_center", "top", (0.05, 0.2, 0.5), 2, 1.0),
        _kp("foot_front_left", "leg_front_left", (0.1, -0.2, 0.5), 2, 1.0),
        _kp("foot_front_right", "leg_front_right", (-0.1, -0.2, 0.5), 2, 1.0),
    )
    symmetric_groups = ((0, 1, 2, 3), (5, 6))

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "width": float(rng.uniform(0.8, 1.4)),
            "depth": float(rng.uniform(0.5, 0.9)),
            "height": float(rng.uniform(0.6, 0.9)),
            "top_thickness": float(rng.uniform(0.03, 0.08)),
            "leg": float(rng.uniform(0.05, 0.09)),
            "shelf": bool(rng.random() < 0.5),
            "shelf_height": float(rng.uniform(0.15, 0.4)),
        }

    def build(self, params: Mapping[str, Any], instance_id: str) -> base.Instance:
        w, d, h = params["width"], params["depth"], params["height"]
        t, leg = params["top_thickness"], params["leg"]
        parts = {"top": ((0.0, h - t / 2, 0.0), (w, t, d))}
        for name in LEGS:
            sx = 1.0 if "left" in name else -1.0
            sz = 1.0 if "front" in name else -1.0
            parts[name] = ((sx * (w / 2 - leg), (h - t) / 2, sz * (d / 2 - leg)), (leg, h - t, leg))
        if params["shelf"]:
            parts["shelf"] = ((0.0, params["shelf_height"], 0.0), (w - 2 * leg, 0.02, d - 2 * leg))
        V, F, S, L = [], [], [], []
        for slot, (center, size) in parts.items():
            V.append(_BOX_V * np.asarray(size) + np.asarray(center))
            F.append(_BOX_F + 8 * (len(V) - 1))
            S.append(np.full(12, self.slot_index(slot), np.int32))
            L.append(np.arange(12, dtype=np.int32))
        return base.Instance(
            category=self.name,
            instance_id=instance_id,
            params=dict(params),
            vertices=np.concatenate(V),
            faces=np.concatenate(F).astype(np.int32),
            face_slot=np.concatenate(S),
            face_local=np.concatenate(L),
            material_groups=dict.fromkeys(LEGS, "legs"),
        )
