"""The pair sample: fields, dtypes, shapes, status codes and on-disk encoding.

This module is the single source of truth for what flows from ``datagen`` to ``loaders`` to ``training``
(DESIGN.md §4). The writer (``encode_sample``) and the reader (``decode_sample``) both live here, so the two
can never drift apart.

A decoded sample is a dict of numpy arrays (one ordered pair of views, 0 and 1):

=====================  ===================  ==================================================================
field                  dtype, shape         meaning
=====================  ===================  ==================================================================
image0, image1         uint8 [Hv, Wv, 3]    RGB
mask0, mask1           bool [Hv, Wv]        object silhouette (absent for real pairs without masks)
corr_0to1, corr_1to0   float32 [Hv, Wv, 2]  (x, y) pixel in the other view; NaN where not stored
valid_0to1, ...        bool [Hv, Wv]        ``status == MATCHED``
status_0to1, ...       uint8 [Hv, Wv]       one of :class:`Status`
depth0, depth1         float32 [Hv, Wv]     z-depth in metres, 0 where there is no surface (synthetic only)
K0, K1                 float32 [3, 3]       pinhole intrinsics, OpenCV convention (synthetic only)
T_cam0_from_world ...  float32 [4, 4]       world -> camera (synthetic only); world = the instance's canonical frame
kps0, kps1             float32 [N, 2]       keypoints (x, y) in pixels, fixed per-category order
kps0_vis, kps1_vis     bool [N]             keypoint visible (and inside the image)
meta                   dict                 see :data:`META_REQUIRED`
=====================  ===================  ==================================================================

Dense fields (``corr``/``status``/``valid``/``depth``/``mask``) of view ``v`` have view ``v``'s size. Real
pairs (``meta["source"]`` in spair/pfpascal/ap10k) carry no dense fields at all; ``has_dense(sample)`` says.

On disk a sample is one WebDataset group of tar members sharing a key:

* ``img0.jpg``, ``img1.jpg``: JPEG, quality :data:`JPEG_QUALITY`, 4:4:4 chroma;
* ``mask0.png``, ``mask1.png``: 1-bit PNG, only when a real pair has masks (synthetic masks are
  ``status != BACKGROUND`` and are not stored twice);
* ``dense.bin``: the dense fields of both views in the :func:`encode_dense` container;
* ``pair.json``: ``meta`` plus cameras and keypoints as JSON lists.

Correspondences are stored as integers in steps of :data:`CORR_STEP_PX` (1/32 px, so at most 1/64 px is
lost; coordinates of OUTSIDE counterparts are clamped to ±:data:`CORR_CLAMP_PX`), depth in steps of
:data:`DEPTH_STEP_M` (10 µm; doubled per view while a view's depth span would exceed 2**21 steps, about 21 m, so
deep scenes store coarser depth). Each channel is an integer raster over the view's surface bounding box, predicted
from its left, upper and upper-left neighbours (planar predictor); the residual goes to one int8 byte plane
(an escape table holds the few large ones, at silhouettes and part seams) and the planes are compressed with zstd
(zlib when the ``zstandard`` package is missing; the header names the codec). Decoding is one inflate and one
2-D prefix sum (``cv2.integral``) per view and field: both views of a 518² pair decode in ~2-3 ms.

Optional ``meta`` keys with a fixed meaning: :data:`META_FLIP_PERM` (``perm[i]`` = the keypoint that keypoint
``i`` becomes under a horizontal mirror, an involution; ``None`` when unknown) and :data:`META_SYM_GROUPS`
(groups of symmetric or repeated keypoints). The transforms in :mod:`loaders.transforms` use the first.
"""

from __future__ import annotations

import enum
import functools
import io
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

try:  # zstd inflates the dense planes ~3x faster than zlib; zlib stays readable and is the fallback
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a declared dependency
    zstandard = None

__all__ = [
    "SCHEMA_VERSION",
    "Status",
    "CORR_STEP_PX",
    "DEPTH_STEP_M",
    "JPEG_QUALITY",
    "SOURCES",
    "SYNTHETIC_SOURCES",
    "META_REQUIRED",
    "SchemaError",
    "encode_sample",
    "decode_sample",
    "encode_dense",
    "decode_dense",
    "read_dense_header",
    "malformed",
    "meta_sizes",
    "sample_where",
    "check_sample",
    "has_dense",
    "encode_plane",
    "decode_plane",
    "decode_image",
    "decode_mask",
    "META_FLIP_PERM",
    "META_SYM_GROUPS",
    "META_PER_VIEW",
    "STORED_STATUSES",
]

