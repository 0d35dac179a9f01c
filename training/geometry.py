"""Pixel <-> normalised grid coordinates (docs/design.md §3 pixel-centre convention, ``grid_sample`` with
``align_corners=False``): the centre of column ``c`` is ``x = c`` px and ``x_norm = (2 c + 1) / W - 1``."""

from __future__ import annotations

import torch

__all__ = ["px_to_norm", "norm_to_px", "pixel_grid"]


def px_to_norm(xy_px: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[..., 2] (x, y) pixels -> [..., 2] normalised coordinates in [-1, 1] at the image borders."""
    scale = xy_px.new_tensor([2.0 / width, 2.0 / height])
    return (xy_px + 0.5) * scale - 1.0


def norm_to_px(xy_norm: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`px_to_norm`."""
    scale = xy_norm.new_tensor([width / 2.0, height / 2.0])
    return (xy_norm + 1.0) * scale - 0.5


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[H, W, 2] (x, y) pixel coordinates of every pixel centre."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1)
