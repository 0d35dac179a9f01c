"""Model FLOPs of the semantic matcher, counted without running it, and the peak rates MFU is measured against.

FLOPs are ``torch.utils.flop_counter`` model FLOPs (matmuls, convolutions, attention; elementwise work and the
forward recomputed by activation checkpointing are not counted), obtained by running a twin of the model on the
``meta`` device: no memory, no compute, the same shapes. Attention is counted as on CUDA, where SDPA runs a
fused kernel: ``4 N^2 d`` per head forward and 2.5x that backward (the kernel recomputes the scores); on the
meta device (and on CPU, where the counter does not see the fused op at all) SDPA would otherwise decompose into
plain matmuls or go uncounted. ``scripts/bench_model.py`` and the trainer's MFU both count through here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["PEAK_BF16_TFLOPS", "peak_flops", "count_flops", "matcher_flops"]

# dense bf16 tensor-core rates (datasheet, TFLOP/s), matched against torch.cuda.get_device_name
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}


def peak_flops(device: torch.device | str) -> float | None:
    """Peak dense bf16 FLOP/s of a CUDA device from :data:`PEAK_BF16_TFLOPS`; None on CPU or an unknown card."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    tflops = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return tflops * 1e12 if tflops else None


class _FusedAttentionCount(TorchFunctionMode):
    """Routes ``F.scaled_dot_product_attention`` (no mask, no dropout) to the fused efficient-attention op, whose
    forward and backward the flop counter knows (and which has meta kernels)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and args[0].device.type in ("meta", "cuda"):
            q, k, v = args[:3]
            if (
                len(args) > 3
                or kwargs.get("attn_mask") is not None
                or kwargs.get("dropout_p", 0.0)
                or kwargs.get("is_causal", False)
            ):
                raise NotImplementedError("flop counting supports plain (unmasked, dropout-free) attention only")
            grad = any(t.requires_grad for t in (q, k, v)) and torch.is_grad_enabled()
            out = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, grad, scale=kwargs.get("scale"))
            return out[0]
        return func(*args, **kwargs)


def count_flops(fn: Callable[[], object], by_op: bool = False) -> int | dict[str, int]:
    """FLOPs ``fn()`` performs (forward and, if it calls it, backward), attention counted as on CUDA (on the meta
    and CUDA devices; a CPU run's fused attention is invisible to the counter). ``by_op``: {op name: FLOPs}."""
    counter = FlopCounterMode(display=False)
    with counter, _FusedAttentionCount():
        fn()
    if by_op:
        return {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return int(counter.get_total_flops())


def _surrogate_loss(out: dict[str, Tensor]) -> Tensor:
    """The scalar the benchmarks backpropagate: it reaches every output the trainer's losses read."""
    return out["grid_norm"].square().mean() + out["conf_logit"].square().mean()


def matcher_flops(model: nn.Module, image_hw: tuple[int, int], pairs: int, backward: bool = True) -> int:
    """Model FLOPs of ``model`` on ``pairs`` image pairs of ``image_hw``: forward, plus backward when asked.

    Args:
        model: a :class:`training.model.SemanticMatcher` (any device, compiled or not; it is not run). Its
            ``requires_grad`` flags decide which backward FLOPs count (frozen layers need no weight gradients,
            and nothing below the first trainable layer is backpropagated).
        image_hw: (H, W), multiples of the patch size.
        pairs: image pairs per step (the batch size).
        backward: count the backward of the benchmarks' surrogate loss (a training step) or the forward only
            (in eval mode, without gradients).

    Returns:
        FLOPs of one step (counted on a meta-device twin: no memory, no compute).
    """
    from training.model.matcher import SemanticMatcher

    cfg = model.cfg
    cfg = dataclasses.replace(cfg, vggt=dataclasses.replace(cfg.vggt, checkpoint_blocks=False))
    with torch.device("meta"):
        twin = SemanticMatcher(cfg)
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    for name, p in twin.named_parameters():
        p.requires_grad_(grads.get(name, False))
    twin.train(backward)
    images = torch.empty(pairs, 2, 3, *image_hw, device="meta")

    def step() -> None:
        if backward:
            _surrogate_loss(twin(images)).backward()
        else:
            with torch.no_grad():
                twin(images)

    return count_flops(step)
