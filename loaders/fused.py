"""Write a planned sample (:mod:`loaders.decode`) into one slot of a batch, decoding each raster once.

Images are decoded, the recorded operations replayed on them (the same :class:`loaders.raster.Raster` and
:func:`loaders.raster.jitter_image` calls the sample-dict path makes, in the same order) and written channel-first
into the batch. The dense fields of each view go straight from ``dense.bin`` into the batch arrays with their exact
warps folded into that write (:mod:`loaders.dense`). Keypoints, cameras and ``meta`` were already computed by the
transforms themselves. The result equals decoding the sample, transforming it and collating it (``to_item`` +
``collate_pairs``), which ``tests/loaders/test_loaders_fused.py`` checks field for field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from loaders.codec import read_pair_header
from loaders.dense import DenseBlob, decode_view_into, raster_plan, value_plan
from loaders.members import decode_image, decode_mask
from loaders.raster import Pending, Raster, jitter_image, scratch
from loaders.schema import DIRECTIONS, SchemaError, malformed, sample_where

__all__ = ["write_planned"]


def _image(p: Pending, members: Mapping[str, Any]) -> np.ndarray:
    """Decode the stored view's JPEG and replay the recorded operations: uint8 [H, W, 3] (a scratch buffer or the
    decoded image; valid until the next call). Mirrors, crops and the jitter write into two reused buffers in
    turn: a fresh 0.8 MB result per operation would cost more in page faults than the operation itself."""
    img = decode_image(members[f"img{p.view}.jpg"])
    turn = 0
    for op in p.ops:
        out = scratch(f"image{turn}", (*op[3], 3) if op[0] == "warp" else img.shape, np.uint8)
        if op[0] == "warp":
            _, A, in_hw, out_hw, fill, interp = op
            if img.shape[:2] != tuple(in_hw):
                raise SchemaError(f"image{p.view} is {list(img.shape[:2])}, meta.image_size{p.view} says {list(in_hw)}")
            ras = Raster(A, in_hw, out_hw)
            if ras.exact and ras.dst == (slice(0, out_hw[0]), slice(0, out_hw[1])):  # a mirror or a crop inside
                block = img[ras.src]
                if ras.flip:
                    img = cv2.flip(block, 1, dst=out)
                else:
                    out[...] = block
                    img = out
            else:
                img = ras.image(img, fill, interp)
                continue
        elif op[0] == "jitter":
            img = jitter_image(img, *op[1:], out=out)
        turn = 1 - turn
    if img.shape != p.shape:
        raise SchemaError(f"image{p.view} is {list(img.shape[:2])}, meta.image_size{p.view} says {list(p.shape[:2])}")
    return np.ascontiguousarray(img)


def _mask_png(p: Pending, members: Mapping[str, Any]) -> np.ndarray:
    mask = decode_mask(members[f"mask{p.view}.png"])
    for op in p.ops:
        if op[0] == "warp":
            mask = Raster(op[1], op[2], op[3]).nearest(np.ascontiguousarray(mask), False)
    if mask.shape != p.shape:
        raise SchemaError(f"mask{p.view}.png is {list(mask.shape)}, expected {list(p.shape)}")
    return mask


def _in_hw(p: Pending, dense: DenseBlob) -> tuple[int, int]:
    e = dense.entry(p.view)
    return int(e["h"]), int(e["w"])


def write_planned(
    arrays: Mapping[str, np.ndarray],
    i: int,
    sample: Mapping[str, Any],
    members: Mapping[str, Any],
    corr_dirty: np.ndarray | None = None,
) -> None:
    """Fill slot ``i`` of the batch ``arrays`` (numpy views of the batch tensors; absent keys are not wanted) from a
    planned, transformed sample and its tar members.

    ``corr_dirty``: int32 [B, 2, 4], where ``arrays["corr"]`` may be non-zero (see :func:`loaders.batch._alloc`);
    only those rectangles are cleared, and slot ``i``'s entries are updated.

    Raises:
        SchemaError: naming the sample when a member does not decode or disagrees with ``pair.json``.
    """
    where = sample_where(members)
    try:
        _write(arrays, i, sample, members, corr_dirty)
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    except Exception as e:  # corrupt bytes reach the decoders (zstd, OpenCV, numpy) as any exception type
        raise malformed(where, e) from e


def _write(
    arrays: Mapping[str, np.ndarray],
    i: int,
    sample: Mapping[str, Any],
    members: Mapping[str, Any],
    corr_dirty: np.ndarray | None,
) -> None:
    images = arrays.get("images")
    dense = DenseBlob(members["dense.bin"], read_pair_header(members["dense.bin"])) if "dense.bin" in members else None
    for o in (0, 1):
        if images is not None:
            _put_image(images[i, o], _image(sample[f"image{o}"], members))
        d = DIRECTIONS[o]
        status = arrays["status"][i, o] if "status" in arrays else _status_tmp(sample[f"image{o}"].shape[:2])
        if f"status_{d}" in sample:
            p = sample[f"corr_{d}"]  # status, corr and valid of a direction carry the same operations
            corr, depth = arrays.get("corr"), arrays.get("depth")
            p_depth = sample.get(f"depth{o}")
            dirty = None
            if corr is not None and corr_dirty is not None:
                dirty = tuple(int(x) for x in corr_dirty[i, o])
                corr_dirty[i, o] = (0, corr.shape[2], 0, corr.shape[3])  # until the write is done
            written = decode_view_into(
                dense,
                p.view,
                raster_plan(_in_hw(p, dense), p.ops),
                value_plan(p.ops),
                status,
                None if corr is None else corr[i, o],
                None if depth is None or p_depth is None else depth[i, o],
                dirty,
            )
            if dirty is not None:
                corr_dirty[i, o] = written
            if depth is not None and p_depth is None:
                depth[i, o] = 0
        else:
            status[...] = 0
            for k in ("corr", "depth"):
                if k in arrays:
                    arrays[k][i, o] = 0
            if corr_dirty is not None:
                corr_dirty[i, o] = 0
        if "valid" in arrays:
            np.equal(status, 1, out=arrays["valid"][i, o])  # Status.MATCHED
        if "mask" in arrays:
            m = sample.get(f"mask{o}")
            if m is None:
                arrays["mask"][i, o] = True
            elif m.kind == "mask_png":
                arrays["mask"][i, o] = _mask_png(m, members)
            elif f"status_{d}" in sample:
                np.not_equal(status, 0, out=arrays["mask"][i, o])  # synthetic silhouette: status != BACKGROUND
            else:  # dense fields dropped (a single-view flip), the silhouette kept: decode the status for it
                tmp = np.empty(m.shape, np.uint8)
                decode_view_into(dense, m.view, raster_plan(_in_hw(m, dense), m.ops), value_plan(()), tmp)
                np.not_equal(tmp, 0, out=arrays["mask"][i, o])


_STATUS_TMP: dict[tuple[int, int], np.ndarray] = {}


def _status_tmp(hw: tuple[int, int]) -> np.ndarray:
    """A reused uint8 [H, W] for the statuses when the batch does not carry them (valid / mask still need them)."""
    if hw not in _STATUS_TMP:
        _STATUS_TMP.clear()
        _STATUS_TMP[hw] = np.empty(hw, np.uint8)
    return _STATUS_TMP[hw]


_INV255 = np.float32(1 / 255)


def _put_image(dst: np.ndarray, img: np.ndarray) -> None:
    """uint8 [H, W, 3] -> ``dst`` [3, H, W] (uint8, or float32 in [0, 1] as ``x * float32(1/255)``)."""
    if dst.dtype == np.uint8:
        cv2.split(img, list(dst))
        return
    for c, plane in enumerate(cv2.split(img)):
        np.multiply(plane, _INV255, out=dst[c])
