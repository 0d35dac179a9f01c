"""Rasters and the pixel operations shared by the transform stage and the batch stage.

The transforms (:mod:`loaders.warp`, :mod:`loaders.augment`) move and colour a view's pixels with :class:`Raster`
and :func:`jitter_image`; on a planned sample (:mod:`loaders.decode`) they record the same operations on
:class:`Pending` rasters instead, and the batch stage (:mod:`loaders.fused`) replays them with the same two
functions while it decodes each raster into the batch: one implementation, so both paths give the same bits.
:func:`affine_resize`, :func:`affine_translate` and :func:`affine_hflip` build the affine maps of pixel-centre
coordinates (the centre of pixel ``(row r, col c)`` is ``(x, y) = (c, r)``); :func:`scratch` lends reused
per-process buffers (one DataLoader worker = one thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = [
    "Pending",
    "NotPlannable",
    "is_pending",
    "Raster",
    "integer_path",
    "affine_resize",
    "affine_translate",
    "affine_hflip",
    "jitter_image",
    "scratch",
]


class NotPlannable(Exception):
    """The transforms need a raster's pixels (a resampling warp of a dense view): decode the sample instead."""


@dataclass(frozen=True)
class Pending:
    """A raster that is not decoded yet.

    Attributes:
        kind: ``"image"``, ``"mask_png"`` (a real pair's mask) or a dense field: ``"status"``, ``"corr"``,
            ``"valid"``, ``"depth"``, ``"mask"`` (synthetic silhouette, ``status != BACKGROUND``).
        view: the stored view it comes from (0 or 1; the dense fields of view ``v`` are direction ``v``).
        shape: the shape it has after ``ops`` (like the array's).
        ops: recorded operations, in order: ``("warp", A, in_hw, out_hw, fill, interp)`` moves the raster's own
            pixels; ``("values", A, out_hw)`` maps correspondence values that point into a warped view and marks
            the ones that leave its ``out_hw`` frame OUTSIDE; ``("jitter", b, c, s, hue)`` is a colour jitter.
    """

    kind: str
    view: int
    shape: tuple[int, ...]
    ops: tuple[tuple, ...] = ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def then(self, op: tuple, shape: tuple[int, ...] | None = None) -> Pending:
        """A new placeholder with ``op`` appended (and the new shape)."""
        return Pending(self.kind, self.view, self.shape if shape is None else tuple(shape), (*self.ops, op))


def is_pending(x: Any) -> bool:
    return isinstance(x, Pending)


