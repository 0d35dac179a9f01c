"""Benchmark the semantic matcher: forward and forward+backward time, peak memory and FLOP rate per image pair.

Random weights (no checkpoint needed). Every case also times plain VGGT (2-frame geometry forward) in the same
run as the baseline, so ratios are meaningful on noisy machines.

    python scripts/bench_model.py                          # CPU: tiny@224, tiny@518, small@224
    python scripts/bench_model.py --device cuda --full     # GPU: VGGT-1B matcher at 518x518, bf16 autocast, MFU
    python scripts/speed_ladder.py                         # GPU: the speed options one by one (training step)

Prints a table and writes JSON (``--json``, default ``out/bench_model.json``). Peak memory: CUDA
``max_memory_allocated``; CPU peak RSS of the process (VmHWM, reset per measurement; includes the weights).
FLOPs come from ``torch.utils.flop_counter`` (matmuls, convolutions, attention) and are model FLOPs (the forward
recomputed by activation checkpointing is not counted; attention as its fused CUDA kernel, see
``training.model.flops``); MFU = achieved / peak dense bf16 rate of the card (``--peak-tflops`` overrides the
built-in table). ``scripts/speed_ladder.py`` switches the speed options on one after another.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from training.model import MatcherConfig, SemanticMatcher, VGGTConfig
from training.model.flops import PEAK_BF16_TFLOPS
from training.model.flops import count_flops as _count_flops


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        with contextlib.suppress(OSError):  # resets the peak-RSS counter (Linux)
            Path("/proc/self/clear_refs").write_text("5")


def read_peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def timed(fn, device: torch.device, warmup: int, iters: int) -> tuple[float, float]:
    """Median seconds per call and peak memory (MiB) over ``iters`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    reset_peak(device)
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), read_peak_mib(device)


def count_flops(fn) -> int:
    return int(_count_flops(fn))


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def bench_case(name: str, vcfg: VGGTConfig, size: int, args, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    cfg = MatcherConfig(vggt=vcfg, split_index=vcfg.depth // 2, symmetric=not args.asymmetric)
    with torch.device(device):  # random init directly on the device (fast for the 1B model)
        model = SemanticMatcher(cfg)
    images = torch.rand(args.batch, 2, 3, size, size, device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    compiled = torch.compile(model) if args.compile else model
    use = {"runner": compiled}  # FLOPs are counted on the eager model (compiled kernels bypass the counter)
    rows = []

    def vggt_fwd():
        with torch.no_grad(), amp:
            model.vggt(images)

    def matcher_fwd():
        model.eval()
        with torch.no_grad():
            use["runner"](images)

    def matcher_fwd_bwd():
        model.train()
        out = use["runner"](images)
        (out["grid_norm"].square().mean() + out["conf_logit"].square().mean()).backward()
        model.zero_grad(set_to_none=True)

    def set_checkpointing(on: bool) -> None:
        model.cfg = dataclasses.replace(model.cfg, vggt=dataclasses.replace(model.cfg.vggt, checkpoint_blocks=on))

    cases = [
        ("vggt geometry fwd", vggt_fwd, True),
        ("matcher fwd", matcher_fwd, True),
        ("matcher fwd+bwd", matcher_fwd_bwd, True),  # activation checkpointing of the semantic blocks
        ("fwd+bwd no ckpt", matcher_fwd_bwd, False),
    ]
    peak = peak_tflops(device, args.peak_tflops)
    if device.type == "cuda":  # first-use costs (context, cuDNN autotuning, compilation) out of every number
        for _, fn, ckpt in cases:
            set_checkpointing(ckpt)
            fn()
    for label, fn, ckpt in cases:
        set_checkpointing(False)  # model FLOPs: recomputation is not counted
        use["runner"] = model
        flops = count_flops(fn)
        use["runner"] = compiled
        set_checkpointing(ckpt)
        sec, mem = timed(fn, device, args.warmup, args.iters)
        achieved = flops / sec / 1e12
        rows.append(
            {
                "config": name,
                "size": size,
                "batch_pairs": args.batch,
                "case": label,
                "symmetric": cfg.symmetric,
                "split_index": cfg.split_index,
                "ms_per_pair": 1e3 * sec / args.batch,
                "peak_mem_mib": mem,
                "gflop_per_pair": flops / 1e9 / args.batch,
                "achieved_tflops": achieved,
                "mfu": achieved / peak if peak else None,
                "trainable_params": sum(p.numel() for p in model.trainable_parameters()),
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
        print(f"  {name}@{size} {label}: {rows[-1]['ms_per_pair']:.1f} ms/pair", flush=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def print_table(rows: list[dict]) -> None:
    head = f"{'config':8} {'size':>5} {'case':18} {'ms/pair':>9} {'x vggt':>7} {'peak MiB':>9} {'GFLOP/pair':>11} "
    head += f"{'TFLOP/s':>8} {'MFU':>6}"
    print(head)
    print("-" * len(head))
    base = {}
    for r in rows:
        key = (r["config"], r["size"])
        if r["case"].startswith("vggt"):
            base[key] = r["ms_per_pair"]
        ratio = r["ms_per_pair"] / base[key] if key in base else float("nan")
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
        print(
            f"{r['config']:8} {r['size']:>5} {r['case']:18} {r['ms_per_pair']:9.1f} {ratio:7.2f} "
            f"{r['peak_mem_mib']:9.0f} {r['gflop_per_pair']:11.1f} {r['achieved_tflops']:8.2f} {mfu:>6}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--full", action="store_true", help="the VGGT-1B matcher at 518x518 (meant for a GPU)")
    parser.add_argument("--cases", default=None, help="comma-separated NAME@SIZE, e.g. tiny@224,small@518")
    parser.add_argument("--batch", type=int, default=1, help="pairs per call")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--asymmetric", action="store_true", help="one pair order instead of both")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s for MFU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="torch.compile the matcher (inductor)")
    parser.add_argument("--json", default="out/bench_model.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.warmup = args.warmup if args.warmup is not None else (3 if device.type == "cuda" else 1)
    args.iters = args.iters if args.iters is not None else (10 if device.type == "cuda" else 3)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    factories = {"tiny": VGGTConfig.tiny, "small": VGGTConfig.small, "vggt_1b": VGGTConfig.vggt_1b}
    specs = args.cases or ("vggt_1b@518" if args.full else "tiny@224,tiny@518,small@224")
    cases = []
    for spec in specs.split(","):
        name, _, size = spec.partition("@")
        if name not in factories or not size.isdigit():
            parser.error(f"bad case {spec!r}: want NAME@SIZE with NAME in {sorted(factories)}")
        cases.append((name, factories[name](), int(size)))
    rows = []
    for name, vcfg, size in cases:
        rows.extend(bench_case(name, dataclasses.replace(vcfg, enable_track=False), size, args, device))

    env = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "autocast": "bf16" if device.type == "cuda" else "fp32",
        "compile": args.compile,
        "peak_tflops": peak_tflops(device, args.peak_tflops),
    }
    print(f"\n{env['command']} | {env['device']} | torch {env['torch']} | {env['threads']} threads | {env['autocast']}")
    print_table(rows)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
