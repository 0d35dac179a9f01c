"""DINOv2 ViT with register tokens, as used for VGGT's patch embedding (``aggregator.patch_embed.*``).

Only the final-normed patch tokens are returned (DINO's cls/register outputs are dropped, as in VGGT). No qk-norm,
no RoPE; LayerNorm eps 1e-6; LayerScale. Position-embedding interpolation matches the upstream settings VGGT uses:
bicubic, ``antialias=True``, explicit output size (offset 0), skipped only when the patch grid is the stored square.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.model.layers import Block, run_block

__all__ = ["PatchEmbed", "DinoVisionTransformer", "interpolate_pos_embed"]


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` convolution: [N, 3, H, W] -> [N, (H/p)(W/p), C], row-major patches."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def interpolate_pos_embed(pos_embed: Tensor, grid_hw: tuple[int, int], dtype: torch.dtype) -> Tensor:
    """Resize a DINOv2 position embedding to a ``grid_hw`` patch grid.

    Args:
        pos_embed: [1, 1 + M*M, C] (cls position first, then an M x M row-major grid).
        grid_hw: (h, w) patches of the input.
        dtype: dtype of the result (the tokens' dtype), as upstream.
    Returns:
        [1, 1 + h*w, C]. The stored parameter itself when (h, w) == (M, M); otherwise the patch part is resized in
        fp32 with bicubic, antialiased ``F.interpolate(size=(h, w))``.
    """
    n_stored = pos_embed.shape[1] - 1
    m = int(math.sqrt(n_stored))
    if m * m != n_stored:
        raise ValueError(f"pos_embed has {n_stored} patch positions, not a square grid")
    h, w = grid_hw
    if h == w == m:
        return pos_embed
    pos = pos_embed.float()
    dim = pos.shape[-1]
    grid = pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, dim)
    return torch.cat((pos[:, :1], grid), dim=1).to(dtype)


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT (``vit_large(patch_size=14, num_register_tokens=4, init_values=1.0)`` at full size)."""

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        init_values: float = 1.0,
        checkpoint_blocks: bool = True,
    ) -> None:
        super().__init__()
        grid = img_size // patch_size
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        self.checkpoint_blocks = checkpoint_blocks
        # Parameter registration order = upstream state-dict order: cls_token, pos_embed, register_tokens, mask_token.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values=init_values, norm_eps=1e-6) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        # Unused by VGGT (DINO's masked-image training); kept for the checkpoint layout and frozen as upstream.
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim), requires_grad=False)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.pos_embed.is_meta:
            return
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: Tensor) -> Tensor:
        """images: [N, 3, H, W] (ImageNet-normalised) -> final-normed patch tokens [N, (H/p)(W/p), C]."""
        n, _, height, width = images.shape
        grid_hw = (height // self.patch_size, width // self.patch_size)
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(n, -1, -1), x), dim=1)
        x = x + interpolate_pos_embed(self.pos_embed, grid_hw, x.dtype)
        x = torch.cat((x[:, :1], self.register_tokens.expand(n, -1, -1), x[:, 1:]), dim=1)
        checkpoint = self.checkpoint_blocks and self.training
        for blk in self.blocks:
            x = run_block(blk, x, None, checkpoint)
        x = self.norm(x)
        return x[:, 1 + self.num_register_tokens :]
