"""In-training evaluation on held-out pairs: dense end-point error on valid pixels and PCK at keypoints.

PCK follows ``training.eval.pck`` (strict ``<``, keypoints visible in both views, per-pair averaging): the
prediction for a keypoint of the source view is the grid bilinearly sampled at it. Both directions of every pair
are scored (0→1 and 1→0 count as two pairs). Sums are reduced over ranks, so the numbers are those of the whole
held-out set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from training.eval.pck import PCKAccumulator, threshold_length
from training.losses.common import image_scale_px
from training.losses.sparse import keypoint_predictions
from training.train.data import move_batch
from training.train.distributed import DistEnv

__all__ = ["mask_bbox", "score_batch", "evaluate"]


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x1, y1, x2, y2) px of a bool [H, W] mask (pixel edges), None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()) - 0.5, float(ys.min()) - 0.5, float(xs.max()) + 0.5, float(ys.max()) + 0.5


def score_batch(out: dict, batch: dict, acc: PCKAccumulator, threshold: str = "img") -> tuple[float, float, int]:
    """Add a batch's keypoint errors to ``acc``; return (sum of EPE px, sum of EPE / max(H, W), valid pixels).

    Args:
        out: ``grid`` [B, 2, H, W, 2] px.
        batch: ``corr``/``valid``/``has_dense`` (dense EPE), ``kps``/``kps_vis``, ``mask``/``has_mask`` (bbox).
        acc: the PCK accumulator (both directions are added as pairs).
        threshold: ``img`` or ``bbox`` (the target view's mask box).
    """
    grid = out["grid"].float()
    b, _, h, w, _ = grid.shape
    real = ~batch["is_padding"].bool() if "is_padding" in batch else torch.ones(b, dtype=torch.bool, device=grid.device)
    valid = batch["valid"].bool() & (batch["has_dense"].bool() & real).view(-1, 1, 1, 1)
    err = (grid - batch["corr"]).norm(dim=-1)[valid]
    pred = keypoint_predictions(grid, batch["kps"]).cpu().numpy()
    kps, vis = batch["kps"].cpu().numpy(), batch["kps_vis"].cpu().numpy()
    masks = batch["mask"].cpu().numpy() if "mask" in batch else None
    for i in range(b):
        if not real[i]:
            continue  # a repeat that only evens out per-rank epochs
        category = (batch.get("meta") or [{}] * b)[i].get("category", "all")
        for d in (0, 1):
            box = mask_bbox(masks[i, 1 - d]) if threshold == "bbox" and masks is not None else None
            length = threshold_length(threshold, box, (h, w))
            acc.add(category, pred[i, d], kps[i, 1 - d], vis[i, d], vis[i, 1 - d], length_px=length)
    return float(err.sum()), float(err.sum()) / image_scale_px(h, w), int(err.numel())


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Sequence[dict],
    env: DistEnv,
    alphas: Sequence[float] = (0.05, 0.1),
    threshold: str = "img",
    bf16: bool = False,
) -> dict[str, float]:
    """Score ``model`` on this rank's ``batches``; every rank gets the totals over all ranks.

    Returns:
        ``{"epe_px", "epe_norm", "pck@<alpha>" ..., "pairs"}`` (PCK in [0, 1], per pair, both directions).
    """
    was_training = model.training
    model.eval()
    acc = PCKAccumulator()
    sums = np.zeros(3)
    for batch in batches:
        batch = move_batch(batch, env.device)
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=bf16 and env.device.type == "cuda"):
            out = model(batch["images"])
        sums += score_batch(out, batch, acc, threshold)
    model.train(was_training)
    summary = acc.summary(alphas, average="image")["overall"]
    n_pairs = summary["pairs"]
    pck_sum = [p * n_pairs if n_pairs else 0.0 for p in summary["pck"]]
    totals = torch.tensor([*sums, n_pairs, *pck_sum], dtype=torch.float64, device=env.device)
    if env.distributed:
        torch.distributed.all_reduce(totals)
    epe_px, epe_norm, n_pix, pairs, *pcks = totals.tolist()
    result = {"epe_px": epe_px / max(n_pix, 1), "epe_norm": epe_norm / max(n_pix, 1), "pairs": pairs}
    for a, s in zip(alphas, pcks):
        result[f"pck@{a:g}"] = s / max(pairs, 1)
    return result
