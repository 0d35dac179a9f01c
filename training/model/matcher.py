"""The semantic matcher (the paper's design on top of VGGT).

* AA layers ``[0, split_index)`` and the DINOv2 patch embed are frozen and shared with the geometry branch.
* AA layers ``[split_index, depth)`` are duplicated into a trainable ``semantic_branch`` (frame + global blocks,
  initialised from the pretrained ones). The frozen originals remain, so the geometry heads still see the
  pretrained features (``return_geometry=True``).
* A DPT ``semantic_head`` (initialised from the pretrained depth head, except its last 1x1 conv, which is zeroed)
  reads 4 layers (frozen ones below the split, semantic ones above) and predicts per pixel, at input resolution,
  3 channels: a 2-D grid term and a confidence logit.

Grid parameterisation (``grid_mode``):
  ``"offset"`` (default): ``grid_norm = identity_norm + raw``. With the zeroed last conv the untrained model
  predicts the identity warp (a sensible prior for centred objects), the output is linear in the network (no
  saturation, so points outside the image — status OUTSIDE — can be expressed and regressed), and the scale is
  normalised units (1 = half the image), which keeps the head's outputs O(1) at any resolution.
  ``"absolute"``: ``grid_norm = tanh(raw)``, bounded to the image (VGGT-point-head style); starts at the centre.
  ``"correlation"``: coarse-to-fine matching (:mod:`training.model.correlation`). A ``semantic_head.match`` module
  projects the patch tokens of the deepest layer the head reads to L2-normalised descriptors (``desc_dim``) for
  both frames; one global correlation matrix at patch resolution ``corr_logit = <desc0_i, desc1_j> / T``
  (``T`` learnable, initially ``corr_temperature``) gives, by a softmax over the other frame and a soft-argmax
  over its patch centres, the coarse grid in both directions (0 -> 1 over the rows, 1 -> 0 over the columns of
  the same matrix; ``corr_window`` > 0 restricts the soft-argmax to a window around the best patch). The fine
  stage upsamples the coarse displacement bilinearly to every pixel and adds a residual in ``grid_sample``
  units: the DPT head's own 2 grid channels plus a small refiner that sees the frame's DPT features, the other
  frame's features sampled at the coarse match and the match's peak probability; the confidence logit is the
  sum of the DPT head's and the refiner's. Both last convs start at zero, so the untrained fine stage is exactly
  the coarse grid (with confidence 0.5). At 518² the correlation is 1369 x 1369 per pair (7.5 MB in fp32).
  ``corr_stride`` below the patch size correlates on a finer grid (e.g. 16 x 16 cells of 7 px at 112 px): the
  token descriptors are upsampled bilinearly and the DPT features, average-pooled per cell and projected by a
  zero-initialised 1x1 conv, are added before normalising, so an untrained fine grid matches like the patches.

Pair order: frame 0 is VGGT's reference frame (its own camera/register tokens). With ``symmetric=True`` the pair
is run as (A, B) and (B, A) in one batch and each direction is read from the frame-0 prediction of its order;
the DINOv2 patch tokens are computed once and shared by both orders. With ``symmetric=False`` one pass predicts
both directions (frame 0 -> 1 from frame 0, 1 -> 0 from frame 1).

Output (docs/interfaces.md §5): ``grid`` [B, 2, H, W, 2] px (``grid[:, 0]``: frame 0 -> (x, y) in frame 1),
``grid_norm`` (same in grid_sample units), ``conf`` [B, 2, H, W] in (0, 1), ``conf_logit``; with
``return_geometry=True`` also ``geometry`` (VGGT's outputs for the (A, B) order). ``grid_mode="correlation"``
adds ``coarse_grid`` [B, 2, h, w, 2] px (patch (i, j) of frame d, centred at pixel (14 j + 6.5, 14 i + 6.5), ->
(x, y) in frame 1 - d), ``corr_logit`` [B, h*w, h*w] fp32 (frame-0 positions x frame-1 positions, row-major; a
softmax over the last axis is the 0 -> 1 match distribution, over the middle axis the 1 -> 0 one) and ``desc``
[B, 2, h, w, desc_dim] (the unit descriptors), so a loss can supervise the coarse stage directly.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from training.geometry import norm_to_px, pixel_grid, px_to_norm
from training.model.checkpoint import LoadReport, load_state_dict_checked, read_state_dict
from training.model.correlation import CorrelationHead, coarse_from_logits, upsample_coarse_grid
from training.model.dpt import DPTHead, activate_head
from training.model.matcher_config import MatcherConfig
from training.model.precision import autocast_ctx, run_fp32
from training.model.vggt import VGGT

__all__ = ["MatcherConfig", "SemanticMatcher", "param_groups"]


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(("gamma", "_token", "_tokens", "pos_embed"))


def param_groups(model: nn.Module, weight_decay: float, lr: float | None = None) -> list[dict[str, Any]]:
    """AdamW groups over the *trainable* parameters only: decayed weights, and undecayed norms/biases/LayerScale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if _no_decay(name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if lr is not None:
        for g in groups:
            g["lr"] = lr
    return [g for g in groups if g["params"]]


class SemanticMatcher(nn.Module):
    """Dense bidirectional semantic matcher: ``model(images [B, 2, 3, H, W] in [0, 1]) -> dict``.

    Submodules: ``vggt`` (the full, frozen VGGT with upstream names; the track head is not built),
    ``semantic_branch.{frame,global}_blocks.<layer>`` (trainable copies, keyed by their AA layer index) and
    ``semantic_head`` (trainable DPT; with ``grid_mode="correlation"`` it also holds ``semantic_head.match``, the
    descriptor projection, temperature and refiner, so parameter groups that select ``semantic_head.*`` train it).
    """

    def __init__(self, cfg: MatcherConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vggt_source: str | None = None  # checkpoint the frozen backbone came from, if any
        vcfg = dataclasses.replace(
            cfg.vggt,
            enable_track=False,
            enable_camera=cfg.geometry_heads,
            enable_depth=cfg.geometry_heads,
            enable_point=cfg.geometry_heads,
        )
        self.vggt = VGGT(vcfg)
        agg = self.vggt.aggregator
        self.branch_layers = tuple(range(cfg.split_index, vcfg.depth))
        self.semantic_branch = nn.Module()
        self.semantic_branch.frame_blocks = nn.ModuleDict(
            {str(i): copy.deepcopy(agg.frame_blocks[i]) for i in self.branch_layers}
        )
        self.semantic_branch.global_blocks = nn.ModuleDict(
            {str(i): copy.deepcopy(agg.global_blocks[i]) for i in self.branch_layers}
        )
        self.semantic_head = DPTHead(
            2 * vcfg.embed_dim,
            patch_size=vcfg.patch_size,
            output_dim=3,
            activation="linear",
            conf_activation="linear",
            features=vcfg.dpt_features,
            out_channels=vcfg.dpt_out_channels,
            intermediate_layer_idx=cfg.layers,
        )
        if cfg.grid_mode == "correlation":
            self.semantic_head.match = CorrelationHead(
                token_dim=2 * vcfg.embed_dim,
                feature_dim=vcfg.dpt_features // 2,
                desc_dim=cfg.desc_dim,
                temperature=cfg.corr_temperature,
                refine_channels=cfg.refine_channels,
                fine_desc=cfg.corr_cell_px != vcfg.patch_size,
            )
        self._zero_last_conv()
        self.vggt.requires_grad_(False)
        if cfg.head_init != "random" and cfg.geometry_heads:
            self.init_semantic_from_vggt()
        self.compiled_head = False  # training.model.speed.enable_compile: run the head through torch.compile

    # ---------------------------------------------------------------- weights
    def _zero_last_conv(self) -> None:
        last = self.semantic_head.scratch.output_conv2[2]
        if not last.weight.is_meta:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if self.cfg.grid_mode == "correlation":
            self.semantic_head.match.zero_last()

    @torch.no_grad()
    def init_semantic_from_vggt(self) -> None:
        """Copy the pretrained AA blocks into the semantic branch and the pretrained DPT head (``head_init``) into
        the semantic head wherever names and shapes agree; the head's last 1x1 conv is zeroed (identity warp,
        confidence 0.5 at start)."""
        agg = self.vggt.aggregator
        for i in self.branch_layers:
            self.semantic_branch.frame_blocks[str(i)].load_state_dict(agg.frame_blocks[i].state_dict())
            self.semantic_branch.global_blocks[str(i)].load_state_dict(agg.global_blocks[i].state_dict())
        source = getattr(self.vggt, self.cfg.head_init, None) if self.cfg.head_init != "random" else None
        if source is not None:
            self._load_head_from(source.state_dict())
        self._zero_last_conv()

    @torch.no_grad()
    def _load_head_from(self, head_state: dict[str, Tensor]) -> None:
        target = self.semantic_head.state_dict()
        for k, v in head_state.items():
            if k in target and target[k].shape == v.shape and not k.startswith("scratch.output_conv2.2."):
                target[k].copy_(v)

    def _skip_prefixes(self) -> tuple[str, ...]:
        return ("track_head.",) + (() if self.cfg.geometry_heads else ("camera_head.", "depth_head.", "point_head."))

    def _head_state_from_checkpoint(self, state: dict[str, Tensor]) -> dict[str, Tensor] | None:
        if self.cfg.head_init == "random" or getattr(self.vggt, self.cfg.head_init, None) is not None:
            return None  # random, or taken from the kept geometry head by init_semantic_from_vggt
        prefix = f"{self.cfg.head_init}."
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

    def load_vggt_weights(self, path: str | Path, strict: bool = True) -> LoadReport:
        """Load the official VGGT checkpoint into ``vggt`` (track-head keys and, without geometry heads, the
        geometry-head keys are skipped and reported), then re-initialise the semantic branch and head from it."""
        state = read_state_dict(path)
        report = load_state_dict_checked(
            self.vggt, state, strict, skip_prefixes=self._skip_prefixes(), source=str(path)
        )
        head_state = self._head_state_from_checkpoint(state)
        if head_state is not None:
            self._load_head_from(head_state)
        self.init_semantic_from_vggt()
        self.vggt.requires_grad_(False)
        self.vggt_source = str(Path(path).resolve())
        return report

    @classmethod
    def from_vggt_checkpoint(
        cls, cfg: MatcherConfig, path: str | Path, device: str | torch.device = "cpu"
    ) -> SemanticMatcher:
        """Build the matcher around the official checkpoint without a random init of the 1.2B backbone.

        The backbone tensors are assigned straight from the (memory-mapped) checkpoint, strictly; the semantic
        branch and head are then copied from them. Equivalent to ``SemanticMatcher(cfg)`` followed by
        :meth:`load_vggt_weights`, but faster and with one copy of the weights in memory.
        """
        with torch.device("meta"):
            model = cls(cfg)
        state = read_state_dict(path)
        load_state_dict_checked(
            model.vggt, state, strict=True, skip_prefixes=model._skip_prefixes(), source=str(path), assign=True
        )
        model.vggt.aggregator.reset_buffers()
        model.vggt.aggregator.patch_embed.mask_token.requires_grad_(False)
        for module in (model.semantic_branch, model.semantic_head):
            module.to_empty(device="cpu")
        for m in model.semantic_head.modules():  # every parameter is defined even where no pretrained one fits
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.LayerNorm)):
                m.reset_parameters()
        if cfg.grid_mode == "correlation":
            model.semantic_head.match.reset_parameters()  # its Linear and temperature too
        head_state = model._head_state_from_checkpoint(state)
        if head_state is not None:
            model._load_head_from(head_state)
        model.init_semantic_from_vggt()
        model.vggt.requires_grad_(False)
        model.vggt_source = str(Path(path).resolve())
        return model.to(device)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def param_groups(self, weight_decay: float = 0.05, lr: float | None = None) -> list[dict[str, Any]]:
        """Optimiser groups over trainable parameters only (see :func:`param_groups`)."""
        return param_groups(self, weight_decay, lr)

    def train(self, mode: bool = True) -> SemanticMatcher:
        super().train(mode)
        self.vggt.eval()  # frozen: no dropout/BN anyway; keeps the frozen trunk out of activation checkpointing
        return self

    # ---------------------------------------------------------------- forward
    def _autocast(self, device_type: str):
        return autocast_ctx(device_type, self.cfg.autocast_dtype if device_type == "cuda" else None)

    def _head_autocast(self, device_type: str):
        """The semantic head's precision: autocast off (fp32), or bf16 autocast with ``head_dtype="bfloat16"``."""
        return autocast_ctx(device_type, "bfloat16" if self.cfg.head_dtype == "bfloat16" else None)

    def _trunk_frozen(self) -> bool:
        agg = self.vggt.aggregator
        return not any(p.requires_grad for p in agg.parameters())

    def forward(self, images: Tensor, return_geometry: bool = False) -> dict[str, Any]:
        """
        Args:
            images: [B, 2, 3, H, W] in [0, 1]; H, W multiples of the patch size (14).
            return_geometry: also run the frozen geometry branch and heads (needs ``geometry_heads=True``).
        Returns:
            grid [B, 2, H, W, 2] px, grid_norm [B, 2, H, W, 2], conf [B, 2, H, W] in (0, 1), conf_logit [B, 2, H, W]
            (index 0: frame 0 -> frame 1, index 1: frame 1 -> frame 0); ``geometry`` when asked.
        """
        if images.ndim != 5 or images.shape[1] != 2:
            raise ValueError(f"images must be [B, 2, 3, H, W], got {tuple(images.shape)}")
        if return_geometry and not self.cfg.geometry_heads:
            raise ValueError("return_geometry=True needs MatcherConfig.geometry_heads=True")
        b, _, _, height, width = images.shape
        agg = self.vggt.aggregator
        grid_hw = (height // agg.patch_size, width // agg.patch_size)
        layers = set(self.cfg.layers)
        early = [i for i in layers if i < self.cfg.split_index]
        geometry_layers = self.vggt.needed_layers(with_track=False) if return_geometry else set()

        with self._autocast(images.device.type):
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self._trunk_frozen()):
                patches = agg.embed_patches(images)  # [B, 2, N, C], order-free
                if self.cfg.symmetric:
                    patches = torch.cat((patches, patches.flip(1)), dim=0)  # orders (A, B) then (B, A)
                state = agg.build_tokens(patches, grid_hw)
                keep = set(early) | {i for i in geometry_layers if i < self.cfg.split_index}
                state, trunk_out = agg.run_layers(state, range(self.cfg.split_index), keep)
            _, sem_out = agg.run_layers(
                state,
                self.branch_layers,
                keep=layers,
                checkpoint=self.cfg.vggt.checkpoint_blocks and self.training,
                frame_blocks=self.semantic_branch.frame_blocks,
                global_blocks=self.semantic_branch.global_blocks,
            )
            geometry = None
            if return_geometry:
                with torch.no_grad():
                    geo_state = state.select(slice(0, b))
                    _, late = agg.run_layers(geo_state, self.branch_layers, keep=geometry_layers)
                    tokens = {i: t[:b] for i, t in trunk_out.items()} | late
                    tokens_list = [tokens.get(i) for i in range(agg.depth)]
                    geometry = self.vggt.run_heads(tokens_list, (height, width))

        head_tokens = {i: trunk_out[i] for i in early} | sem_out
        head = type(self)._head_outputs
        if self.compiled_head:
            from training.model.speed import compiled

            head = compiled(head)
        out = head(self, head_tokens, b, (height, width))
        if geometry is not None:
            out["geometry"] = geometry
        return out

    def _head_outputs(self, tokens: dict[int, Tensor], b: int, image_hw: tuple[int, int]) -> dict[str, Tensor]:
        """The semantic head on the aggregator outputs -> the output dict (one function: the compiled region)."""
        if self.cfg.grid_mode == "correlation":
            return self._run_correlation_head(tokens, b, image_hw)
        raw = self._run_head(tokens, b, image_hw)  # [B, 2, H, W, 3] fp32
        return self._decode(raw, *image_hw)

    def _run_head(self, tokens: dict[int, Tensor], b: int, image_hw: tuple[int, int]) -> Tensor:
        """Semantic head on the frames that carry predictions -> raw [B, 2, H, W, 3] fp32 (computed in fp32 with
        autocast off, or under bf16 autocast with ``head_dtype="bfloat16"``)."""
        psi = self.vggt.aggregator.patch_start_idx
        if self.cfg.symmetric:  # frame 0 of each order: (A, B)[0] = A -> B, (B, A)[0] = B -> A
            tokens = {i: t[:, :1] for i, t in tokens.items()}
        tokens_list = [tokens[i].float() if i in tokens else None for i in range(max(tokens) + 1)]
        head = self.semantic_head
        b2, s2 = tokens_list[head.intermediate_layer_idx[0]].shape[:2]
        with self._head_autocast(tokens_list[-1].device.type):  # DPTHead.forward, with an fp32 last layer
            feat = head.decode(head.select_tokens(tokens_list, psi), image_hw)
            values, logit = activate_head(self._head_map(feat), head.activation, head.conf_activation)
        raw = torch.cat((values, logit[..., None]), dim=-1)  # [B' S', H, W, 3] fp32
        raw = raw.view(b2, s2, *raw.shape[1:])
        if self.cfg.symmetric:
            raw = torch.stack((raw[:b, 0], raw[b:, 0]), dim=1)
        return raw

    def _head_map(self, feat: Tensor) -> Tensor:
        """``semantic_head.scratch.output_conv2`` (3x3 conv, ReLU, 1x1 conv) with the last conv in fp32."""
        conv = self.semantic_head.scratch.output_conv2
        return run_fp32(conv[2], conv[1](conv[0](feat)))

    def _decode(self, raw: Tensor, height: int, width: int) -> dict[str, Tensor]:
        if self.cfg.grid_mode == "offset":
            identity = px_to_norm(pixel_grid(height, width, device=raw.device), height, width)
            grid_norm = identity + raw[..., :2]
        else:
            grid_norm = torch.tanh(raw[..., :2])
        return self._outputs(grid_norm, raw[..., 2], height, width)

    @staticmethod
    def _outputs(grid_norm: Tensor, conf_logit: Tensor, height: int, width: int) -> dict[str, Tensor]:
        """The common outputs from a normalised grid [..., H, W, 2] and a confidence logit [..., H, W]."""
        return {
            "grid": norm_to_px(grid_norm, height, width),
            "grid_norm": grid_norm,
            "conf": torch.sigmoid(conf_logit),
            "conf_logit": conf_logit,
        }

    def _pair_frames(self, x: Tensor, b: int) -> Tensor:
        """Head outputs [B' * S', ...] -> [B, 2, ...] with index d holding frame d's prediction (see _run_head)."""
        if self.cfg.symmetric:  # rows: (A, B)[0] for the batch, then (B, A)[0]
            return x.view(2, b, *x.shape[1:]).transpose(0, 1)
        return x.view(b, 2, *x.shape[1:])

    def _run_correlation_head(self, tokens: dict[int, Tensor], b: int, image_hw: tuple[int, int]) -> dict[str, Tensor]:
        """``grid_mode="correlation"``: descriptors -> global correlation -> coarse grids -> fine residual."""
        height, width = image_hw
        patch = self.vggt.aggregator.patch_size
        h, w = height // patch, width // patch
        stride = self.cfg.corr_cell_px
        if height % stride or width % stride:
            raise ValueError(f"image {height}x{width}: sides must be multiples of corr_stride {stride}")
        hc, wc = height // stride, width // stride  # the correlation grid
        psi = self.vggt.aggregator.patch_start_idx
        if self.cfg.symmetric:
            tokens = {i: t[:, :1] for i, t in tokens.items()}
        tokens_list = [tokens[i].float() if i in tokens else None for i in range(max(tokens) + 1)]
        head, match = self.semantic_head, self.semantic_head.match
        device_type = tokens_list[-1].device.type
        with self._head_autocast(device_type):  # fp32 (autocast off) unless head_dtype="bfloat16"
            feat = head.decode(head.select_tokens(tokens_list, psi), image_hw)  # [B' S', C, H, W]
            raw = self._head_map(feat)  # [B' S', 3, H, W] fp32
        with autocast_ctx(device_type, None):  # descriptors, correlation and soft-argmax: always fp32
            last = tokens_list[max(self.cfg.layers)][:, :, psi:]  # [B', S', h w, 2 C]
            last = last.reshape(-1, h * w, last.shape[-1])
            if stride == patch:
                desc = match.describe(last)
            else:
                desc = match.describe_fine(last, (h, w), feat.float(), stride)
            desc = self._pair_frames(desc, b)  # [B, 2, hc wc, D]
            corr_logit = match.correlate(desc[:, 0], desc[:, 1])  # [B, N0, N1]
            coarse_grid, peak = coarse_from_logits(corr_logit, (hc, wc), stride, self.cfg.corr_window)
            coarse_up = upsample_coarse_grid(coarse_grid, image_hw, stride)  # [B, 2, H, W, 2] px
        with self._head_autocast(device_type):
            fine = match.refine_residual(self._pair_frames(feat, b), coarse_up, peak)  # [B, 2, 3, H, W]
        raw = self._pair_frames(raw, b).float() + fine.float()
        raw = raw.permute(0, 1, 3, 4, 2)
        grid_norm = px_to_norm(coarse_up, height, width) + raw[..., :2]
        out = self._outputs(grid_norm, raw[..., 2], height, width)
        out.update(coarse_grid=coarse_grid, corr_logit=corr_logit, desc=desc.view(b, 2, hc, wc, -1))
        return out
