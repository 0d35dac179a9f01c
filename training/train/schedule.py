"""Optimiser and learning-rate schedule of a stage: AdamW over the trainable parameters (no weight decay on
biases, norms and other 1-D tensors), linear warm-up then cosine decay to ``min_lr_ratio * lr``."""

from __future__ import annotations

import math

import torch
from torch import nn

from training.train.manifest import OptimSpec

__all__ = ["build_optimizer", "lr_factor", "build_scheduler"]


def build_optimizer(model: nn.Module, lr: float, spec: OptimSpec) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; frozen ones (``requires_grad=False``) are not in the optimiser.

    Parameter groups come from the model's own helper ``model.param_groups(weight_decay, lr)`` when it has one
    (the matcher's rule: no decay on biases, norms, LayerScale, tokens and position embeddings); otherwise
    decayed (>= 2-D weights) and not decayed (1-D tensors).
    """
    helper = getattr(model, "param_groups", None)
    if callable(helper):
        groups = [g for g in helper(weight_decay=spec.weight_decay, lr=lr) if g["params"]]
    else:
        decay, no_decay = [], []
        for p in model.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": spec.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError("no trainable parameters: check the stage's 'trainable' list")
    params = [p for g in groups for p in g["params"]]
    if any(not p.requires_grad for p in params):
        raise ValueError("the model's param_groups returned a frozen parameter")
    on_cuda = any(p.is_cuda for p in params)
    extra = ({"fused": True} if spec.fused else {"foreach": True}) if on_cuda else {}
    return torch.optim.AdamW(groups, lr=lr, betas=spec.betas, eps=spec.eps, **extra)


def lr_factor(step: int, total: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the stage's peak lr at 0-based ``step`` of ``total``.

    Warm-up: ``(step + 1) / warmup`` for ``step < warmup``; then cosine from 1 towards ``min_ratio``, reached
    one step after the last (so the last step still learns), or constant 1.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, total: int, warmup: int, spec: OptimSpec
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, spec.schedule, spec.min_lr_ratio)
    )
