"""Coarse-to-fine matching for the semantic matcher's ``grid_mode="correlation"``.

Coarse stage (patch resolution ``h x w = H/p x W/p``): L2-normalised descriptors of both frames, a global
correlation ``corr_logit = scale * <desc0_i, desc1_j>`` ([B, N0, N1], ``N = h * w`` positions in row-major order,
``scale = 1 / temperature`` learnable), a softmax over the other frame's positions and a soft-argmax over its
patch centres. Direction 0 -> 1 is the softmax over the last axis, 1 -> 0 over the second (the transposed
matrix), so both directions come from one matrix. Patch ``(i, j)`` has its centre at pixel
``(p j + (p - 1) / 2, p i + (p - 1) / 2)`` (pixel centres at integers, docs/interfaces.md §5).

Fine stage (input resolution): the coarse displacement ``coarse - patch centre`` is bilinearly upsampled
(align_corners=False, so a patch centre keeps its coarse value exactly) and added to the pixel grid; a small conv
refiner sees the frame's DPT features, the other frame's features sampled at that grid and the coarse match's
peak probability, and adds a residual (grid offset in ``grid_sample`` units, confidence logit) to the DPT
head's own output. Both last convs are zero-initialised, so an untrained fine stage is exactly the coarse grid.

All of it runs in fp32 (the matcher's head runs with autocast off), except, with ``head_dtype="bfloat16"``, the
refiner's body (its last conv stays fp32).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.geometry import pixel_grid, px_to_norm
from training.model.precision import run_fp32

__all__ = [
    "patch_centres_px",
    "coarse_from_logits",
    "soft_argmax",
    "upsample_coarse_grid",
    "CorrelationHead",
]

_MAX_SCALE = 100.0  # temperature floor 0.01: keeps the logits (and their gradients) bounded


def patch_centres_px(h: int, w: int, patch_size: int, device=None, dtype=torch.float32) -> Tensor:
    """[h, w, 2] (x, y) pixel coordinates of the patch centres."""
    half = (patch_size - 1) / 2
    return pixel_grid(h, w, device=device, dtype=dtype) * patch_size + half


def soft_argmax(prob: Tensor, coords: Tensor, window: int = 0, grid_w: int | None = None) -> Tensor:
    """Expected target position of each source row.

    Args:
        prob: [B, N, M] probabilities over M target positions (rows sum to 1).
        coords: [M, 2] target positions (any unit).
        window: 0 for the global expectation; r > 0 restricts each row to the (2r+1)^2 patches around its most
            probable one (renormalised), so a second mode elsewhere does not pull the estimate between the two.
        grid_w: width of the target patch grid (row-major M = h * w); needed when ``window > 0``.

    Returns:
        [B, N, 2] expected positions.
    """
    if window > 0:
        if grid_w is None:
            raise ValueError("soft_argmax with a window needs grid_w")
        m = prob.shape[-1]
        idx = torch.arange(m, device=prob.device)
        row, col = idx // grid_w, idx % grid_w
        best = prob.argmax(dim=-1, keepdim=True)  # [B, N, 1]
        near = ((row - best // grid_w).abs() <= window) & ((col - best % grid_w).abs() <= window)
        prob = prob * near
        prob = prob / prob.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    return prob @ coords


def coarse_from_logits(
    corr_logit: Tensor, grid_hw: tuple[int, int], patch_size: int, window: int = 0
) -> tuple[Tensor, Tensor]:
    """Both directions' coarse grids from one correlation matrix.

    Args:
        corr_logit: [B, N0, N1] fp32 similarity logits (frame 0 position i vs frame 1 position j, row-major).
        grid_hw: (h, w) patch grid of both frames (N0 = N1 = h * w).
        patch_size: pixels per patch side.
        window: soft-argmax window radius in patches (see :func:`soft_argmax`).

    Returns:
        coarse_grid [B, 2, h, w, 2] px (index 0: frame-0 patch centre -> (x, y) in frame 1; index 1: 1 -> 0),
        peak [B, 2, h, w]: the maximum of each row's softmax (how peaked the match is).
    """
    h, w = grid_hw
    b = corr_logit.shape[0]
    centres = patch_centres_px(h, w, patch_size, device=corr_logit.device).reshape(h * w, 2)
    logit = corr_logit.float()
    prob_0to1 = logit.softmax(dim=-1)  # [B, N0, N1]
    prob_1to0 = logit.transpose(1, 2).softmax(dim=-1)  # [B, N1, N0]
    coarse, peak = [], []
    for prob in (prob_0to1, prob_1to0):
        coarse.append(soft_argmax(prob, centres, window, grid_w=w))
        peak.append(prob.amax(dim=-1))
    coarse_grid = torch.stack(coarse, dim=1).reshape(b, 2, h, w, 2)
    return coarse_grid, torch.stack(peak, dim=1).reshape(b, 2, h, w)


def upsample_coarse_grid(coarse_grid: Tensor, image_hw: tuple[int, int], patch_size: int) -> Tensor:
    """Coarse grids at patch centres -> dense grids at every pixel.

    The displacement (coarse target minus the source patch centre) is upsampled bilinearly (align_corners=False:
    the patch centres are exactly the sample points of the coarse map) and added back to the pixel grid, so a
    translation stays a translation up to the image border.

    Args:
        coarse_grid: [B, S, h, w, 2] px.
        image_hw: (H, W) = (h, w) * patch_size.

    Returns:
        [B, S, H, W, 2] px.
    """
    b, s, h, w, _ = coarse_grid.shape
    height, width = image_hw
    centres = patch_centres_px(h, w, patch_size, device=coarse_grid.device, dtype=coarse_grid.dtype)
    disp = (coarse_grid - centres).reshape(b * s, h, w, 2).permute(0, 3, 1, 2)
    disp = F.interpolate(disp, size=(height, width), mode="bilinear", align_corners=False)
    pixels = pixel_grid(height, width, device=coarse_grid.device, dtype=coarse_grid.dtype)
    return disp.permute(0, 2, 3, 1).reshape(b, s, height, width, 2) + pixels


class CorrelationHead(nn.Module):
    """The learnable parts of the coarse-to-fine head (attached to the matcher as ``semantic_head.match``).

    Submodules: ``desc_norm`` + ``desc_proj`` (tokens -> descriptors), ``log_scale`` (log of the inverse
    temperature, a scalar), ``refine_proj`` (1x1, DPT features -> ``refine_channels``) and ``refine``
    (3x3 conv, ReLU, 3x3 conv, ReLU, 1x1 conv to (dx, dy, confidence logit); the last conv zero-initialised).
    With ``fine_desc=True`` also ``feat_desc`` (1x1, DPT features -> descriptors, zero-initialised) for a coarse
    grid finer than the patches (:meth:`describe_fine`).

    Args:
        token_dim: width of the tokens the descriptors are projected from (2 x embed_dim for AA outputs).
        feature_dim: channels of the DPT head's decoded features (``features // 2``).
        desc_dim: descriptor width.
        temperature: initial softmax temperature of the correlation (on cosine similarities).
        refine_channels: width of the refiner.
        fine_desc: build ``feat_desc`` (the matcher's ``corr_stride`` is below the patch size).
    """

    def __init__(
        self,
        token_dim: int,
        feature_dim: int,
        desc_dim: int,
        temperature: float,
        refine_channels: int,
        fine_desc: bool = False,
    ) -> None:
        super().__init__()
        self.temperature_init = temperature
        self.desc_norm = nn.LayerNorm(token_dim)
        self.desc_proj = nn.Linear(token_dim, desc_dim)
        self.log_scale = nn.Parameter(torch.empty(()))
        c = refine_channels
        self.refine_proj = nn.Conv2d(feature_dim, c, 1)
        self.refine = nn.Sequential(
            nn.Conv2d(2 * c + 1, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 3, 1),
        )
        self.feat_desc = nn.Conv2d(feature_dim, desc_dim, 1) if fine_desc else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Default init of every layer, the initial temperature, and a zeroed last refiner conv."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.LayerNorm)):
                m.reset_parameters()
        self.log_scale.fill_(math.log(1.0 / self.temperature_init))
        self.zero_last()

    @torch.no_grad()
    def zero_last(self) -> None:
        """Zero the refiner's last conv and ``feat_desc``: untrained, the fine stage and the fine descriptors add
        nothing to the coarse grid and the upsampled token descriptors."""
        for last in (self.refine[-1], self.feat_desc):
            if last is not None and not last.weight.is_meta:
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    @property
    def scale(self) -> Tensor:
        """1 / temperature (at most 100)."""
        return self.log_scale.exp().clamp(max=_MAX_SCALE)

    def describe(self, tokens: Tensor) -> Tensor:
        """[..., N, token_dim] patch tokens -> [..., N, desc_dim] unit descriptors."""
        return F.normalize(self.desc_proj(self.desc_norm(tokens)), dim=-1)

    def describe_fine(self, tokens: Tensor, patch_hw: tuple[int, int], feat: Tensor, stride: int) -> Tensor:
        """Descriptors on a grid finer than the patches.

        Args:
            tokens: [N, h * w, token_dim] patch tokens (row-major ``patch_hw`` = (h, w)).
            feat: [N, C, H, W] decoded DPT features of the same frames.
            stride: pixels per cell; H and W multiples of it.

        Returns:
            [N, (H / stride) * (W / stride), desc_dim] unit descriptors (row-major): the token descriptors
            bilinearly upsampled (align_corners=False) plus ``feat_desc`` of the features average-pooled per cell.
        """
        if self.feat_desc is None:
            raise ValueError("describe_fine needs a head built with fine_desc=True")
        n, _, height, width = feat.shape
        h, w = patch_hw
        coarse = self.desc_proj(self.desc_norm(tokens)).transpose(1, 2).reshape(n, -1, h, w)
        cells = (height // stride, width // stride)
        up = F.interpolate(coarse, size=cells, mode="bilinear", align_corners=False)
        fine = self.feat_desc(F.avg_pool2d(feat, stride))
        return F.normalize((up + fine).flatten(2).transpose(1, 2), dim=-1)

    def correlate(self, desc0: Tensor, desc1: Tensor) -> Tensor:
        """[B, N0, D], [B, N1, D] -> corr_logit [B, N0, N1] (fp32)."""
        return torch.einsum("bnd,bmd->bnm", desc0.float(), desc1.float()) * self.scale

    def refine_residual(self, feat: Tensor, grid_px: Tensor, peak: Tensor) -> Tensor:
        """Residual of the fine stage, both directions.

        Args:
            feat: [B, 2, C, H, W] decoded DPT features of frame 0 and frame 1.
            grid_px: [B, 2, H, W, 2] the upsampled coarse grids (frame d pixel -> pixel of frame 1 - d); not
                differentiated through here (the refiner reads features there; the grid itself gets gradients
                from the sum with the residual).
            peak: [B, 2, h, w] coarse peak probability.

        Returns:
            [B, 2, 3, H, W]: grid offset (x, y) in ``grid_sample`` units and a confidence logit.
        """
        b, _, _, height, width = feat.shape
        proj = self.refine_proj(feat.flatten(0, 1))  # [2B, c, H, W], once per frame
        proj_other = proj.view(b, 2, *proj.shape[1:]).flip(1).flatten(0, 1)
        where = px_to_norm(grid_px.detach().flatten(0, 1), height, width)
        warped = F.grid_sample(proj_other, where, mode="bilinear", padding_mode="zeros", align_corners=False)
        peak_up = F.interpolate(peak.flatten(0, 1)[:, None], size=(height, width), mode="bilinear", align_corners=False)
        hidden = self.refine[:-1](torch.cat((proj, warped, peak_up), dim=1))
        out = run_fp32(self.refine[-1], hidden)  # the residual itself is never rounded to bf16
        return out.view(b, 2, *out.shape[1:])
