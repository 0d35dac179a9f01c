"""Schema samples -> tensors -> batches (docs/interfaces.md §4).

The batch dict of docs/interfaces.md §4, built by ``collate_pairs`` from per-pair records (``to_item``):

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

``to_item`` turns one (transformed) schema sample into a light per-pair record (references to its arrays, padded
keypoints, flags); ``collate_pairs`` writes the records straight into the batch arrays, one pass per field (the
uint8 -> float image conversion and the HWC -> CHW transpose happen in that same pass), so a pair's pixels are
copied once. Both run in the DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from loaders.schema import has_dense

__all__ = ["MAX_KEYPOINTS", "to_item", "collate_pairs", "BATCH_KEYS"]

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
_EYE3, _EYE4 = np.eye(3, dtype=np.float32), np.eye(4, dtype=np.float32)
_NP = {torch.float32: np.float32, torch.uint8: np.uint8, torch.bool: np.bool_}


def to_item(sample: Mapping[str, Any], max_keypoints: int = MAX_KEYPOINTS) -> dict[str, Any]:
    """One schema sample (both views of one size) -> a per-pair record for :func:`collate_pairs`.

    Raises:
        ValueError: naming the sample when its views differ in size or it has more than ``max_keypoints``.
    """
    key = sample.get("__key__", "?")
    h, w = sample["image0"].shape[:2]
    if sample["image1"].shape[:2] != (h, w):
        raise ValueError(
            f"sample {key}: views are {sample['image0'].shape[:2]} and {sample['image1'].shape[:2]}; batches need one"
            " size: add a transform that fixes it (vggt_preprocess 'pad', fit or random_affine with out_hw)"
        )
    dense = has_dense(sample)
    has_mask = "mask0" in sample and "mask1" in sample
    has_depth = "depth0" in sample and "depth1" in sample
    has_camera = all(k in sample for k in ("K0", "K1", "T_cam0_from_world", "T_cam1_from_world"))
    kps = np.zeros((2, max_keypoints, 2), np.float32)
    vis = np.zeros((2, max_keypoints), bool)
    for v in (0, 1):
        if f"kps{v}" in sample:
            k = np.asarray(sample[f"kps{v}"], np.float32)
            if k.shape[0] > max_keypoints:
                raise ValueError(f"sample {key}: {k.shape[0]} keypoints > max_keypoints={max_keypoints}")
            kv = np.asarray(sample[f"kps{v}_vis"], bool) & np.isfinite(k).all(-1)
            kps[v, : k.shape[0]] = np.where(kv[:, None], k, 0)
            vis[v, : k.shape[0]] = kv
    return {
        "hw": (h, w),
        "image": (sample["image0"], sample["image1"]),
        "corr": (sample["corr_0to1"], sample["corr_1to0"]) if dense else None,
        "status": (sample["status_0to1"], sample["status_1to0"]) if dense else None,
        "mask": (sample["mask0"], sample["mask1"]) if has_mask else None,
        "depth": (sample["depth0"], sample["depth1"]) if has_depth else None,
        "K": (sample["K0"], sample["K1"]) if has_camera else (_EYE3, _EYE3),
        "T_cam_from_world": (
            (sample["T_cam0_from_world"], sample["T_cam1_from_world"]) if has_camera else (_EYE4, _EYE4)
        ),
        "kps": kps,
        "kps_vis": vis,
        "has_dense": dense,
        "has_mask": has_mask,
        "has_camera": has_camera,
        "is_padding": bool(sample.get("__padding__", False)),
        "meta": sample["meta"],
        "key": str(key),
        "url": str(sample.get("__url__", "")),
        "source": str(sample.get("__source__", "")),
        "stream": dict(sample.get("__stream__", {})),
    }


def _alloc(shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, np.ndarray]:
    """An uninitialised tensor and its numpy view; in a DataLoader worker it lives in shared memory already, so
    sending the batch to the main process copies nothing more (what ``default_collate`` does too)."""
    if torch.utils.data.get_worker_info() is None:
        a = np.empty(shape, _NP[dtype])  # numpy asks for transparent huge pages: ~2x fewer page faults than torch
        return torch.from_numpy(a), a
    nbytes = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
    t = torch.empty(0, dtype=dtype).set_(torch.UntypedStorage._new_shared(nbytes), 0, shape)
    return t, t.numpy()


def collate_pairs(items: Sequence[Mapping[str, Any]], uint8_images: bool = False) -> dict[str, Any]:
    """Write per-pair records (from :func:`to_item`) into the batch dict of the table above.

    Args:
        items: per-pair records of one size.
        uint8_images: keep ``images`` uint8 in [0, 255] (4x less memory to fill and to send between processes;
            divide by 255 on the GPU). The default is the float32 [0, 1] of docs/interfaces.md §4.

    Raises:
        ValueError: naming the first two keys whose sizes differ.
    """
    if not items:
        raise ValueError("collate_pairs: empty batch")
    hw = items[0]["hw"]
    for it in items:
        if it["hw"] != hw:
            raise ValueError(
                f"collate_pairs: samples {items[0]['key']} {hw} and {it['key']} {it['hw']} differ in size;"
                " fix the size with a transform"
            )
    B, (H, W) = len(items), hw
    batch: dict[str, Any] = {}
    batch["images"], images = _alloc((B, 2, 3, H, W), torch.uint8 if uint8_images else torch.float32)
    batch["corr"], corr = _alloc((B, 2, H, W, 2), torch.float32)
    batch["status"], status = _alloc((B, 2, H, W), torch.uint8)
    batch["valid"], valid = _alloc((B, 2, H, W), torch.bool)
    batch["mask"], mask = _alloc((B, 2, H, W), torch.bool)
    batch["depth"], depth = _alloc((B, 2, H, W), torch.float32)
    for i, it in enumerate(items):
        for v in (0, 1):
            images[i, v] = it["image"][v].transpose(2, 0, 1)  # HWC -> CHW (and uint8 -> float) in one pass
            if it["corr"] is not None:
                corr[i, v] = it["corr"][v]
                status[i, v] = it["status"][v]
            else:
                corr[i, v] = 0
                status[i, v] = 0
            mask[i, v] = it["mask"][v] if it["mask"] is not None else True
            depth[i, v] = it["depth"][v] if it["depth"] is not None else 0
    if not uint8_images:
        images *= np.float32(1 / 255)
    cv2.patchNaNs(corr.reshape(-1, 2 * W), 0)  # NaN (not stored) -> 0, in place
    np.equal(status, 1, out=valid)  # Status.MATCHED
    batch["K"] = torch.from_numpy(np.stack([np.stack(it["K"]) for it in items]).astype(np.float32))
    batch["T_cam_from_world"] = torch.from_numpy(
        np.stack([np.stack(it["T_cam_from_world"]) for it in items]).astype(np.float32)
    )
    batch["kps"] = torch.from_numpy(np.stack([it["kps"] for it in items]))
    batch["kps_vis"] = torch.from_numpy(np.stack([it["kps_vis"] for it in items]))
    for k in ("has_dense", "has_mask", "has_camera", "is_padding"):
        batch[k] = torch.tensor([it[k] for it in items], dtype=torch.bool)
    for k in _LIST_KEYS:
        batch[k] = [it[k] for it in items]
    return batch
