"""Decode one view of ``dense.bin`` straight into batch buffers, with exact warps folded into that write.

The container is :func:`loaders.codec.encode_dense`'s (schema version 4): per view a status map and int8 residual
planes over the surface bounding box, inverted by one 2-D prefix sum per field. :func:`decode_view_into` writes
``status``/``corr``/``depth`` of a view into caller-provided ``[H, W]`` arrays after

* an exact warp of the view's own raster (:class:`IntegerMap`: integer shift, optionally mirrored, onto an
  ``H x W`` frame; pixels with no source are BACKGROUND / 0), applied while copying the box, and
* an exact map of the correspondence values (the warps of the view they point into), folded into the prefix sum's
  base and the per-status scale, so it costs no pass; values leaving the frames they passed through turn MATCHED /
  OCCLUDED pixels OUTSIDE (one range check over the box).

It produces what :func:`loaders.codec.decode_dense` followed by the same :func:`loaders.warp.warp_view` calls
and the batch conversion (NaN -> 0) produce, bit for bit (``tests/loaders/test_loaders_fused.py``), without the
intermediate full-frame arrays. Temporaries live in per-process scratch buffers (one worker = one thread).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from loaders.codec import body_span, decompress, zstandard
from loaders.raster import scratch
from loaders.schema import STORED_STATUSES, SchemaError, Status

__all__ = ["IntegerMap", "RasterPlan", "ValuePlan", "raster_plan", "value_plan", "DenseBlob", "decode_view_into"]


@dataclass(frozen=True)
class IntegerMap:
    """``x' = sx * x + tx``, ``y' = y + ty`` with ``sx = ±1`` (a shift, optionally mirrored: exact on pixels)."""

    sx: int = 1
    tx: int = 0
    ty: int = 0

    @staticmethod
    def of(A: np.ndarray) -> IntegerMap:
        return IntegerMap(1 if A[0, 0] > 0 else -1, int(round(A[0, 2])), int(round(A[1, 2])))

    def then(self, k: IntegerMap) -> IntegerMap:
        """``k`` after ``self``."""
        return IntegerMap(k.sx * self.sx, k.sx * self.tx + k.tx, self.ty + k.ty)


@dataclass(frozen=True)
class RasterPlan:
    """Where a view's raster lands: output ``hw``, the map from source to output pixels, and ``rect`` =
    ``(y0, y1, x0, x1)``, the output pixels that kept a source pixel through every step (empty: ``y0 == y1``)."""

    hw: tuple[int, int]
    map: IntegerMap
    rect: tuple[int, int, int, int]


@dataclass(frozen=True)
class ValuePlan:
    """The exact map of correspondence values and the frame they must stay in: ``x in (x_lo, x_hi)`` with each end
    open or closed, ``y in [y_lo, y_hi)``; ``None`` bounds: no frame was passed through (nothing to check)."""

    map: IntegerMap
    bounds: tuple[float, float, bool, bool, float, float, bool, bool] | None


def raster_plan(in_hw: tuple[int, int], ops: Sequence[tuple]) -> RasterPlan:
    """Compose the ``("warp", A, in_hw, out_hw, ...)`` ops of a placeholder (all exact) into one :class:`RasterPlan`."""
    m, hw = IntegerMap(), (int(in_hw[0]), int(in_hw[1]))
    y0, y1, x0, x1 = 0, hw[0], 0, hw[1]
    for op in ops:
        if op[0] != "warp":
            continue
        k, (H, W) = IntegerMap.of(op[1]), op[3]
        x0, x1 = (x0 + k.tx, x1 + k.tx) if k.sx > 0 else (k.tx - x1 + 1, k.tx - x0 + 1)
        y0, y1 = y0 + k.ty, y1 + k.ty
        y0, y1, x0, x1 = max(y0, 0), min(y1, H), max(x0, 0), min(x1, W)
        if y0 >= y1 or x0 >= x1:
            y0 = y1 = x0 = x1 = 0
        m, hw = m.then(k), (int(H), int(W))
    return RasterPlan(hw, m, (y0, y1, x0, x1))


def value_plan(ops: Sequence[tuple]) -> ValuePlan:
    """Compose the ``("values", A, out_hw)`` ops of a correspondence placeholder into one :class:`ValuePlan`.

    Each step keeps a value while ``-0.5 <= x < W - 0.5`` and ``-0.5 <= y < H - 0.5`` in that step's frame; mapped
    into the final coordinates (a mirror swaps which end is open) and intersected, that is one interval per axis.
    """
    m = IntegerMap()
    b: list[Any] | None = None  # [x_lo, x_hi, x_lo_open, x_hi_open, y_lo, y_hi, y_lo_open, y_hi_open]
    for op in ops:
        if op[0] != "values":
            continue
        k, (H, W) = IntegerMap.of(op[1]), op[2]
        m = m.then(k)
        if b is not None:  # move the earlier frames into this step's coordinates
            if k.sx > 0:
                b[0], b[1] = b[0] + k.tx, b[1] + k.tx
            else:
                b[0], b[1], b[2], b[3] = k.tx - b[1], k.tx - b[0], b[3], b[2]
            b[4], b[5] = b[4] + k.ty, b[5] + k.ty
        frame = [-0.5, W - 0.5, False, True, -0.5, H - 0.5, False, True]
        b = frame if b is None else _intersect(b, frame)
    return ValuePlan(m, None if b is None else tuple(b))


def _intersect(a: list[Any], f: list[Any]) -> list[Any]:
    out = list(a)
    for lo, hi in ((0, 1), (4, 5)):
        if f[lo] > a[lo] or (f[lo] == a[lo] and f[lo + 2]):
            out[lo], out[lo + 2] = f[lo], f[lo + 2]
        if f[hi] < a[hi] or (f[hi] == a[hi] and f[hi + 2]):
            out[hi], out[hi + 2] = f[hi], f[hi + 2]
    return out


# --------------------------------------------------------------------------------------------------------------
# the container


class DenseBlob:
    """A parsed ``dense.bin``: the header, and each view's status map once inflated."""

    def __init__(self, blob: bytes, header: dict[str, Any]) -> None:
        self.header = header
        self.body = memoryview(blob)[header["_body_offset"] :]
        self.codec = header.get("codec", "zlib")
        self.step_px, self.step_m = float(header["corr_step_px"]), float(header["depth_step_m"])
        self._status: dict[int, np.ndarray] = {}

    def entry(self, view: int) -> dict[str, Any]:
        return self.header["views"][view]

    def inflate(self, view: int, part: str) -> bytes:
        data = body_span(self.body, self.entry(view)[part])
        if self.codec == "zstd" and zstandard is not None:
            return _zstd().decompress(data)  # one context per process: a fresh one costs as much as a small frame
        return decompress(data, self.codec)

    def status(self, view: int) -> np.ndarray:
        """uint8 [h, w] (read-only)."""
        if view not in self._status:
            e = self.entry(view)
            raw = np.frombuffer(self.inflate(view, "status"), np.uint8)
            if raw.size != e["h"] * e["w"]:
                raise SchemaError("dense.bin: status map size does not match the header")
            self._status[view] = raw.reshape(e["h"], e["w"])
        return self._status[view]


