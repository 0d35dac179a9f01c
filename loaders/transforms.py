"""Deterministic pair-consistent transforms on schema sample dicts (numpy), built on :func:`loaders.warp.warp_view`.

Every function takes a sample dict (fields of :mod:`loaders.schema`), returns a new one and leaves the input
untouched, so ``datagen real`` can reuse them before writing shards. Correspondences stay exact: a transform of
view ``v`` moves view ``v``'s pixels *and* the other direction's correspondence values that point into view ``v``.
The random augmentations that draw their parameters from a ``numpy.random.Generator`` are in
:mod:`loaders.augment`.

``meta["transforms"]`` records each applied step (name and parameters) for debugging and provenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loaders.schema import META_FLIP_PERM, META_PER_VIEW, has_dense
from loaders.warp import affine_hflip, affine_resize, affine_translate, warp_view

__all__ = [
    "resize",
    "crop",
    "pad",
    "crop_to_multiple",
    "pad_to_multiple",
    "vggt_preprocess",
    "hflip",
    "swap_views",
    "view_size",
    "DENSE_KEYS",
    "VGGT_SIZE",
    "PATCH",
]

VGGT_SIZE = 518
PATCH = 14
WHITE = (255, 255, 255)
DENSE_KEYS = ("status_0to1", "status_1to0", "corr_0to1", "corr_1to0", "valid_0to1", "valid_1to0", "depth0", "depth1")


def view_size(sample: Mapping[str, Any], view: int) -> tuple[int, int]:
    """``(H, W)`` of view ``view``."""
    return tuple(sample[f"image{view}"].shape[:2])


def _record(sample: dict[str, Any], name: str, **params: Any) -> dict[str, Any]:
    meta = dict(sample["meta"])
    meta["transforms"] = [*meta.get("transforms", []), {"op": name, **params}]
    sample["meta"] = meta
    return sample


def _views(views: int | Sequence[int]) -> tuple[int, ...]:
    return (views,) if isinstance(views, int) else tuple(views)


def resize(
    sample: Mapping[str, Any], out_hw: tuple[int, int], views: int | Sequence[int] = (0, 1), interp: str = "linear"
) -> dict[str, Any]:
    """Resize the given views to ``out_hw = (H, W)`` (aspect ratio not kept; pixel edges map to pixel edges)."""
    out = dict(sample)
    for v in _views(views):
        out = warp_view(out, v, affine_resize(view_size(out, v), out_hw), out_hw, interp=interp)
    return _record(out, "resize", out_hw=list(out_hw), views=list(_views(views)))


def crop(sample: Mapping[str, Any], view: int, y0: int, x0: int, height: int, width: int) -> dict[str, Any]:
    """Crop view ``view`` to rows ``y0 .. y0+height`` and columns ``x0 .. x0+width`` (exact; parts outside the
    image come out as empty background)."""
    out = warp_view(sample, view, affine_translate(-x0, -y0), (height, width))
    return _record(out, "crop", view=view, box=[y0, x0, height, width])


def pad(
    sample: Mapping[str, Any], view: int, top: int, left: int, out_hw: tuple[int, int], fill: int | tuple = 0
) -> dict[str, Any]:
    """Place view ``view`` at ``(top, left)`` on an ``out_hw`` canvas of colour ``fill`` (exact)."""
    out = warp_view(sample, view, affine_translate(left, top), out_hw, fill=fill)
    return _record(out, "pad", view=view, top=top, left=left, out_hw=list(out_hw))


def crop_to_multiple(sample: Mapping[str, Any], multiple: int = PATCH) -> dict[str, Any]:
    """Centre-crop each view to the largest size that is a multiple of ``multiple`` on both sides."""
    out = dict(sample)
    for v in (0, 1):
        h, w = view_size(out, v)
        H, W = h - h % multiple, w - w % multiple
        if (h, w) != (H, W):
            out = crop(out, v, (h - H) // 2, (w - W) // 2, H, W)
    return out


def pad_to_multiple(sample: Mapping[str, Any], multiple: int = PATCH, fill: int | tuple = WHITE) -> dict[str, Any]:
    """Pad each view (centred) to the smallest size that is a multiple of ``multiple`` on both sides."""
    out = dict(sample)
    for v in (0, 1):
        h, w = view_size(out, v)
        H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
        if (h, w) != (H, W):
            out = pad(out, v, (H - h) // 2, (W - w) // 2, (H, W), fill=fill)
    return out


def vggt_preprocess(sample: Mapping[str, Any], mode: str = "crop", size: int = VGGT_SIZE) -> dict[str, Any]:
    """VGGT's ``load_and_preprocess_images`` geometry on both views (reference/vggt.md §2.1), bicubic.

    * ``"crop"``: width -> ``size``, height -> ``round(h * size / w / 14) * 14``; if that exceeds ``size``, a
      centre crop to ``size`` rows. The output is ``size`` wide and at most ``size`` high.
    * ``"pad"``: the long side -> ``size``, the other -> ``round(. / 14) * 14``; then padded with white (1.0 in
      VGGT's [0, 1] images) to ``size x size``, centred.

    One resampling per view: the resize and the crop/pad are fused into one affine map.
    """
    if mode not in ("crop", "pad"):
        raise ValueError(f"vggt_preprocess: mode must be 'crop' or 'pad', got {mode!r}")
    out = dict(sample)
    for v in (0, 1):
        h, w = view_size(out, v)
        if mode == "crop":
            rh, rw = round(h * (size / w) / PATCH) * PATCH, size
            H, W = min(rh, size), size
            A = affine_translate(0, -((rh - H) // 2)) @ affine_resize((h, w), (rh, rw))
            out = warp_view(out, v, A, (H, W), interp="cubic")
        else:
            if w >= h:
                rh, rw = round(h * (size / w) / PATCH) * PATCH, size
            else:
                rh, rw = size, round(w * (size / h) / PATCH) * PATCH
            A = affine_translate((size - rw) // 2, (size - rh) // 2) @ affine_resize((h, w), (rh, rw))
            out = warp_view(out, v, A, (size, size), fill=WHITE, interp="cubic")
    return _record(out, "vggt_preprocess", mode=mode, size=size)


def _drop_dense(sample: dict[str, Any], reason: str) -> dict[str, Any]:
    for k in DENSE_KEYS:
        sample.pop(k, None)
    meta = dict(sample["meta"])
    meta["dense_dropped"] = reason
    sample["meta"] = meta
    return sample


def hflip(sample: Mapping[str, Any], views: int | Sequence[int] = (0, 1), drop_dense: bool = False) -> dict[str, Any]:
    """Mirror the given views horizontally, keeping keypoint labels true.

    The mirror turns the object's left into its right, so keypoint ``i`` of a flipped view becomes keypoint
    ``meta["flip_perm"][i]``: the keypoint arrays of that view are permuted accordingly (and ``K``/``T`` describe
    the mirrored instance, see :func:`loaders.warp.update_camera`). ``meta["mirrored"]`` tracks each view's state.

    Flipping *both* views keeps a dense field exact and semantically right (a left part still maps to the left
    part). Flipping *one* view of a dense pair would send the left leg of one instance to the right leg of the
    other, so it raises unless ``drop_dense=True``, which removes the dense fields (``meta["dense_dropped"]``).

    Raises:
        ValueError: one view of a dense pair without ``drop_dense``, or keypoints with an unknown
            (``None``) flip permutation on one view only.
    """
    vs = _views(views)
    out = dict(sample)
    meta = out["meta"]
    if len(vs) == 1 and has_dense(out):
        if not drop_dense:
            raise ValueError(
                "hflip of one view of a dense pair would map left parts to right parts; "
                "flip both views or pass drop_dense=True"
            )
        out = _drop_dense(out, "single-view flip")
    perm = meta.get(META_FLIP_PERM)
    n_kps = len(meta.get("keypoint_names", []))
    if perm is None and n_kps and len(vs) == 1 and any(f"kps{v}" in out for v in vs):
        raise ValueError(f"hflip of one view needs meta.{META_FLIP_PERM} to keep keypoint labels true; it is None")
    for v in vs:
        out = warp_view(out, v, affine_hflip(view_size(out, v)[1]), view_size(out, v))
        if perm is not None and f"kps{v}" in out:
            p = np.asarray(perm, np.intp)
            out[f"kps{v}"], out[f"kps{v}_vis"] = out[f"kps{v}"][p], out[f"kps{v}_vis"][p]
    meta = dict(out["meta"])
    mirrored = list(meta.get("mirrored", [False, False]))
    for v in vs:
        mirrored[v] = not mirrored[v]
    meta["mirrored"] = mirrored
    out["meta"] = meta
    return _record(out, "hflip", views=list(vs))


_SWAP_PAIRS = (
    ("image0", "image1"),
    ("mask0", "mask1"),
    ("depth0", "depth1"),
    ("K0", "K1"),
    ("T_cam0_from_world", "T_cam1_from_world"),
    ("kps0", "kps1"),
    ("kps0_vis", "kps1_vis"),
    ("status_0to1", "status_1to0"),
    ("corr_0to1", "corr_1to0"),
    ("valid_0to1", "valid_1to0"),
)


def swap_views(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Exchange view 0 and view 1: every per-view field, both directions, the ``meta`` keys that differ only by a
    final ``0``/``1`` (``image_size0``/``image_size1``, ...) and the two-entry lists of
    :data:`loaders.schema.META_PER_VIEW` (``instance_ids``, ``mirrored``, ...); ``meta["swapped"]`` flips."""
    out = dict(sample)
    for a, b in _SWAP_PAIRS:
        va, vb = sample.get(a), sample.get(b)
        out.pop(a, None)
        out.pop(b, None)
        if vb is not None:
            out[a] = vb
        if va is not None:
            out[b] = va
    meta = dict(sample["meta"])
    for k in [k for k in meta if k.endswith("0") and k[:-1] + "1" in meta]:
        k1 = k[:-1] + "1"
        meta[k], meta[k1] = meta[k1], meta[k]
    for k in META_PER_VIEW:
        if isinstance(meta.get(k), list) and len(meta[k]) == 2:
            meta[k] = meta[k][::-1]
    meta["swapped"] = not meta.get("swapped", False)
    out["meta"] = meta
    return _record(out, "swap_views")
