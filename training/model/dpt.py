"""VGGT's DPT head (depth, point map, track features, and the base of the semantic head).

Layout (upstream names): ``norm`` (shared LayerNorm on the patch tokens of 4 AA layers) -> ``projects[i]`` 1x1 conv
-> + UV sin-cos embedding (x0.1) -> ``resize_layers`` (ConvT x4, ConvT x2, Identity, conv stride 2) ->
``scratch.layer{1..4}_rn`` 3x3 (no bias) -> ``scratch.refinenet4..1`` fusion (bilinear, align_corners=True) ->
``scratch.output_conv1`` -> bilinear to the output size -> + UV embedding -> ``scratch.output_conv2``
(3x3, ReLU, 1x1) -> activation.

Upstream quirk kept on purpose: the residual conv unit uses ``ReLU(inplace=True)`` on its input, so its skip
connection adds ``relu(x)``, not ``x``: ``out = relu(x) + conv2(relu(conv1(relu(x))))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DPTHead", "ResidualConvUnit", "FeatureFusionBlock", "uv_sincos_embedding", "activate_head"]

_INT_MAX_ELEMENTS = 1610612736  # upstream chunks interpolation above this output size (int32 indexing limits)


def interpolate(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, align_corners=True resize of [N, C, h, w] to ``size``, chunked along N for huge outputs."""
    n_out = size[0] * size[1] * x.shape[0] * x.shape[1]
    if n_out > _INT_MAX_ELEMENTS:
        chunks = x.chunk(n_out // _INT_MAX_ELEMENTS + 1, dim=0)
        return torch.cat([F.interpolate(c, size=size, mode="bilinear", align_corners=True) for c in chunks])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def uv_sincos_embedding(height: int, width: int, channels: int, aspect_ratio: float, dtype, device) -> Tensor:
    """[channels, height, width] sin-cos embedding of a centred UV grid (upstream ``create_uv_grid`` +
    ``position_grid_to_embed``, omega_0 = 100).

    The grid spans ``±(a/d)(w-1)/w`` in u and ``±(1/d)(h-1)/h`` in v with ``a`` the aspect ratio W/H of the image
    and ``d = sqrt(a²+1)``. Channels: [sin(u ω), cos(u ω), sin(v ω), cos(v ω)], ``ω_k = 100^(-k / (channels/4))``.
    """
    diag = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    v = torch.linspace(
        -span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype, device=device
    )
    quarter = channels // 4
    omega = 1.0 / 100.0 ** (torch.arange(quarter, dtype=torch.float64, device=device) / quarter)

    def embed(pos: Tensor) -> Tensor:  # [n] -> [n, channels/2]
        angles = pos.double()[:, None] * omega[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1).float()

    eu = embed(u)[None, :, :].expand(height, width, -1)
    ev = embed(v)[:, None, :].expand(height, width, -1)
    return torch.cat((eu, ev), dim=-1).permute(2, 0, 1)


def add_uv_embedding(x: Tensor, image_hw: tuple[int, int], ratio: float = 0.1) -> Tensor:
    """x [N, C, h, w] + ratio * UV embedding at x's resolution (aspect ratio of the image).

    The embedding's grid is built in fp32 whatever x's dtype (in bf16, 518 pixel coordinates in [-0.7, 0.7]
    would collapse onto ~180 values), then added in x's dtype; for fp32 x this is upstream's computation."""
    emb = uv_sincos_embedding(x.shape[-2], x.shape[-1], x.shape[1], image_hw[1] / image_hw[0], torch.float32, x.device)
    return x + (emb * ratio).to(x.dtype)[None]


class ResidualConvUnit(nn.Module):
    """``relu(x) + conv2(relu(conv1(relu(x))))`` (see the module docstring for the relu(x) skip)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FeatureFusionBlock(nn.Module):
    """``out_conv(resize(rcu2(x + rcu1(skip))))`` (refinenet4 has no skip and no ``resConfUnit1``)."""

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        size = size if size is not None else (int(x.shape[-2] * 2), int(x.shape[-1] * 2))
        return self.out_conv(interpolate(x, size))


def activate_head(out: Tensor, activation: str, conf_activation: str) -> tuple[Tensor, Tensor]:
    """[N, C, H, W] -> (values [N, H, W, C-1], confidence [N, H, W]) with upstream's activations."""
    fmap = out.permute(0, 2, 3, 1)
    values, conf = fmap[..., :-1], fmap[..., -1]
    if activation == "exp":
        values = torch.exp(values)
    elif activation == "inv_log":
        values = torch.sign(values) * torch.expm1(values.abs())
    elif activation != "linear":
        raise ValueError(f"unknown activation {activation!r}")
    if conf_activation == "expp1":
        conf = 1 + conf.exp()
    elif conf_activation == "expp0":
        conf = conf.exp()
    elif conf_activation == "sigmoid":
        conf = torch.sigmoid(conf)
    elif conf_activation != "linear":
        raise ValueError(f"unknown conf_activation {conf_activation!r}")
    return values, conf


class DPTHead(nn.Module):
    """Upstream ``DPTHead`` (same parameter names and numerics)."""

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        output_dim: int = 4,
        activation: str = "inv_log",
        conf_activation: str = "expp1",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        pos_embed: bool = True,
        feature_only: bool = False,
        down_ratio: int = 1,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.activation = activation
        self.conf_activation = conf_activation
        self.pos_embed = pos_embed
        self.feature_only = feature_only
        self.down_ratio = down_ratio
        self.intermediate_layer_idx = tuple(intermediate_layer_idx)
        oc = list(out_channels)
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.scratch = nn.Module()
        for i, c in enumerate(oc, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(c, features, 3, padding=1, bias=False))
        self.scratch.refinenet1 = FeatureFusionBlock(features)
        self.scratch.refinenet2 = FeatureFusionBlock(features)
        self.scratch.refinenet3 = FeatureFusionBlock(features)
        self.scratch.refinenet4 = FeatureFusionBlock(features, has_residual=False)
        if feature_only:
            self.scratch.output_conv1 = nn.Conv2d(features, features, 3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, output_dim, 1)
            )

    def decode(self, layer_tokens: Sequence[Tensor], image_hw: tuple[int, int]) -> Tensor:
        """Four layers' patch tokens, each [N, h*w, dim_in] -> fused map [N, C, H/down, W/down] before
        ``output_conv2`` (with the final UV embedding when ``pos_embed``)."""
        height, width = image_hw
        h, w = height // self.patch_size, width // self.patch_size
        maps = []
        for i, tokens in enumerate(layer_tokens):
            x = self.norm(tokens)
            x = x.permute(0, 2, 1).reshape(x.shape[0], x.shape[-1], h, w)
            x = self.projects[i](x)
            if self.pos_embed:
                x = add_uv_embedding(x, image_hw)
            maps.append(self.resize_layers[i](x))
        s = self.scratch
        l1, l2, l3, l4 = s.layer1_rn(maps[0]), s.layer2_rn(maps[1]), s.layer3_rn(maps[2]), s.layer4_rn(maps[3])
        out = s.refinenet4(l4, size=tuple(l3.shape[-2:]))
        out = s.refinenet3(out, l3, size=tuple(l2.shape[-2:]))
        out = s.refinenet2(out, l2, size=tuple(l1.shape[-2:]))
        out = s.refinenet1(out, l1)
        out = s.output_conv1(out)
        out = interpolate(out, (int(h * self.patch_size / self.down_ratio), int(w * self.patch_size / self.down_ratio)))
        if self.pos_embed:
            out = add_uv_embedding(out, image_hw)
        return out

    def select_tokens(self, tokens_list: Sequence[Tensor | None], patch_start_idx: int) -> list[Tensor]:
        """Pick this head's layers from the aggregator outputs [B, S, P, C] -> [B*S, h*w, C] patch tokens."""
        selected = []
        for i in self.intermediate_layer_idx:
            t = tokens_list[i]
            if t is None:
                raise ValueError(f"DPT head needs aggregator layer {i}, which was not kept")
            selected.append(t[:, :, patch_start_idx:].reshape(-1, t.shape[2] - patch_start_idx, t.shape[-1]))
        return selected

    def forward(
        self, tokens_list: Sequence[Tensor | None], image_hw: tuple[int, int], patch_start_idx: int
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Aggregator outputs (indexable by layer, each [B, S, P, C]) ->
        features [B, S, C, H/down, W/down] if ``feature_only``, else (values [B, S, H, W, out-1], conf [B, S, H, W])."""
        ref = tokens_list[self.intermediate_layer_idx[0]]
        b, s = ref.shape[:2]
        out = self.decode(self.select_tokens(tokens_list, patch_start_idx), image_hw)
        if self.feature_only:
            return out.view(b, s, *out.shape[1:])
        values, conf = activate_head(self.scratch.output_conv2(out), self.activation, self.conf_activation)
        return values.view(b, s, *values.shape[1:]), conf.view(b, s, *conf.shape[1:])
