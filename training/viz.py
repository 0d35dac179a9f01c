"""Pictures of dense matches: lines between sampled points, the warped image, the confidence map.

:func:`match_figure` lays out, for a pair A (view 0) and B (view 1) and the predicted field A -> B:

* top: A and B side by side, with lines from points sampled on a grid over A to where the field sends them in B;
  each point's colour encodes its position in A (red grows to the right, green downwards), so a correct match
  shows the same smooth colour layout on both sides, and a left/right swap shows up as a colour jump;
  line opacity follows the confidence;
* bottom: B warped into A's frame by the field (``B(corr_0to1(p))``), a checkerboard of A and that warp (the
  squares line up where the match is right), and the confidence map of A -> B.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["position_colours", "warp_into", "checkerboard", "match_figure", "save_match_picture"]


def position_colours(xy: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """float [N, 3] RGB in [0, 1] for points ``xy`` [N, 2] of an ``(H, W)`` image: red = x, green = y."""
    h, w = hw
    r = np.clip(xy[:, 0] / max(w - 1, 1), 0, 1)
    g = np.clip(xy[:, 1] / max(h - 1, 1), 0, 1)
    b = 1.0 - 0.5 * (r + g)
    return np.stack([0.15 + 0.85 * r, 0.15 + 0.85 * g, 0.15 + 0.85 * b], -1)


def warp_into(image1: np.ndarray, corr_0to1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image1`` resampled at ``corr_0to1`` (float [H0, W0, 2] px in image 1): uint8 [H0, W0, 3] and bool [H0, W0]
    (the point falls inside image 1)."""
    maps = np.asarray(corr_0to1, np.float32)
    warped = cv2.remap(image1, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    h1, w1 = image1.shape[:2]
    inside = (maps[..., 0] >= -0.5) & (maps[..., 0] < w1 - 0.5) & (maps[..., 1] >= -0.5) & (maps[..., 1] < h1 - 0.5)
    return warped, inside


def checkerboard(a: np.ndarray, b: np.ndarray, cells: int = 8) -> np.ndarray:
    """Alternate squares of two same-size images (``cells`` squares along the longer side)."""
    h, w = a.shape[:2]
    side = max(1, max(h, w) // cells)
    yy, xx = np.mgrid[0:h, 0:w]
    pick = ((yy // side + xx // side) % 2).astype(bool)
    return np.where(pick[..., None], b, a)


def _grid_points(hw: tuple[int, int], n: int) -> np.ndarray:
    h, w = hw
    k = max(2, int(round(np.sqrt(n * w / h))))
    m = max(2, int(round(n / k)))
    xs = (np.arange(k) + 0.5) * w / k - 0.5
    ys = (np.arange(m) + 0.5) * h / m - 0.5
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


def match_figure(
    image0: np.ndarray,
    image1: np.ndarray,
    corr_0to1: np.ndarray,
    conf0: np.ndarray | None = None,
    n_points: int = 80,
    title: str = "",
):
    """The figure described in the module docstring (a matplotlib ``Figure``).

    Args:
        image0, image1: uint8 [H, W, 3] images A and B.
        corr_0to1: float [H0, W0, 2]: for each pixel of A, its match in B (px).
        conf0: float [H0, W0] in [0, 1], confidence of A -> B (optional).
        n_points: about this many grid points are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h0, w0 = image0.shape[:2]
    h1, w1 = image1.shape[:2]
    canvas = np.full((max(h0, h1), w0 + w1, 3), 255, np.uint8)
    canvas[:h0, :w0], canvas[:h1, w0:] = image0, image1
    pts = _grid_points((h0, w0), n_points)
    ij = np.clip(np.rint(pts).astype(int), 0, [w0 - 1, h0 - 1])
    dst = corr_0to1[ij[:, 1], ij[:, 0]]
    conf = np.ones(len(pts)) if conf0 is None else conf0[ij[:, 1], ij[:, 0]]
    colours = position_colours(pts, (h0, w0))
    inside = (dst[:, 0] >= 0) & (dst[:, 0] <= w1 - 1) & (dst[:, 1] >= 0) & (dst[:, 1] <= h1 - 1)

    fig = plt.figure(figsize=(11, 8.2), dpi=110)
    top = fig.add_axes((0.02, 0.41, 0.96, 0.54))
    top.imshow(canvas)
    lo, hi = float(conf.min()), float(conf.max())
    for p, q, c, k, ok in zip(pts, dst, colours, conf, inside):
        alpha = 0.25 + 0.75 * ((k - lo) / (hi - lo) if hi > lo else 1.0)
        top.scatter([p[0]], [p[1]], s=18, color=c, edgecolors="k", linewidths=0.4, zorder=3)
        if ok:
            top.plot([p[0], q[0] + w0], [p[1], q[1]], color=c, lw=1.0, alpha=alpha, zorder=2)
            top.scatter([q[0] + w0], [q[1]], s=18, color=c, edgecolors="k", linewidths=0.4, zorder=3)
    top.set_axis_off()
    top.set_title(title or "matches A -> B (colour = position in A, opacity = confidence)", fontsize=10)

    warped, valid = warp_into(image1, corr_0to1)
    warped = np.where(valid[..., None], warped, 255).astype(np.uint8)
    panels = [
        (warped, "B warped into A"),
        (checkerboard(image0, warped), "checkerboard A / warped B"),
        (None if conf0 is None else conf0, "confidence A -> B"),
    ]
    for i, (img, name) in enumerate(panels):
        ax = fig.add_axes((0.02 + i * 0.325, 0.02, 0.28, 0.36))
        if img is None:
            ax.text(0.5, 0.5, "no confidence", ha="center", va="center")
        elif img.ndim == 2:
            im = ax.imshow(img, cmap="viridis", vmin=0.0, vmax=1.0)
            cax = fig.add_axes((0.02 + i * 0.325 + 0.285, 0.06, 0.01, 0.28))
            fig.colorbar(im, cax=cax)
        else:
            ax.imshow(img)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    return fig


def save_match_picture(path: str | Path, *args, **kwargs) -> None:
    """:func:`match_figure`, written to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = match_figure(*args, **kwargs)
    fig.savefig(path)
    plt.close(fig)