# 4: per-view depth step (deep scenes); 3: zstd, corr x/y interleaved; 2: planar-predicted int8 planes, zlib;
# 1: delta-coded byte planes
SCHEMA_VERSION = 4

CORR_STEP_PX = 1.0 / 32.0
CORR_CLAMP_PX = 65535.0  # |x|, |y| of stored correspondences (only far OUTSIDE counterparts are ever clamped)
DEPTH_STEP_M = 1e-5
JPEG_QUALITY = 95

SOURCES = ("procedural", "meshes", "spair", "pfpascal", "ap10k", "warp")
SYNTHETIC_SOURCES = ("procedural", "meshes", "warp")

META_REQUIRED = ("schema_version", "source", "category", "image_size0", "image_size1", "keypoint_names")
META_FLIP_PERM = "flip_perm"  # optional: list[int] keypoint left<->right permutation under a mirror, or None
META_SYM_GROUPS = "sym_groups"  # optional: list[list[int]] symmetric / repeated keypoint groups
# meta keys whose value is a [view 0, view 1] list (reversed when the views are swapped), besides keys that end in
# 0 / 1 (image_size0, bbox1, ...)
META_PER_VIEW = ("instance_ids", "shape_params", "views", "materials", "image_names", "mirrored")

_DENSE_MAGIC = b"SGT\x03"
_PLANE_LIMIT = 2**22  # |value - base| in steps; keeps every float32 prefix sum exact (< 2**24)


class Status(enum.IntEnum):
    """Why a pixel of one view does or does not have a valid counterpart in the other (DESIGN.md §4)."""

    BACKGROUND = 0  # the pixel sees no object surface
    MATCHED = 1  # counterpart exists, is the surface the other view sees there, and is inside the image
    OCCLUDED = 2  # counterpart exists and projects inside the other image, but something else is in front
    OUTSIDE = 3  # counterpart exists but projects outside the other image
    NO_COUNTERPART = 4  # the part is absent on the other instance


# Statuses whose correspondence coordinates are stored (the counterpart exists, so its projection is defined).
STORED_STATUSES = (Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE)


class SchemaError(ValueError):
    """A sample does not follow the schema (wrong field, dtype, shape or version)."""


# --------------------------------------------------------------------------------------------------------------
# dense planes: integer rasters, planar prediction, int8 residuals with an escape table


