"""Confidence that tracks the error: the confidence is trained to say whether the grid's prediction at a pixel
is right (within ``tau`` of the truth, in units of ``max(H, W)``) and the pixel has a visible match, so low
confidence marks invisible, absent and wrongly matched pixels (the paper's error-confidence correlation).

Targets come from the dense ground truth on synthetic pairs, from keypoints on sparse pairs, or, without labels,
from the cycle error (``source="cycle"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.geometry import pixel_grid
from training.losses.common import image_scale_px, masked_mean, other_view, sample_at_px
from training.losses.cycle import cycle_points
from training.losses.dense import dense_mask
from training.losses.sparse import keypoint_predictions

__all__ = ["confidence_targets", "confidence_loss"]


def confidence_targets(out: dict, batch: dict, tau: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense GT targets: (target, weight), both [B, 2, H, W].

    target = valid & EPE < tau·max(H, W); weight = 1 on every pixel of samples with dense GT, else 0.
    """
    grid = out["grid"].detach()
    h, w = grid.shape[2:4]
    err = (grid - batch["corr"]).norm(dim=-1) / image_scale_px(h, w)
    target = dense_mask(batch) & (err < tau)
    weight = batch["has_dense"].bool().view(-1, 1, 1, 1).expand_as(target)
    return target, weight


def _bce(logit: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return masked_mean(F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype), reduction="none"), weight)


def confidence_loss(
    out: dict, batch: dict, tau: float = 0.05, source: str = "gt", sparse_weight: float = 1.0
) -> torch.Tensor:
    """BCE between ``conf_logit`` and "this pixel's prediction is correct".

    Args:
        out: ``grid`` [B, 2, H, W, 2] px (detached here: this term trains only the confidence), ``conf_logit``.
        batch: ``corr``/``valid``/``has_dense`` for dense targets; ``kps``/``kps_vis`` for keypoint targets on
            samples without dense GT (visible in the source; target = visible in the other frame and within tau).
        tau: correctness threshold in units of ``max(H, W)``.
        source: ``gt`` (dense GT, keypoints where no dense GT) or ``cycle`` (target = cycle error < tau and the
            forward point inside the image; no labels needed).
        sparse_weight: weight of the keypoint term relative to the dense one.

    Returns:
        Scalar loss.
    """
    logit = out["conf_logit"]
    grid = out["grid"].detach()
    h, w = grid.shape[2:4]
    scale = image_scale_px(h, w)
    if source == "cycle":
        start = pixel_grid(h, w, device=grid.device, dtype=grid.dtype)
        err = (cycle_points(grid) - start).norm(dim=-1) / scale
        return _bce(logit, err < tau, torch.ones_like(err))
    if source != "gt":
        raise ValueError(f"unknown confidence target source {source!r} (gt, cycle)")
    target, weight = confidence_targets(out, batch, tau)
    loss = _bce(logit, target, weight)
    if sparse_weight > 0 and "kps" in batch:
        sparse_only = ~batch["has_dense"].bool()
        if sparse_only.any():
            kps, vis = batch["kps"], batch["kps_vis"].bool()
            pred = keypoint_predictions(grid, kps)
            ok = vis & other_view(vis) & ((pred - other_view(kps)).norm(dim=-1) / scale < tau)
            b = logit.shape[0]
            kp_logit = sample_at_px(logit.reshape(b * 2, 1, h, w), kps.reshape(b * 2, -1, 2)).reshape(vis.shape)
            kp_weight = vis & sparse_only.view(-1, 1, 1)
            loss = loss + sparse_weight * _bce(kp_logit, ok, kp_weight)
    return loss
