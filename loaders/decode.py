"""Stage 2 of the loader: decode a sample's tar members, or plan the decode so it lands straight in the batch.

:func:`decode_pair` is the stage. With ``plan=True`` (what :meth:`loaders.stream.PairStream.batches` asks for when
the transform can run on a plan) it returns :func:`plan_sample`'s *planned* sample; otherwise the decoded arrays of
:func:`loaders.members.decode_sample`. Either way the result is a schema sample dict the transforms accept.

A planned sample's small fields (``meta``, keypoints, cameras) are decoded and its rasters (images, dense
fields, masks) are :class:`loaders.raster.Pending` placeholders: the source view, the raster's shape and the
operations recorded on it so far. The ordinary transforms of :mod:`loaders.transforms` / :mod:`loaders.augment` run
on such a sample unchanged: their random draws, keypoint, camera and ``meta`` updates happen for real, while
:func:`loaders.warp.warp_view` and the colour jitter append operations to the placeholders instead of touching
pixels. The batch stage (:meth:`loaders.batch.BatchWriter.add`, :mod:`loaders.fused`) then decodes each raster
once, straight into the batch, with the recorded operations folded into that write.

A dense pair can only be planned while every warp of a view is exact (integer shifts, crops, pads and mirrors:
the VGGT crop of a 518-wide view, flips, swaps); a resampling warp of a dense view raises
:class:`loaders.raster.NotPlannable`, and the pipeline decodes the sample instead (``decode_pair(members)``) and
runs the transform again with the same generator, so the result is the same. Images and masks of pairs without
dense fields may be warped by any affine map: those operations are replayed on the decoded raster.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from loaders.codec import read_pair_header
from loaders.members import decode_sample, read_record
from loaders.raster import Pending, is_pending
from loaders.schema import SchemaError, check_sample, malformed, sample_where

__all__ = ["decode_pair", "plan_sample"]


@functools.lru_cache(maxsize=64)
def _blank(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A read-only zero-stride array of ``shape`` (no memory): stands in for a raster in :func:`check_sample`."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def plan_sample(members: Mapping[str, Any]) -> dict[str, Any]:
    """Tar members -> a schema sample with :class:`loaders.raster.Pending` rasters (see the module doc) and real small
    fields.

    Checks what :func:`loaders.members.decode_sample` checks, except the pixels themselves (the writer checks the
    decoded images' sizes against ``meta``).

    Raises:
        SchemaError: naming the sample key (and shard URL when known).
    """
    where = sample_where(members)
    try:
        sample = read_record(members)
        for k in ("img0.jpg", "img1.jpg"):
            if k not in members:
                raise SchemaError(f"missing member {k}")
        sizes = [tuple(int(x) for x in sample["meta"][f"image_size{v}"]) for v in (0, 1)]
        for v in (0, 1):
            sample[f"image{v}"] = Pending("image", v, (*sizes[v], 3))
        shadow = {k: v for k, v in sample.items() if not is_pending(v)}  # what check_sample inspects, no pixels
        for v in (0, 1):
            shadow[f"image{v}"] = _blank((*sizes[v], 3), "u1")
        if "dense.bin" in members:
            header = read_pair_header(members["dense.bin"], sizes)
            for v, d in ((0, "0to1"), (1, "1to0")):
                entry = header["views"][v]
                hw = (int(entry["h"]), int(entry["w"]))
                for kind, key, shape, dtype in (
                    ("status", f"status_{d}", hw, np.uint8),
                    ("corr", f"corr_{d}", (*hw, 2), np.float32),
                    ("valid", f"valid_{d}", hw, bool),
                    ("mask", f"mask{v}", hw, bool),
                ) + ((("depth", f"depth{v}", hw, np.float32),) if entry["depth"] else ()):
                    sample[key] = Pending(kind, v, shape)
                    shadow[key] = _blank(shape, np.dtype(dtype).str)
        for v in (0, 1):
            if f"mask{v}.png" in members:
                sample[f"mask{v}"] = Pending("mask_png", v, sizes[v])
                shadow[f"mask{v}"] = _blank(sizes[v], "|b1")
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    except Exception as e:  # corrupt bytes reach the parsers as any exception type
        raise malformed(where, e) from e
    try:
        check_sample(shadow)
    except SchemaError as e:
        raise SchemaError(f"{where}: {e}") from None
    return sample


def decode_pair(members: Mapping[str, Any], plan: bool = False, keep_depth: bool = True) -> dict[str, Any]:
    """The decode stage: tar members -> a schema sample, decoded or (``plan``) planned (see the module doc).

    ``keep_depth=False`` leaves the depth of a decoded sample out (a batch without depth: not worth warping; a
    planned sample keeps its placeholders, which cost nothing).

    Raises:
        SchemaError: naming the sample key (and shard URL when known).
    """
    if plan:
        return plan_sample(members)
    sample = decode_sample(members)
    if not keep_depth:
        sample.pop("depth0", None)
        sample.pop("depth1", None)
    return sample
