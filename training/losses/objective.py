"""A stage's training objective: named loss terms with weights, built from the run manifest.

A stage lists its losses as ``{name: {weight: w, **params}}``; :class:`Objective` returns every term under
``loss_<name>`` (unweighted, for logging) plus ``objective`` (the weighted sum that is back-propagated).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import torch

from loaders.strict import ConfigError, check_value
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


def _param_types(name: str) -> dict[str, Any]:
    """The declared types of loss ``name``'s parameters (the type of the default where one is not annotated)."""
    fn = LOSSES[name]
    hints = typing.get_type_hints(fn)
    return {k: hints.get(k, type(v) if v is not None else Any) for k, v in loss_params(name).items()}


class Objective:
    """Weighted sum of named loss terms.

    Args:
        spec: ``{name: {"weight": float, **params}}``; names from :data:`LOSSES`, params from :func:`loss_params`.
        where: the spec's key path, used in error messages (e.g. ``"stages[0].losses"``).
        file: the file the spec came from (the first word of error messages), if any.

    Raises:
        ConfigError: an unknown loss or parameter, or a value of the wrong type (checked by :mod:`loaders.strict`
            against the loss function's annotations), naming ``where`` and the key.
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], where: str = "losses", file: str = ""):
        path = where
        if file:
            where = f"{file}: {where}"
        if not spec:
            raise ConfigError(f"{where}: a stage needs at least one loss")
        self.terms: list[tuple[str, float, dict[str, Any]]] = []
        for name, cfg in spec.items():
            if name not in LOSSES:
                raise ConfigError(f"{where}.{name}: unknown loss; known: {', '.join(LOSSES)}")
            cfg = dict(cfg or {})
            weight = check_value(cfg.pop("weight", 1.0), float, file, f"{path}.{name}.weight")
            types = _param_types(name)
            for key in cfg:
                if key not in types:
                    raise ConfigError(f"{where}.{name}.{key}: unknown parameter; {name} takes {', '.join(types)}")
                cfg[key] = check_value(cfg[key], types[key], file, f"{path}.{name}.{key}")
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