def _fill_rows(values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill the pixels outside ``keep`` of each row with the nearest kept value of that row (left first, else
    right), so the planar predictor sees no jump at a silhouette.

    Args:
        values: [h, w] or [h, w, c], any dtype; only kept pixels are read (the rest may hold NaN or garbage).
        keep: bool [h, w] with at least one kept pixel.

    Returns:
        ``(filled, empty)``: a new array like ``values`` that holds only kept values, and bool [h] the rows with
        nothing kept (filled with some kept value; the caller zeroes them).
    """
    h, w = keep.shape
    cols = np.arange(w, dtype=np.int32)
    left = np.where(keep, cols, np.int32(-1))
    np.maximum.accumulate(left, axis=1, out=left)
    right = np.where(keep[:, ::-1], cols[::-1], np.int32(w))
    np.minimum.accumulate(right, axis=1, out=right)
    src = np.where(left >= 0, left, right[:, ::-1])
    src += (np.arange(h, dtype=np.int32) * w)[:, None]  # flat source pixel of every pixel
    empty = ~keep.any(axis=1)
    if empty.any():
        src[empty] = int(np.flatnonzero(keep.ravel())[0])
    pixels = np.ascontiguousarray(values).reshape(h * w, -1)
    item = pixels.shape[1] * pixels.itemsize
    if item in (4, 8):  # gather whole pixels as one machine word each
        word = pixels.view(np.int32 if item == 4 else np.int64)
        return np.take(word.ravel(), src.ravel()).view(values.dtype).reshape(values.shape), empty
    return pixels[src.ravel()].reshape(values.shape), empty


def _quantise(values: np.ndarray, keep: np.ndarray, step: float, clamp: float | None) -> tuple[np.ndarray, list[int]]:
    """Integer steps of a field over its kept pixels, minus their per-channel minimum, rows filled (:func:`_fill_rows`).

    Args:
        values: float [h, w] or [h, w, c] (read where ``keep``; must be finite there).
        keep: bool [h, w].
        step: the quantisation step (``q = rint(clip(x, ±clamp) / step)``).
        clamp: |x| bound applied before quantising, or None.

    Returns:
        ``(q - base, base)``: int32 like ``values`` (0 on rows with nothing kept) and the per-channel base.

    Raises:
        SchemaError: a non-finite value at a kept pixel, or kept values spanning 2**22 steps or more.
    """
    n_ch = values.shape[2] if values.ndim == 3 else 1
    if not keep.any():
        return np.zeros(values.shape, np.int32), [0] * n_ch
    q, empty = _fill_rows(values, keep)
    exact32 = q.dtype == np.float32 and float(np.log2(step)).is_integer()  # dividing by 2**k is exact
    q = q.astype(np.float32 if exact32 else np.float64)
    if not np.isfinite(q).all():
        raise SchemaError("non-finite value at a stored pixel")
    if clamp is not None:
        np.clip(q, -clamp, clamp, out=q)
    q /= step
    np.rint(q, out=q)
    channels = [q[..., c] for c in range(n_ch)] if q.ndim == 3 else [q]
    base = [int(ch.min()) for ch in channels]  # per channel: a min over axis 0 of [N, c] is ~20x slower
    for ch, b in zip(channels, base):
        ch -= b
    top = q.max()
    if top >= _PLANE_LIMIT:
        raise SchemaError(f"dense value out of range (|q| >= 2**22 steps, max {int(top)})")
    q[empty] = 0
    return q.astype(np.int32), base


def encode_plane(q: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Planar-predict an integer raster and split the residual into an int8 plane and an escape table.

    The residual ``r = q[i, j] - q[i, j-1] - q[i-1, j] + q[i-1, j-1]`` (zero outside the raster, per channel) is
    stored as ``r + 128`` in one byte where ``|r| <= 127``; elsewhere the byte is 128 and ``(flat index, r)``
    goes to the escape table. :func:`decode_plane` inverts it with one 2-D prefix sum.

    Args:
        q: int64 [h, w] or [h, w, c] (channels interleaved) with ``|q| < 2**22``.

    Returns:
        ``(plane bytes [h*w*c], escape flat indices int32 [E], escape residuals int32 [E])``.
    """
    if q.size == 0:
        return b"", np.zeros(0, np.int32), np.zeros(0, np.int32)
    if max(-int(q.min()), int(q.max())) >= _PLANE_LIMIT:
        raise SchemaError(f"dense value out of range (|q| >= 2**22 steps, max {np.abs(q).max()})")
    q = q.astype(np.int32, copy=False)  # |q| < 2**22: every second difference fits
    d = np.empty_like(q)
    d[:, 0] = q[:, 0]
    np.subtract(q[:, 1:], q[:, :-1], out=d[:, 1:])
    r = np.empty_like(q)
    r[0] = d[0]
    np.subtract(d[1:], d[:-1], out=r[1:])
    r = r.ravel()
    r += 128
    esc = np.flatnonzero((r < 1) | (r > 255)).astype(np.int32)  # |residual| > 127
    val = r[esc] - 128
    r[esc] = 128
    return r.astype(np.uint8).tobytes(), esc, val


def decode_plane(
    plane: np.ndarray, esc_idx: np.ndarray, esc_val: np.ndarray, shape: tuple[int, ...], base: Sequence[int] = ()
) -> np.ndarray:
    """Invert :func:`encode_plane`: uint8 plane + escapes -> float32 ``shape`` holding the exact integers, plus
    ``base`` (per channel; folded into the first residual, so it costs no pass).

    float32 is exact because every value and every partial sum of the prefix sum stays below 2**24. Returns a
    view into the prefix-sum buffer (rows are strided).
    """
    r = np.subtract(plane.reshape(shape), np.float32(128), dtype=np.float32)
    flat = r.reshape(-1)
    flat[esc_idx] = esc_val
    if len(base) and r.size:
        r[0, 0] += np.asarray(base, np.float32).reshape(r.shape[2:])
    return cv2.integral(r, sdepth=cv2.CV_32F)[1:, 1:]


# --------------------------------------------------------------------------------------------------------------
# dense container


def _stored(status: np.ndarray) -> np.ndarray:
    """bool: pixels whose correspondence is stored (MATCHED, OCCLUDED, OUTSIDE = codes 1..3)."""
    return (status - np.uint8(1)) < np.uint8(3)


def _box(keep: np.ndarray) -> list[int]:
    """[y0, y1, x0, x1] bounding box of ``keep`` (empty box when nothing is kept)."""
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1]


