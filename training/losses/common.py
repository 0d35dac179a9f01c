"""Shared pieces of the matching losses: robust penalties, masked means, sampling fields at pixel points.

Conventions (docs/interfaces.md §4–5): grids and correspondences are ``[B, 2, H, W, 2]`` in pixels, direction
``d`` maps pixels of frame ``d`` to ``(x, y)`` in frame ``1 - d``; errors are normalised by the image size
``S = max(H, W)`` so a loss means the same at every resolution (the PCK "img" threshold uses the same scale).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.geometry import pixel_grid, px_to_norm

__all__ = [
    "image_scale_px",
    "robust_penalty",
    "masked_mean",
    "zero_like_graph",
    "sample_at_px",
    "warp_by_grid",
    "inside_image",
    "other_view",
    "identity_grid",
]


def image_scale_px(height: int, width: int) -> float:
    """The length that normalises pixel errors: ``max(H, W)``."""
    return float(max(height, width))


def robust_penalty(
    err: torch.Tensor, kind: str = "charbonnier", eps: float = 1e-3, delta: float = 0.01
) -> torch.Tensor:
    """Robust penalty of a non-negative error magnitude (normalised units).

    Args:
        err: [...] non-negative errors.
        kind: ``charbonnier`` (``sqrt(e^2 + eps^2) - eps``, zero at zero, ~L1 for large e), ``huber``
            (quadratic below ``delta``, linear above, scaled to match L1 slope), ``l1``, or ``l2`` (``e^2 / 2``:
            regresses the conditional mean, pulls hardest on the largest errors).
        eps: Charbonnier smoothing.
        delta: Huber knee.

    Returns:
        [...] penalties, 0 where ``err == 0``.
    """
    if kind == "charbonnier":
        return torch.sqrt(err.square() + eps * eps) - eps
    if kind == "huber":
        return torch.where(err < delta, 0.5 * err.square() / delta, err - 0.5 * delta)
    if kind == "l1":
        return err
    if kind == "l2":
        return 0.5 * err.square()
    raise ValueError(f"unknown robust penalty {kind!r} (charbonnier, huber, l1, l2)")


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (bool or float weights, broadcastable); 0 (still in the graph) when the
    mask is empty, so DDP sees every parameter used on every rank."""
    w = mask.to(values.dtype).expand_as(values)
    picked = torch.where(w > 0, values, torch.zeros_like(values))  # ignore non-finite values outside the mask
    return (picked * w).sum() / w.sum().clamp(min=1e-6)


def zero_like_graph(t: torch.Tensor) -> torch.Tensor:
    """A scalar zero that depends on ``t`` (keeps parameters in the autograd graph)."""
    return (t * 0.0).sum()


def other_view(x: torch.Tensor) -> torch.Tensor:
    """Swap the view axis (dim 1) of a ``[B, 2, ...]`` tensor: ``out[:, d] = x[:, 1 - d]``."""
    return x.flip(1)


def inside_image(xy_px: torch.Tensor, height: int, width: int, centres: bool = False) -> torch.Tensor:
    """[..., 2] pixels -> bool [...]: inside the image area ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, or with
    ``centres=True`` inside the hull of pixel centres ``[0, W - 1] x [0, H - 1]`` (where bilinear sampling is
    exact, with no border clamping)."""
    lo = 0.0 if centres else -0.5
    x, y = xy_px.unbind(-1)
    return (x >= lo) & (x <= width - 1 - lo) & (y >= lo) & (y <= height - 1 - lo)


def sample_at_px(field: torch.Tensor, xy_px: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample a channels-first field at pixel points (``grid_sample``, align_corners=False, border padding).

    Args:
        field: [N, C, H, W].
        xy_px: [N, ..., 2] (x, y) pixels in the field's frame (any number of point dims, e.g. [N, H', W', 2]
            or [N, K, 2]).
        mode: ``bilinear`` or ``nearest``.

    Returns:
        [N, ..., C] the field's values at the points.
    """
    n, c, h, w = field.shape
    pts = xy_px.reshape(n, -1, 1, 2)
    out = F.grid_sample(
        field, px_to_norm(pts, h, w).to(field.dtype), mode=mode, padding_mode="border", align_corners=False
    )
    return out[..., 0].transpose(1, 2).reshape(*xy_px.shape[:-1], c)


def warp_by_grid(image_other: torch.Tensor, grid_px: torch.Tensor) -> torch.Tensor:
    """Pull the other view's image into this view's pixels: ``out[p] = image_other[grid(p)]``.

    Args:
        image_other: [N, C, H', W'].
        grid_px: [N, H, W, 2] pixels in the other view.

    Returns:
        [N, C, H, W].
    """
    return sample_at_px(image_other, grid_px).permute(0, 3, 1, 2)


def identity_grid(batch: int, height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[B, 2, H, W, 2] grids mapping every pixel to itself (both directions)."""
    return pixel_grid(height, width, device=device, dtype=dtype).expand(batch, 2, height, width, 2).clone()
