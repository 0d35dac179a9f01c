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
lost), depth in steps of :data:`DEPTH_STEP_M` (10 µm). Integer streams are delta coded in row-major pixel
order, zig-zag mapped, split into byte planes and deflated: smooth fields compress to about a byte a value
and inflate at several hundred MB/s.
"""

from __future__ import annotations

import enum
import io
import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

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
    "check_sample",
    "has_dense",
    "pack_int_stream",
    "unpack_int_stream",
]

SCHEMA_VERSION = 1

CORR_STEP_PX = 1.0 / 32.0
DEPTH_STEP_M = 1e-5
JPEG_QUALITY = 95

SOURCES = ("procedural", "meshes", "spair", "pfpascal", "ap10k", "warp")
SYNTHETIC_SOURCES = ("procedural", "meshes", "warp")

META_REQUIRED = ("schema_version", "source", "category", "image_size0", "image_size1", "keypoint_names")

_DENSE_MAGIC = b"SGT\x01"


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
# integer streams


def pack_int_stream(values: np.ndarray, level: int = 6) -> bytes:
    """Delta code, zig-zag map, byte-plane split and deflate a 1-D integer stream.

    Args:
        values: int array [N] with |delta| < 2**31.
        level: zlib level.

    Returns:
        Compressed bytes; :func:`unpack_int_stream` with the same ``N`` inverts it exactly.
    """
    v = np.asarray(values, dtype=np.int64).ravel()
    if v.size == 0:
        return b""
    d = np.diff(v, prepend=np.int64(0))
    if np.abs(d).max() >= 2**31:
        raise SchemaError("integer stream delta out of range")
    z = ((d << 1) ^ (d >> 63)).astype(np.uint32)  # zig-zag: small |d| -> small unsigned
    planes = z.view(np.uint8).reshape(-1, 4).T  # [4, N] little-endian byte planes
    return zlib.compress(np.ascontiguousarray(planes).tobytes(), level)


def unpack_int_stream(blob: bytes, n: int) -> np.ndarray:
    """Invert :func:`pack_int_stream`. Returns int64 [n]."""
    if n == 0:
        return np.zeros(0, np.int64)
    raw = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    if raw.size != 4 * n:
        raise SchemaError(f"integer stream holds {raw.size} bytes, expected {4 * n}")
    z = np.ascontiguousarray(raw.reshape(4, n).T).view(np.uint32).ravel().astype(np.int64)
    d = (z >> 1) ^ -(z & 1)
    return np.cumsum(d)


# --------------------------------------------------------------------------------------------------------------
# dense container


def encode_dense(views: list[Mapping[str, np.ndarray | None]], level: int = 6) -> bytes:
    """Encode the dense fields of both views.

    Args:
        views: two dicts (view 0 then view 1) with ``status`` uint8 [H, W], ``corr`` float32 [H, W, 2]
            (read only where ``status`` is in :data:`STORED_STATUSES`, must be finite there) and optionally
            ``depth`` float32 [H, W] (metres, read where ``status != BACKGROUND``).
        level: zlib level.

    Returns:
        The ``dense.bin`` bytes.
    """
    header: dict[str, Any] = {"corr_step_px": CORR_STEP_PX, "depth_step_m": DEPTH_STEP_M, "views": []}
    blobs: list[bytes] = []
    offset = 0

    def add(blob: bytes) -> list[int]:
        nonlocal offset
        blobs.append(blob)
        span = [offset, len(blob)]
        offset += len(blob)
        return span

    for i, view in enumerate(views):
        status = np.asarray(view["status"])
        if status.dtype != np.uint8 or status.ndim != 2:
            raise SchemaError(f"view {i}: status must be uint8 [H, W], got {status.dtype} {status.shape}")
        h, w = status.shape
        entry: dict[str, Any] = {"h": h, "w": w, "status": add(zlib.compress(status.tobytes(), level))}
        stored = np.isin(status, np.array(STORED_STATUSES, np.uint8)).ravel()
        corr = np.asarray(view["corr"], dtype=np.float64).reshape(-1, 2)[stored]
        if corr.shape[0] and not np.isfinite(corr).all():
            raise SchemaError(f"view {i}: non-finite correspondence at a stored pixel")
        q = np.rint(corr / CORR_STEP_PX).astype(np.int64)
        entry["corr"] = add(pack_int_stream(q[:, 0], level)) + add(pack_int_stream(q[:, 1], level)) + [len(q)]
        depth = view.get("depth")
        if depth is not None:
            surface = (status != Status.BACKGROUND).ravel()
            dq = np.rint(np.asarray(depth, np.float64).ravel()[surface] / DEPTH_STEP_M).astype(np.int64)
            entry["depth"] = add(pack_int_stream(dq, level)) + [len(dq)]
        header["views"].append(entry)
    head = json.dumps(header, separators=(",", ":")).encode()
    return _DENSE_MAGIC + struct.pack("<I", len(head)) + head + b"".join(blobs)


def decode_dense(blob: bytes) -> list[dict[str, np.ndarray]]:
    """Decode ``dense.bin``: per view ``status`` uint8 [H, W], ``corr`` float32 [H, W, 2] (NaN where not
    stored) and, where stored, ``depth`` float32 [H, W] (0 on background)."""
    if blob[:4] != _DENSE_MAGIC:
        raise SchemaError("dense.bin: bad magic (not a dense container of schema version 1)")
    (hlen,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8 : 8 + hlen])
    body = memoryview(blob)[8 + hlen :]
    step_px, step_m = header["corr_step_px"], header["depth_step_m"]
    out = []
    for entry in header["views"]:
        h, w = entry["h"], entry["w"]
        o, n = entry["status"]
        status = np.frombuffer(zlib.decompress(body[o : o + n]), np.uint8).reshape(h, w).copy()
        ox, nx, oy, ny, count = entry["corr"]
        corr = np.full((h * w, 2), np.nan, np.float32)
        stored = np.isin(status.ravel(), np.array(STORED_STATUSES, np.uint8))
        if int(stored.sum()) != count:
            raise SchemaError("dense.bin: correspondence count does not match the status map")
        corr[stored, 0] = unpack_int_stream(body[ox : ox + nx], count) * step_px
        corr[stored, 1] = unpack_int_stream(body[oy : oy + ny], count) * step_px
        view = {"status": status, "corr": corr.reshape(h, w, 2)}
        if "depth" in entry:
            od, nd, dcount = entry["depth"]
            depth = np.zeros(h * w, np.float32)
            depth[status.ravel() != Status.BACKGROUND] = unpack_int_stream(body[od : od + nd], dcount) * step_m
            view["depth"] = depth.reshape(h, w)
        out.append(view)
    return out


# --------------------------------------------------------------------------------------------------------------
# images


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 [H, W, 3] -> JPEG bytes (4:4:4 chroma)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [H, W, 3]."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).copy()


def encode_mask(mask: np.ndarray) -> bytes:
    """bool [H, W] -> 1-bit PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, bool)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def decode_mask(data: bytes) -> np.ndarray:
    """PNG bytes -> bool [H, W]."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L")) > 0


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
    members["img0.jpg"] = encode_jpeg(sample["image0"])
    members["img1.jpg"] = encode_jpeg(sample["image1"])
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


def decode_sample(members: Mapping[str, Any], check: bool = True) -> dict[str, Any]:
    """Decode tar members (as yielded by ``webdataset`` before any decoder) into a sample dict.

    Raises:
        SchemaError: naming the sample key (and shard URL when known) on a version mismatch or a malformed member.
    """
    where = f"sample {members.get('__key__', '?')}" + (f" in {members['__url__']}" if "__url__" in members else "")
    try:
        record = json.loads(members["pair.json"])
        meta = record["meta"]
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SchemaError(
                f"schema_version {version} but this code reads version {SCHEMA_VERSION}; "
                "regenerate the data or use a matching release"
            )
        sample: dict[str, Any] = {"__key__": members.get("__key__"), "meta": meta}
        sample["image0"] = decode_image(members["img0.jpg"])
        sample["image1"] = decode_image(members["img1.jpg"])
        for k in ("K0", "K1", "T_cam0_from_world", "T_cam1_from_world", "kps0", "kps1"):
            if k in record:
                sample[k] = np.asarray(record[k], np.float32)
        for k in ("kps0_vis", "kps1_vis"):
            if k in record:
                sample[k] = np.asarray(record[k], bool)
        if "dense.bin" in members:
            views = decode_dense(members["dense.bin"])
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
    except (KeyError, ValueError, OSError, zlib.error) as e:
        raise SchemaError(f"{where}: malformed sample ({type(e).__name__}: {e})") from e
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
