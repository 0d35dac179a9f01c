"""Known-warp checks of a dense matcher: a textured image and its affine warp, whose correspondence is exact.

Used by ``tests/training/test_sift.py`` (the dense SIFT baseline recovers known warps) and ``scripts/bench_real.py``
(its accuracy beside its speed). Images are RGB uint8 ``[H, W, 3]``; ``M`` maps view-0 pixels to view-1 pixels
(3x3, pixel centres at integer coordinates).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["edge_texture", "warped_pair"]


def edge_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random discs, boxes and strokes in random colours over grey, plus mild noise: edges everywhere."""
    import cv2

    img = np.full((h, w, 3), 127, np.uint8)
    for _ in range(h * w // 900):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.circle(img, (x, y), int(rng.integers(3, 25)), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 40)), y + int(rng.integers(4, 40))), colour, -1)
        else:
            end = (x + int(rng.integers(-40, 40)), y + int(rng.integers(-40, 40)))
            cv2.line(img, (x, y), end, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def warped_pair(big: np.ndarray, M: np.ndarray, size: int) -> torch.Tensor:
    """View 0 = the centre ``size`` x ``size`` crop of ``big`` (at least ``2 * size`` square), view 1 = ``big``
    under ``M`` (view-0 px -> view-1 px), cropped the same way.

    Returns:
        images: float [1, 2, 3, size, size] in [0, 1], the matchers' input.
    """
    import cv2

    off = size // 2
    img0 = big[off : off + size, off : off + size]
    inv = cv2.invertAffineTransform(M[:2])
    inv[:, 2] += off  # view-1 px -> big-texture px
    img1 = cv2.warpAffine(big, inv, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return torch.from_numpy(np.stack([img0, img1])).permute(0, 3, 1, 2).float().div(255)[None]
