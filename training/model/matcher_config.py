"""Configuration of the semantic matcher (see :mod:`training.model.matcher` for the design)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from training.model.config import VGGTConfig

__all__ = ["MatcherConfig"]

_GRID_MODES = ("offset", "absolute", "correlation")
# fields that only the correlation head reads; left out of to_dict() in the other modes (their files stay as before)
_CORRELATION_FIELDS = ("desc_dim", "corr_temperature", "corr_window", "refine_channels", "corr_stride")
_HEAD_INITS = ("depth_head", "point_head", "random")
_HEAD_DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class MatcherConfig:
    """Semantic matcher settings (serialised to ``model_config.json`` by :func:`training.model.io.save_matcher`).

    Attributes:
        vggt: backbone architecture (``VGGTConfig.vggt_1b()`` for real runs, ``tiny()`` for tests).
        split_index: first AA layer of the trainable semantic branch (0 < split_index <= depth - 1). The paper does
            not give it; 12 (the middle of VGGT-1B) is a guess for the run manifests to sweep.
        grid_mode: "offset", "absolute" or "correlation" (see :mod:`training.model.matcher`).
        symmetric: run both pair orders (see the module docstring).
        head_init: initialise the semantic head from "depth_head", "point_head" or keep it "random".
        head_layers: aggregator layers the semantic head reads (default: the DPT layers of the backbone).
        geometry_heads: keep VGGT's camera/depth/point heads (frozen) for ``return_geometry=True``.
        autocast_dtype: "bfloat16" (CUDA only; residual stream stays fp32, heads fp32) or None.
        head_dtype: "float32" (default, as upstream runs its DPT heads) or "bfloat16": the semantic head's DPT
            decoder, output convs and the correlation head's refiner run under bf16 autocast (on any device); the
            descriptors, the correlation, its softmax and soft-argmax and the output grids stay fp32. A GPU speed
            option (docs/bench/model.md measures its cost in accuracy and its gain in time).
        desc_dim: ``correlation`` only: width of the matching descriptors.
        corr_temperature: ``correlation`` only: initial (learnable) softmax temperature on cosine similarities
            (at least 0.01, the floor the learned value is clamped to).
        corr_window: ``correlation`` only: soft-argmax window radius in patches around the most probable match
            (0: global soft-argmax over the whole other frame).
        refine_channels: ``correlation`` only: width of the fine-stage refiner.
        corr_stride: ``correlation`` only: pixels per cell of the coarse correlation grid; 0 (default) is the
            patch size (one cell per token). A smaller stride (e.g. 7, or 4 at 112 px) adds the DPT head's
            features, average-pooled to the cell, to the bilinearly upsampled token descriptors; inputs must then
            have sides that are multiples of the stride.
    """

    vggt: VGGTConfig = field(default_factory=VGGTConfig.vggt_1b)
    split_index: int = 12
    grid_mode: str = "offset"
    symmetric: bool = True
    head_init: str = "depth_head"
    head_layers: tuple[int, ...] | None = None
    geometry_heads: bool = True
    autocast_dtype: str | None = "bfloat16"
    head_dtype: str = "float32"
    desc_dim: int = 128
    corr_temperature: float = 0.1
    corr_window: int = 0
    refine_channels: int = 32
    corr_stride: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.vggt, dict):
            object.__setattr__(self, "vggt", VGGTConfig.from_dict(self.vggt))
        if self.head_layers is not None:
            object.__setattr__(self, "head_layers", tuple(int(i) for i in self.head_layers))
        depth = self.vggt.depth
        if not 0 < self.split_index < depth:
            raise ValueError(f"split_index {self.split_index} must be in [1, {depth - 1}] (depth {depth})")
        if self.grid_mode not in _GRID_MODES:
            raise ValueError(f"grid_mode {self.grid_mode!r} not in {_GRID_MODES}")
        if self.head_init not in _HEAD_INITS:
            raise ValueError(f"head_init {self.head_init!r} not in {_HEAD_INITS}")
        if len(self.layers) != 4 or any(not 0 <= i < depth for i in self.layers):
            raise ValueError(f"head_layers {self.layers} must be 4 layers in [0, {depth})")
        if max(self.layers) < self.split_index:
            raise ValueError(
                f"head_layers {self.layers} never read the semantic branch (split_index {self.split_index})"
            )
        if self.autocast_dtype not in (None, "bfloat16", "float16"):
            raise ValueError(f"autocast_dtype {self.autocast_dtype!r} not in (None, 'bfloat16', 'float16')")
        if self.head_dtype not in _HEAD_DTYPES:
            raise ValueError(f"head_dtype {self.head_dtype!r} not in {_HEAD_DTYPES}")
        if self.corr_stride < 0 or self.corr_stride > self.vggt.patch_size:
            raise ValueError(f"corr_stride {self.corr_stride} must be 0 (the patch size) or 1..{self.vggt.patch_size}")
        if self.desc_dim < 1 or self.refine_channels < 1 or self.corr_window < 0:
            raise ValueError(
                f"desc_dim {self.desc_dim} and refine_channels {self.refine_channels} must be >= 1, "
                f"corr_window {self.corr_window} >= 0"
            )
        if not self.corr_temperature >= 0.01:
            raise ValueError(f"corr_temperature {self.corr_temperature} must be >= 0.01")

    @property
    def corr_cell_px(self) -> int:
        """Side of a correlation cell in pixels: ``corr_stride``, or the patch size when it is 0."""
        return self.corr_stride or self.vggt.patch_size

    @property
    def layers(self) -> tuple[int, ...]:
        return self.head_layers if self.head_layers is not None else self.vggt.dpt_layers

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["vggt"] = self.vggt.to_dict()
        d["head_layers"] = list(self.head_layers) if self.head_layers is not None else None
        if self.grid_mode != "correlation":
            for name in _CORRELATION_FIELDS:
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MatcherConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown MatcherConfig keys: {unknown}")
        return cls(**d)
