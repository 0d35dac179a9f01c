"""The matcher's GPU speed options switched on one after another: a training step's time, MFU and peak memory.

    python scripts/speed_ladder.py --device cuda                    # VGGT-1B matcher at 518x518 (the recipe's head)
    python scripts/speed_ladder.py --device cpu --preset tiny --size 56 --batch 2 --ref-batch 1 \\
        --compile-backend aot_eager                                  # the same code paths on a CPU, in seconds

One model (random weights; the zero-initialised last layers redrawn so the head's output depends on its precision),
the rungs are cumulative, each timed after its own warm-up (compilation included there, not in the numbers):

  reference (today's recipe: activation checkpointing, fp32 head, eager) at ``--ref-batch`` pairs, then at
  ``--batch`` pairs; no activation checkpointing; bf16 head; channels-last head; compiled blocks; compiled head
  (forward + backward of the benchmarks' surrogate loss); then full optimiser steps (gradient clipping, AdamW
  foreach vs fused, without and with the trainer's host syncs); then ``--big-batch`` pairs if the time budget allows.

Also the accuracy of the bf16 head against the fp32 head on the same weights and input (eager, eval mode).
MFU uses model FLOPs from ``training.model.flops`` (as ``scripts/bench_model.py``) against the card's dense bf16
peak. Prints a table; writes JSON after every rung (``--json``), so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from training.model import MatcherConfig, SemanticMatcher, VGGTConfig
from training.model.flops import matcher_flops, peak_flops
from training.model.speed import (
    disable_compile,
    enable_compile,
    redraw_zero_inits,
    set_channels_last,
)


def surrogate_loss(out: dict) -> torch.Tensor:
    return out["grid_norm"].square().mean() + out["conf_logit"].square().mean()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], None], device: torch.device, warmup: int, iters: int) -> dict[str, float]:
    """Median and spread of ``iters`` timed calls after ``warmup`` calls; peak memory of the timed calls."""
    t = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync(device)
    warm_s = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "warmup_s": warm_s,
            "peak_mem_gib": peak}  # fmt: skip


class Ladder:
    """The model, its inputs and the rungs' shared state (current batch, options on so far)."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.args, self.device = args, device
        factory = getattr(VGGTConfig, args.preset)
        vcfg = factory(enable_track=False, checkpoint_blocks=True)
        self.cfg = MatcherConfig(
            vggt=vcfg,
            split_index=vcfg.depth // 2,
            grid_mode=args.grid_mode,
            symmetric=True,
            head_init="random",
            geometry_heads=False,
        )
        torch.manual_seed(0)
        with torch.device(device):
            self.model = SemanticMatcher(self.cfg)
        redraw_zero_inits(self.model, generator=torch.Generator().manual_seed(1))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.inputs: dict[int, torch.Tensor] = {}
        self.flops: dict[int, int] = {}
        self.peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(device)

    def set(self, **changes) -> None:
        """Change matcher options (``head_dtype``) or the semantic branch's activation checkpointing."""
        ckpt = changes.pop("checkpoint", None)
        cfg = dataclasses.replace(self.model.cfg, **changes)
        if ckpt is not None:
            cfg = dataclasses.replace(cfg, vggt=dataclasses.replace(cfg.vggt, checkpoint_blocks=ckpt))
        self.model.cfg = cfg

    def images(self, batch: int) -> torch.Tensor:
        if batch not in self.inputs:
            gen = torch.Generator().manual_seed(batch)
            size = self.args.size
            self.inputs[batch] = torch.rand(batch, 2, 3, size, size, generator=gen).to(self.device)
        return self.inputs[batch]

    def step_flops(self, batch: int) -> int:
        if batch not in self.flops:
            self.flops[batch] = matcher_flops(self.model, (self.args.size, self.args.size), batch)
        return self.flops[batch]

    def forward(self, images: torch.Tensor) -> dict:
        """The model call as the trainer makes it (inside its bf16 autocast on CUDA)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            return self.model(images)

    def fwd_bwd(self, batch: int) -> Callable[[], None]:
        images = self.images(batch)

        def fn() -> None:
            surrogate_loss(self.forward(images)).backward()
            self.model.zero_grad(set_to_none=True)

        return fn

    def full_step(self, batch: int, optimizer: torch.optim.Optimizer, host_syncs: bool) -> Callable[[], None]:
        """What the trainer does per step: forward, loss, backward, clipping, AdamW; ``host_syncs``: also its
        reads of the loss and the gradient norm on the host (non-finite guard, logged values)."""
        images = self.images(batch)

        def fn() -> None:
            loss = surrogate_loss(self.forward(images))
            if host_syncs:
                _ = bool(torch.isfinite(loss)), float(loss.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            if host_syncs:
                bool(torch.isfinite(norm))
            optimizer.step()

        return fn


def bf16_head_accuracy(ladder: Ladder, batch: int = 2) -> dict[str, float]:
    """Outputs of the bf16 head against the fp32 head (eager, eval mode, same weights and input)."""
    model = ladder.model
    model.eval()
    images = ladder.images(batch)
    outs = {}
    with torch.no_grad():
        for dtype in ("float32", "bfloat16"):
            ladder.set(head_dtype=dtype)
            outs[dtype] = model(images)
    model.train()
    ref, low = outs["float32"], outs["bfloat16"]
    err = (low["grid"] - ref["grid"]).norm(dim=-1)
    disp_ref = ref["grid_norm"] - ref["grid_norm"].mean()
    return {
        "grid_px_max": float(err.max()),
        "grid_px_mean": float(err.mean()),
        "grid_px_p99": float(err.flatten().float().quantile(0.99)) if err.numel() < 2**24 else float("nan"),
        "grid_norm_rel_l2": float((low["grid_norm"] - ref["grid_norm"]).norm() / disp_ref.norm()),
        "conf_max": float((low["conf"] - ref["conf"]).abs().max()),
    }


def profile(fn: Callable[[], None], device: torch.device, steps: int, rows: int = 25) -> str:
    """torch.profiler over ``steps`` calls: the operators with the most device (or CPU) self time, as a table."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)


