"""Saving and loading matchers: ``model.safetensors`` + ``model_config.json`` in one directory.

``model_config.json``: ``{"format": "semmatch-matcher", "version": 1, "kind": "semantic" | "nn_baseline",
"config": {...}, "include_frozen": bool, "vggt_checkpoint": path | null}``.

By default the state dict holds every parameter (frozen backbone included, ~6 GB for VGGT-1B), so a directory is
self-contained. ``include_frozen=False`` stores only the trainable parameters (~1.3 GB) and records the official
VGGT checkpoint the frozen backbone was loaded from; :func:`load_matcher` rebuilds the backbone from it. Loading
is strict either way and reproduces outputs bit-exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from training.model.baseline import NearestNeighbourMatcher, NNBaselineConfig
from training.model.checkpoint import CheckpointMismatchError, load_state_dict_checked
from training.model.matcher import MatcherConfig, SemanticMatcher

__all__ = ["save_matcher", "load_matcher", "build_matcher", "WEIGHTS_NAME", "CONFIG_NAME"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "model_config.json"
_FORMAT, _VERSION = "semmatch-matcher", 1
_KINDS = {"semantic": (SemanticMatcher, MatcherConfig), "nn_baseline": (NearestNeighbourMatcher, NNBaselineConfig)}


def _kind_of(model: nn.Module) -> str:
    for kind, (cls, _) in _KINDS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"not a matcher: {type(model).__name__}")


def build_matcher(config: MatcherConfig | NNBaselineConfig) -> nn.Module:
    """The matcher a config describes (random init; see ``load_vggt_weights`` for the pretrained backbone)."""
    for cls, cfg_cls in _KINDS.values():
        if isinstance(config, cfg_cls):
            return cls(config)
    raise TypeError(f"not a matcher config: {type(config).__name__}")


def save_matcher(model: nn.Module, directory: str | Path, include_frozen: bool = True) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/model_config.json``; returns the directory.

    Args:
        include_frozen: also store the frozen backbone. When False, only parameters with ``requires_grad`` are
            stored and the model must have been built from a VGGT checkpoint (``vggt_source``), which loading needs.
    """
    from safetensors.torch import save_file

    model = getattr(model, "module", model)  # DDP / compiled wrappers
    model = getattr(model, "_orig_mod", model)
    source = getattr(model, "vggt_source", None)
    if not include_frozen and source is None:
        raise ValueError("include_frozen=False needs a backbone loaded from a VGGT checkpoint (vggt_source is None)")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = {
        k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if include_frozen or k in trainable
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "kind": _kind_of(model),
        "config": model.cfg.to_dict(),
        "include_frozen": include_frozen,
        "vggt_checkpoint": source,
    }
    tmp = directory / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": _FORMAT, "kind": meta["kind"]})
    tmp.replace(directory / WEIGHTS_NAME)
    (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_matcher(
    path: str | Path, map_location: str | torch.device = "cpu", vggt_checkpoint: str | Path | None = None
) -> nn.Module:
    """Rebuild a matcher saved by :func:`save_matcher` from its directory (or its ``model.safetensors``).

    Args:
        vggt_checkpoint: for a directory saved with ``include_frozen=False``, the VGGT checkpoint to rebuild the
            backbone from (default: the path recorded at save time).
    Returns:
        The model in eval mode on ``map_location``, frozen parameters still frozen.
    """
    from safetensors.torch import load_file

    path = Path(path)
    directory = path if path.is_dir() else path.parent
    weights, config_file = directory / WEIGHTS_NAME, directory / CONFIG_NAME
    for f in (weights, config_file):
        if not f.is_file():
            raise FileNotFoundError(f"matcher directory {directory} lacks {f.name}")
    meta = json.loads(config_file.read_text())
    if meta.get("format") != _FORMAT or meta.get("kind") not in _KINDS:
        raise CheckpointMismatchError(f"{config_file}: not a semmatch matcher config (format/kind)")
    cls, cfg_cls = _KINDS[meta["kind"]]
    cfg = cfg_cls.from_dict(meta["config"])
    state = load_file(str(weights), device=str(map_location))
    if meta.get("include_frozen", True):
        with torch.device("meta"):
            model = cls(cfg)
        load_state_dict_checked(model, state, strict=True, source=str(weights), assign=True)
        model.vggt.aggregator.reset_buffers()
        return model.to(map_location).eval()

    backbone = vggt_checkpoint or meta.get("vggt_checkpoint")
    if backbone is None:
        raise CheckpointMismatchError(f"{config_file}: saved without the frozen backbone and no VGGT checkpoint given")
    if cls is SemanticMatcher:
        model = SemanticMatcher.from_vggt_checkpoint(cfg, backbone)
    else:
        model = cls(cfg)
        model.load_vggt_weights(backbone)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = [k for k in trainable if k not in state]
    unexpected = [k for k in state if k not in trainable]
    misshaped = [
        f"{k} {tuple(v.shape)} vs {tuple(trainable[k].shape)}"
        for k, v in state.items()
        if k in trainable and v.shape != trainable[k].shape
    ]
    if missing or unexpected or misshaped:
        raise CheckpointMismatchError(
            f"{weights}: trainable parameters: {len(missing)} missing {missing[:5]}, "
            f"{len(unexpected)} unexpected {unexpected[:5]}, {len(misshaped)} with wrong shape {misshaped[:5]}"
        )
    model.load_state_dict(state, strict=False)
    return model.to(map_location).eval()