@functools.lru_cache(maxsize=4)
def _zstd_compressor(level: int):
    return zstandard.ZstdCompressor(level=level)


def _compress(data: bytes, codec: str, level: int) -> bytes:
    if codec == "zstd":
        return _zstd_compressor(level).compress(data)
    return zlib.compress(data, min(level, 9))


def _decompress(data: memoryview, codec: str) -> bytes:
    if codec == "zstd":
        if zstandard is None:
            raise SchemaError("dense.bin is zstd-compressed but the zstandard package is not installed")
        return zstandard.ZstdDecompressor().decompress(data)
    if codec == "zlib":
        return zlib.decompress(data)
    raise SchemaError(f"dense.bin: unknown codec {codec!r}")


def _depth_step(depth: np.ndarray, surface: np.ndarray) -> float:
    """The depth step of one view: :data:`DEPTH_STEP_M`, doubled until the surface's depth span fits the plane range
    with a margin (only deep scenes, such as an aeroplane seen along its length, need more than 10 µm steps)."""
    if not surface.any():
        return DEPTH_STEP_M
    d = depth[surface]
    span = float(np.nanmax(d) - np.nanmin(d)) if np.isfinite(d).any() else 0.0
    step = DEPTH_STEP_M
    while span / step >= _PLANE_LIMIT / 2:
        step *= 2.0
    return step


def encode_dense(views: list[Mapping[str, np.ndarray | None]], level: int = 3, codec: str | None = None) -> bytes:
    """Encode the dense fields of one or two views (``dense.bin``).

    Args:
        views: dicts (view 0 then view 1) with ``status`` uint8 [H, W], ``corr`` float32 [H, W, 2] (read only where
            ``status`` is in :data:`STORED_STATUSES`, must be finite there) and optionally ``depth`` float32 [H, W]
            (metres, read where ``status != BACKGROUND``).
        level: compression level. zstd's default 3 is ~7x faster to compress than 9 for ~8 % more bytes and
            inflates as fast.
        codec: ``"zstd"`` (the default when the ``zstandard`` package is installed: inflates ~3x faster) or
            ``"zlib"``.

    Returns:
        The ``dense.bin`` bytes: magic, header length, JSON header, then per view a compressed status map, one
        compressed blob of int8 residual planes (corr x/y interleaved, then depth, over the view's surface bounding
        box) and one compressed escape table.

    Raises:
        SchemaError: on a wrong dtype/shape, a non-finite stored correspondence, or depth beyond the range.
    """
    codec = codec or ("zstd" if zstandard is not None else "zlib")
    header: dict[str, Any] = {"codec": codec, "corr_step_px": CORR_STEP_PX, "depth_step_m": DEPTH_STEP_M, "views": []}
    blobs: list[bytes] = []
    offset = 0

    def add(blob: bytes) -> list[int]:
        nonlocal offset
        blobs.append(blob)
        offset += len(blob)
        return [offset - len(blob), len(blob)]

    for i, view in enumerate(views):
        status = np.asarray(view["status"])
        if status.dtype != np.uint8 or status.ndim != 2:
            raise SchemaError(f"view {i}: status must be uint8 [H, W], got {status.dtype} {status.shape}")
        h, w = status.shape
        surface = status != Status.BACKGROUND
        y0, y1, x0, x1 = box = _box(surface)
        st, sf = _stored(status)[y0:y1, x0:x1], surface[y0:y1, x0:x1]
        corr = np.asarray(view["corr"])
        if corr.shape != (h, w, 2):
            raise SchemaError(f"view {i}: corr must be [H, W, 2] = {(h, w, 2)}, got {corr.shape}")
        channels = [("corr", corr[y0:y1, x0:x1], st, CORR_STEP_PX, CORR_CLAMP_PX)]
        depth_step = DEPTH_STEP_M
        if view.get("depth") is not None:
            depth_box = np.asarray(view["depth"])[y0:y1, x0:x1]
            depth_step = _depth_step(depth_box, sf)
            channels.append(("depth", depth_box, sf, depth_step, None))
        planes, escapes, bases, n_esc = [], [], [], []
        for name, values, keep, step, clamp in channels:
            try:
                q, base = _quantise(values, keep, step, clamp)
                plane, idx, val = encode_plane(q)
            except SchemaError as e:
                raise SchemaError(f"view {i}: {name}: {e}") from None
            planes.append(plane)
            escapes += [idx.tobytes(), val.tobytes()]
            bases.append(base)
            n_esc.append(int(idx.size))
        header["views"].append(
            {
                "h": h,
                "w": w,
                "box": box,
                "depth": len(channels) == 2,
                "depth_step_m": depth_step,
                "bases": bases,
                "n_escapes": n_esc,
                "status": add(_compress(status.tobytes(), codec, level)),
                "planes": add(_compress(b"".join(planes), codec, level)),
                "escapes": add(_compress(b"".join(escapes), codec, level)),
            }
        )
    head = json.dumps(header, separators=(",", ":")).encode()
    return _DENSE_MAGIC + struct.pack("<I", len(head)) + head + b"".join(blobs)


