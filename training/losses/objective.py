"""A stage's training objective: named loss terms with weights, built from the run manifest.

A stage lists its losses as ``{name: {weight: w, **params}}``; :class:`Objective` returns every term under
``loss_<name>`` (unweighted, for logging) plus ``objective`` (the weighted sum that is back-propagated).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from training.losses.coarse import coarse_loss
from training.losses.confidence import confidence_loss
from training.losses.cycle import cycle_loss, reconstruction_loss
from training.losses.dense import dense_epe_loss, matchability_loss
from training.losses.smoothness import smoothness_loss
from training.losses.sparse import keypoint_epe_loss

__all__ = ["LOSSES", "Objective", "loss_params"]

LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "dense_epe": dense_epe_loss,
    "matchability": matchability_loss,
    "sparse_epe": keypoint_epe_loss,
    "cycle": cycle_loss,
    "reconstruction": reconstruction_loss,
    "confidence": confidence_loss,
    "smoothness": smoothness_loss,
    "coarse": coarse_loss,
}


def loss_params(name: str) -> dict[str, Any]:
    """The tunable parameters of loss ``name`` and their defaults (everything after ``out, batch``)."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
    sig = inspect.signature(LOSSES[name])
    return {k: p.default for k, p in list(sig.parameters.items())[2:]}


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Check a loss parameter against the type of its default (floats accept ints and numeric strings)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, float):
        try:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {value!r}")
    return value


class Objective:
    """Weighted sum of named loss terms.

    Args:
        spec: ``{name: {"weight": float, **params}}``; names from :data:`LOSSES`, params from :func:`loss_params`.
        where: text naming the spec's origin, used in error messages (e.g. ``"run.yaml: stages[0].losses"``).
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], where: str = "losses"):
        if not spec:
            raise ValueError(f"{where}: a stage needs at least one loss")
        self.terms: list[tuple[str, float, dict[str, Any]]] = []
        for name, cfg in spec.items():
            if name not in LOSSES:
                raise ValueError(f"{where}.{name}: unknown loss; known: {', '.join(LOSSES)}")
            cfg = dict(cfg or {})
            weight = float(cfg.pop("weight", 1.0))
            allowed = loss_params(name)
            for key in cfg:
                if key not in allowed:
                    raise ValueError(f"{where}.{name}.{key}: unknown parameter; {name} takes {', '.join(allowed)}")
                cfg[key] = _coerce(cfg[key], allowed[key], f"{where}.{name}.{key}")
            self.terms.append((name, weight, cfg))

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.terms]

    def __call__(self, out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Evaluate every term in fp32.

        Args:
            out: the matcher's output (``grid`` [B, 2, H, W, 2] px, ``conf``, ``conf_logit`` [B, 2, H, W]).
            batch: the loader's batch dict (docs/interfaces.md §4).

        Returns:
            ``{"loss_<name>": scalar, ..., "objective": scalar}``.
        """
        out = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in out.items()}
        terms: dict[str, torch.Tensor] = {}
        total = None
        for name, weight, params in self.terms:
            value = LOSSES[name](out, batch, **params)
            terms[f"loss_{name}"] = value
            total = weight * value if total is None else total + weight * value
        terms["objective"] = total
        return terms
