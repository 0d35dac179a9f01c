"""Tar members <-> sample dicts: the on-disk form of one pair (images, masks, ``pair.json``, ``dense.bin``).

On disk a sample is one WebDataset group of tar members sharing a key (the field table is in
:mod:`loaders.schema`):

* ``img0.jpg``, ``img1.jpg``: JPEG, quality :data:`loaders.schema.JPEG_QUALITY`, 4:4:4 chroma;
* ``mask0.png``, ``mask1.png``: 1-bit PNG, only when a real pair has masks;
* ``dense.bin``: the dense fields of both views (:mod:`loaders.codec`);
* ``pair.json``: ``meta`` plus cameras and keypoints as JSON lists.

:func:`encode_sample` (the writer, used by ``datagen``) and :func:`decode_sample` (the reader) live side by side so
the two cannot drift apart. The writer remembers the JPEGs of the last few frozen views (one rendered view serves
several pairs), so a view is encoded once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image

from loaders.codec import decode_dense, encode_dense
from loaders.schema import (
    JPEG_QUALITY,
    SCHEMA_VERSION,
    SchemaError,
    Status,
    check_sample,
    has_dense,
    malformed,
    meta_sizes,
    sample_where,
)

__all__ = [
    "encode_sample",
    "decode_sample",
    "read_record",
    "encode_jpeg",
    "decode_image",
    "encode_mask",
    "decode_mask",
]


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