def read_dense_header(blob: bytes, sizes: Sequence[Sequence[int]] | None = None) -> dict[str, Any]:
    """The JSON header of a ``dense.bin`` container, checked before anything is allocated from it.

    Args:
        blob: the ``dense.bin`` bytes.
        sizes: the ``(H, W)`` of each view as ``pair.json`` says (``meta.image_size0/1``), or None (then 1 or 2
            views of any size are accepted).

    Returns:
        The header dict plus ``_body_offset`` (where the compressed blobs start).

    Raises:
        SchemaError: bad magic, a header that is not the container's, a view size that disagrees with ``sizes``,
            or a box or blob span outside the view or the file.
    """
    if bytes(blob[:4]) != _DENSE_MAGIC:
        raise SchemaError(f"dense.bin: bad magic {bytes(blob[:4])!r} (expected the schema version 4 container)")
    if len(blob) < 8:
        raise SchemaError("dense.bin: truncated")
    (hlen,) = struct.unpack("<I", blob[4:8])
    if 8 + hlen > len(blob):
        raise SchemaError(f"dense.bin: header length {hlen} runs past the end ({len(blob)} bytes)")
    try:
        header = json.loads(bytes(blob[8 : 8 + hlen]))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise SchemaError(f"dense.bin: header is not JSON ({e})") from None
    n_body = len(blob) - 8 - hlen
    views = header.get("views") if isinstance(header, dict) else None
    n_views = 2 if sizes is None else len(sizes)
    if not isinstance(views, list) or not 1 <= len(views) <= 2 or (sizes is not None and len(views) != n_views):
        raise SchemaError(f"dense.bin: header needs a list of {n_views} views (1 or 2 in a bare container)")

    def ints(x: Any, n: int) -> bool:
        return isinstance(x, list) and len(x) == n and all(type(v) is int and v >= 0 for v in x)

    for v, e in enumerate(views):
        if not isinstance(e, dict) or not ints([e.get("h"), e.get("w")], 2) or not ints(e.get("box"), 4):
            raise SchemaError(f"dense.bin: view {v}: malformed size or box in the header")
        h, w = e["h"], e["w"]
        if sizes is not None and [h, w] != [int(x) for x in sizes[v]]:
            raise SchemaError(f"dense.bin: view {v} is {h}x{w}, pair.json says {sizes[v][0]}x{sizes[v][1]}")
        y0, y1, x0, x1 = e["box"]
        if not (y0 <= y1 <= h and x0 <= x1 <= w):
            raise SchemaError(f"dense.bin: view {v}: box {e['box']} is outside the {h}x{w} view")
        for k in ("status", "planes", "escapes"):
            if not ints(e.get(k), 2) or sum(e[k]) > n_body:
                raise SchemaError(f"dense.bin: view {v}: {k} span {e.get(k)} is outside the file")
        if not ints(e.get("n_escapes"), 2 if e.get("depth") else 1):
            raise SchemaError(f"dense.bin: view {v}: malformed escape counts")
    header["_body_offset"] = 8 + hlen
    return header


