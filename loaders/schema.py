"""The pair sample: its fields, dtypes, shapes, status codes and checks: the contract of the project.

This module is the single source of truth for what flows from ``datagen`` to ``loaders`` to ``training``
(docs/design.md §4); it holds the field table, the constants every part agrees on and :func:`check_sample`. How a sample
is stored is in :mod:`loaders.members` (tar members: JPEGs, PNG masks, ``pair.json``; ``encode_sample`` and
``decode_sample`` live side by side there, so writer and reader cannot drift apart) and :mod:`loaders.codec` (the
``dense.bin`` container of the dense fields).

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
* ``dense.bin``: the dense fields of both views in the :func:`loaders.codec.encode_dense` container;
* ``pair.json``: ``meta`` plus cameras and keypoints as JSON lists.

Correspondences are stored in steps of :data:`CORR_STEP_PX` (1/32 px, so at most 1/64 px is lost), depth in
steps of :data:`DEPTH_STEP_M` (10 µm, coarser for deep scenes): :mod:`loaders.codec` says how.

Optional ``meta`` keys with a fixed meaning: :data:`META_FLIP_PERM` (``perm[i]`` = the keypoint that keypoint
``i`` becomes under a horizontal mirror, an involution; ``None`` when unknown) and :data:`META_SYM_GROUPS`
(groups of symmetric or repeated keypoints). The transforms in :mod:`loaders.transforms` use the first.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "Status",
    "DIRECTIONS",
    "STORED_STATUSES",
    "CORR_STEP_PX",
    "CORR_CLAMP_PX",
    "DEPTH_STEP_M",
    "JPEG_QUALITY",
    "SOURCES",
    "SYNTHETIC_SOURCES",
    "META_REQUIRED",
    "META_FLIP_PERM",
    "META_SYM_GROUPS",
    "META_PER_VIEW",
    "SchemaError",
    "check_sample",
    "has_dense",
    "meta_sizes",
    "sample_where",
    "malformed",
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


class Status(enum.IntEnum):
    """Why a pixel of one view does or does not have a valid counterpart in the other (docs/design.md §4)."""

    BACKGROUND = 0  # the pixel sees no object surface
    MATCHED = 1  # counterpart exists, is the surface the other view sees there, and is inside the image
    OCCLUDED = 2  # counterpart exists and projects inside the other image, but something else is in front
    OUTSIDE = 3  # counterpart exists but projects outside the other image
    NO_COUNTERPART = 4  # the part is absent on the other instance


DIRECTIONS = ("0to1", "1to0")  # DIRECTIONS[v]: the direction whose pixels belong to view v (corr_0to1 ...)

# Statuses whose correspondence coordinates are stored (the counterpart exists, so its projection is defined).
STORED_STATUSES = (Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE)


class SchemaError(ValueError):
    """A sample does not follow the schema (wrong field, dtype, shape or version)."""


def has_dense(sample: Mapping[str, Any]) -> bool:
    """True when the sample carries dense correspondence fields."""
    return "status_0to1" in sample


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
