"""Configuration of the VGGT re-implementation: one dataclass builds the released 1B model and small test models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["VGGTConfig"]


@dataclass(frozen=True)
class VGGTConfig:
    """Every size of the VGGT architecture (upstream ``VGGT`` / ``Aggregator`` / heads defaults = ``vggt_1b()``).

    The DINOv2 patch embed shares ``embed_dim`` with the alternating-attention (AA) blocks, as upstream does.
    ``img_size`` only fixes the size of the DINOv2 position embedding (``(img_size / patch_size)**2 + 1`` entries);
    any input whose sides are multiples of ``patch_size`` is accepted.
    """

    img_size: int = 518
    patch_size: int = 14
    embed_dim: int = 1024
    # alternating-attention trunk
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    rope_freq: float = 100.0
    aa_init_values: float = 0.01
    # DINOv2 ViT patch embed ("dinov2_vitl14_reg")
    patch_embed_depth: int = 24
    patch_embed_num_heads: int = 16
    patch_embed_init_values: float = 1.0
    # DPT heads (depth, point, track features, semantic head)
    dpt_layers: tuple[int, ...] = (4, 11, 17, 23)
    dpt_features: int = 256
    dpt_out_channels: tuple[int, ...] = (256, 512, 1024, 1024)
    # camera head
    camera_trunk_depth: int = 4
    camera_num_heads: int = 16
    camera_iters: int = 4
    # track head (CoTracker2-style tracker on DPT features)
    track_features: int = 128
    track_hidden_size: int = 384
    track_depth: int = 6
    track_num_heads: int = 8
    track_num_virtual: int = 64
    track_corr_levels: int = 7
    track_corr_radius: int = 4
    track_stride: int = 2
    track_iters: int = 4
    # which heads exist
    enable_camera: bool = True
    enable_depth: bool = True
    enable_point: bool = True
    enable_track: bool = True
    # activation checkpointing of every transformer block that has trainable parameters, in training mode
    checkpoint_blocks: bool = True

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "dpt_layers", tuple(int(i) for i in self.dpt_layers))
        object.__setattr__(self, "dpt_out_channels", tuple(int(c) for c in self.dpt_out_channels))
        self.validate()

    @classmethod
    def vggt_1b(cls, **overrides: Any) -> VGGTConfig:
        """The released facebook/VGGT-1B architecture (1,256,537,516 parameters)."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> VGGTConfig:
        """A few-block model with small widths for CPU tests (all code paths of the 1B model)."""
        base = {
            "img_size": 56,
            "embed_dim": 32,
            "depth": 4,
            "num_heads": 2,
            "patch_embed_depth": 2,
            "patch_embed_num_heads": 2,
            "dpt_layers": (0, 1, 2, 3),
            "dpt_features": 16,
            "dpt_out_channels": (8, 16, 32, 32),
            "camera_trunk_depth": 1,
            "camera_num_heads": 2,
            "camera_iters": 2,
            "track_features": 8,
            "track_hidden_size": 16,
            "track_depth": 2,
            "track_num_heads": 2,
            "track_num_virtual": 4,
            "track_corr_levels": 3,
            "track_corr_radius": 1,
            "track_iters": 2,
        }
        base.update(overrides)
        return cls(**base)

    @classmethod
    def small(cls, **overrides: Any) -> VGGTConfig:
        """A ViT-S-sized trunk (dim 384, 8 AA blocks) for CPU benchmarks; heads at their real widths."""
        base = {
            "embed_dim": 384,
            "depth": 8,
            "num_heads": 6,
            "patch_embed_depth": 12,
            "patch_embed_num_heads": 6,
            "dpt_layers": (1, 3, 5, 7),
            "dpt_features": 128,
            "dpt_out_channels": (96, 192, 384, 384),
            "camera_num_heads": 12,
        }
        base.update(overrides)
        return cls(**base)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token: ``[camera, register x R, patches]``."""
        return 1 + self.num_register_tokens

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent setting."""
        problems = []
        if self.img_size % self.patch_size:
            problems.append(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 4:
            problems.append(
                f"embed_dim/num_heads = {self.embed_dim}/{self.num_heads} must be a multiple of 4 (2D RoPE)"
            )
        if self.embed_dim % self.patch_embed_num_heads:
            problems.append(f"embed_dim {self.embed_dim} not divisible by patch_embed_num_heads")
        if (2 * self.embed_dim) % self.camera_num_heads:
            problems.append(f"2*embed_dim not divisible by camera_num_heads {self.camera_num_heads}")
        if len(self.dpt_layers) != 4 or len(self.dpt_out_channels) != 4:
            problems.append("dpt_layers and dpt_out_channels need exactly 4 entries")
        if any(not 0 <= i < self.depth for i in self.dpt_layers):
            problems.append(f"dpt_layers {self.dpt_layers} outside [0, depth={self.depth})")
        if self.track_hidden_size % self.track_num_heads:
            problems.append("track_hidden_size not divisible by track_num_heads")
        if self.track_depth < 1 or self.track_features % 2:
            problems.append("track_depth >= 1 and an even track_features are required")
        if problems:
            raise ValueError("invalid VGGTConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dpt_layers"] = list(self.dpt_layers)
        d["dpt_out_channels"] = list(self.dpt_out_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VGGTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown VGGTConfig keys: {unknown}")
        return cls(**d)
