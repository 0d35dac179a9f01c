"""A hand-crafted baseline: nearest-neighbour matching of dense SIFT descriptors (in the spirit of SIFT Flow).

Upright OpenCV SIFT descriptors are computed on a regular grid of keypoints (every ``step`` px, at one or more
keypoint sizes, concatenated) in both images; every grid point of one image takes its nearest neighbour among
the other image's grid points (cosine similarity of RootSIFT descriptors, or L2 on plain SIFT), refined to
sub-grid precision by a parabola through the neighbouring similarities. The coarse field is upsampled
bilinearly to every pixel. Confidence comes from Lowe's ratio test: ``conf = 1 − d1 / d2`` with ``d1`` the
descriptor distance to the best match and ``d2`` to the best one more than ``exclude`` grid steps away from it
(neighbouring grid points describe overlapping patches, so the runner-up must be another place).

The matcher answers the semantic matcher's call (docs/interfaces.md §5)::

    out = DenseSiftMatcher()(images)      # images float [B, 2, 3, H, W] in [0, 1]
    out["grid"]  # float [B, 2, H, W, 2] px: grid[:, 0] maps frame-0 pixels into frame 1, grid[:, 1] the reverse
    out["conf"]  # float [B, 2, H, W] in (0, 1);  out["conf_logit"] its logit
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DenseSiftMatcher", "dense_sift"]

_EPS = 1e-4


def _grid_centres(length: int, step: int) -> np.ndarray:
    """Grid coordinates along one axis: evenly spaced every ``step`` px, centred in the image."""
    n = max(1, (length - 1) // step + 1)
    offset = (length - 1 - (n - 1) * step) / 2.0
    return offset + step * np.arange(n, dtype=np.float64)


def _octave_code(size: float) -> int:
    """OpenCV's packed ``KeyPoint.octave`` (octave in the low byte, layer in the next) of the scale-space level
    whose blur matches a keypoint of this size (``size = 2 * 1.6 * 2**(octave + layer / 3)``). Describing a large
    keypoint on its own octave reads a downsampled image: the same descriptor at a fraction of the cost (a size-32
    keypoint on the full-resolution base level is about 40x slower)."""
    level = float(np.log2(max(size, 3.2) / 3.2))
    octave = int(np.floor(level))
    layer = int(round(3 * (level - octave)))
    if layer == 3:
        octave, layer = octave + 1, 0
    return (octave & 255) | (layer << 8)


def dense_sift(
    gray: np.ndarray, step: int, sizes: Sequence[float], root: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upright SIFT descriptors on a regular grid.

    Args:
        gray: uint8 [H, W] image.
        step: grid spacing, px.
        sizes: OpenCV keypoint sizes (diameters of the described region, px); descriptors are concatenated.
        root: RootSIFT (L1-normalise, square root), so the dot product is the Hellinger kernel.

    Returns:
        ``(xs [Wg], ys [Hg], desc float32 [Hg * Wg, 128 * len(sizes)])`` (rows of ``desc`` are row-major over
        the grid), each descriptor L2-normalised.
    """
    h, w = gray.shape
    xs, ys = _grid_centres(w, step), _grid_centres(h, step)
    sift = cv2.SIFT_create()
    blocks = []
    for size in sizes:
        octave = _octave_code(float(size))
        kps = [cv2.KeyPoint(float(x), float(y), float(size), -1, 0, octave) for y in ys for x in xs]
        out_kps, desc = sift.compute(gray, kps)
        if desc is None or len(out_kps) != len(kps):
            raise RuntimeError(f"OpenCV SIFT dropped grid keypoints ({len(kps)} asked, {len(out_kps or [])} given)")
        desc = desc.astype(np.float32)
        if root:
            desc = np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12))
        blocks.append(desc / np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-12))
    desc = np.concatenate(blocks, axis=1) / np.sqrt(len(sizes))
    return xs, ys, desc


