"""The identity warp: every pixel maps to the same pixel of the other frame.

The trivial prior of any matcher whose objects sit at similar places in both images (centred renders, cropped
benchmark pairs); a learned matcher has to beat it to show that it matches parts and not just the frame. The
matcher's ``offset`` head starts exactly here, so its untrained model scores the same.
"""

from __future__ import annotations

import torch
from torch import nn

from training.geometry import pixel_grid

__all__ = ["IdentityMatcher"]


class IdentityMatcher(nn.Module):
    """``matcher(images [B, 2, 3, H, W]) -> {grid [B, 2, H, W, 2] px, conf, conf_logit}`` with grid = the pixel
    grid in both directions and confidence 0.5 (a module without parameters)."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, _, h, w = images.shape
        grid = pixel_grid(h, w, device=images.device).expand(b, 2, h, w, 2).clone()
        logit = torch.zeros(b, 2, h, w, device=images.device)
        return {"grid": grid, "conf": torch.sigmoid(logit), "conf_logit": logit}
