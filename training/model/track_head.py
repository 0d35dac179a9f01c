"""VGGT's track head: a DPT feature extractor (``feature_only``, half resolution, no UV embedding) and a
CoTracker2-style iterative tracker (``BaseTrackerPredictor`` with an ``EfficientUpdateFormer``).

Upstream details kept for checkpoint and numeric parity: ``nn.MultiheadAttention`` (``in_proj_weight`` names), the
misspelled ``virual_tracks`` parameter, attention blocks whose residual starts from the *normed* input, correlation
sampling offsets built as ``meshgrid(dy, dx, 'ij')`` and added to (x, y), positions detached inside sampling, the
flow embedding ``get_2d_embedding`` with its ``1000 / C`` frequency step, and ``max_scale = 518``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.model.dpt import DPTHead
from training.model.layers import Mlp

__all__ = ["TrackHead", "BaseTrackerPredictor", "EfficientUpdateFormer"]


def sample_bilinear(fmap: Tensor, xy: Tensor, padding_mode: str) -> Tensor:
    """Sample fmap [N, C, H, W] at pixel positions xy [N, h, w, 2] (align_corners=True convention: 0 and W-1 are
    the centres of the border pixels). Positions are detached, as upstream's ``bilinear_sampler`` does."""
    h, w = fmap.shape[-2:]
    scale = xy.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
    grid = xy.detach().to(fmap.dtype) * scale.to(fmap.dtype) - 1
    return F.grid_sample(fmap, grid, align_corners=True, padding_mode=padding_mode)


def sample_points(fmap: Tensor, xy: Tensor) -> Tensor:
    """fmap [B, C, H, W], xy [B, N, 2] -> [B, N, C] (border padding)."""
    return sample_bilinear(fmap, xy[:, :, None], "border")[..., 0].transpose(1, 2)


def sincos_2d_grid_embedding(dim: int, height: int, width: int, device) -> Tensor:
    """[1, dim, H, W]: first half encodes x (column), second half y (row); each [sin, cos], base 10000."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))

    def embed(pos: Tensor) -> Tensor:
        angles = pos.double()[:, None] * omega[None]
        return torch.cat((angles.sin(), angles.cos()), dim=-1).float()

    ex = embed(torch.arange(width, dtype=torch.float32))[None, :, :].expand(height, width, -1)
    ey = embed(torch.arange(height, dtype=torch.float32))[:, None, :].expand(height, width, -1)
    return torch.cat((ex, ey), dim=-1).permute(2, 0, 1)[None].to(device)


def flow_embedding(xy: Tensor, channels: int) -> Tensor:
    """[..., 2] -> [..., 2*channels]: x then y, each interleaved sin/cos at frequencies ``arange(0, C, 2) * 1000/C``."""
    freqs = torch.arange(0, channels, 2, device=xy.device, dtype=torch.float32) * (1000.0 / channels)
    out = []
    for i in range(2):
        angles = xy[..., i : i + 1].float() * freqs
        out.append(torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2))
    return torch.cat(out, dim=-1)


class AttnBlock(nn.Module):
    """x = norm1(x); x = x + MHA(x, x, x); x = x + mlp(norm2(x))."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x)
        x = x + self.attn(x, x, x)[0]  # need_weights=True (default) as upstream: the same (non-fast) kernel path
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    """x = norm1(x); x = x + MHA(x, norm_context(ctx), .); x = x + mlp(norm2(x))."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm_context = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.cross_attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = self.norm1(x)
        context = self.norm_context(context)
        x = x + self.cross_attn(x, context, context)[0]
        return x + self.mlp(self.norm2(x))


class EfficientUpdateFormer(nn.Module):
    """Time attention per track, space attention through ``num_virtual`` virtual tracks."""

    def __init__(self, depth: int, input_dim: int, hidden_size: int, num_heads: int, output_dim: int, num_virtual: int):
        super().__init__()
        self.num_virtual = num_virtual
        self.virual_tracks = nn.Parameter(torch.randn(1, num_virtual, 1, hidden_size))  # sic: upstream spelling
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size)
        self.flow_head = nn.Linear(hidden_size, output_dim)
        self.time_blocks = nn.ModuleList(AttnBlock(hidden_size, num_heads) for _ in range(depth))
        self.space_virtual_blocks = nn.ModuleList(AttnBlock(hidden_size, num_heads) for _ in range(depth))
        self.space_point2virtual_blocks = nn.ModuleList(CrossAttnBlock(hidden_size, num_heads) for _ in range(depth))
        self.space_virtual2point_blocks = nn.ModuleList(CrossAttnBlock(hidden_size, num_heads) for _ in range(depth))
        if not self.flow_head.weight.is_meta:
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
            nn.init.trunc_normal_(self.flow_head.weight, std=0.001)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, N, T, input_dim] -> [B, N, T, output_dim]."""
        tokens = self.input_transform(self.input_norm(x))
        init_tokens = tokens
        b, n, t, c = tokens.shape
        tokens = torch.cat((tokens, self.virual_tracks.repeat(b, 1, t, 1)), dim=1)
        n_all = n + self.num_virtual
        for i, time_block in enumerate(self.time_blocks):
            tokens = time_block(tokens.reshape(b * n_all, t, c)).view(b, n_all, t, c)
            space = tokens.permute(0, 2, 1, 3).reshape(b * t, n_all, c)
            points, virtual = space[:, :n], space[:, n:]
            virtual = self.space_virtual2point_blocks[i](virtual, points)
            virtual = self.space_virtual_blocks[i](virtual)
            points = self.space_point2virtual_blocks[i](points, virtual)
            tokens = torch.cat((points, virtual), dim=1).view(b, t, n_all, c).permute(0, 2, 1, 3)
        tokens = tokens[:, :n] + init_tokens
        return self.flow_head(self.output_norm(tokens))