def _parabola_offset(lo: np.ndarray, mid: np.ndarray, hi: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Sub-sample offset in [-0.5, 0.5] of the peak of the parabola through three equally spaced scores."""
    curv = lo - 2.0 * mid + hi
    ok = inner & (curv < 0)
    return np.where(ok, np.clip(0.5 * (lo - hi) / np.where(ok, curv, -1.0), -0.5, 0.5), 0.0)


def _to_gray(image: torch.Tensor) -> np.ndarray:
    """float [3, H, W] in [0, 1] -> uint8 [H, W]."""
    rgb = (image.detach().float().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


class DenseSiftMatcher:
    """Dense SIFT + nearest neighbour, with the semantic matcher's output format.

    Args:
        step: grid spacing in px (4 is denser and about 3x slower than 8).
        sizes: keypoint sizes in px; several sizes give a multi-scale descriptor.
        metric: ``"cosine"`` (RootSIFT, Hellinger) or ``"l2"`` (plain SIFT, Euclidean).
        subpixel: refine each match with a parabola through the neighbouring grid similarities.
        chunk: source grid points matched per block (bounds the similarity matrix's memory).
        exclude: the ratio test's runner-up is the best match more than this many grid steps from the winner.
    """

    def __init__(
        self,
        step: int = 8,
        sizes: Sequence[float] = (8.0, 16.0, 32.0),
        metric: str = "cosine",
        subpixel: bool = True,
        chunk: int = 4096,
        exclude: int = 2,
    ) -> None:
        if metric not in ("cosine", "l2"):
            raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")
        if step < 1 or not sizes:
            raise ValueError("step must be >= 1 and at least one keypoint size is needed")
        self.step, self.sizes, self.metric, self.subpixel = int(step), tuple(sizes), metric, subpixel
        self.chunk, self.exclude = chunk, int(exclude)

    def __repr__(self) -> str:
        return f"DenseSiftMatcher(step={self.step}, sizes={self.sizes}, metric={self.metric!r})"

    def _match(self, src: tuple, trg: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Coarse field of one direction: target (x, y) float [Hs, Ws, 2] and confidence [Hs, Ws]."""
        xs0, ys0, desc0 = src
        xs1, ys1, desc1 = trg
        hg1, wg1 = len(ys1), len(xs1)
        t0, t1 = torch.from_numpy(desc0), torch.from_numpy(desc1)
        grid_r = torch.arange(hg1 * wg1) // wg1
        grid_c = torch.arange(hg1 * wg1) % wg1
        best_xy, conf = [], []
        for start in range(0, len(t0), self.chunk):
            q = t0[start : start + self.chunk]
            if self.metric == "cosine":
                score = q @ t1.T
            else:
                score = -torch.cdist(q, t1)
            best, idx = score.max(dim=1)
            # Lowe's ratio against the best match outside the winner's neighbourhood: adjacent grid points of a
            # dense grid describe overlapping patches, so the runner-up must be a different place in the image
            r_all, c_all = idx // wg1, idx % wg1
            near = ((grid_r[None] - r_all[:, None]).abs() <= self.exclude) & (
                (grid_c[None] - c_all[:, None]).abs() <= self.exclude
            )
            second = score.masked_fill(near, float("-inf")).max(dim=1).values
            if self.metric == "cosine":  # unit vectors: |a - b|^2 = 2 - 2 a.b
                dist1, dist2 = (torch.sqrt(torch.clamp(2.0 - 2.0 * v, min=0.0)) for v in (best, second))
            else:
                dist1, dist2 = -best, -second
            ratio = torch.where(torch.isfinite(dist2), dist1 / dist2.clamp(min=1e-9), torch.zeros_like(dist1))
            ratio = ratio.clamp(0, 1)
            r, c = r_all.numpy(), c_all.numpy()
            x, y = xs1[c].copy(), ys1[r].copy()
            if self.subpixel:
                s = score.numpy()
                rows = np.arange(len(idx))

                def at(rr: np.ndarray, cc: np.ndarray, s=s, rows=rows) -> np.ndarray:
                    return s[rows, rr * wg1 + cc]

                mid = at(r, c)
                left, right = at(r, np.clip(c - 1, 0, wg1 - 1)), at(r, np.clip(c + 1, 0, wg1 - 1))
                up, down = at(np.clip(r - 1, 0, hg1 - 1), c), at(np.clip(r + 1, 0, hg1 - 1), c)
                x += _parabola_offset(left, mid, right, (c > 0) & (c < wg1 - 1)) * self.step
                y += _parabola_offset(up, mid, down, (r > 0) & (r < hg1 - 1)) * self.step
            best_xy.append(np.stack([x, y], axis=1))
            conf.append((1.0 - ratio).numpy())
        grid = np.concatenate(best_xy).reshape(len(ys0), len(xs0), 2)
        return grid, np.concatenate(conf).reshape(len(ys0), len(xs0))

    def _upsample(self, coarse: np.ndarray, xs: np.ndarray, ys: np.ndarray, h: int, w: int) -> torch.Tensor:
        """Bilinear interpolation of a field sampled at grid points (xs, ys) to every pixel: [C, H, W]."""
        field = torch.from_numpy(np.ascontiguousarray(coarse, np.float32)).reshape(len(ys), len(xs), -1)
        field = field.permute(2, 0, 1)[None]  # [1, C, Hg, Wg]
        px = torch.arange(w, dtype=torch.float32)
        py = torch.arange(h, dtype=torch.float32)
        # grid point k sits at xs[0] + k * step; align_corners=True puts index 0 at -1 and Wg - 1 at +1
        gx = (px - float(xs[0])) / max(float(xs[-1] - xs[0]), 1e-6) * 2 - 1 if len(xs) > 1 else torch.zeros(w)
        gy = (py - float(ys[0])) / max(float(ys[-1] - ys[0]), 1e-6) * 2 - 1 if len(ys) > 1 else torch.zeros(h)
        yy, xx = torch.meshgrid(gy, gx, indexing="ij")
        sample_at = torch.stack([xx, yy], dim=-1)[None]
        return F.grid_sample(field, sample_at, mode="bilinear", padding_mode="border", align_corners=True)[0]

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Match both directions of every pair.

        Args:
            images: float [B, 2, 3, H, W] in [0, 1].

        Returns:
            ``grid`` float [B, 2, H, W, 2] px, ``conf`` and ``conf_logit`` float [B, 2, H, W].
        """
        if images.ndim != 5 or images.shape[1] != 2 or images.shape[2] != 3:
            raise ValueError(f"images must be [B, 2, 3, H, W], got {tuple(images.shape)}")
        b, _, _, h, w = images.shape
        grids, confs = [], []
        for i in range(b):
            feats = [dense_sift(_to_gray(images[i, v]), self.step, self.sizes, self.metric == "cosine") for v in (0, 1)]
            pair_grid, pair_conf = [], []
            for src, trg in ((0, 1), (1, 0)):
                coarse, conf = self._match(feats[src], feats[trg])
                xs, ys = feats[src][0], feats[src][1]
                pair_grid.append(self._upsample(coarse, xs, ys, h, w).permute(1, 2, 0))
                pair_conf.append(self._upsample(conf[..., None], xs, ys, h, w)[0])
            grids.append(torch.stack(pair_grid))
            confs.append(torch.stack(pair_conf))
        grid = torch.stack(grids).to(images.device)
        conf = torch.stack(confs).clamp(_EPS, 1 - _EPS).to(images.device)
        return {"grid": grid, "conf": conf, "conf_logit": torch.logit(conf)}

    def eval(self) -> DenseSiftMatcher:  # the evaluation code treats every matcher like a torch module
        return self

    def to(self, *args, **kwargs) -> DenseSiftMatcher:
        return self
