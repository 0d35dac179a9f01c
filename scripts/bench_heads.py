"""Head-to-head probe of matcher variants at equal CPU wall time: which head learns fastest from scratch.

Each variant is the CPU demo's model (manifests/runs/chair_cpu_demo.yaml) with ``model.matcher`` overrides,
trained for the same number of seconds on preloaded, unaugmented pairs (dense EPE on defined pixels, plus the
coarse cross-entropy for correlation heads; AdamW, warm-up 50 steps, cosine to 5 %), then scored on held-out pairs
(in-loop protocol: both directions, PCK@0.1 with the bbox threshold, dense EPE on valid pixels).

    python scripts/bench_heads.py --seconds 240 \\
        --variant offset='{"grid_mode": "offset"}' \\
        --variant corr7='{"grid_mode": "correlation", "desc_dim": 64, "refine_channels": 8, "corr_stride": 7}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import torch

DEMO = Path("manifests/runs/chair_cpu_demo.yaml")


def probe(name: str, matcher: dict, args, train: list[dict], test: list[dict]) -> dict:
    from training.losses.coarse import coarse_loss
    from training.losses.dense import dense_epe_loss
    from training.train import model_setup
    from training.train.data import move_batch
    from training.train.distributed import DistEnv
    from training.train.evaluate import evaluate
    from training.train.manifest import load_run_manifest

    spec = load_run_manifest(DEMO).model
    spec = dataclasses.replace(spec, matcher={**spec.matcher, **matcher})
    torch.manual_seed(0)
    model = model_setup.build(spec)
    trainable = set(model_setup.groups(model)["all"])
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    env = DistEnv()
    start_score = evaluate(model, test, env, threshold="bbox")  # evaluate converts uint8 images as the trainer does
    order = torch.Generator().manual_seed(0)
    model.train()
    step, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < args.seconds:
        batch = move_batch(train[int(torch.randint(len(train), (1,), generator=order))], env.device)
        lr = args.lr * min(1.0, (step + 1) / 50) * (0.05 + 0.475 * (1 + math.cos(math.pi * elapsed / args.seconds)))
        for group in opt.param_groups:
            group["lr"] = lr
        out = model(batch["images"])
        loss = dense_epe_loss(out, batch, pixels="defined")
        if "corr_logit" in out:
            loss = loss + coarse_loss(out, batch, pixels="defined")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
    rate = step / (time.perf_counter() - t0)
    end_score = evaluate(model, test, env, threshold="bbox")
    return {"variant": name, "steps": step, "steps_per_s": rate, "start": start_score, "end": end_score}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", required=True, help="NAME=JSON of model.matcher overrides")
    p.add_argument("--seconds", type=float, default=240.0, help="training wall time per variant")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train", default="data/demo/chair112_train")
    p.add_argument("--test", default="data/demo/chair112_test")
    p.add_argument("--n-train", type=int, default=2000, help="training pairs preloaded")
    p.add_argument("--n-test", type=int, default=160, help="held-out pairs scored")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    from training.train.loaders_bridge import eval_batches
    from training.train.manifest import RunDataSource

    torch.set_num_threads(args.threads)
    train = eval_batches(RunDataSource(path=args.train), (112, 112), 8, args.n_train // 8)
    test = eval_batches(RunDataSource(path=args.test), (112, 112), 8, args.n_test // 8)
    print(f"{len(train) * 8} training pairs, {len(test) * 8} held-out pairs, {args.seconds:g} s per variant")
    rows = []
    for item in args.variant:
        name, _, overrides = item.partition("=")
        rows.append(probe(name, json.loads(overrides or "{}"), args, train, test))
        r = rows[-1]
        print(f"  {name}: {r['steps']} steps, PCK@0.1 {100 * r['end']['pck@0.1']:.1f}", flush=True)
    print("\n| variant | steps/s | steps | PCK@0.1 bbox start → end | dense EPE px start → end |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        s, e = r["start"], r["end"]
        print(
            f"| {r['variant']} | {r['steps_per_s']:.2f} | {r['steps']} | {100 * s['pck@0.1']:.1f} → "
            f"{100 * e['pck@0.1']:.1f} | {s['epe_px']:.2f} → {e['epe_px']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