class BaseTrackerPredictor(nn.Module):
    """Iterative point tracker on per-frame feature maps; queries live in frame 0."""

    def __init__(
        self,
        stride: int = 2,
        corr_levels: int = 7,
        corr_radius: int = 4,
        latent_dim: int = 128,
        hidden_size: int = 384,
        depth: int = 6,
        num_heads: int = 8,
        num_virtual: int = 64,
        max_scale: float = 518.0,
    ) -> None:
        super().__init__()
        self.stride, self.corr_levels, self.corr_radius = stride, corr_levels, corr_radius
        self.latent_dim, self.max_scale = latent_dim, max_scale
        self.transformer_dim = 3 * latent_dim + 4
        self.query_ref_token = nn.Parameter(torch.randn(1, 2, self.transformer_dim))
        self.corr_mlp = Mlp(corr_levels * (2 * corr_radius + 1) ** 2, hidden_size, latent_dim)
        self.updateformer = EfficientUpdateFormer(
            depth, self.transformer_dim, hidden_size, num_heads, latent_dim + 2, num_virtual
        )
        self.fmap_norm = nn.LayerNorm(latent_dim)
        self.ffeat_norm = nn.GroupNorm(1, latent_dim)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent_dim, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent_dim, 1))

    def _correlations(self, pyramid: list[Tensor], feats: Tensor, coords: Tensor) -> Tensor:
        """feats [B, S, N, C], coords [B, S, N, 2] (feature-map px) -> [B, S, N, levels * (2r+1)^2]."""
        b, s, n, c = feats.shape
        r = self.corr_radius
        lin = torch.linspace(-r, r, 2 * r + 1, device=coords.device, dtype=coords.dtype)
        offsets = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), dim=-1)  # [(2r+1), (2r+1), 2], added to (x, y)
        out = []
        for level, fmap in enumerate(pyramid):
            h, w = fmap.shape[-2:]
            corr = torch.matmul(feats, fmap.reshape(b, s, c, h * w)) / math.sqrt(c)
            xy = coords.reshape(b * s * n, 1, 1, 2) / 2**level + offsets[None]
            sampled = sample_bilinear(corr.reshape(b * s * n, 1, h, w), xy, "zeros")
            out.append(sampled.reshape(b, s, n, -1))
        return torch.cat(out, dim=-1)

    def forward(self, query_points: Tensor, fmaps: Tensor, iters: int = 4) -> tuple[list[Tensor], Tensor, Tensor]:
        """query_points [B, N, 2] px in frame 0, fmaps [B, S, C, h, w] ->
        (per-iteration tracks [B, S, N, 2] px, visibility [B, S, N], confidence [B, S, N])."""
        b, n, _ = query_points.shape
        _, s, c, h, w = fmaps.shape
        fmaps = self.fmap_norm(fmaps.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)
        query = query_points / float(self.stride)
        coords = query[:, None].repeat(1, s, 1, 1)
        track_feats = sample_points(fmaps[:, 0], query)[:, None].repeat(1, s, 1, 1)  # [B, S, N, C]
        pyramid = [fmaps]
        for _ in range(self.corr_levels - 1):
            prev = pyramid[-1]
            pooled = F.avg_pool2d(prev.reshape(b * s, c, *prev.shape[-2:]), kernel_size=2, stride=2)
            pyramid.append(pooled.reshape(b, s, c, *pooled.shape[-2:]))
        pos_embed = sincos_2d_grid_embedding(self.transformer_dim, h, w, fmaps.device)
        query_pos = sample_points(pos_embed.expand(b, -1, -1, -1), query).reshape(b * n, 1, -1)
        ref_token = torch.cat((self.query_ref_token[:, :1], self.query_ref_token[:, 1:].expand(-1, s - 1, -1)), dim=1)
        coord_preds = []
        for _ in range(iters):
            coords = coords.detach()
            corr = self._correlations(pyramid, track_feats, coords)
            corr = self.corr_mlp(corr.permute(0, 2, 1, 3).reshape(b * n, s, -1))
            flows = (coords - coords[:, :1]).permute(0, 2, 1, 3).reshape(b * n, s, 2)
            flow_emb = torch.cat(
                (flow_embedding(flows, self.latent_dim // 2), flows / self.max_scale, flows / self.max_scale), dim=-1
            )
            feats = track_feats.permute(0, 2, 1, 3).reshape(b * n, s, c)
            x = torch.cat((flow_emb, corr, feats), dim=-1) + query_pos
            x = x + ref_token.to(x.dtype)
            delta = self.updateformer(x.reshape(b, n, s, -1)).reshape(b * n * s, -1)
            feats = self.ffeat_updater(self.ffeat_norm(delta[:, 2:])) + feats.reshape(b * n * s, c)
            track_feats = feats.reshape(b, n, s, c).permute(0, 2, 1, 3)
            coords = coords + delta[:, :2].reshape(b, n, s, 2).permute(0, 2, 1, 3)
            coords = torch.cat((query[:, None], coords[:, 1:]), dim=1)  # frame 0 stays the query
            coord_preds.append(coords * self.stride)
        flat = track_feats.reshape(b * s * n, c)
        vis = torch.sigmoid(self.vis_predictor(flat).reshape(b, s, n))
        conf = torch.sigmoid(self.conf_predictor(flat).reshape(b, s, n))
        return coord_preds, vis, conf


class TrackHead(nn.Module):
    """``feature_extractor`` (DPT features [B, S, C, H/2, W/2]) + ``tracker``."""

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        features: int = 128,
        iters: int = 4,
        stride: int = 2,
        corr_levels: int = 7,
        corr_radius: int = 4,
        hidden_size: int = 384,
        depth: int = 6,
        num_heads: int = 8,
        num_virtual: int = 64,
        intermediate_layer_idx: tuple[int, ...] = (4, 11, 17, 23),
        out_channels: tuple[int, ...] = (256, 512, 1024, 1024),
    ) -> None:
        super().__init__()
        self.iters = iters
        self.feature_extractor = DPTHead(
            dim_in,
            patch_size=patch_size,
            features=features,
            out_channels=out_channels,
            intermediate_layer_idx=intermediate_layer_idx,
            pos_embed=False,
            feature_only=True,
            down_ratio=2,
        )
        self.tracker = BaseTrackerPredictor(
            stride, corr_levels, corr_radius, features, hidden_size, depth, num_heads, num_virtual
        )

    def forward(
        self,
        tokens_list,
        image_hw: tuple[int, int],
        patch_start_idx: int,
        query_points: Tensor,
        iters: int | None = None,
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        fmaps = self.feature_extractor(tokens_list, image_hw, patch_start_idx)
        return self.tracker(query_points, fmaps, iters or self.iters)
