"""Loading the official VGGT checkpoint (``model.pt`` or ``model.safetensors``) from a local path, strictly.

No hub access: the file must be on disk. A ``module.`` / ``model.`` prefix (DDP / wrapper checkpoints) and a
``{"model": state_dict}`` wrapper (upstream training checkpoints) are accepted. Keys of heads the config disables
are *skipped and reported* (never dropped silently); any other missing, unexpected or mis-shaped key raises
:class:`CheckpointMismatchError` naming them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from training.model.config import VGGTConfig

__all__ = ["CheckpointMismatchError", "LoadReport", "read_state_dict", "load_state_dict_checked", "load_vggt"]

log = logging.getLogger(__name__)

_PREFIXES = ("module.", "model.")
_HEADS = ("camera_head", "point_head", "depth_head", "track_head")


class CheckpointMismatchError(ValueError):
    """A state dict does not fit the model; the message names the offending keys."""


@dataclass
class LoadReport:
    """What a load did. ``skipped``: checkpoint keys deliberately not loaded (disabled heads)."""

    source: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, n: int = 5) -> str:
        def head(items: list) -> str:
            shown = ", ".join(str(x) for x in items[:n])
            return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")

        parts = [f"{self.source}: loaded {self.loaded} tensors"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing: {head(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected: {head(self.unexpected)}")
        if self.mismatched:
            shapes = [f"{k} checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            parts.append(f"{len(self.mismatched)} with wrong shape: {head(shapes)}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (disabled modules): {head(self.skipped)}")
        return "; ".join(parts)


def _strip_prefix(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in _PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a ``.pt``/``.pth``/``.bin`` (``torch.load(weights_only=True, mmap=True)``) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGGT checkpoint not found: {path} (weights are never downloaded; give a local file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointMismatchError(f"{path}: not a state dict of tensors")
    return _strip_prefix(dict(state))


def load_state_dict_checked(
    model: nn.Module,
    state_dict: dict[str, Tensor],
    strict: bool = True,
    skip_prefixes: tuple[str, ...] = (),
    source: str = "state dict",
    assign: bool = False,
) -> LoadReport:
    """Load ``state_dict`` into ``model`` after checking every key and shape.

    Args:
        skip_prefixes: checkpoint keys starting with these are reported as skipped, not loaded.
        strict: raise :class:`CheckpointMismatchError` on any missing/unexpected/mis-shaped key; when False,
            load what fits and log the rest.
        assign: pass through to ``load_state_dict`` (keeps memory-mapped / meta-built tensors without a copy).
    """
    state_dict = _strip_prefix(state_dict)
    model_state = model.state_dict()
    report = LoadReport(source=source)
    usable: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(skip_prefixes) and key not in model_state:
            report.skipped.append(key)
        elif key not in model_state:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(model_state[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(model_state[key].shape)))
        else:
            usable[key] = value
    report.missing = [k for k in model_state if k not in state_dict]
    if strict and not report.ok:
        raise CheckpointMismatchError(report.describe())
    model.load_state_dict(usable, strict=strict and report.ok, assign=assign)
    report.loaded = len(usable)
    if report.skipped or not report.ok:
        log.warning(report.describe())
    return report


def load_vggt(path: str | Path, cfg: VGGTConfig | None = None, strict: bool = True, device: str | torch.device = "cpu"):
    """Build a :class:`~training.model.vggt.VGGT` from ``cfg`` (default: VGGT-1B) and load ``path`` into it.

    The model is built on the meta device and the checkpoint's tensors are assigned (no random init, no second
    copy of the 5 GB of weights). Heads disabled in ``cfg`` have their keys skipped and reported.
    """
    from training.model.vggt import VGGT

    cfg = cfg or VGGTConfig.vggt_1b()
    state = read_state_dict(path)
    skip = tuple(f"{h}." for h in _HEADS if not getattr(cfg, f"enable_{h.split('_')[0]}"))
    if strict:
        with torch.device("meta"):
            model = VGGT(cfg)
        report = load_state_dict_checked(model, state, strict=True, skip_prefixes=skip, source=str(path), assign=True)
        model.aggregator.reset_buffers()
    else:  # keep random init for whatever the checkpoint lacks
        model = VGGT(cfg)
        report = load_state_dict_checked(model, state, strict=False, skip_prefixes=skip, source=str(path))
    model.aggregator.patch_embed.mask_token.requires_grad_(False)
    log.info("loaded VGGT: %s", report.describe())
    return model.to(device).eval()
