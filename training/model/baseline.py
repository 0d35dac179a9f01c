"""Zero-shot baseline: nearest-neighbour matching on frozen VGGT features (the paper's "no tuning" row).

Features: patch tokens of one aggregator layer (``feature_layer``, default the last), the frame half, the global
half or both (``"both"`` = the 2C-d output the DPT heads read), or the DINOv2 patch-embed output (``"dino"``,
a plain DINOv2-reg baseline). They are L2-normalised and compared by cosine similarity between all patches of
the two frames.

Per pixel: pixel ``p`` in source patch ``s`` maps to ``centre(NN(s)) + (p - centre(s))`` — the patch-level match
carried to pixels as a local translation (patch centres at ``j * patch + (patch - 1) / 2`` px). Confidence is the
cosine similarity mapped to (0, 1), ``(1 + cos) / 2``; with ``mutual=True`` matches that are not mutual nearest
neighbours have it halved, so they rank below mutual ones. Same call and output dict as the semantic matcher.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.geometry import px_to_norm
from training.model.checkpoint import LoadReport, load_state_dict_checked, read_state_dict
from training.model.config import VGGTConfig
from training.model.vggt import VGGT

__all__ = ["NNBaselineConfig", "NearestNeighbourMatcher"]

_PARTS = ("both", "frame", "global", "dino")
_EPS = 1e-4


@dataclass(frozen=True)
class NNBaselineConfig:
    vggt: VGGTConfig = field(default_factory=VGGTConfig.vggt_1b)
    feature_layer: int = -1
    feature_part: str = "both"
    mutual: bool = True
    autocast_dtype: str | None = "bfloat16"

    def __post_init__(self) -> None:
        if isinstance(self.vggt, dict):
            object.__setattr__(self, "vggt", VGGTConfig.from_dict(self.vggt))
        if self.feature_part not in _PARTS:
            raise ValueError(f"feature_part {self.feature_part!r} not in {_PARTS}")
        if not -self.vggt.depth <= self.feature_layer < self.vggt.depth:
            raise ValueError(f"feature_layer {self.feature_layer} outside the {self.vggt.depth} aggregator layers")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["vggt"] = self.vggt.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NNBaselineConfig:
        return cls(**d)


class NearestNeighbourMatcher(nn.Module):
    """``model(images [B, 2, 3, H, W]) -> {grid, grid_norm, conf, conf_logit}``; no trainable parameters."""

    def __init__(self, cfg: NNBaselineConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vggt_source: str | None = None
        vcfg = dataclasses.replace(
            cfg.vggt, enable_camera=False, enable_depth=False, enable_point=False, enable_track=False
        )
        self.vggt = VGGT(vcfg)
        self.vggt.requires_grad_(False)
        self.eval()

    def load_vggt_weights(self, path: str | Path, strict: bool = True) -> LoadReport:
        """Load the aggregator from the official checkpoint; head keys are skipped and reported."""
        skip = ("camera_head.", "depth_head.", "point_head.", "track_head.")
        report = load_state_dict_checked(self.vggt, read_state_dict(path), strict, skip_prefixes=skip, source=str(path))
        self.vggt.requires_grad_(False)
        self.vggt_source = str(Path(path).resolve())
        return report

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    def train(self, mode: bool = True) -> NearestNeighbourMatcher:
        return super().train(False)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """images [B, 2, 3, H, W] -> L2-normalised patch features [B, 2, h*w, D] (fp32)."""
        agg = self.vggt.aggregator
        enabled = self.cfg.autocast_dtype is not None and images.device.type == "cuda"
        with torch.autocast(
            images.device.type, dtype=getattr(torch, self.cfg.autocast_dtype or "bfloat16"), enabled=enabled
        ):
            if self.cfg.feature_part == "dino":
                feats = agg.embed_patches(images)
            else:
                layer = self.cfg.feature_layer % agg.depth
                state = agg.prepare(images)
                _, outs = agg.run_layers(state, range(layer + 1), keep=(layer,))
                feats = outs[layer][:, :, agg.patch_start_idx :]
                c = feats.shape[-1] // 2
                if self.cfg.feature_part == "frame":
                    feats = feats[..., :c]
                elif self.cfg.feature_part == "global":
                    feats = feats[..., c:]
        return F.normalize(feats.float(), dim=-1)

    @torch.no_grad()
    def forward(self, images: Tensor, return_geometry: bool = False) -> dict[str, Tensor]:
        if images.ndim != 5 or images.shape[1] != 2:
            raise ValueError(f"images must be [B, 2, 3, H, W], got {tuple(images.shape)}")
        if return_geometry:
            raise ValueError("the nearest-neighbour baseline has no geometry heads")
        b, _, _, height, width = images.shape
        ps = self.vggt.cfg.patch_size
        h, w = height // ps, width // ps
        feats = self.features(images)
        sim = torch.einsum("bic,bjc->bij", feats[:, 0], feats[:, 1])  # [B, hw0, hw1]
        best_01, idx_01 = sim.max(dim=2)
        best_10, idx_10 = sim.max(dim=1)
        conf = torch.stack(((1 + best_01) / 2, (1 + best_10) / 2), dim=1)  # [B, 2, hw]
        idx = torch.stack((idx_01, idx_10), dim=1)  # [B, 2, hw] target patch index
        if self.cfg.mutual:
            ar = torch.arange(h * w, device=images.device)
            mutual_0 = torch.gather(idx_10, 1, idx_01) == ar
            mutual_1 = torch.gather(idx_01, 1, idx_10) == ar
            conf = conf * torch.where(torch.stack((mutual_0, mutual_1), dim=1), 1.0, 0.5)
        conf = conf.clamp(_EPS, 1 - _EPS)
        centre_xy = torch.stack(((idx % w).float(), (idx // w).float()), dim=-1) * ps + (ps - 1) / 2
        # patch-level -> pixel-level: repeat each patch's match over its pixels, plus the in-patch offset
        centre_xy = centre_xy.view(b, 2, h, w, 2).repeat_interleave(ps, 2).repeat_interleave(ps, 3)
        offset = (torch.arange(ps, device=images.device, dtype=torch.float32) - (ps - 1) / 2).repeat(max(h, w))
        offset_xy = torch.stack(torch.broadcast_tensors(offset[None, : w * ps], offset[: h * ps, None]), dim=-1)
        grid = centre_xy + offset_xy
        conf = conf.view(b, 2, h, w).repeat_interleave(ps, 2).repeat_interleave(ps, 3)
        return {
            "grid": grid,
            "grid_norm": px_to_norm(grid, height, width),
            "conf": conf,
            "conf_logit": torch.logit(conf),
        }
