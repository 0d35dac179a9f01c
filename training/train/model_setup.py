"""The trainer's bindings to ``training.model``: build the semantic matcher from a :class:`ModelSpec`, name its
parameter groups, check initial weights before training, and build the zero-shot baseline on its backbone.
:func:`training.train.hooks.default_hooks` bundles these functions for the trainer (this module does not import
``hooks``, so there is no import cycle).

``model.preset`` names a :class:`VGGTConfig` constructor (``tiny``, ``small``, ``vggt_1b``) and ``model.config``
overrides its fields; ``model.matcher`` holds :class:`MatcherConfig` fields (``grid_mode``, ``symmetric``,
``head_init``, ``head_dtype``, ...); ``model.split_index`` is the first aggregator layer of the semantic branch.
``model.compile`` and ``model.channels_last`` are applied to the built model (``training.model.speed``).

Parameter groups for a stage's ``trainable`` list:
  ``@default`` / ``@semantic``: the semantic branch and head (the paper's fine-tuned part);
  ``@backbone``: the frozen trunk the matcher's forward uses (DINOv2 patch embed, tokens, AA layers below the split);
  ``@all``: both (training from scratch). VGGT's geometry heads and its own copies of the layers above the split
  are never used by the matcher's forward, so they are in no group (DDP needs every trainable parameter used).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.train.manifest import ModelSpec

__all__ = ["matcher_config", "build", "groups", "config_dict", "baseline", "check", "step_flops"]

_PRESETS = ("tiny", "small", "vggt_1b")


def matcher_config(spec: ModelSpec):
    """The :class:`MatcherConfig` a spec describes; ValueError naming the bad key."""
    from training.model import MatcherConfig, VGGTConfig

    if spec.preset not in _PRESETS:
        raise ValueError(f"model.preset: {spec.preset!r} is not one of {', '.join(_PRESETS)}")
    vfields = {f.name for f in dataclasses.fields(VGGTConfig)}
    for key in spec.config:
        if key not in vfields:
            raise ValueError(f"model.config.{key}: not a VGGTConfig field")
    mfields = {f.name for f in dataclasses.fields(MatcherConfig)} - {"vggt", "split_index"}
    for key in spec.matcher:
        if key not in mfields:
            raise ValueError(f"model.matcher.{key}: not a MatcherConfig field (allowed: {', '.join(sorted(mfields))})")
    vcfg = getattr(VGGTConfig, spec.preset)(**{**spec.config, "checkpoint_blocks": spec.activation_checkpointing})
    extra: dict[str, Any] = dict(spec.matcher)
    if spec.split_index is not None:
        extra["split_index"] = spec.split_index
    elif "split_index" not in extra:
        extra["split_index"] = max(1, vcfg.depth // 2)
    return MatcherConfig(vggt=vcfg, **extra)


def build(spec: ModelSpec) -> nn.Module:
    """The matcher with its initial weights (random, the official VGGT checkpoint, or a saved matcher) and the
    spec's speed options (regional compilation, channels-last head)."""
    from training.model import SemanticMatcher
    from training.model.checkpoint import load_state_dict_checked
    from training.model.speed import apply_speed_options

    model = SemanticMatcher(matcher_config(spec))
    if spec.weights is not None:
        model.load_vggt_weights(spec.weights, strict=True)
    if spec.init is not None:
        from safetensors.torch import load_file

        path = Path(spec.init)
        weights = path / "model.safetensors" if path.is_dir() else path
        load_state_dict_checked(model, load_file(str(weights)), strict=True, source=str(weights))
    return apply_speed_options(model, compile=spec.compile, channels_last=spec.channels_last)


def _used_trunk_names(model: nn.Module) -> list[str]:
    split = model.cfg.split_index
    names = []
    for name, _ in model.named_parameters():
        if not name.startswith("vggt.aggregator."):
            continue
        rest = name[len("vggt.aggregator.") :]
        if rest.startswith(("frame_blocks.", "global_blocks.")):
            if int(rest.split(".")[1]) < split:
                names.append(name)
        elif not rest.endswith("mask_token"):  # DINOv2's mask token is unused at inference and in training here
            names.append(name)
    return names


