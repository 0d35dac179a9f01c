"""Self-supervision that needs no labels: cycle consistency and reconstruction (the paper's matching <->
reconstruction loop). Both are weighted by the predicted confidence, detached, so a pixel that the model
believes has no match (occluded, absent part, background) is not pulled into agreement."""

from __future__ import annotations

import torch

from training.geometry import pixel_grid
from training.losses.common import (
    image_scale_px,
    inside_image,
    masked_mean,
    other_view,
    robust_penalty,
    warp_by_grid,
)

__all__ = ["cycle_points", "cycle_loss", "reconstruction_loss", "confidence_weight"]


def cycle_points(grid: torch.Tensor) -> torch.Tensor:
    """Compose the two directions: for every pixel ``p`` of frame d, ``G_{1-d->d}(G_{d->1-d}(p))``.

    Args:
        grid: [B, 2, H, W, 2] px.

    Returns:
        [B, 2, H, W, 2] px in frame d (equal to the pixel grid for a perfectly consistent pair of grids).
    """
    b, _, h, w, _ = grid.shape
    back_field = other_view(grid).reshape(b * 2, h, w, 2).permute(0, 3, 1, 2)  # frame 1-d -> frame d
    return warp_by_grid(back_field, grid.reshape(b * 2, h, w, 2)).permute(0, 2, 3, 1).reshape(grid.shape)


def confidence_weight(out: dict, batch: dict, weighting: str, threshold: float = 0.0) -> torch.Tensor:
    """Per-pixel weights [B, 2, H, W] of a self-supervised term.

    ``conf``: the predicted confidence (detached), zeroed below ``threshold``; ``valid``: the GT validity
    (synthetic pairs only; real pairs get none); ``mask``: the object mask; ``none``: all ones.
    """
    conf = out["conf"].detach()
    if weighting == "conf":
        return torch.where(conf >= threshold, conf, torch.zeros_like(conf))
    if weighting == "valid":
        return (batch["valid"].bool() & batch["has_dense"].bool().view(-1, 1, 1, 1)).to(conf.dtype)
    if weighting == "mask":
        return batch["mask"].to(conf.dtype)
    if weighting == "none":
        return torch.ones_like(conf)
    raise ValueError(f"unknown weighting {weighting!r} (conf, valid, mask, none)")


def cycle_loss(
    out: dict,
    batch: dict,
    weighting: str = "conf",
    threshold: float = 0.0,
    penalty: str = "charbonnier",
    eps: float = 1e-3,
) -> torch.Tensor:
    """Forward-backward consistency: ``G_{1->0}(G_{0->1}(p)) = p`` (and the reverse) where confident.

    Args:
        out: ``grid`` [B, 2, H, W, 2] px, ``conf`` [B, 2, H, W].
        batch: the batch (``valid``/``mask`` for the non-default weightings).
        weighting, threshold: see :func:`confidence_weight`; pixels whose forward point leaves the image are dropped.
        penalty, eps: see :func:`robust_penalty`; errors in units of ``max(H, W)``.

    Returns:
        Scalar weighted mean penalty.
    """
    grid = out["grid"]
    h, w = grid.shape[2:4]
    start = pixel_grid(h, w, device=grid.device, dtype=grid.dtype)
    err = (cycle_points(grid) - start).norm(dim=-1) / image_scale_px(h, w)
    wts = confidence_weight(out, batch, weighting, threshold) * inside_image(grid.detach(), h, w, centres=True)
    return masked_mean(robust_penalty(err, penalty, eps), wts)


def reconstruction_loss(
    out: dict,
    batch: dict,
    weighting: str = "conf",
    threshold: float = 0.0,
    penalty: str = "charbonnier",
    eps: float = 1e-2,
) -> torch.Tensor:
    """Photometric reconstruction: the other view's image pulled through the grid matches this view's image.

    Across instances colours differ, so this is a weak term; it is weighted by the confidence (detached) and,
    where the batch has masks, restricted to the object.

    Args:
        out: ``grid`` [B, 2, H, W, 2] px, ``conf`` [B, 2, H, W].
        batch: ``images`` [B, 2, 3, H, W] in [0, 1]; ``mask`` and ``has_mask`` when present.
        weighting, threshold: see :func:`confidence_weight`.
        penalty, eps: robust penalty on the per-pixel mean absolute colour difference.

    Returns:
        Scalar weighted mean penalty.
    """
    grid, images = out["grid"], batch["images"]
    b, _, h, w, _ = grid.shape
    other = other_view(images).reshape(b * 2, *images.shape[2:])
    warped = warp_by_grid(other, grid.reshape(b * 2, h, w, 2)).reshape(images.shape)
    diff = (warped - images).abs().mean(dim=2)
    wts = confidence_weight(out, batch, weighting, threshold) * inside_image(grid.detach(), h, w, centres=True)
    if "mask" in batch and "has_mask" in batch:
        use_mask = batch["has_mask"].bool().view(-1, 1, 1, 1)
        wts = wts * torch.where(use_mask, batch["mask"].bool(), torch.ones_like(use_mask)).to(wts.dtype)
    return masked_mean(robust_penalty(diff, penalty, eps), wts)
