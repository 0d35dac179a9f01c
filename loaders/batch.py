"""Schema samples -> tensors -> batches (docs/interfaces.md §4).

``to_tensors`` turns one (transformed) schema sample into the per-pair tensors, ``collate_pairs`` stacks them:

=================  ===================================  ===========================================================
key                dtype, shape                         meaning
=================  ===================================  ===========================================================
images             float32 [B, 2, 3, H, W] in [0, 1]    view 0, view 1
corr               float32 [B, 2, H, W, 2] px           [:, 0] = corr_0to1, [:, 1] = corr_1to0; 0 where undefined
valid              bool [B, 2, H, W]                    status == MATCHED; all False without dense fields
status             uint8 [B, 2, H, W]                   schema status codes; 0 (BACKGROUND) without dense fields
mask               bool [B, 2, H, W]                    object silhouette; all True where absent
depth              float32 [B, 2, H, W] m               0 where absent
K                  float32 [B, 2, 3, 3]                 identity where absent
T_cam_from_world   float32 [B, 2, 4, 4]                 identity where absent
kps                float32 [B, 2, N, 2] px              keypoints padded with 0 to N = ``max_keypoints``
kps_vis            bool [B, 2, N]                       False on padding and invisible points
has_dense          bool [B]                             dense fields are real
has_mask           bool [B]                             masks are real
has_camera         bool [B]                             K / T are real
is_padding         bool [B]                             a repeat that only evens out the per-rank epoch length
meta               list[dict]                           each sample's meta
key, url, source   list[str]                            sample key, shard URL, data-manifest source name
stream             list[dict]                           per sample: ``slot`` (global worker), ``skipped`` so far
=================  ===================================  ===========================================================

Images stay uint8 until :func:`collate_pairs` (4x less to copy between processes), which converts them to float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from loaders.schema import has_dense

__all__ = ["MAX_KEYPOINTS", "to_tensors", "collate_pairs", "BATCH_KEYS"]

MAX_KEYPOINTS = 32
BATCH_KEYS = (
    "images",
    "corr",
    "valid",
    "status",
    "mask",
    "depth",
    "K",
    "T_cam_from_world",
    "kps",
    "kps_vis",
    "has_dense",
    "has_mask",
    "has_camera",
    "is_padding",
)
_LIST_KEYS = ("meta", "key", "url", "source", "stream")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def to_tensors(sample: Mapping[str, Any], max_keypoints: int = MAX_KEYPOINTS) -> dict[str, Any]:
    """One schema sample (both views of one size) -> the per-pair tensors of the batch table (without ``B``).

    Raises:
        ValueError: naming the sample when its views differ in size or it has more than ``max_keypoints``.
    """
    key = sample.get("__key__", "?")
    h, w = sample["image0"].shape[:2]
    if sample["image1"].shape[:2] != (h, w):
        raise ValueError(
            f"sample {key}: views are {sample['image0'].shape[:2]} and {sample['image1'].shape[:2]}; batches need one"
            " size: add a transform that fixes it (vggt_preprocess 'pad', random_affine with out_hw)"
        )
    out: dict[str, Any] = {
        "images": _t(np.stack([sample["image0"], sample["image1"]]).transpose(0, 3, 1, 2)),  # uint8 [2, 3, H, W]
    }
    dense = has_dense(sample)
    if dense:
        corr = np.stack([sample["corr_0to1"], sample["corr_1to0"]])
        out["corr"] = _t(np.nan_to_num(corr, nan=0.0))
        out["status"] = _t(np.stack([sample["status_0to1"], sample["status_1to0"]]))
        out["valid"] = _t(np.stack([sample["valid_0to1"], sample["valid_1to0"]]))
    else:
        out["corr"] = torch.zeros(2, h, w, 2)
        out["status"] = torch.zeros(2, h, w, dtype=torch.uint8)
        out["valid"] = torch.zeros(2, h, w, dtype=torch.bool)
    has_mask = "mask0" in sample and "mask1" in sample
    out["mask"] = _t(np.stack([sample["mask0"], sample["mask1"]])) if has_mask else torch.ones(2, h, w, dtype=bool)
    if "depth0" in sample and "depth1" in sample:
        out["depth"] = _t(np.stack([sample["depth0"], sample["depth1"]]))
    else:
        out["depth"] = torch.zeros(2, h, w)
    has_camera = all(k in sample for k in ("K0", "K1", "T_cam0_from_world", "T_cam1_from_world"))
    if has_camera:
        out["K"] = _t(np.stack([sample["K0"], sample["K1"]]).astype(np.float32))
        out["T_cam_from_world"] = _t(np.stack([sample["T_cam0_from_world"], sample["T_cam1_from_world"]]))
    else:
        out["K"] = torch.eye(3).expand(2, 3, 3).clone()
        out["T_cam_from_world"] = torch.eye(4).expand(2, 4, 4).clone()
    kps = torch.zeros(2, max_keypoints, 2)
    vis = torch.zeros(2, max_keypoints, dtype=torch.bool)
    for v in (0, 1):
        if f"kps{v}" in sample:
            k = np.asarray(sample[f"kps{v}"], np.float32)
            if k.shape[0] > max_keypoints:
                raise ValueError(f"sample {key}: {k.shape[0]} keypoints > max_keypoints={max_keypoints}")
            kv = np.asarray(sample[f"kps{v}_vis"], bool) & np.isfinite(k).all(-1)
            kps[v, : k.shape[0]] = torch.from_numpy(np.where(kv[:, None], k, 0))
            vis[v, : k.shape[0]] = torch.from_numpy(kv)
    out["kps"], out["kps_vis"] = kps, vis
    out["has_dense"], out["has_mask"], out["has_camera"] = dense, has_mask, has_camera
    out["meta"] = sample["meta"]
    out["key"] = str(key)
    out["url"] = str(sample.get("__url__", ""))
    out["source"] = str(sample.get("__source__", ""))
    out["is_padding"] = bool(sample.get("__padding__", False))
    out["stream"] = dict(sample.get("__stream__", {}))
    return out


def collate_pairs(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack per-pair tensors (from :func:`to_tensors`) into the batch dict; images become float in [0, 1].

    Raises:
        ValueError: naming the first two keys whose image sizes differ.
    """
    if not items:
        raise ValueError("collate_pairs: empty batch")
    shapes = {tuple(it["images"].shape) for it in items}
    if len(shapes) > 1:
        a = items[0]
        b = next(it for it in items if tuple(it["images"].shape) != tuple(a["images"].shape))
        raise ValueError(
            f"collate_pairs: samples {a['key']} {tuple(a['images'].shape)} and {b['key']} "
            f"{tuple(b['images'].shape)} differ in size; fix the size with a transform"
        )
    batch: dict[str, Any] = {}
    for k in BATCH_KEYS:
        vals = [it[k] for it in items]
        batch[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else torch.tensor(vals, dtype=torch.bool)
    batch["images"] = batch["images"].float().div_(255.0)
    for k in _LIST_KEYS:
        batch[k] = [it[k] for it in items]
    return batch
