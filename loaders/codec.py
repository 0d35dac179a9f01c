"""The ``dense.bin`` container: the dense fields of a pair (statuses, correspondences, depth) on disk.

Correspondences are stored as integers in steps of :data:`loaders.schema.CORR_STEP_PX` (1/32 px, so at most 1/64 px
is lost; coordinates of OUTSIDE counterparts are clamped to ±:data:`loaders.schema.CORR_CLAMP_PX`), depth in steps of
:data:`loaders.schema.DEPTH_STEP_M` (10 µm; doubled per view while a view's depth span would exceed 2**21 steps,
about 21 m, so deep scenes store coarser depth). Each channel is an integer raster over the view's surface bounding
box, predicted from its left, upper and upper-left neighbours (planar predictor, :func:`encode_plane`); the residual
goes to one int8 byte plane (an escape table holds the few large ones, at silhouettes and part seams) and the planes
are compressed with zstd (zlib when the ``zstandard`` package is missing; the header names the codec). Decoding
(:func:`decode_dense`) is one inflate and one 2-D prefix sum (``cv2.integral``) per view and field: both views of a
518² pair decode in ~2-3 ms. :mod:`loaders.dense` decodes the same container straight into batch buffers.

(A little over 400 lines: the encoder, the header check and the decoder of one format stay side by side.)
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from loaders.schema import CORR_CLAMP_PX, CORR_STEP_PX, DEPTH_STEP_M, STORED_STATUSES, SchemaError, Status

try:  # zstd inflates the dense planes ~3x faster than zlib; zlib stays readable and is the fallback
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a declared dependency
    zstandard = None


__all__ = [
    "encode_dense",
    "decode_dense",
    "read_dense_header",
    "read_pair_header",
    "encode_plane",
    "decode_plane",
    "body_span",
    "decompress",
]

_DENSE_MAGIC = b"SGT\x03"
_PLANE_LIMIT = 2**22  # |value - base| in steps; keeps every float32 prefix sum exact (< 2**24)


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


def decompress(data: memoryview, codec: str) -> bytes:
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


def read_pair_header(blob: bytes, sizes: list | None = None) -> dict[str, Any]:
    """The checked JSON header of a pair's ``dense.bin`` (:func:`read_dense_header`): two views."""
    header = read_dense_header(blob, sizes)
    if len(header["views"]) != 2:
        raise SchemaError(f"dense.bin: {len(header['views'])} views, a pair has 2")
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
        status = np.frombuffer(decompress(body_span(body, entry["status"]), codec), np.uint8).reshape(h, w).copy()
        corr = _blank((h, w, 2), np.nan, entry["box"])
        depth = _blank((h, w), 0.0, entry["box"]) if entry["depth"] else None
        if bh * bw:
            planes = np.frombuffer(decompress(body_span(body, entry["planes"]), codec), np.uint8)
            esc = np.frombuffer(decompress(body_span(body, entry["escapes"]), codec), np.int32)
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


def body_span(body: memoryview, span: list[int]) -> memoryview:
    o, n = span
    if o + n > len(body):
        raise SchemaError("dense.bin: truncated")
    return body[o : o + n]
