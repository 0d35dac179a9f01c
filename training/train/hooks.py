"""What the trainer needs from the model package, behind one small interface.

:class:`ModelHooks` bundles the callables the trainer uses to build the matcher, choose its trainable
parameters, describe it for ``model_config.json``, build the zero-shot baseline and check initial weights.
:func:`default_hooks` binds them to ``training.model``; tests may pass their own (a tiny stand-in model).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from training.train.manifest import ModelSpec

__all__ = ["ModelHooks", "select_trainable", "default_hooks"]


@dataclass
class ModelHooks:
    """Model-side operations the trainer calls.

    Attributes:
        build: ``ModelSpec -> nn.Module`` (with initial weights loaded); ``model(images [B, 2, 3, H, W])``
            returns ``grid`` [B, 2, H, W, 2] px, ``conf``, ``conf_logit`` [B, 2, H, W].
        groups: ``model -> {group: [parameter names]}``; ``@group`` entries of a stage's ``trainable`` refer to
            these; ``default`` is the model's own choice (the semantic branch and head).
        config: ``model -> dict`` written as ``model_config.json`` beside checkpoint weights.
        baseline: ``model -> nn.Module`` answering the same call (zero-shot NN on the frozen features), or None.
        check: ``ModelSpec -> list[str]`` problems with the spec's files (weights of the wrong model, missing
            files), found before any training starts.
        step_flops: ``(model, (H, W), pairs) -> int`` model FLOPs of one training step (forward + backward of the
            trainable set, as ``scripts/bench_model.py`` counts them), for the MFU in the logs; or None.
    """

    build: Callable[[ModelSpec], nn.Module]
    groups: Callable[[nn.Module], dict[str, list[str]]]
    config: Callable[[nn.Module], dict[str, Any]]
    baseline: Callable[[nn.Module], nn.Module] | None = None
    check: Callable[[ModelSpec], list[str]] | None = None
    step_flops: Callable[[nn.Module, tuple[int, int], int], int] | None = None


def select_trainable(model: nn.Module, patterns: list[str], groups: dict[str, list[str]]) -> list[str]:
    """Set ``requires_grad`` from a stage's ``trainable`` list; returns the trainable parameter names.

    Args:
        model: the unwrapped model.
        patterns: ``@group`` (a group from ``groups``) or an fnmatch glob over parameter names.
        groups: the model's named parameter groups.

    Raises:
        ValueError: an unknown group, or a pattern that matches nothing.
    """
    names = [n for n, _ in model.named_parameters()]
    chosen: set[str] = set()
    for pat in patterns:
        if pat.startswith("@"):
            if pat[1:] not in groups:
                raise ValueError(f"trainable: unknown parameter group {pat!r}; known: @{', @'.join(groups)}")
            hit = set(groups[pat[1:]])
        else:
            hit = {n for n in names if fnmatch.fnmatchcase(n, pat)}
        if not hit:
            raise ValueError(f"trainable: {pat!r} matches no parameter")
        chosen |= hit
    for n, p in model.named_parameters():
        p.requires_grad_(n in chosen)
    return sorted(chosen)


def default_hooks() -> ModelHooks:
    """Hooks bound to ``training.model`` through :mod:`training.train.model_setup` (imported here, so code that
    passes its own hooks, and the manifest code, never import the model package)."""
    from training.train import model_setup as ms

    return ModelHooks(
        build=ms.build,
        groups=ms.groups,
        config=ms.config_dict,
        baseline=ms.baseline,
        check=ms.check,
        step_flops=ms.step_flops,
    )
