"""Rendered-looking pair samples without a renderer, for benchmarks, tests and demos (not geometry).

:func:`synthetic_pair` builds a schema sample whose dense fields look like a rendered view's (an elliptic body with a
seam-separated part, occluded, out-of-frame and no-counterpart areas, a projective correspondence map, a smooth
depth), so encoding and decoding it costs what a rendered pair costs; ``photo=True`` gives the images a photo-like
texture (the JPEG size and decode cost of real photographs). ``scripts/bench_loaders.py`` times the loader on them.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from loaders.schema import SCHEMA_VERSION, Status

__all__ = ["synthetic_pair"]


def _photo_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [h, w, 3] multi-scale noise: JPEGs of photo-like size (~170 KB at 518², q95) and decode cost."""
    acc = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((4, 60), (16, 40), (64, 25), (160, 14), (518, 2)):
        noise = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        acc += amp * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + acc, 0, 255).astype(np.uint8)


def _view(size: int, rng: np.random.Generator, other: int, photo: bool = False) -> dict[str, np.ndarray]:
    """Dense fields of one rendered-looking view: an elliptic body with a seam-separated part, occluded and
    out-of-frame areas, a projective correspondence map and a smooth depth."""
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy, ax, ay = rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h, 0.35 * w, 0.33 * h
    body = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
    legs = (np.abs((xx - cx) % (0.25 * w) - 0.12 * w) < 0.02 * w) & (yy > cy) & (yy < cy + 0.45 * h)
    status = np.where(body | legs, Status.MATCHED, Status.BACKGROUND).astype(np.uint8)
    a = rng.uniform(0.8, 1.2, 4) * [1, 0.1, 0.1, 1]
    den = 1 + 3e-4 * (xx - cx) + 2e-4 * (yy - cy)
    corr_x = (a[0] * (xx - cx) + a[1] * (yy - cy)) / den + other * 0.5
    corr_y = (a[2] * (xx - cx) + a[3] * (yy - cy)) / den + other * 0.5
    part = body & (yy < cy - 0.1 * h) & (xx > cx)
    corr_x[part] += 23.5
    corr_y[part] -= 11.25
    corr = np.stack([corr_x, corr_y], -1).astype(np.float32)
    status[body & (xx < cx - 0.2 * w) & (yy < cy)] = Status.OCCLUDED
    lo, hi = -0.5, other - 0.5
    outside = (corr[..., 0] < lo) | (corr[..., 0] >= hi) | (corr[..., 1] < lo) | (corr[..., 1] >= hi)
    status[(status > 0) & outside] = Status.OUTSIDE
    status[body & (np.abs(xx - cx) < 0.03 * w) & (yy > cy + 0.1 * h)] = Status.NO_COUNTERPART
    corr[~np.isin(status, [1, 2, 3])] = np.nan
    depth = np.where(status > 0, 2.0 + 0.3 * np.sin(xx / 60) + 0.2 * yy / h + 0.3 * legs, 0).astype(np.float32)
    if photo:
        image = _photo_texture(h, w, rng)
    else:
        shade = np.clip(80 + 120 * np.cos(xx / 90) * np.sin(yy / 70) + rng.normal(0, 6, (h, w)), 0, 255)
        image = np.where((status > 0)[..., None], np.stack([shade, shade * 0.8, shade * 0.6], -1), 235)
    return {"status": status, "corr": corr, "depth": depth, "image": image.astype(np.uint8)}


def synthetic_pair(size: int, rng: np.random.Generator, key: str, photo: bool = False) -> dict[str, Any]:
    """A schema sample that looks like a rendered ``size``² pair (for benchmarks; not geometry); ``photo``
    gives the images a photo-like texture (JPEG size and decode cost of real photographs)."""
    v0, v1 = _view(size, rng, size, photo), _view(size, rng, size, photo)
    names = [f"kp{i}" for i in range(12)]
    sample = {
        "__key__": key,
        "image0": v0["image"],
        "image1": v1["image"],
        "status_0to1": v0["status"],
        "status_1to0": v1["status"],
        "corr_0to1": v0["corr"],
        "corr_1to0": v1["corr"],
        "depth0": v0["depth"],
        "depth1": v1["depth"],
        "kps0": rng.uniform(0, size - 1, (12, 2)).astype(np.float32),
        "kps1": rng.uniform(0, size - 1, (12, 2)).astype(np.float32),
        "kps0_vis": np.ones(12, bool),
        "kps1_vis": np.ones(12, bool),
        "meta": {
            "schema_version": SCHEMA_VERSION,
            "source": "procedural",
            "category": "bench",
            "image_size0": [size, size],
            "image_size1": [size, size],
            "keypoint_names": names,
            "flip_perm": list(range(12)),
        },
    }
    for v in (0, 1):
        sample[f"K{v}"] = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], np.float32)
        sample[f"T_cam{v}_from_world"] = np.eye(4, dtype=np.float32)
    return sample
