"""Sparse keypoint supervision (real pairs): the grid, sampled at the source keypoints, against the targets."""

from __future__ import annotations

import torch

from training.losses.common import image_scale_px, masked_mean, other_view, robust_penalty, sample_at_px

__all__ = ["keypoint_predictions", "keypoint_epe_loss"]


def keypoint_predictions(grid: torch.Tensor, kps: torch.Tensor) -> torch.Tensor:
    """Where the grid sends each keypoint of the source frame.

    Args:
        grid: [B, 2, H, W, 2] px (direction d: frame d -> frame 1-d).
        kps: [B, 2, N, 2] px keypoints of frame 0 and frame 1.

    Returns:
        [B, 2, N, 2] px: ``out[:, d, i]`` = grid of frame d bilinearly sampled at ``kps[:, d, i]`` (a point in
        frame 1-d, to compare with ``kps[:, 1-d, i]``).
    """
    b, _, h, w, _ = grid.shape
    field = grid.reshape(b * 2, h, w, 2).permute(0, 3, 1, 2)
    return sample_at_px(field, kps.reshape(b * 2, -1, 2)).reshape(kps.shape)


def keypoint_epe_loss(
    out: dict, batch: dict, penalty: str = "charbonnier", eps: float = 1e-3, delta: float = 0.01
) -> torch.Tensor:
    """Robust end-point error at keypoints visible in both frames, both directions.

    Args:
        out: ``grid`` [B, 2, H, W, 2] px.
        batch: ``kps`` [B, 2, N, 2] px, ``kps_vis`` bool [B, 2, N] (False on padding).
        penalty, eps, delta: see :func:`robust_penalty`; errors are in units of ``max(H, W)``.

    Returns:
        Scalar mean penalty over (sample, direction, keypoint) with the keypoint visible in both frames.
    """
    grid = out["grid"]
    h, w = grid.shape[2:4]
    kps, vis = batch["kps"], batch["kps_vis"].bool()
    pred = keypoint_predictions(grid, kps)
    err = (pred - other_view(kps)).norm(dim=-1) / image_scale_px(h, w)
    both = vis & other_view(vis)
    return masked_mean(robust_penalty(err, penalty, eps, delta), both)