def decode_dense(blob: bytes, sizes: Sequence[Sequence[int]] | None = None) -> list[dict[str, np.ndarray]]:
    """Decode ``dense.bin``: per view ``status`` uint8 [H, W], ``corr`` float32 [H, W, 2] (NaN where not stored)
    and, where stored, ``depth`` float32 [H, W] (0 on background). All arrays are writable and contiguous.

    ``sizes``: each view's ``(H, W)`` from ``pair.json``; the header must agree (checked before allocating).
    """
    header = read_dense_header(blob, sizes)
    body = memoryview(blob)[header["_body_offset"] :]
    codec = header.get("codec", "zlib")
    step_px = float(header["corr_step_px"])
    out = []
    for entry in header["views"]:
        h, w = entry["h"], entry["w"]
        step_m = float(entry.get("depth_step_m", header["depth_step_m"]))
        y0, y1, x0, x1 = entry["box"]
        bh, bw = y1 - y0, x1 - x0
        status = np.frombuffer(_decompress(_span(body, entry["status"]), codec), np.uint8).reshape(h, w).copy()
        corr = _blank((h, w, 2), np.nan, entry["box"])
        depth = _blank((h, w), 0.0, entry["box"]) if entry["depth"] else None
        if bh * bw:
            planes = np.frombuffer(_decompress(_span(body, entry["planes"]), codec), np.uint8)
            esc = np.frombuffer(_decompress(_span(body, entry["escapes"]), codec), np.int32)
            n_c, n_d = entry["n_escapes"][0], (entry["n_escapes"][1] if depth is not None else 0)
            if esc.size != 2 * (n_c + n_d) or planes.size != bh * bw * (3 if depth is not None else 2):
                raise SchemaError("dense.bin: plane or escape table size does not match the header")
            sub = status[y0:y1, x0:x1]
            # a per-status lookup gives each pixel's scale: one multiply converts steps to units and blanks the rest
            values = decode_plane(planes[: 2 * bh * bw], esc[:n_c], esc[n_c : 2 * n_c], (bh, bw, 2), entry["bases"][0])
            scale = cv2.LUT(cv2.merge([sub, sub]), _status_lut(step_px, STORED_STATUSES, np.nan))
            cv2.multiply(values, scale, dst=corr[y0:y1, x0:x1])
            if depth is not None:
                e = esc[2 * n_c :]
                values = decode_plane(planes[2 * bh * bw :], e[:n_d], e[n_d:], (bh, bw), entry["bases"][1])
                surface = tuple(s for s in Status if s != Status.BACKGROUND)
                cv2.multiply(values, cv2.LUT(sub, _status_lut(step_m, surface, 0.0)), dst=depth[y0:y1, x0:x1])
        view = {"status": status, "corr": corr}
        if depth is not None:
            view["depth"] = depth
        out.append(view)
    return out


def _blank(shape: tuple[int, ...], value: float, box: list[int]) -> np.ndarray:
    """float32 array of ``shape`` whose pixels outside ``box`` hold ``value`` (the box is left for the caller)."""
    y0, y1, x0, x1 = box
    a = np.empty(shape, np.float32)
    a[:y0] = value
    a[y1:] = value
    a[y0:y1, :x0] = value
    a[y0:y1, x1:] = value
    return a


@functools.lru_cache(maxsize=16)
def _status_lut(value: float, statuses: tuple[int, ...], other: float) -> np.ndarray:
    """float32 [256] lookup: ``value`` at the given status codes, ``other`` elsewhere (for ``cv2.LUT``)."""
    lut = np.full(256, other, np.float32)
    lut[list(statuses)] = value
    return lut


def _span(body: memoryview, span: list[int]) -> memoryview:
    o, n = span
    if o + n > len(body):
        raise SchemaError("dense.bin: truncated")
    return body[o : o + n]


# --------------------------------------------------------------------------------------------------------------
# images


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 [H, W, 3] RGB -> JPEG bytes (4:4:4 chroma). OpenCV's libjpeg-turbo: byte-identical to PIL's output at
    the same settings, ~20 % faster."""
    image = np.asarray(image, np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise SchemaError(f"an image must be uint8 [H, W, 3], got {image.shape}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _JPEG_444]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise SchemaError("JPEG encoding failed")
    return buf.tobytes()


_JPEG_444 = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
_JPEG_MEMO: dict[int, tuple[np.ndarray, bytes]] = {}
_JPEG_MEMO_SIZE = 32


def _encode_jpeg_memo(image: np.ndarray) -> bytes:
    """:func:`encode_jpeg`, remembered for immutable images: a read-only array that owns its data (the generator
    freezes each rendered view, and one view serves several pairs) is encoded once while it is among the last
    :data:`_JPEG_MEMO_SIZE` such images. The memo holds a reference, so an ``id`` cannot be reused meanwhile."""
    if not isinstance(image, np.ndarray) or image.flags.writeable or image.base is not None:
        return encode_jpeg(image)
    hit = _JPEG_MEMO.get(id(image))
    if hit is not None and hit[0] is image:
        return hit[1]
    data = encode_jpeg(image)
    if len(_JPEG_MEMO) >= _JPEG_MEMO_SIZE:
        del _JPEG_MEMO[next(iter(_JPEG_MEMO))]  # oldest first (dicts keep insertion order)
    _JPEG_MEMO[id(image)] = (image, data)
    return data


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [H, W, 3] RGB (writable). OpenCV's libjpeg-turbo path, ~30 % faster than PIL's."""
    if not len(data):
        raise SchemaError("empty image member")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _IMREAD_RGB)
    if img is None:
        raise SchemaError("not a decodable image")
    if _IMREAD_RGB == cv2.IMREAD_COLOR:  # OpenCV < 4.10 has no RGB read flag
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", cv2.IMREAD_COLOR)


