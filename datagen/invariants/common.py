"""Small helpers shared by the checks: cameras of a sample, projection, unprojection, the two directions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["DIRECTIONS", "project", "unproject_pixels", "unproject_points", "cams", "object_extent_px"]

# (view a, view b, field name) of the two directions of a pair
DIRECTIONS = ((0, 1, "0to1"), (1, 0, "1to0"))


def project(points: np.ndarray, K: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels [N, 2] and z-depths [N] of world points [N, 3] (K [3, 3], T_cam_from_world [4, 4])."""
    cam = points @ T[:3, :3].T + T[:3, 3]
    z = cam[:, 2]
    zs = np.where(np.abs(z) < 1e-12, 1e-12, z)
    return (cam[:, :2] / zs[:, None]) @ K[:2, :2].T + K[:2, 2], z


def unproject_points(xy: np.ndarray, depth: np.ndarray, K: np.ndarray, T: np.ndarray) -> np.ndarray:
    """World points [N, 3] at pixels ``xy`` [N, 2] (float) with z-depths ``depth`` [N] (metres)."""
    h = np.concatenate([np.asarray(xy, np.float64), np.ones((len(xy), 1))], axis=1) @ np.linalg.inv(K).T
    cam = h * np.asarray(depth, np.float64)[:, None]
    return (cam - T[:3, 3]) @ T[:3, :3]


def unproject_pixels(pix: np.ndarray, width: int, depth: np.ndarray, K: np.ndarray, T: np.ndarray) -> np.ndarray:
    """World points [N, 3] at the centres of row-major pixel indices ``pix`` [N] with z-depths ``depth`` [N]."""
    xy = np.stack([pix % width, pix // width], axis=1).astype(np.float64)
    return unproject_points(xy, depth, K, T)


def cams(sample: Mapping[str, Any], v: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, T_cam_from_world) of view ``v`` as float64."""
    return np.asarray(sample[f"K{v}"], np.float64), np.asarray(sample[f"T_cam{v}_from_world"], np.float64)


def object_extent_px(sample: Mapping[str, Any], v: int) -> float:
    """The longer side (pixels) of the object's bounding box in view ``v``: of the whole object's projection where
    the generator recorded it (``meta["views"][v]["object_box"]``: it includes what a truncated view cuts off and
    what occluders hide, which the mask does not), else of the mask where there is one, else of the visible
    keypoints, else of the image."""
    views = sample["meta"].get("views")
    if isinstance(views, list) and v < len(views) and isinstance(views[v], dict) and views[v].get("object_box"):
        x0, y0, x1, y1 = views[v]["object_box"]
        return float(max(x1 - x0, y1 - y0))
    mask = sample.get(f"mask{v}")
    if mask is not None and np.asarray(mask).any():
        ys, xs = np.nonzero(mask)
        return float(max(np.ptp(xs) + 1, np.ptp(ys) + 1))
    vis = np.asarray(sample.get(f"kps{v}_vis", []), bool)
    if vis.sum() >= 2:
        kp = np.asarray(sample[f"kps{v}"], np.float64)[vis]
        return float(max(np.ptp(kp[:, 0]), np.ptp(kp[:, 1]), 1.0))
    h, w = sample["meta"][f"image_size{v}"]
    return float(max(h, w))
