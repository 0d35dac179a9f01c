"""Precision helpers of the matcher's heads: autocast contexts that also work on the meta device, and fp32 last
layers (a head's raw outputs are never rounded to bf16, whatever precision its body runs in)."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

__all__ = ["autocast_ctx", "run_fp32"]

_AUTOCAST_DEVICES = ("cuda", "cpu", "xpu", "mps", "hpu")


def autocast_ctx(device_type: str, dtype: str | None):
    """``torch.autocast`` to ``dtype`` ("bfloat16", ...), or autocast switched off when None; a no-op on devices
    autocast does not know (the ``meta`` device of FLOP counting)."""
    if device_type not in _AUTOCAST_DEVICES:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=getattr(torch, dtype or "bfloat16"), enabled=dtype is not None)


def run_fp32(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)`` in fp32 with autocast off. In an fp32 head this is exactly ``layer(x)``; in a bf16 head it keeps
    the output layer's result (grid offsets up to ~1 in grid_sample units, where a bf16 ulp is ~2 px at 518 px)
    in full precision."""
    with autocast_ctx(x.device.type, None):
        return layer(x.float())
