"""The VGGT model (upstream ``VGGT``): aggregator + camera, point, depth and track heads.

Numerics as upstream: callers may wrap the call in bf16 autocast; the aggregator's residual stream stays fp32
(LayerScale promotion), and the camera/depth/point heads run with autocast disabled (fp32). The track head runs
under the caller's autocast, as upstream.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.model.aggregator import Aggregator
from training.model.camera_head import CameraHead
from training.model.config import VGGTConfig
from training.model.dpt import DPTHead
from training.model.track_head import TrackHead

__all__ = ["VGGT", "build_geometry_heads"]


def build_geometry_heads(model: nn.Module, cfg: VGGTConfig) -> None:
    """Attach ``camera_head``, ``point_head``, ``depth_head``, ``track_head`` (None where disabled) to ``model``,
    in upstream registration order."""
    dim_in = 2 * cfg.embed_dim
    dpt = {
        "patch_size": cfg.patch_size,
        "features": cfg.dpt_features,
        "out_channels": cfg.dpt_out_channels,
        "intermediate_layer_idx": cfg.dpt_layers,
    }
    model.camera_head = (
        CameraHead(dim_in, cfg.camera_trunk_depth, cfg.camera_num_heads, cfg.mlp_ratio, num_iterations=cfg.camera_iters)
        if cfg.enable_camera
        else None
    )
    model.point_head = (
        DPTHead(dim_in, output_dim=4, activation="inv_log", conf_activation="expp1", **dpt)
        if cfg.enable_point
        else None
    )
    model.depth_head = (
        DPTHead(dim_in, output_dim=2, activation="exp", conf_activation="expp1", **dpt) if cfg.enable_depth else None
    )
    model.track_head = (
        TrackHead(
            dim_in,
            patch_size=cfg.patch_size,
            features=cfg.track_features,
            iters=cfg.track_iters,
            stride=cfg.track_stride,
            corr_levels=cfg.track_corr_levels,
            corr_radius=cfg.track_corr_radius,
            hidden_size=cfg.track_hidden_size,
            depth=cfg.track_depth,
            num_heads=cfg.track_num_heads,
            num_virtual=cfg.track_num_virtual,
            intermediate_layer_idx=cfg.dpt_layers,
            out_channels=cfg.dpt_out_channels,
        )
        if cfg.enable_track
        else None
    )


class VGGT(nn.Module):
    """Upstream-compatible VGGT; ``VGGT(VGGTConfig.vggt_1b())`` has the checkpoint's 1,797 tensors."""

    def __init__(self, cfg: VGGTConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or VGGTConfig.vggt_1b()
        self.aggregator = Aggregator(self.cfg)
        build_geometry_heads(self, self.cfg)

    def needed_layers(self, with_track: bool = True) -> set[int]:
        """Aggregator layers the enabled heads read."""
        layers: set[int] = set()
        if self.camera_head is not None:
            layers.add(self.cfg.depth - 1)
        if self.depth_head is not None or self.point_head is not None or (with_track and self.track_head is not None):
            layers.update(self.cfg.dpt_layers)
        return layers

    def run_heads(
        self, tokens_list: list[Tensor | None], image_hw: tuple[int, int], query_points: Tensor | None = None
    ) -> dict[str, Tensor | list[Tensor]]:
        """Heads on aggregator outputs (indexable by layer, [B, S, P, 2C]); see :meth:`forward` for the keys."""
        psi = self.aggregator.patch_start_idx
        ref = next(t for t in tokens_list if t is not None)
        out: dict[str, Tensor | list[Tensor]] = {}
        with torch.autocast(device_type=ref.device.type, enabled=False):
            if self.camera_head is not None:
                pose_enc_list = self.camera_head(tokens_list[self.cfg.depth - 1].float())
                out["pose_enc"] = pose_enc_list[-1]
                out["pose_enc_list"] = pose_enc_list
            fp32_tokens = [t.float() if t is not None else None for t in tokens_list]
            if self.depth_head is not None:
                depth, depth_conf = self.depth_head(fp32_tokens, image_hw, psi)
                out["depth"], out["depth_conf"] = depth, depth_conf
            if self.point_head is not None:
                points, points_conf = self.point_head(fp32_tokens, image_hw, psi)
                out["world_points"], out["world_points_conf"] = points, points_conf
        if self.track_head is not None and query_points is not None:
            tracks, vis, conf = self.track_head(tokens_list, image_hw, psi, query_points)
            out["track"], out["vis"], out["conf"] = tracks[-1], vis, conf
            out["track_list"] = tracks
        return out

    def forward(self, images: Tensor, query_points: Tensor | None = None) -> dict[str, Tensor | list[Tensor]]:
        """
        Args:
            images: [S, 3, H, W] or [B, S, 3, H, W] in [0, 1]; H, W multiples of the patch size. Frame 0 is the
                reference frame (world frame = camera 0).
            query_points: optional [N, 2] or [B, N, 2] pixel positions in frame 0 to track.
        Returns:
            pose_enc [B, S, 9] (+ pose_enc_list), depth [B, S, H, W, 1], depth_conf [B, S, H, W],
            world_points [B, S, H, W, 3], world_points_conf [B, S, H, W]; with query points also
            track [B, S, N, 2] px, vis [B, S, N], conf [B, S, N] (+ track_list).
        """
        if images.ndim == 4:
            images = images[None]
        if query_points is not None and query_points.ndim == 2:
            query_points = query_points[None]
        keep = self.needed_layers(with_track=query_points is not None)
        tokens_list, _ = self.aggregator(images, keep=keep)
        return self.run_heads(tokens_list, tuple(images.shape[-2:]), query_points)