def affine_resize(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The map of a resize from ``in_hw`` to ``out_hw``: pixel edges map to pixel edges, ``x' = (x + .5) s - .5``."""
    sy, sx = out_hw[0] / in_hw[0], out_hw[1] / in_hw[1]
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def affine_translate(dx: float, dy: float) -> np.ndarray:
    """``x' = x + dx``, ``y' = y + dy`` (a crop at ``(x0, y0)`` is ``affine_translate(-x0, -y0)``)."""
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def affine_hflip(width: int) -> np.ndarray:
    """Horizontal mirror of a ``width``-pixel-wide view: ``x' = W - 1 - x``."""
    return np.array([[-1, 0, width - 1], [0, 1, 0], [0, 0, 1]], np.float64)


def integer_path(A: np.ndarray) -> bool:
    """True when ``A`` is an integer translation, optionally with a horizontal mirror (exact by slicing)."""
    return (
        abs(A[0, 1]) < 1e-12
        and abs(A[1, 0]) < 1e-12
        and abs(abs(A[0, 0]) - 1) < 1e-12
        and abs(A[1, 1] - 1) < 1e-12
        and abs(A[0, 2] - round(A[0, 2])) <= 1e-9
        and abs(A[1, 2] - round(A[1, 2])) <= 1e-9
    )


class Raster:
    """Resamples rasters of one view through ``A`` onto ``out_hw`` (slicing when ``A`` is integer)."""

    def __init__(self, A: np.ndarray, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        self.A, self.in_hw, self.out_hw = A, in_hw, out_hw
        self.exact = integer_path(A)
        self.M = np.ascontiguousarray(A[:2], np.float64)
        self.A_inv = np.linalg.inv(A)
        if self.exact:
            h, w = in_hw
            H, W = out_hw
            tx, ty = int(round(A[0, 2])), int(round(A[1, 2]))
            self.flip = A[0, 0] < 0
            # output column X takes source column x = X - tx (or tx - X when mirrored); keep the overlap
            xs = np.arange(W) - tx if not self.flip else tx - np.arange(W)
            ys = np.arange(H) - ty
            okx, oky = np.flatnonzero((xs >= 0) & (xs < w)), np.flatnonzero((ys >= 0) & (ys < h))
            self.dst = (slice(oky[0], oky[-1] + 1), slice(okx[0], okx[-1] + 1)) if okx.size and oky.size else None
            if self.dst is not None:
                y_src = slice(ys[oky[0]], ys[oky[-1]] + 1)
                x0, x1 = xs[okx[0]], xs[okx[-1]]
                # source columns in increasing order; a mirror flips the block afterwards (cv2.flip)
                self.src = (y_src, slice(x0, x1 + 1) if not self.flip else slice(x1, x0 + 1))

    def nearest(self, a: np.ndarray, fill: Any) -> np.ndarray:
        """Nearest-neighbour resampling; pixels without source get ``fill``."""
        H, W = self.out_hw
        if a.dtype == bool:
            return self.nearest(a.view(np.uint8), int(bool(fill))).view(bool)
        if self.exact:
            full = self.dst is not None and self.dst[0] == slice(0, H) and self.dst[1] == slice(0, W)
            if full:  # a pure mirror or a crop: one pass
                block = a[self.src]
                return cv2.flip(block, 1) if self.flip else block.copy()
            out = np.empty((H, W) + a.shape[2:], a.dtype)
            out[...] = fill
            if self.dst is not None:
                block = a[self.src]
                out[self.dst] = cv2.flip(block, 1) if self.flip else block
            return out
        return cv2.warpAffine(
            a, self.M, (W, H), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=_scalar(fill)
        )

    def image(self, img: np.ndarray, fill: int | tuple[int, int, int], interp: str) -> np.ndarray:
        """Resample an image (area-averaged first when shrinking by more than 1.25x, to avoid aliasing)."""
        if self.exact:
            return self.nearest(img, fill)
        A, (h, w) = self.A, self.in_hw
        sx, sy = np.hypot(A[0, 0], A[1, 0]), np.hypot(A[0, 1], A[1, 1])  # how far the x and y axes stretch
        if min(sx, sy) < 0.8:
            w2, h2 = max(1, round(w * min(sx, 1.0))), max(1, round(h * min(sy, 1.0)))
            img = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_AREA)
            return Raster(A @ np.linalg.inv(affine_resize((h, w), (h2, w2))), (h2, w2), self.out_hw).image(
                img, fill, interp
            )
        flags = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[interp]
        H, W = self.out_hw
        return cv2.warpAffine(
            img, self.M, (W, H), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=_scalar(fill)
        )

    def smooth(self, values: np.ndarray, block_ok: np.ndarray, need: np.ndarray) -> np.ndarray:
        """Bilinear where the source 2x2 block is continuous (``block_ok`` [h, w], for the block whose top-left
        pixel it indexes), nearest elsewhere; only output pixels in ``need`` [H, W] get a meaningful value.
        ``values`` must be finite everywhere."""
        if self.exact:
            return self.nearest(values, 0)
        H, W = self.out_hw
        out = cv2.warpAffine(values, self.M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # the block used at output pixel q has top-left floor(A^-1 q) = round(A^-1 q - 0.5): shift by half a pixel
        M_tl = (self.A @ affine_translate(0.5, 0.5))[:2]
        ok = cv2.warpAffine(block_ok.view(np.uint8), M_tl, (W, H), flags=cv2.INTER_NEAREST, borderValue=0)
        fix = np.flatnonzero(need.ravel() & ~ok.view(bool).ravel())  # silhouettes and seams: a few % of pixels
        if fix.size:
            q = np.stack([fix % W, fix // W], -1).astype(np.float64)
            src = np.rint(q @ self.A_inv[:2, :2].T + self.A_inv[:2, 2]).astype(np.intp)
            h, w = self.in_hw
            np.clip(src, 0, [w - 1, h - 1], out=src)
            out.reshape(H * W, -1)[fix] = values.reshape(h * w, -1)[src[:, 1] * w + src[:, 0]]
        return out


def _scalar(fill: Any) -> Any:
    if isinstance(fill, (tuple, list)):
        return tuple(float(f) for f in fill)
    return float(fill)


def jitter_image(
    image: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float, out: np.ndarray | None = None
) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8: brightness ``x * b``, contrast about the mean grey (of every 4th row), saturation
    about each pixel's grey, composed into one affine colour map applied in a single uint8 pass (``cv2.transform``:
    rounded and clipped once), then a hue rotation of ``hue`` turns (skipped when 0). Grey is ITU-R 601 luma
    (0.299 R + 0.587 G + 0.114 B). ``out``: write the result there (same shape, not ``image``)."""
    mean = float(np.dot(cv2.mean(image[::4])[:3], _LUMA)) * brightness  # every 4th row suffices
    colour = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), _LUMA)  # luma of a grey is that grey
    M = np.empty((3, 4))
    M[:, :3] = brightness * contrast * colour
    M[:, 3] = (1 - contrast) * mean
    out = cv2.transform(image, M, dst=out)
    if hue:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV_FULL)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(round(hue * 256))) % 256
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL, dst=out)
    return out


_LUMA = np.array([0.299, 0.587, 0.114])


_SCRATCH: dict[str, np.ndarray] = {}


def scratch(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A contiguous array of ``shape`` carved from a reused per-process buffer (contents undefined)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    buf = _SCRATCH.get(name)
    if buf is None or buf.size < n:
        buf = _SCRATCH[name] = np.empty(max(n, 1 << 16), np.uint8)
    return buf[:n].view(dtype).reshape(shape)
