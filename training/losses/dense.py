"""Dense supervision on synthetic pairs: robust end-point error on valid pixels, and matchability."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.losses.common import image_scale_px, masked_mean, robust_penalty

__all__ = ["dense_epe_loss", "matchability_loss", "dense_mask"]


def dense_mask(batch: dict) -> torch.Tensor:
    """bool [B, 2, H, W]: pixels with a valid ground-truth counterpart, in samples that carry dense GT."""
    valid = batch["valid"].bool()
    return valid & batch["has_dense"].bool().view(-1, 1, 1, 1)


def dense_epe_loss(
    out: dict, batch: dict, penalty: str = "charbonnier", eps: float = 1e-3, delta: float = 0.01
) -> torch.Tensor:
    """Robust end-point error of both grids against the dense ground truth, on valid pixels.

    Args:
        out: the matcher's output; ``grid`` [B, 2, H, W, 2] px.
        batch: ``corr`` [B, 2, H, W, 2] px, ``valid`` bool [B, 2, H, W], ``has_dense`` bool [B].
        penalty, eps, delta: see :func:`robust_penalty`; errors are in units of ``max(H, W)``.

    Returns:
        Scalar: the mean penalty over valid pixels of dense samples (0 when there are none).
    """
    grid = out["grid"]
    h, w = grid.shape[2:4]
    err = (grid - batch["corr"]).norm(dim=-1) / image_scale_px(h, w)
    return masked_mean(robust_penalty(err, penalty, eps, delta), dense_mask(batch))


def matchability_loss(out: dict, batch: dict, pos_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of the confidence against ``valid`` (matched and visible in the other view).

    Background, occluded, out-of-frame and no-counterpart pixels are negatives, so low confidence marks the
    pixels that have no visible match. Only samples with dense GT contribute.

    Args:
        out: ``conf_logit`` [B, 2, H, W].
        batch: ``valid`` bool [B, 2, H, W], ``has_dense`` bool [B].
        pos_weight: weight of the positive class (>1 when matched pixels are rare).

    Returns:
        Scalar mean BCE over the pixels of dense samples.
    """
    logit = out["conf_logit"]
    target = batch["valid"].to(logit.dtype)
    bce = F.binary_cross_entropy_with_logits(logit, target, pos_weight=logit.new_tensor(pos_weight), reduction="none")
    pixels = batch["has_dense"].bool().view(-1, 1, 1, 1).expand_as(logit)
    return masked_mean(bce, pixels)