@functools.lru_cache(maxsize=1)
def _zstd():
    return zstandard.ZstdDecompressor()


@functools.lru_cache(maxsize=64)
def _lut(scales: tuple[float, ...], statuses: tuple[int, ...]) -> np.ndarray:
    """float32 [256, 1, C] lookup: ``scales`` (one per channel) at ``statuses``, 0 elsewhere."""
    lut = np.zeros((256, 1, len(scales)), np.float32)
    lut[list(statuses), 0] = scales
    return lut


_SURFACE = tuple(int(s) for s in Status if s != Status.BACKGROUND)
_STORED = tuple(int(s) for s in STORED_STATUSES)


def _put(dst: np.ndarray, src: np.ndarray, mirror: bool) -> None:
    """``dst[...] = src``, mirrored left-right when asked (same shapes)."""
    if mirror:
        cv2.flip(src, 1, dst=dst)
    else:
        dst[...] = src


def _fill_outside(a: np.ndarray, y0: int, y1: int, x0: int, x1: int, value: float) -> None:
    """Set ``a`` outside rows ``y0:y1`` x columns ``x0:x1`` to ``value``."""
    a[:y0] = value
    a[y1:] = value
    a[y0:y1, :x0] = value
    a[y0:y1, x1:] = value


def _box_in_output(box: Sequence[int], plan: RasterPlan) -> tuple[int, int, int, int]:
    """The part of the source box ``(y0, y1, x0, x1)`` that lands inside ``plan.rect``, in output pixels."""
    by0, by1, bx0, bx1 = box
    m = plan.map
    oy0, oy1 = by0 + m.ty, by1 + m.ty
    ox0, ox1 = (bx0 + m.tx, bx1 + m.tx) if m.sx > 0 else (m.tx - bx1 + 1, m.tx - bx0 + 1)
    ry0, ry1, rx0, rx1 = plan.rect
    y0, y1, x0, x1 = max(oy0, ry0), min(oy1, ry1), max(ox0, rx0), min(ox1, rx1)
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else (0, 0, 0, 0)