def print_row(row: dict) -> None:
    mfu = f"{100 * row['mfu']:.1f}%" if row.get("mfu") is not None else "-"
    print(
        f"{row['rung']:44} {row['batch']:>5} {row['ms_per_pair']:9.1f} {row['pairs_per_s']:8.2f} {mfu:>7} "
        f"{row['peak_mem_gib']:8.1f} {row['x_reference']:6.2f} {row['warmup_s']:8.1f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--preset", default="vggt_1b", choices=["tiny", "small", "vggt_1b"])
    parser.add_argument("--size", type=int, default=518)
    parser.add_argument("--grid-mode", default="correlation", choices=["offset", "absolute", "correlation"])
    parser.add_argument("--ref-batch", type=int, default=4, help="pairs per step of the reference rung")
    parser.add_argument("--batch", type=int, default=8, help="pairs per step of the other rungs")
    parser.add_argument("--big-batch", type=int, default=0, help="a last rung at this batch (0: none)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=0, help="skip the big-batch rung past this many seconds")
    parser.add_argument("--profile", type=int, default=0, help="profile this many steps of the last rung's step")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--json", default="out/speed_ladder.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    start = time.perf_counter()
    ladder = Ladder(args, device)
    env = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["speed_ladder.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "preset": args.preset,
        "size": args.size,
        "grid_mode": args.grid_mode,
        "peak_tflops": ladder.peak / 1e12 if ladder.peak else None,
        "params": sum(p.numel() for p in ladder.model.parameters()),
        "trainable_params": sum(p.numel() for p in ladder.params),
    }
    result: dict = {"env": env, "accuracy_bf16_head": None, "rows": []}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        out.write_text(json.dumps(result, indent=2) + "\n")

    result["accuracy_bf16_head"] = bf16_head_accuracy(ladder)
    ladder.set(head_dtype="float32")
    print(f"{env['command']} | {env['device']} | torch {env['torch']}")
    print("bf16 head vs fp32 head:", json.dumps(result["accuracy_bf16_head"]), flush=True)
    print(
        f"{'rung':44} {'pairs':>5} {'ms/pair':>9} {'pairs/s':>8} {'MFU':>7} {'peak GiB':>8} {'x ref':>6} {'warm s':>8}"
    )
    reference: list[float] = []

    def rung(name: str, batch: int, fn: Callable[[], None]) -> bool:
        try:
            timing = time_fn(fn, device, args.warmup, args.iters)
        except Exception as e:  # out of memory, or a compilation failure: recorded, and the ladder goes on
            kind = "out of memory" if isinstance(e, torch.OutOfMemoryError) else f"{type(e).__name__}"
            print(f"{name:44} {batch:>5} FAILED: {kind}: {str(e).splitlines()[0][:200] if str(e) else ''}", flush=True)
            result["rows"].append({"rung": name, "batch": batch, "error": f"{kind}: {str(e)[:2000]}"})
            ladder.model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            save()
            return False
        sec = timing["median_s"]
        flops = ladder.step_flops(batch)
        ms_pair = 1e3 * sec / batch
        if not reference:
            reference.append(ms_pair)
        row = {
            "rung": name,
            "batch": batch,
            "ms_per_pair": ms_pair,
            "pairs_per_s": batch / sec,
            "gflop_per_pair": flops / 1e9 / batch,
            "achieved_tflops": flops / sec / 1e12,
            "mfu": flops / sec / ladder.peak if ladder.peak else None,
            "x_reference": reference[0] / ms_pair,
            **timing,
        }
        result["rows"].append(row)
        print_row(row)
        save()
        return True

    b, rb = args.batch, args.ref_batch
    rung("reference: ckpt, fp32 head, eager", rb, ladder.fwd_bwd(rb))
    rung(f"reference at {b} pairs", b, ladder.fwd_bwd(b))
    ladder.set(checkpoint=False)
    rung("+ no activation checkpointing", b, ladder.fwd_bwd(b))
    ladder.set(head_dtype="bfloat16")
    rung("+ bf16 head", b, ladder.fwd_bwd(b))
    set_channels_last(ladder.model)
    rung("+ channels-last head", b, ladder.fwd_bwd(b))
    enable_compile(ladder.model, "blocks", backend=args.compile_backend)
    if not rung("+ compiled blocks", b, ladder.fwd_bwd(b)):
        disable_compile(ladder.model)  # the full steps below then run eager
    else:
        enable_compile(ladder.model, "blocks+head", backend=args.compile_backend)
        if not rung("+ compiled head", b, ladder.fwd_bwd(b)):
            disable_compile(ladder.model)
            enable_compile(ladder.model, "blocks", backend=args.compile_backend)
    fused = device.type == "cuda"
    foreach = torch.optim.AdamW(ladder.params, lr=1e-6, foreach=True)
    rung("full step: + clip + AdamW (foreach)", b, ladder.full_step(b, foreach, host_syncs=False))
    del foreach
    opt = torch.optim.AdamW(ladder.params, lr=1e-6, fused=fused)
    rung(f"full step: AdamW {'fused' if fused else '(no fused kernel on CPU)'}", b, ladder.full_step(b, opt, False))
    rung("full step: + the trainer's host syncs", b, ladder.full_step(b, opt, host_syncs=True))
    if args.profile:
        table = profile(ladder.full_step(b, opt, host_syncs=False), device, args.profile)
        result["profile"] = table
        print(f"profile of {args.profile} full steps at {b} pairs (self device time):")
        print(table, flush=True)
        save()
    if args.big_batch:
        if args.budget_s and time.perf_counter() - start > args.budget_s:
            print(f"skipped the {args.big_batch}-pair rung: past the {args.budget_s:.0f} s budget", flush=True)
        else:
            big = args.big_batch
            rung(f"full step at {big} pairs", big, ladder.full_step(big, opt, host_syncs=False))
    result["env"]["wall_s"] = time.perf_counter() - start
    save()
    print(f"wrote {out} ({result['env']['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
