"""Keypoint-exact augmentation of real pairs, built on the loaders' pair transforms.

Geometry goes through :func:`loaders.warp.warp_view` (images, masks and keypoints move through one affine map per
view, keypoints leaving the frame become invisible) and :func:`loaders.transforms.hflip` (a mirror permutes the
keypoint ids by ``meta.flip_perm``, so the left eye stays the left eye). This module adds what real pairs need on
top: bounding boxes (``meta.bbox0``/``bbox1``) carried through every map, and the choice of flips a pair allows
(a single view only when the dataset defines a flip permutation, otherwise both views together).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from loaders.augment import random_affine_matrix
from loaders.raster import jitter_image
from loaders.transforms import hflip, view_size
from loaders.warp import affine_hflip, affine_resize, warp_view

__all__ = ["AugmentConfig", "fit_longest_side", "augment_pair", "transform_bbox"]


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of a real pair (every draw from the sample's generator).

    Attributes:
        size: output views are ``size x size`` (the random affine covers the square, then crops).
        flip_p: probability of mirroring each view (independently when a flip permutation exists).
        scale: log-uniform zoom range on top of the scale that makes a view cover the square.
        rotate_deg: rotation range ``± rotate_deg``.
        translate: centre shift range, fraction of the output size.
        jitter: brightness / contrast / saturation factors drawn in ``1 ± jitter`` (per view).
        hue: hue shift range ``± hue`` of a turn.
    """

    size: int = 518
    flip_p: float = 0.5
    scale: tuple[float, float] = (1.0, 1.3)
    rotate_deg: float = 10.0
    translate: float = 0.05
    jitter: float = 0.2
    hue: float = 0.02

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transform_bbox(bbox: list[float] | None, A: np.ndarray, out_hw: tuple[int, int]) -> list[float] | None:
    """The axis-aligned box of a mapped box (``x1, y1, x2, y2`` through affine ``A``), clipped to the frame;
    ``None`` when the box leaves the frame entirely."""
    if bbox is None:
        return None
    x1, y1, x2, y2 = bbox
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64) @ A[:2, :2].T + A[:2, 2]
    lo = np.maximum(corners.min(0), -0.5)
    hi = np.minimum(corners.max(0), np.array([out_hw[1], out_hw[0]]) - 0.5)
    if (hi <= lo).any():
        return None
    return [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]


def _warp(sample: dict[str, Any], view: int, A: np.ndarray, out_hw: tuple[int, int]) -> dict[str, Any]:
    out = warp_view(sample, view, A, out_hw)
    meta = dict(out["meta"])
    meta[f"bbox{view}"] = transform_bbox(meta.get(f"bbox{view}"), A, out_hw)
    out["meta"] = meta
    return out


def _flip(sample: dict[str, Any], views: tuple[int, ...]) -> dict[str, Any]:
    widths = {v: view_size(sample, v)[1] for v in views}
    out = hflip(sample, views)
    meta = dict(out["meta"])
    for v in views:
        meta[f"bbox{v}"] = transform_bbox(meta.get(f"bbox{v}"), affine_hflip(widths[v]), view_size(out, v))
    out["meta"] = meta
    return out


def fit_longest_side(sample: dict[str, Any], size: int) -> dict[str, Any]:
    """Resize each view (aspect kept) so its longer side is ``size`` px."""
    out = sample
    for v in (0, 1):
        h, w = view_size(out, v)
        s = size / max(h, w)
        hw = (max(1, round(h * s)), max(1, round(w * s)))
        if hw != (h, w):
            out = _warp(out, v, affine_resize((h, w), hw), hw)
    return out


def augment_pair(sample: dict[str, Any], rng: np.random.Generator, cfg: AugmentConfig) -> dict[str, Any]:
    """One random augmented copy of a real pair: flips, zoom / rotation / shift onto ``size x size``, colour jitter.

    A view is mirrored with probability ``flip_p``, independently per view when ``meta.flip_perm`` exists;
    without one (PF-PASCAL) both views are mirrored together, which keeps anonymous keypoint ids consistent.
    """
    out = dict(sample)
    if out["meta"].get("flip_perm") is not None or not out["meta"].get("keypoint_names"):
        views = tuple(v for v in (0, 1) if rng.random() < cfg.flip_p)
    else:
        views = (0, 1) if rng.random() < cfg.flip_p else ()
    if views:
        out = _flip(out, views)
    hw = (cfg.size, cfg.size)
    for v in (0, 1):
        A = random_affine_matrix(rng, view_size(out, v), hw, cfg.scale, cfg.rotate_deg, cfg.translate)
        out = _warp(out, v, A, hw)
    for v in (0, 1):
        b, c, s = (1 + rng.uniform(-cfg.jitter, cfg.jitter) for _ in range(3))
        hue = rng.uniform(-cfg.hue, cfg.hue) if cfg.hue > 0 else 0.0
        out[f"image{v}"] = jitter_image(out[f"image{v}"], b, c, s, hue)
    meta = dict(out["meta"])
    meta["augment"] = {**cfg.to_dict(), "flipped_views": list(views)}
    out["meta"] = meta
    return out