def _source_block(plan: RasterPlan, y0: int, y1: int, x0: int, x1: int) -> tuple[slice, slice]:
    """Source rows/columns (increasing) of output pixels ``y0:y1, x0:x1`` under ``plan.map``."""
    m = plan.map
    ys = slice(y0 - m.ty, y1 - m.ty)
    xs = slice(x0 - m.tx, x1 - m.tx) if m.sx > 0 else slice(m.tx - x1 + 1, m.tx - x0 + 1)
    return ys, xs


def decode_view_into(
    dense: DenseBlob,
    view: int,
    plan: RasterPlan,
    values: ValuePlan,
    status_out: np.ndarray,
    corr_out: np.ndarray | None = None,
    depth_out: np.ndarray | None = None,
    corr_dirty: Sequence[int] | None = None,
) -> tuple[int, int, int, int]:
    """Write view ``view``'s fields through ``plan`` / ``values`` into the given ``plan.hw`` arrays.

    Args:
        dense: the pair's container.
        view: stored view (0 or 1).
        plan: its raster's exact warp (:func:`raster_plan`).
        values: the exact map of its correspondence values (:func:`value_plan`).
        status_out: uint8 [H, W]; gets the statuses (BACKGROUND where no source pixel, OUTSIDE where a value left).
        corr_out: float32 [H, W, 2] or None; correspondences in pixels, 0 where not stored.
        depth_out: float32 [H, W] or None; depth in metres, 0 off the surface (0 everywhere if the view has none).
        corr_dirty: ``(y0, y1, x0, x1)``: ``corr_out`` is known to be 0 outside this rectangle (``None``: unknown);
            only the rectangle is cleared before the write.

    Returns:
        The rectangle of ``corr_out`` that may now hold non-zero values (``(0, 0, 0, 0)`` when none).

    Raises:
        SchemaError: on sizes that disagree with the header.
    """
    e = dense.entry(view)
    status = dense.status(view)
    ry0, ry1, rx0, rx1 = plan.rect
    mirror = plan.map.sx < 0
    _fill_outside(status_out, ry0, ry1, rx0, rx1, 0)
    if ry1 > ry0:
        ys, xs = _source_block(plan, ry0, ry1, rx0, rx1)
        _put(status_out[ry0:ry1, rx0:rx1], status[ys, xs], mirror)
    box = [int(b) for b in e["box"]]
    by0, by1, bx0, bx1 = box
    bh, bw = by1 - by0, bx1 - bx0
    oy0, oy1, ox0, ox1 = _box_in_output(box, plan) if bh * bw else (0, 0, 0, 0)
    if depth_out is not None:
        _fill_outside(depth_out, oy0, oy1, ox0, ox1, 0)
    if corr_out is not None:
        if corr_dirty is None:
            corr_out[...] = 0  # the box too: the correspondences are copied in where stored only
        else:
            dy0, dy1, dx0, dx1 = corr_dirty
            corr_out[dy0:dy1, dx0:dx1] = 0
    want_depth = depth_out is not None and e["depth"]
    if oy1 <= oy0 or (corr_out is None and not want_depth):
        if depth_out is not None:
            depth_out[oy0:oy1, ox0:ox1] = 0
        return (0, 0, 0, 0)
    planes = np.frombuffer(dense.inflate(view, "planes"), np.uint8)
    esc = np.frombuffer(dense.inflate(view, "escapes"), np.int32)
    n_c, n_d = e["n_escapes"][0], (e["n_escapes"][1] if e["depth"] else 0)
    if esc.size != 2 * (n_c + n_d) or planes.size != bh * bw * (3 if e["depth"] else 2):
        raise SchemaError("dense.bin: plane or escape table size does not match the header")
    sub = status[by0:by1, bx0:bx1]
    ys, xs = _source_block(plan, oy0, oy1, ox0, ox1)
    ys, xs = slice(ys.start - by0, ys.stop - by0), slice(xs.start - bx0, xs.stop - bx0)  # within the box
    if corr_out is not None:
        m, step = values.map, dense.step_px
        if math.frexp(step)[0] != 0.5:
            raise SchemaError(f"dense.bin: corr_step_px {step} is not a power of two")
        # value = s * step * (q + t / (s * step)): sign and step scale the residuals (exact: powers of two), the
        # shift joins the base in the first residual, so the prefix sum yields the mapped values themselves
        scale = (m.sx * step, step)
        first = [(b + o) * c for b, o, c in zip(e["bases"][0], (m.sx * m.tx / step, m.ty / step), scale)]
        vals = _prefix(planes[: 2 * bh * bw], esc[:n_c], esc[n_c : 2 * n_c], (bh, bw, 2), first, scale)
        stored = cv2.inRange(sub, 1, 3, dst=scratch("stored", (bh, bw), np.uint8))  # MATCHED, OCCLUDED, OUTSIDE
        vals, stored = vals[ys, xs], stored[ys, xs]
        if mirror:
            vals = cv2.flip(vals, 1, dst=scratch("flipped", vals.shape, np.float32))
            stored = cv2.flip(stored, 1)
        dst = corr_out[oy0:oy1, ox0:ox1]
        cv2.copyTo(vals, stored, dst=dst)
        if values.bounds is not None:
            _mark_outside(status_out[oy0:oy1, ox0:ox1], dst, values.bounds)
    if depth_out is not None:
        if not want_depth:
            depth_out[oy0:oy1, ox0:ox1] = 0
            return (oy0, oy1, ox0, ox1)
        e_d = esc[2 * n_c :]
        P = _prefix(planes[2 * bh * bw :], e_d[:n_d], e_d[n_d:], (bh, bw), e["bases"][1])
        vals = scratch("vals", (bh, bw), np.float32)
        # depth steps are not powers of two: scale the exact integers once, per pixel (0 off the surface)
        step_m = float(e.get("depth_step_m", dense.step_m))
        scale = cv2.LUT(sub, _lut((step_m,), _SURFACE), dst=scratch("scale", (bh, bw), np.float32))
        cv2.multiply(P, scale, dst=vals)
        _put(depth_out[oy0:oy1, ox0:ox1], vals[ys, xs], mirror)
    return (oy0, oy1, ox0, ox1)


