"""Smoothness of the sampling grids, the paper's remedy for aliasing (jagged warps): neighbouring pixels should
sample neighbouring, coherent coordinates.

``order=2`` penalises second differences of the grid, which vanish for any affine warp (scale, rotation,
shear between instances are free); ``order=1`` penalises first differences of the displacement ``grid - p``,
which vanish only for translations. Optional edge-aware weights relax the penalty across image edges, where
the warp may legitimately break (object boundaries).
"""

from __future__ import annotations

import torch

from training.geometry import pixel_grid
from training.losses.common import image_scale_px, masked_mean, robust_penalty

__all__ = ["grid_differences", "smoothness_loss"]


def grid_differences(field: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite differences along x and y of an [N, H, W, 2] field.

    Returns:
        (dx [N, H, W-order, 2], dy [N, H-order, W, 2]).
    """
    dx, dy = field, field
    for _ in range(order):
        dx = dx[:, :, 1:] - dx[:, :, :-1]
        dy = dy[:, 1:] - dy[:, :-1]
    return dx, dy


def smoothness_loss(
    out: dict,
    batch: dict,
    order: int = 2,
    edge_aware: float = 0.0,
    weighting: str = "mask",
    penalty: str = "charbonnier",
    eps: float = 1e-3,
) -> torch.Tensor:
    """Robust penalty on the grid's finite differences (units of ``max(H, W)`` per pixel step).

    Args:
        out: ``grid`` [B, 2, H, W, 2] px, ``conf`` [B, 2, H, W].
        batch: ``images`` [B, 2, 3, H, W] (edge-aware weights), ``mask``/``has_mask`` (``weight="mask"``).
        order: 1 (displacement first differences) or 2 (grid second differences).
        edge_aware: ``alpha`` in ``exp(-alpha * |dI|)`` (mean absolute colour step); 0 disables.
        weighting: ``mask`` (object pixels where masks exist, else all), ``conf`` (detached confidence) or ``none``.
        penalty, eps: see :func:`robust_penalty`.

    Returns:
        Scalar weighted mean over both directions and both axes.
    """
    if order not in (1, 2):
        raise ValueError(f"smoothness order must be 1 or 2, got {order}")
    grid = out["grid"]
    b, _, h, w, _ = grid.shape
    field = grid.reshape(b * 2, h, w, 2)
    if order == 1:
        field = field - pixel_grid(h, w, device=grid.device, dtype=grid.dtype)
    dx, dy = grid_differences(field / image_scale_px(h, w), order)

    if weighting == "conf":
        pix_w = out["conf"].detach().reshape(b * 2, h, w)
    elif weighting == "mask" and "mask" in batch and "has_mask" in batch:
        use = batch["has_mask"].bool().view(-1, 1, 1, 1)
        pix_w = torch.where(use, batch["mask"].bool(), torch.ones_like(use)).reshape(b * 2, h, w).to(grid.dtype)
    elif weighting in ("mask", "none"):
        pix_w = grid.new_ones(b * 2, h, w)
    else:
        raise ValueError(f"unknown smoothness weighting {weighting!r} (mask, conf, none)")
    # a difference counts where every pixel it spans is weighted (min over the stencil)
    wx, wy = pix_w, pix_w
    for _ in range(order):
        wx = torch.minimum(wx[:, :, 1:], wx[:, :, :-1])
        wy = torch.minimum(wy[:, 1:], wy[:, :-1])
    if edge_aware > 0:
        img = batch["images"].reshape(b * 2, 3, h, w)
        ix, iy = grid_differences(img.permute(0, 2, 3, 1), 1)
        ex, ey = torch.exp(-edge_aware * ix.abs().mean(-1)), torch.exp(-edge_aware * iy.abs().mean(-1))
        wx = wx * ex[:, :, : wx.shape[2]]
        wy = wy * ey[:, : wy.shape[1]]
    px = robust_penalty(dx.norm(dim=-1), penalty, eps)
    py = robust_penalty(dy.norm(dim=-1), penalty, eps)
    return 0.5 * (masked_mean(px, wx) + masked_mean(py, wy))
