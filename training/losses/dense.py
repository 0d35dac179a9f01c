"""Dense supervision on synthetic pairs: robust end-point error on valid pixels, and matchability."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from loaders.schema import Status
from training.losses.common import image_scale_px, masked_mean, robust_penalty

__all__ = ["dense_epe_loss", "matchability_loss", "dense_mask", "DEFINED_STATUSES"]

# statuses whose correspondence is defined (the counterpart exists; it may be hidden or outside the frame)
DEFINED_STATUSES = (int(Status.MATCHED), int(Status.OCCLUDED), int(Status.OUTSIDE))


def dense_mask(batch: dict, pixels: str = "valid") -> torch.Tensor:
    """bool [B, 2, H, W]: supervised pixels, in samples that carry dense GT.

    Args:
        pixels: ``valid`` (the counterpart is visible in the other view) or ``defined`` (also occluded and
            out-of-frame counterparts, whose projected position is still known).
    """
    if pixels == "valid":
        chosen = batch["valid"].bool()
    elif pixels == "defined":
        status = batch["status"]
        chosen = torch.zeros_like(status, dtype=torch.bool)
        for code in DEFINED_STATUSES:
            chosen |= status == code
    else:
        raise ValueError(f"unknown pixel set {pixels!r} (valid, defined)")
    return chosen & batch["has_dense"].bool().view(-1, 1, 1, 1)


def dense_epe_loss(
    out: dict,
    batch: dict,
    penalty: str = "charbonnier",
    eps: float = 1e-3,
    delta: float = 0.01,
    pixels: str = "valid",
) -> torch.Tensor:
    """Robust end-point error of both grids against the dense ground truth.

    Args:
        out: the matcher's output; ``grid`` [B, 2, H, W, 2] px.
        batch: ``corr`` [B, 2, H, W, 2] px, ``valid`` bool and ``status`` uint8 [B, 2, H, W], ``has_dense`` [B].
        penalty, eps, delta: see :func:`robust_penalty`; errors are in units of ``max(H, W)``.
        pixels: ``valid`` or ``defined`` (see :func:`dense_mask`).

    Returns:
        Scalar: the mean penalty over the supervised pixels of dense samples (0 when there are none).
    """
    grid = out["grid"]
    h, w = grid.shape[2:4]
    err = (grid - batch["corr"]).norm(dim=-1) / image_scale_px(h, w)
    return masked_mean(robust_penalty(err, penalty, eps, delta), dense_mask(batch, pixels))


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
