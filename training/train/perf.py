"""Throughput of the training loop between two log steps: pairs/s, data-wait fraction, MFU and peak GPU memory.

The trainer calls :meth:`StepMeter.wait` around ``next(stream)``, :meth:`StepMeter.step` after each step,
:meth:`StepMeter.exclude` for evaluation and checkpoint time inside a window, and :meth:`StepMeter.summary` at
each log step (which synchronises the GPU once, so the window's wall time covers the work it queued).

Definitions (per log window of ``n`` steps and wall time ``T``, evaluation and checkpoints excluded):
  ``pairs_per_s`` = n * pairs per step (all ranks) / T;  ``data_wait`` = time blocked in ``next(stream)`` / T;
  ``mfu`` = n * model FLOPs of one step on this rank / T / the device's peak dense bf16 rate (GPU only, when the
  card's peak is known); ``peak_mem_gib`` = ``torch.cuda.max_memory_allocated`` during the window (GPU only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from time import perf_counter

import torch

__all__ = ["StepMeter"]


class StepMeter:
    """Accumulates one log window's timings.

    Args:
        device: the training device (CUDA adds MFU and peak memory).
        pairs_per_step: image pairs per optimiser step over all ranks.
        flops_per_step: model FLOPs of one step on this rank, or None (no MFU).
        peak_flops: the device's peak dense bf16 FLOP/s, or None (no MFU).
    """

    def __init__(
        self, device: torch.device, pairs_per_step: int, flops_per_step: int | None, peak_flops: float | None
    ) -> None:
        self.device = device
        self.pairs_per_step = pairs_per_step
        self.flops_per_step = flops_per_step
        self.peak_flops = peak_flops
        self.reset()

    def reset(self) -> None:
        """Start a new window (and a new peak-memory high-water mark)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.t0 = perf_counter()
        self.waited = 0.0
        self.excluded = 0.0
        self.steps = 0

    @contextlib.contextmanager
    def wait(self) -> Iterator[None]:
        """Time spent blocked on the data stream."""
        t = perf_counter()
        try:
            yield
        finally:
            self.waited += perf_counter() - t

    @contextlib.contextmanager
    def excluding(self) -> Iterator[None]:
        """Time (evaluation, checkpoints) left out of the window's wall time."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the steps queued before belong to the window
        t = perf_counter()
        try:
            yield
        finally:
            self.excluded += perf_counter() - t

    def step(self) -> None:
        self.steps += 1

    def summary(self) -> dict[str, float]:
        """The window's rates; call at a log step (synchronises the GPU), then :meth:`reset`."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        wall = max(perf_counter() - self.t0 - self.excluded, 1e-9)
        n = max(self.steps, 1)
        out = {
            "pairs_per_s": self.pairs_per_step * self.steps / wall,
            "data_wait": min(1.0, self.waited / wall),
            "step_ms": 1e3 * wall / n,
        }
        if self.flops_per_step and self.peak_flops:
            out["mfu"] = self.flops_per_step * self.steps / wall / self.peak_flops
        if self.device.type == "cuda":
            out["peak_mem_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        return out