def groups(model: nn.Module) -> dict[str, list[str]]:
    semantic = [n for n, _ in model.named_parameters() if n.startswith(("semantic_branch.", "semantic_head."))]
    trunk = _used_trunk_names(model)
    return {"default": semantic, "semantic": semantic, "backbone": trunk, "all": semantic + trunk}


def config_dict(model: nn.Module) -> dict[str, Any]:
    """``model_config.json`` in ``training.model.io``'s format, so checkpoints load with ``load_matcher``."""
    from training.model.io import _FORMAT, _VERSION, _kind_of

    return {"format": _FORMAT, "version": _VERSION, "kind": _kind_of(model), "config": model.cfg.to_dict()}


def baseline(model: nn.Module) -> nn.Module:
    """Zero-shot nearest-neighbour matching on the matcher's own (frozen) backbone features."""
    from training.model import NearestNeighbourMatcher, NNBaselineConfig

    cfg = NNBaselineConfig(vggt=model.cfg.vggt, autocast_dtype=model.cfg.autocast_dtype)
    device = next(model.parameters()).device
    base = NearestNeighbourMatcher(cfg).to(device)
    ours = {k: v for k, v in model.vggt.state_dict().items() if k.startswith("aggregator.")}
    base.vggt.load_state_dict(ours, strict=False)
    missing = [k for k in base.vggt.state_dict() if k.startswith("aggregator.") and k not in ours]
    if missing:
        raise RuntimeError(f"baseline backbone lacks {len(missing)} aggregator tensors, e.g. {missing[:3]}")
    return base


def _shape_only_state(path: Path) -> dict[str, torch.Tensor]:
    """Keys and shapes of a checkpoint without reading its tensors (meta tensors; safetensors header only)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}  # noqa: SIM118
    from training.model.checkpoint import read_state_dict

    return read_state_dict(path)  # memory-mapped


def check(spec: ModelSpec) -> list[str]:
    """Problems with the spec's config and weight files, found on a model built without memory."""
    from training.model import SemanticMatcher
    from training.model.checkpoint import CheckpointMismatchError, load_state_dict_checked

    try:
        cfg = matcher_config(spec)
    except (TypeError, ValueError) as e:
        return [str(e)]
    problems = []
    with torch.device("meta"):
        model = SemanticMatcher(cfg)
    if spec.weights is not None:
        skip = ("track_head.",) + (() if cfg.geometry_heads else ("camera_head.", "depth_head.", "point_head."))
        try:
            state = _shape_only_state(Path(spec.weights))
            load_state_dict_checked(
                model.vggt, state, strict=True, skip_prefixes=skip, source=spec.weights, assign=True
            )
        except (CheckpointMismatchError, RuntimeError, OSError) as e:
            problems.append(f"weights: {spec.weights} does not fit model.preset={spec.preset} ({e})")
    if spec.init is not None:
        path = Path(spec.init)
        weights = path / "model.safetensors" if path.is_dir() else path
        try:
            load_state_dict_checked(model, _shape_only_state(weights), strict=True, source=str(weights), assign=True)
        except (CheckpointMismatchError, RuntimeError, OSError) as e:
            problems.append(f"init: {spec.init} does not fit the configured matcher ({e})")
    return problems


_FLOPS_CACHE: dict[tuple, int] = {}


def step_flops(model: nn.Module, image_hw: tuple[int, int], pairs: int) -> int:
    """Model FLOPs of one training step on this rank (``training.model.flops.matcher_flops``; counted once per
    configuration, resolution, batch and trainable set)."""
    from training.model.flops import matcher_flops

    trainable = tuple(n for n, p in model.named_parameters() if p.requires_grad)
    key = (model.cfg, tuple(image_hw), pairs, trainable)
    if key not in _FLOPS_CACHE:
        _FLOPS_CACHE[key] = matcher_flops(model, image_hw, pairs)
    return _FLOPS_CACHE[key]