def _prefix(
    plane: np.ndarray,
    esc_idx: np.ndarray,
    esc_val: np.ndarray,
    shape: tuple[int, ...],
    first: Sequence[float],
    scale: Sequence[float] | None = None,
) -> np.ndarray:
    """:func:`loaders.codec.decode_plane` in scratch buffers: the residuals (times ``scale`` per channel, when
    given), ``first`` added to the first one, summed up: float32 ``shape`` (a strided view). Exact while every
    value and partial sum is a multiple of the scale below ``2**24`` of them."""
    r = scratch("r", shape, np.float32)
    np.subtract(plane.reshape(shape), np.float32(128), out=r, dtype=np.float32)
    r.reshape(-1)[esc_idx] = esc_val
    if scale is not None:
        flat = r.reshape(shape[0], -1)
        np.multiply(flat, _row(tuple(scale), shape[1]), out=flat)
    r[0, 0] += np.asarray(first, np.float32).reshape(r.shape[2:])
    P = scratch("P", (shape[0] + 1, shape[1] + 1, *shape[2:]), np.float32)
    cv2.integral(r, sum=P, sdepth=cv2.CV_32F)
    return P[1:, 1:]


@functools.lru_cache(maxsize=16)
def _row(scale: tuple[float, ...], width: int) -> np.ndarray:
    """float32 [width * C]: the per-channel ``scale`` repeated along a row of interleaved channels."""
    return np.tile(np.asarray(scale, np.float32), width)


def _mark_outside(status: np.ndarray, corr: np.ndarray, bounds: tuple) -> None:
    """MATCHED / OCCLUDED pixels whose value is outside ``bounds`` (:class:`ValuePlan`) become OUTSIDE (in place)."""
    x_lo, x_hi, x_lo_open, x_hi_open, y_lo, y_hi, y_lo_open, y_hi_open = bounds
    f = np.float32
    lo = (
        float(np.nextafter(f(x_lo), f(np.inf)) if x_lo_open else f(x_lo)),
        float(np.nextafter(f(y_lo), f(np.inf)) if y_lo_open else f(y_lo)),
    )
    hi = (
        float(np.nextafter(f(x_hi), f(-np.inf)) if x_hi_open else f(x_hi)),
        float(np.nextafter(f(y_hi), f(-np.inf)) if y_hi_open else f(y_hi)),
    )
    left = cv2.bitwise_not(cv2.inRange(corr, lo, hi))
    left = cv2.bitwise_and(left, cv2.inRange(status, 1, 2), dst=left)  # MATCHED or OCCLUDED, value out of frame
    np.putmask(status, left, np.uint8(Status.OUTSIDE))