def encode_mask(mask: np.ndarray) -> bytes:
    """bool [H, W] -> 1-bit PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, bool)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def decode_mask(data: bytes) -> np.ndarray:
    """PNG bytes -> bool [H, W]."""
    if not len(data):
        raise SchemaError("empty mask member")
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise SchemaError("not a decodable mask")
    return mask > 0


# --------------------------------------------------------------------------------------------------------------
# whole samples


def has_dense(sample: Mapping[str, Any]) -> bool:
    """True when the sample carries dense correspondence fields."""
    return "status_0to1" in sample


def _tolist(x: Any) -> Any:
    return None if x is None else np.asarray(x).tolist()


def encode_sample(sample: Mapping[str, Any]) -> dict[str, bytes | str]:
    """Encode a sample dict (the table in this module's docstring) into WebDataset tar members.

    Returns:
        ``{"__key__": key, "img0.jpg": ..., "img1.jpg": ..., "pair.json": ..., ["dense.bin"], ["mask0.png"]...}``.
    """
    check_sample(sample)
    members: dict[str, bytes | str] = {"__key__": str(sample["__key__"])}
    members["img0.jpg"] = _encode_jpeg_memo(sample["image0"])
    members["img1.jpg"] = _encode_jpeg_memo(sample["image1"])
    record: dict[str, Any] = {"meta": dict(sample["meta"])}
    for k in ("K0", "K1", "T_cam0_from_world", "T_cam1_from_world", "kps0", "kps1", "kps0_vis", "kps1_vis"):
        if k in sample and sample[k] is not None:
            record[k] = _tolist(sample[k])
    members["pair.json"] = json.dumps(record, separators=(",", ":")).encode()
    if has_dense(sample):
        views = []
        for v, d in ((0, "0to1"), (1, "1to0")):
            views.append(
                {"status": sample[f"status_{d}"], "corr": sample[f"corr_{d}"], "depth": sample.get(f"depth{v}")}
            )
        members["dense.bin"] = encode_dense(views)
    else:
        for v in (0, 1):
            if sample.get(f"mask{v}") is not None:
                members[f"mask{v}.png"] = encode_mask(sample[f"mask{v}"])
    return members


def meta_sizes(meta: Mapping[str, Any]) -> list[list[int]] | None:
    """``[[H0, W0], [H1, W1]]`` from ``meta.image_size0/1``, or None when either is missing or not two integers."""
    sizes = [meta.get(f"image_size{v}") for v in (0, 1)]
    if all(isinstance(x, list) and len(x) == 2 and all(type(i) is int for i in x) for x in sizes):
        return sizes
    return None


def malformed(where: str, err: BaseException) -> SchemaError:
    """The one error for a sample whose bytes do not decode, whatever the decoder raised: it names the sample and
    shard (``where``, from :func:`sample_where`) and the original error."""
    text = " ".join(str(err).split())  # one line (OpenCV's messages span several)
    return SchemaError(f"{where}: malformed sample ({type(err).__name__}: {text})")


def sample_where(members: Mapping[str, Any]) -> str:
    """``"sample KEY in URL"``: how errors name a sample."""
    return f"sample {members.get('__key__', '?')}" + (f" in {members['__url__']}" if "__url__" in members else "")


def read_record(members: Mapping[str, Any]) -> dict[str, Any]:
    """The sample's ``pair.json`` after the version check: ``__key__``, ``meta`` and the small fields (cameras,
    keypoints and their visibility) as arrays; no pixels.

    Raises:
        SchemaError: on a schema version mismatch (without the sample's name; callers add it);
        KeyError, ValueError: on a missing or malformed ``pair.json``.
    """
    if "pair.json" not in members:
        raise SchemaError("missing member pair.json")
    record = json.loads(members["pair.json"])
    meta = record["meta"]
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema_version {version} but this code reads version {SCHEMA_VERSION}; "
            "regenerate the data or use a matching release"
        )
    sample: dict[str, Any] = {"__key__": members.get("__key__"), "meta": meta}
    for k in ("K0", "K1", "T_cam0_from_world", "T_cam1_from_world", "kps0", "kps1"):
        if k in record:
            sample[k] = np.asarray(record[k], np.float32)
    for k in ("kps0_vis", "kps1_vis"):
        if k in record:
            sample[k] = np.asarray(record[k], bool)
    return sample


def decode_sample(members: Mapping[str, Any], check: bool = True) -> dict[str, Any]:
    """Decode tar members (as yielded by ``webdataset`` before any decoder) into a sample dict.

    Raises:
        SchemaError: naming the sample key (and shard URL when known) on a version mismatch or a malformed member.
    """
    where = sample_where(members)
    try:
        sample = read_record(members)
        for k in ("img0.jpg", "img1.jpg"):
            if k not in members:
                raise SchemaError(f"missing member {k}")
        sample["image0"] = decode_image(members["img0.jpg"])
        sample["image1"] = decode_image(members["img1.jpg"])
        if "dense.bin" in members:
            views = decode_dense(members["dense.bin"], meta_sizes(sample["meta"]))
            for v, d in ((0, "0to1"), (1, "1to0")):
                view = views[v]
                sample[f"status_{d}"] = view["status"]
                sample[f"corr_{d}"] = view["corr"]
                sample[f"valid_{d}"] = view["status"] == Status.MATCHED
                sample[f"mask{v}"] = view["status"] != Status.BACKGROUND
                if "depth" in view:
                    sample[f"depth{v}"] = view["depth"]
        for v in (0, 1):
            if f"mask{v}.png" in members:
                sample[f"mask{v}"] = decode_mask(members[f"mask{v}.png"])
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    except Exception as e:  # corrupt bytes reach the decoders (JSON, zstd, OpenCV, numpy) as any exception type
        raise malformed(where, e) from e
    if check:
        try:
            check_sample(sample)
        except SchemaError as e:
            raise SchemaError(f"{where}: {e}") from None
    return sample


def check_sample(sample: Mapping[str, Any]) -> None:
    """Raise :class:`SchemaError` if a sample dict breaks the schema (fields, dtypes, shapes, meta)."""
    meta = sample.get("meta")
    if not isinstance(meta, Mapping):
        raise SchemaError("missing meta dict")
    missing = [k for k in META_REQUIRED if k not in meta]
    if missing:
        raise SchemaError(f"meta lacks {missing}")
    if meta["source"] not in SOURCES:
        raise SchemaError(f"meta.source {meta['source']!r} is not one of {SOURCES}")
    for v in (0, 1):
        img = sample.get(f"image{v}")
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise SchemaError(f"image{v} must be uint8 [H, W, 3]")
        h, w = img.shape[:2]
        if list(meta[f"image_size{v}"]) != [h, w]:
            raise SchemaError(f"meta.image_size{v} {meta[f'image_size{v}']} != image{v} size {[h, w]}")
        d = "0to1" if v == 0 else "1to0"
        expect = {
            f"mask{v}": (bool, (h, w)),
            f"status_{d}": (np.uint8, (h, w)),
            f"corr_{d}": (np.float32, (h, w, 2)),
            f"depth{v}": (np.float32, (h, w)),
        }
        for k, (dtype, shape) in expect.items():
            a = sample.get(k)
            if a is None:
                continue
            if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
                got = (getattr(a, "dtype", type(a)), getattr(a, "shape", None))
                raise SchemaError(f"{k} must be {np.dtype(dtype)} {shape}, got {got}")
    names = meta["keypoint_names"]
    perm = meta.get(META_FLIP_PERM)
    if perm is not None and (
        sorted(perm) != list(range(len(names))) or any(perm[perm[i]] != i for i in range(len(names)))
    ):
        raise SchemaError(f"meta.{META_FLIP_PERM} must be an involutive permutation of range({len(names)}), got {perm}")
    for v in (0, 1):
        k = sample.get(f"kps{v}")
        if k is None:
            continue
        if (
            k.shape != (len(names), 2)
            or sample.get(f"kps{v}_vis") is None
            or sample[f"kps{v}_vis"].shape != (len(names),)
        ):
            raise SchemaError(f"kps{v}/kps{v}_vis must be [{len(names)}, 2] and [{len(names)}]")
    if meta["source"] in ("procedural", "meshes") and not has_dense(sample):
        raise SchemaError(f"a {meta['source']} sample must carry dense fields")
