"""Checks that run before any training step: every file the manifest names exists and fits.

A bad manifest must fail in seconds with a message naming the problem, not after an hour of training: missing
data folders or shards, a data manifest the loaders reject, an initial checkpoint of the wrong model, a stage
that trains an unknown parameter group, or a run folder that already holds checkpoints without ``resume``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.train.data import source_problems
from training.train.hooks import ModelHooks, select_trainable
from training.train.manifest import ConfigError, RunManifest

__all__ = ["preflight_problems", "preflight"]


def preflight_problems(m: RunManifest, hooks: ModelHooks, where: str = "run manifest") -> list[str]:
    """Every problem found (empty when the run can start)."""
    problems: list[str] = []
    used = {name for stage in m.stages for name, w in stage.data.items() if w > 0}
    for name, src in m.data.sources.items():
        if name in used:
            problems += [f"{where}: data.sources.{name}: {p}" for p in source_problems(name, src)]
    if m.eval.source is not None:
        problems += [f"{where}: eval.source: {p}" for p in source_problems("eval", m.eval.source)]
    if any(m.data.sources[name].path is not None for name in used):
        from training.train.loaders_bridge import build_augment

        try:
            build_augment(m.data.augment, m.stages[0].resolution)
        except (TypeError, ValueError) as e:
            problems.append(f"{where}: data.augment: {e}")
    for key in ("weights", "init"):
        value = getattr(m.model, key)
        if value is not None and not Path(value).exists():
            problems.append(f"{where}: model.{key}: {value} does not exist")
    if not problems and hooks.check is not None:
        problems += [f"{where}: model: {p}" for p in hooks.check(m.model)]
    if not problems:
        problems += _trainable_problems(m, hooks, where)
    latest = m.run_dir / "checkpoints" / "latest"
    if latest.is_file() and not m.resume:
        problems.append(
            f"{where}: out_dir {m.run_dir} already holds checkpoints; pass --resume to continue it or choose another"
        )
    return problems


def _trainable_problems(m: RunManifest, hooks: ModelHooks, where: str) -> list[str]:
    """Resolve every stage's ``trainable`` list on the model built without memory (meta device)."""
    spec = type(m.model)(**{**m.model.__dict__, "weights": None, "init": None})
    try:
        with torch.device("meta"):
            model = hooks.build(spec)
    except (TypeError, ValueError) as e:
        return [f"{where}: model: cannot build the model ({e})"]
    groups = hooks.groups(model)
    problems = []
    for i, stage in enumerate(m.stages):
        try:
            select_trainable(model, stage.trainable, groups)
        except ValueError as e:
            problems.append(f"{where}: stages[{i}].{e}")
    return problems


def preflight(m: RunManifest, hooks: ModelHooks, where: str = "run manifest") -> None:
    """Raise :class:`ConfigError` listing every problem, or return when the run can start."""
    problems = preflight_problems(m, hooks, where)
    if problems:
        raise ConfigError("the run cannot start:\n  " + "\n  ".join(problems))
