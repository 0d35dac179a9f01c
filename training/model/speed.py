"""GPU speed options of the semantic matcher that change how it runs, not what it computes (up to rounding).

* Regional ``torch.compile`` (``enable_compile``): every transformer :class:`~training.model.layers.Block` (the
  DINOv2 patch embed's, the frozen AA layers', the semantic branch's) is compiled in place with
  ``nn.Module.compile``. The blocks share one code object, so one graph per distinct (shape, grad mode,
  trainable-or-frozen) case serves all 72 of them, and compilation takes seconds to minutes instead of the whole
  model's many minutes. Inductor fuses the fp32 LayerNorms, the 2D RoPE, LayerScale and the residual adds around
  the bf16 matmuls and SDPA, which eager PyTorch runs as dozens of memory-bound kernels per block. The
  ``head`` region compiles the semantic head (the DPT decoder at full resolution and the matching head) as one
  graph. Parameter names and ``state_dict`` keys are unchanged (no ``_orig_mod.`` prefix), so checkpoints are
  interchangeable with eager runs. Compile after any ``copy.deepcopy`` of the model (a compiled module's copy
  would call the original's forward).
* ``channels_last``: the semantic head's convolution weights in NHWC, so cuDNN runs its convolutions
  channels-last (their inputs already are: the token maps are permuted views).

The numerics differ from eager only by kernel rounding (tests/test_gpu_speed.py bounds it on a GPU).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from training.model.layers import Block

__all__ = [
    "COMPILE_REGIONS",
    "compiled",
    "enable_compile",
    "disable_compile",
    "set_channels_last",
    "apply_speed_options",
    "redraw_zero_inits",
]

COMPILE_REGIONS = ("none", "blocks", "blocks+head")
_RECOMPILE_LIMIT = 64  # graphs per code object: blocks x shapes x grad modes x trainable sets (train + eval)
_BACKEND = {"name": "inductor"}


@functools.cache
def _compiled(fn: Callable, backend: str) -> Callable:
    return torch.compile(fn, dynamic=False, fullgraph=True, backend=backend)


def compiled(fn: Callable) -> Callable:
    """The compiled version of a plain function (cached; called with the module as its first argument, so a
    copy of the module calls it on itself)."""
    return _compiled(fn, _BACKEND["name"])


def _raise_recompile_limit() -> None:
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), _RECOMPILE_LIMIT))


def enable_compile(model: nn.Module, regions: str, backend: str = "inductor") -> int:
    """Compile ``model``'s regions in place.

    Args:
        model: a :class:`training.model.SemanticMatcher` (or any module holding ``Block``s).
        regions: ``none``, ``blocks`` or ``blocks+head`` (the head: ``model.compiled_head``).
        backend: the ``torch.compile`` backend (``inductor`` for speed; tests use ``aot_eager``).

    Returns:
        the number of blocks compiled.
    """
    if regions not in COMPILE_REGIONS:
        raise ValueError(f"compile regions {regions!r} not in {COMPILE_REGIONS}")
    if regions == "none":
        return 0
    _raise_recompile_limit()
    _BACKEND["name"] = backend
    n = 0
    for module in model.modules():
        if isinstance(module, Block):
            module.compile(dynamic=False, fullgraph=True, backend=backend)
            n += 1
    if regions == "blocks+head":
        if not hasattr(model, "compiled_head"):
            raise ValueError(f"{type(model).__name__} has no compilable head")
        model.compiled_head = True
    return n


def disable_compile(model: nn.Module) -> None:
    """Undo :func:`enable_compile` (blocks run their eager forward again; the head too)."""
    for module in model.modules():
        if isinstance(module, Block):
            module._compiled_call_impl = None
    if hasattr(model, "compiled_head"):
        model.compiled_head = False


def set_channels_last(model: nn.Module) -> int:
    """The semantic head's convolution weights to channels-last; returns how many 4-D tensors it converted."""
    head = model.semantic_head
    n = sum(p.ndim == 4 for p in head.parameters())
    head.to(memory_format=torch.channels_last)
    return n


def apply_speed_options(model: nn.Module, compile: str = "none", channels_last: bool = False) -> nn.Module:
    """Both options on a built matcher (channels-last first: compiled graphs see the final layouts)."""
    if channels_last:
        set_channels_last(model)
    enable_compile(model, compile)
    return model


@torch.no_grad()
def redraw_zero_inits(model: nn.Module, std: float = 0.02, generator: torch.Generator | None = None) -> int:
    """Redraw the matcher's zero-initialised last layers (normal, ``std``) for accuracy checks of these options:
    with them at zero an untrained head's output does not depend on its precision or compilation at all.

    Returns:
        the number of tensors redrawn.
    """
    head = model.semantic_head
    layers = [head.scratch.output_conv2[2]]
    match = getattr(head, "match", None)
    if match is not None:
        layers += [m for m in (match.refine[-1], match.feat_desc) if m is not None]
    n = 0
    for layer in layers:
        for p in (layer.weight, layer.bias):
            p.copy_(torch.randn(p.shape, generator=generator, device=p.device if generator is None else "cpu") * std)
            n += 1
    return n
