"""VGGT's aggregator: DINOv2 patch tokens + camera/register tokens, then alternating frame/global attention.

Token layout per frame: ``[camera, register x R, patches]`` (``patch_start_idx = 1 + R``). Special-token index 0
goes to frame 0 (the reference frame) and index 1 to every other frame. Each AA layer ``i`` runs
``frame_blocks[i]`` on ``[B*S, P, C]`` then ``global_blocks[i]`` on ``[B, S*P, C]`` and emits
``cat(frame_i, global_i)``: [B, S, P, 2C]. 2D RoPE positions are (y+1, x+1) for patches, (0, 0) for special tokens,
identical in every frame.

The forward is split into stages (``embed_patches``, ``build_tokens``, ``run_layers``) so the semantic matcher can
share the frozen early layers and branch later ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from training.model.config import VGGTConfig
from training.model.dinov2 import DinoVisionTransformer
from training.model.layers import Block, RopeTables, rope_2d_tables, run_block

__all__ = ["Aggregator", "AggregatorState", "alternating_layer"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class AggregatorState:
    """Tokens between AA layers plus the shape bookkeeping and the RoPE tables of one forward pass.

    Attributes:
        tokens: [B, S, P, C] residual stream after the last layer run.
        rope_frame: tables for frame attention ([P, head_dim]); rope_global: for global attention ([S*P, head_dim]).
    """

    def __init__(self, tokens: Tensor, rope_frame: RopeTables | None, rope_global: RopeTables | None) -> None:
        self.tokens = tokens
        self.rope_frame = rope_frame
        self.rope_global = rope_global

    def select(self, index: Tensor | slice) -> AggregatorState:
        """The same state for a subset of the batch (first dim of ``tokens``)."""
        return AggregatorState(self.tokens[index], self.rope_frame, self.rope_global)


def alternating_layer(
    frame_block: nn.Module, global_block: nn.Module, state: AggregatorState, checkpoint: bool
) -> tuple[Tensor, Tensor]:
    """One AA layer: returns (new tokens [B, S, P, C], layer output cat(frame, global) [B, S, P, 2C])."""
    b, s, p, c = state.tokens.shape
    x = run_block(frame_block, state.tokens.reshape(b * s, p, c), state.rope_frame, checkpoint)
    frame_out = x.view(b, s, p, c)
    x = run_block(global_block, x.view(b, s * p, c), state.rope_global, checkpoint)
    global_out = x.view(b, s, p, c)
    return global_out, torch.cat((frame_out, global_out), dim=-1)


class Aggregator(nn.Module):
    """Upstream ``Aggregator`` (names ``camera_token``, ``register_token``, ``patch_embed``, ``frame_blocks``,
    ``global_blocks``)."""

    def __init__(self, cfg: VGGTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_size = cfg.patch_size
        self.depth = cfg.depth
        self.patch_start_idx = cfg.patch_start_idx
        self.patch_embed = DinoVisionTransformer(
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            embed_dim=cfg.embed_dim,
            depth=cfg.patch_embed_depth,
            num_heads=cfg.patch_embed_num_heads,
            mlp_ratio=cfg.mlp_ratio,
            num_register_tokens=cfg.num_register_tokens,
            init_values=cfg.patch_embed_init_values,
            checkpoint_blocks=cfg.checkpoint_blocks,
        )

        def aa_block() -> Block:
            return Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, init_values=cfg.aa_init_values, qk_norm=True)

        self.frame_blocks = nn.ModuleList(aa_block() for _ in range(cfg.depth))
        self.global_blocks = nn.ModuleList(aa_block() for _ in range(cfg.depth))
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, cfg.embed_dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, cfg.num_register_tokens, cfg.embed_dim))
        if not self.camera_token.is_meta:
            nn.init.normal_(self.camera_token, std=1e-6)
            nn.init.normal_(self.register_token, std=1e-6)
        self.register_buffer("_resnet_mean", torch.tensor(_IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("_resnet_std", torch.tensor(_IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False)

    def reset_buffers(self) -> None:
        """Re-create the non-persistent normalisation buffers (after building on the meta device)."""
        device = self.camera_token.device if not self.camera_token.is_meta else "cpu"
        self._resnet_mean = torch.tensor(_IMAGENET_MEAN, device=device).view(1, 1, 3, 1, 1)
        self._resnet_std = torch.tensor(_IMAGENET_STD, device=device).view(1, 1, 3, 1, 1)

    def check_images(self, images: Tensor) -> None:
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"images must be [B, S, 3, H, W], got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")

    def embed_patches(self, images: Tensor) -> Tensor:
        """images [B, S, 3, H, W] in [0, 1] -> DINOv2 patch tokens [B, S, h*w, C] (per frame, order-free)."""
        self.check_images(images)
        b, s = images.shape[:2]
        x = (images - self._resnet_mean) / self._resnet_std
        tokens = self.patch_embed(x.reshape(b * s, *x.shape[2:]))
        return tokens.view(b, s, *tokens.shape[1:])

    def build_tokens(self, patch_tokens: Tensor, grid_hw: tuple[int, int]) -> AggregatorState:
        """Prepend camera/register tokens (index 0 for frame 0, index 1 for the others) and make the RoPE tables."""
        b, s, _, c = patch_tokens.shape

        def per_frame(token: Tensor) -> Tensor:  # [1, 2, X, C] -> [B, S, X, C]
            first = token[:, :1].expand(b, 1, -1, -1)
            others = token[:, 1:].expand(b, s - 1, -1, -1)
            return torch.cat((first, others), dim=1)

        tokens = torch.cat((per_frame(self.camera_token), per_frame(self.register_token), patch_tokens), dim=2)
        pos = self.positions(grid_hw, patch_tokens.device)
        head_dim = self.cfg.head_dim
        rope_frame = rope_2d_tables(pos, head_dim, self.cfg.rope_freq)
        rope_global = rope_2d_tables(pos.repeat(s, 1), head_dim, self.cfg.rope_freq)
        return AggregatorState(tokens, rope_frame, rope_global)

    def positions(self, grid_hw: tuple[int, int], device: torch.device) -> Tensor:
        """[P, 2] (y, x) RoPE positions of one frame: (0, 0) for special tokens, (row+1, col+1) for patches."""
        h, w = grid_hw
        ys = torch.arange(h, device=device).repeat_interleave(w)
        xs = torch.arange(w, device=device).repeat(h)
        patches = torch.stack((ys, xs), dim=-1) + 1
        special = torch.zeros(self.patch_start_idx, 2, dtype=patches.dtype, device=device)
        return torch.cat((special, patches), dim=0)

    def prepare(self, images: Tensor) -> AggregatorState:
        """Images -> state before AA layer 0."""
        h, w = images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size
        return self.build_tokens(self.embed_patches(images), (h, w))

    def run_layers(
        self,
        state: AggregatorState,
        layers: Iterable[int],
        keep: Iterable[int] = (),
        frame_blocks: nn.Module | None = None,
        global_blocks: nn.Module | None = None,
        checkpoint: bool | None = None,
    ) -> tuple[AggregatorState, dict[int, Tensor]]:
        """Run AA layers ``layers`` (ascending) on ``state``.

        Args:
            frame_blocks/global_blocks: indexable by ``str(i)`` (ModuleDict) or ``i`` (ModuleList); default: own.
            keep: layer indices whose outputs [B, S, P, 2C] are returned.
            checkpoint: activation checkpointing per block; default ``cfg.checkpoint_blocks`` in training mode.
        Returns:
            (state after the last layer, {layer index: output}).
        """
        frame_blocks = self.frame_blocks if frame_blocks is None else frame_blocks
        global_blocks = self.global_blocks if global_blocks is None else global_blocks
        keep = set(keep)
        if checkpoint is None:
            checkpoint = self.cfg.checkpoint_blocks and self.training
        outputs: dict[int, Tensor] = {}
        for i in layers:
            key = str(i) if isinstance(frame_blocks, nn.ModuleDict) else i
            tokens, out = alternating_layer(frame_blocks[key], global_blocks[key], state, checkpoint)
            state = AggregatorState(tokens, state.rope_frame, state.rope_global)
            if i in keep:
                outputs[i] = out
        return state, outputs

    def forward(self, images: Tensor, keep: Iterable[int] | None = None) -> tuple[list[Tensor | None], int]:
        """images [B, S, 3, H, W] in [0, 1] -> (per-layer outputs [B, S, P, 2C] (None where not kept), patch_start_idx).

        ``keep`` defaults to all layers, as upstream.
        """
        keep = range(self.depth) if keep is None else keep
        _, outputs = self.run_layers(self.prepare(images), range(self.depth), keep)
        return [outputs.get(i) for i in range(self.depth)], self.patch_start_idx
