"""Transformer building blocks with upstream VGGT/DINOv2 parameter names (``qkv``, ``proj``, ``ls1.gamma`` ...).

Numerics follow upstream: pre-LayerNorm blocks, ``LayerScale`` multiplies by an fp32 ``gamma`` so that under bf16
autocast the residual stream is promoted back to fp32 (only the matmuls run in bf16), exact GELU, SDPA attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LayerScale", "Mlp", "Attention", "Block", "rope_2d_tables", "apply_rope_2d", "RopeTables"]

# [N, head_dim] fp32 rotation angles of every token position, shared by all heads and batch items.
RopeTables = Tensor


class LayerScale(nn.Module):
    """``x * gamma`` with a learned per-channel ``gamma`` (fp32 parameter, so bf16 inputs are promoted)."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``, exact GELU."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def rope_2d_tables(positions_yx: Tensor, head_dim: int, base: float) -> RopeTables:
    """Rotation angles of VGGT's 2D RoPE (fp32).

    The first half of ``head_dim`` rotates with ``y``, the second half with ``x``. Within each half of size
    ``h = head_dim / 2`` the angles are ``pos * base**(-arange(0, h, 2) / h)``, duplicated (``cat(a, a)``) for the
    rotate-half convention.

    Args:
        positions_yx: [N, 2] integer (y, x) positions.
        head_dim: channels per attention head (a multiple of 4).
        base: RoPE frequency base (100 in VGGT).
    Returns:
        angles [N, head_dim] fp32; :func:`apply_rope_2d` takes cos/sin in the dtype of q/k, as upstream does.
    """
    half = head_dim // 2
    inv_freq = 1.0 / (base ** (torch.arange(0, half, 2, device=positions_yx.device).float() / half))
    tables = []
    for axis in (0, 1):  # y then x
        angles = positions_yx[:, axis].float()[:, None] * inv_freq[None, :]
        tables.append(torch.cat((angles, angles), dim=-1))
    return torch.cat(tables, dim=-1)


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope_2d(x: Tensor, angles: RopeTables) -> Tensor:
    """Rotate ``x`` [..., N, head_dim] by the 2D RoPE angles [N, head_dim]: y half, then x half (rotate-half).

    cos/sin are taken after casting the angles to ``x.dtype`` (upstream caches its tables in the tokens' dtype;
    on CUDA autocast q/k are fp32 after the qk LayerNorm, on CPU autocast they are bf16).
    """
    a = angles.to(x.dtype)
    cos, sin = a.cos(), a.sin()
    x_y, x_x = x.chunk(2, dim=-1)
    cos_y, cos_x = cos.chunk(2, dim=-1)
    sin_y, sin_x = sin.chunk(2, dim=-1)
    out_y = x_y * cos_y + _rotate_half(x_y) * sin_y
    out_x = x_x * cos_x + _rotate_half(x_x) * sin_x
    return torch.cat((out_y, out_x), dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention: fused ``qkv`` Linear, optional per-head LayerNorm on q and k, optional 2D RoPE
    (applied after the qk-norm), ``F.scaled_dot_product_attention``, output ``proj``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True, qk_norm: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: Tensor, rope: RopeTables | None = None) -> Tensor:
        """x: [B, N, C] -> [B, N, C]; ``rope`` tables are [N, head_dim]."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, N, head_dim]
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope_2d(q, rope), apply_rope_2d(k, rope)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block: ``x += ls1(attn(norm1 x)); x += ls2(mlp(norm2 x))``.

    ``init_values=None`` drops the LayerScale (identity), as upstream does for a falsy value.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        init_values: float | None = None,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=bias, proj_bias=bias, qk_norm=qk_norm)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=bias)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: Tensor, rope: RopeTables | None = None) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))


def run_block(block: nn.Module, x: Tensor, rope: RopeTables | None, checkpoint: bool) -> Tensor:
    """Run ``block(x, rope)``, with activation checkpointing when asked and useful (grad mode, trainable params)."""
    if checkpoint and torch.is_grad_enabled() and any(p.requires_grad for p in block.parameters()):
        return torch.utils.checkpoint.checkpoint(block, x, rope, use_reentrant=False)
    return block(x, rope)
