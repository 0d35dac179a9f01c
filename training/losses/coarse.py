"""Direct supervision of the correlation head's coarse stage (``grid_mode="correlation"``) on dense pairs.

The ground truth of a patch is the dense correspondence at its centre (the mean of ``corr`` over the 1 or 2 x 2
pixels nearest the centre, used only when all of them are supervised). ``ce``: cross-entropy of the softmax over
the other frame's patches (``corr_logit``) against the bilinear weights of the target point on the four patch
centres around it (whose expectation is the target point itself, so it agrees with the soft-argmax). ``epe``:
robust end-point error of ``coarse_grid``. Both directions: 0 -> 1 from the rows of ``corr_logit``, 1 -> 0 from
its columns.
"""

from __future__ import annotations

import torch

from training.losses.common import image_scale_px, inside_image, masked_mean, robust_penalty
from training.losses.dense import dense_mask

__all__ = ["coarse_targets", "coarse_loss"]


def coarse_targets(batch: dict, grid_hw: tuple[int, int], pixels: str = "valid") -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth correspondences at the patch centres.

    Args:
        batch: ``corr`` [B, 2, H, W, 2] px, ``valid``/``status`` [B, 2, H, W], ``has_dense`` [B].
        grid_hw: (h, w) patch grid; H and W must be multiples of it (patch size p = H / h).
        pixels: ``valid`` or ``defined`` (see :func:`training.losses.dense.dense_mask`); targets must also lie
            inside the other image.

    Returns:
        target [B, 2, h, w, 2] px in the other frame, supervised bool [B, 2, h, w].
    """
    corr = batch["corr"].float()
    b, _, height, width, _ = corr.shape
    h, w = grid_hw
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"coarse loss: image {height}x{width} is not a square-patch multiple of the grid {h}x{w}")
    p = height // h
    rows = sorted({(p - 1) // 2, p // 2})  # pixels nearest the patch centre (p - 1) / 2 along each axis
    idx = torch.tensor(rows, device=corr.device)
    mask = dense_mask(batch, pixels)
    corr_c = corr.view(b, 2, h, p, w, p, 2).index_select(3, idx).index_select(5, idx)
    mask_c = mask.view(b, 2, h, p, w, p).index_select(3, idx).index_select(5, idx)
    target = corr_c.mean(dim=(3, 5))
    supervised = mask_c.all(dim=5).all(dim=3) & inside_image(target, height, width)
    return target, supervised


def _bilinear_patch_weights(target_px: torch.Tensor, grid_hw: tuple[int, int], p: int):
    """[..., 2] px -> (indices [..., 4] into the row-major patch grid, weights [..., 4] summing to 1)."""
    h, w = grid_hw
    u = ((target_px[..., 0] - (p - 1) / 2) / p).clamp(0, w - 1)
    v = ((target_px[..., 1] - (p - 1) / 2) / p).clamp(0, h - 1)
    u0, v0 = u.floor().clamp(max=max(w - 2, 0)), v.floor().clamp(max=max(h - 2, 0))
    fu, fv = u - u0, v - v0
    u1, v1 = (u0 + 1).clamp(max=w - 1), (v0 + 1).clamp(max=h - 1)
    idx = torch.stack([v0 * w + u0, v0 * w + u1, v1 * w + u0, v1 * w + u1], dim=-1).long()
    wts = torch.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], dim=-1)
    return idx, wts


def coarse_loss(
    out: dict,
    batch: dict,
    kind: str = "ce",
    pixels: str = "valid",
    penalty: str = "charbonnier",
    eps: float = 1e-3,
    delta: float = 0.01,
) -> torch.Tensor:
    """Coarse-stage loss of the correlation head, both directions.

    Args:
        out: the matcher's output with ``corr_logit`` [B, N0, N1] and ``coarse_grid`` [B, 2, h, w, 2] px.
        batch: ``corr``, ``valid``/``status``, ``has_dense`` (see :func:`coarse_targets`).
        kind: ``ce`` (cross-entropy against bilinear patch targets) or ``epe`` (robust EPE of ``coarse_grid``, in
            units of ``max(H, W)``; ``penalty``/``eps``/``delta`` as in :func:`robust_penalty`).
        pixels: ``valid`` or ``defined``.

    Returns:
        Scalar mean over supervised patch centres of dense samples (0, still in the graph, when there are none).
    """
    if "corr_logit" not in out or "coarse_grid" not in out:
        raise ValueError("coarse loss needs the correlation head's outputs (model.matcher.grid_mode: correlation)")
    coarse = out["coarse_grid"]
    b, _, h, w, _ = coarse.shape
    height, width = batch["corr"].shape[2:4]
    target, supervised = coarse_targets(batch, (h, w), pixels)
    if kind == "epe":
        err = (coarse - target).norm(dim=-1) / image_scale_px(height, width)
        return masked_mean(robust_penalty(err, penalty, eps, delta), supervised)
    if kind != "ce":
        raise ValueError(f"unknown coarse loss kind {kind!r} (ce, epe)")
    logit = out["corr_logit"].float()
    logp = torch.stack((logit.log_softmax(dim=-1), logit.transpose(1, 2).log_softmax(dim=-1)), dim=1)  # [B,2,N,M]
    idx, wts = _bilinear_patch_weights(target, (h, w), height // h)  # [B, 2, h, w, 4]
    picked = logp.gather(-1, idx.view(b, 2, h * w, 4))
    nll = -(picked * wts.view(b, 2, h * w, 4)).sum(dim=-1)
    return masked_mean(nll.view(b, 2, h, w), supervised)
