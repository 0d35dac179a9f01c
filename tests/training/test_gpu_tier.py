"""The GPU tier (``pytest -m gpu``; skipped without CUDA): the speed options' numerics on the real VGGT-1B matcher,
a 30-step training run at 518 px from a manifest, and ``torchrun`` with NCCL.

One module-scoped fixture runs the VGGT-1B matcher (random weights, zero-initialised last layers redrawn so the
head's output depends on its precision) on one batch of 8 synthetic pairs at 518 x 518 three ways:
  plain      the reference: eager, fp32 head, activation checkpointing;
  eager      bf16 head, channels-last head, no checkpointing (everything but compilation);
  optimised  the same, regionally compiled (blocks + head): the recipe's speed settings.
Tolerances (stated here, recorded in docs/bench/model.md): grids as ‖Δ‖ / ‖grid − mean‖, confidence logits as
‖Δ‖ / ‖logit‖. bf16 head vs fp32 head: grids <= 1e-2, logits <= 3e-2; compiled vs eager (same precision): the
same; optimised vs plain step: loss within 2 %, gradients' global relative L2 <= 0.1 and per-tensor cosine
>= 0.98 (tensors whose norm is at least 1e-3 of the largest).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
SIZE, PAIRS = 518, 8


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b − mean(b)‖ for grids (the pixel coordinates' common offset cannot hide an error)."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / (b - b.mean()).norm().clamp_min(1e-12))


def _rel_mag(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ for logits."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _step(model, batch: dict, objective) -> dict:
    """Forward (train mode) + the trainer's objective + backward; outputs, loss and gradients (fp32 copies)."""
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(batch["images"])
    terms = objective(out, batch)
    terms["objective"].backward()
    grads = {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.grad is not None}
    keep = {k: out[k].detach().float().clone() for k in ("grid", "grid_norm", "conf_logit")}
    return {"out": keep, "loss": float(terms["objective"]), "grads": grads}


@pytest.fixture(scope="module")
def three_ways():
    from training.losses import Objective
    from training.model import MatcherConfig, SemanticMatcher, VGGTConfig
    from training.model.speed import enable_compile, redraw_zero_inits, set_channels_last
    from training.train.data import move_batch
    from training.train.manifest import SyntheticSpec
    from training.train.synthetic import synthetic_pair_batch

    device = torch.device("cuda")
    cfg = MatcherConfig(
        vggt=VGGTConfig.vggt_1b(enable_track=False, checkpoint_blocks=True),
        split_index=12,
        grid_mode="correlation",
        symmetric=True,
        head_init="random",
        geometry_heads=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = SemanticMatcher(cfg)
    redraw_zero_inits(model, generator=torch.Generator().manual_seed(1))
    model.train()
    batch = move_batch(synthetic_pair_batch(7, PAIRS, SIZE, SIZE, SyntheticSpec()), device)
    objective = Objective(
        {"dense_epe": {"weight": 1.0, "pixels": "defined"}, "coarse": {"weight": 1.0}, "matchability": {"weight": 0.1}}
    )
    plain = _step(model, batch, objective)
    model.cfg = dataclasses.replace(
        cfg, head_dtype="bfloat16", vggt=dataclasses.replace(cfg.vggt, checkpoint_blocks=False)
    )
    set_channels_last(model)
    eager = _step(model, batch, objective)
    enable_compile(model, "blocks+head")
    optimised = _step(model, batch, objective)
    optimised_again = _step(model, batch, objective)  # compiled graphs reused: same numbers
    yield {"model": model, "plain": plain, "eager": eager, "optimised": optimised, "again": optimised_again}
    del model
    torch.cuda.empty_cache()


def _report(name: str, values: dict) -> None:
    print(f"[gpu tier] {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in values.items()))


def test_bf16_head_matches_fp32_head(three_ways):
    ref, low = three_ways["plain"]["out"], three_ways["eager"]["out"]
    errs = {
        "grid_rel": _rel(low["grid_norm"], ref["grid_norm"]),
        "conf_logit_rel": _rel_mag(low["conf_logit"], ref["conf_logit"]),
        "grid_px_mean": float((low["grid"] - ref["grid"]).norm(dim=-1).mean()),
        "grid_px_p99": float((low["grid"] - ref["grid"]).norm(dim=-1).flatten()[::7].quantile(0.99)),
    }
    _report("bf16 head vs fp32 head", errs)
    assert errs["grid_rel"] <= 1e-2 and errs["conf_logit_rel"] <= 3e-2
    assert errs["grid_rel"] > 0, "the head's precision changed nothing: is the bf16 path used?"


def test_compiled_matches_eager(three_ways):
    ref, comp = three_ways["eager"]["out"], three_ways["optimised"]["out"]
    errs = {
        "grid_rel": _rel(comp["grid_norm"], ref["grid_norm"]),
        "conf_rel": _rel_mag(comp["conf_logit"], ref["conf_logit"]),
        "grid_px_mean": float((comp["grid"] - ref["grid"]).norm(dim=-1).mean()),
    }
    _report("compiled vs eager", errs)
    assert errs["grid_rel"] <= 1e-2 and errs["conf_rel"] <= 3e-2
    again = three_ways["again"]["out"]
    assert all(torch.equal(again[k], comp[k]) for k in comp), "a second compiled step must give the same outputs"


def test_optimised_step_matches_plain_step(three_ways):
    plain, opt = three_ways["plain"], three_ways["optimised"]
    assert set(plain["grads"]) == set(opt["grads"]) and len(plain["grads"]) > 100
    num = sum(float((opt["grads"][n] - g).square().sum()) for n, g in plain["grads"].items())
    den = sum(float(g.square().sum()) for g in plain["grads"].values())
    cosines = {}
    scale = max(float(g.norm()) for g in plain["grads"].values())
    for n, g in plain["grads"].items():
        if g.numel() >= 1024 and float(g.norm()) > 1e-3 * scale:
            cosines[n] = float(torch.nn.functional.cosine_similarity(opt["grads"][n].flatten(), g.flatten(), dim=0))
    worst = min(cosines, key=cosines.get)
    errs = {
        "loss_rel": abs(opt["loss"] - plain["loss"]) / abs(plain["loss"]),
        "grad_rel_l2": (num / den) ** 0.5,
        "min_cosine": cosines[worst],
    }
    _report(f"optimised vs plain step (worst tensor {worst})", errs)
    assert errs["loss_rel"] <= 2e-2
    assert errs["grad_rel_l2"] <= 0.1
    assert errs["min_cosine"] >= 0.98


def test_fused_adamw_step_matches_foreach(three_ways):
    """One AdamW step from the same gradients: the fused kernel and the foreach implementation agree."""
    model = three_ways["model"]
    params = [p for p in model.parameters() if p.requires_grad]
    grads = three_ways["optimised"]["grads"]
    names = {p: n for n, p in model.named_parameters()}
    results = []
    start = [p.detach().clone() for p in params]
    for kind in ("foreach", "fused"):
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
                p.grad = grads[names[p]].clone()
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05, **{kind: True})
        opt.step()
        results.append([p.detach().clone() for p in params])
    with torch.no_grad():
        for p, s in zip(params, start):
            p.copy_(s)
            p.grad = None
    moved = max(float((a - s).abs().max()) for a, s in zip(results[0], start))
    # rounding: a few fp32 ulps of the parameters themselves (1.2e-7 at |p| = 1), whatever the update's size
    ulps = [
        (a - b).abs() / torch.finfo(torch.float32).eps / s.abs().clamp_min(1e-3) for a, b, s in zip(*results, start)
    ]
    worst_ulps = max(float(u.max()) for u in ulps)
    _report("fused vs foreach AdamW", {"max_update": moved, "max_diff_in_param_ulps": worst_ulps})
    assert moved > 1e-5 and worst_ulps <= 4


def _gpu_run_manifest(out_dir: Path, steps: int) -> dict:
    """A small VGGT-shaped matcher at 518 px on synthetic pairs with the recipe's speed settings but eager."""
    return {
        "name": "gpu_tier",
        "out_dir": str(out_dir),
        "device": "cuda",
        "precision": "bf16",
        "seed": 0,
        "model": {
            "preset": "small",
            "split_index": 4,
            "matcher": {
                "grid_mode": "correlation",
                "head_init": "random",
                "geometry_heads": False,
                "head_dtype": "bfloat16",
            },
            "channels_last": True,
        },  # fmt: skip
        "data": {"sources": {"syn": {"synthetic": {"max_rotation_deg": 10.0}}}, "batch_size": 2},
        "stages": [
            {
                "name": "dense",
                "steps": steps,
                "lr": 3e-4,
                "warmup_steps": 3,
                "resolution": [SIZE, SIZE],
                "data": {"syn": 1.0},
                "trainable": ["@all"],
                "losses": {"dense_epe": {"weight": 1.0, "pixels": "defined"}, "coarse": {"weight": 1.0}},
            }
        ],
        "optim": {"fused": True, "grad_clip": 5.0},
        "checkpoint": {"every": steps, "keep": 1},
        "log": {"every": 5, "tensorboard": True},
    }


def test_30_steps_at_518_loss_falls_and_checkpoint_reloads_bit_exactly(tmp_path):
    from training.model import load_matcher
    from training.model.speed import set_channels_last
    from training.train.hooks import default_hooks
    from training.train.manifest import load_run_manifest
    from training.train.metrics import read_metrics
    from training.train.trainer import Trainer

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_gpu_run_manifest(tmp_path / "run", 30)))
    trainer = Trainer(load_run_manifest(path), default_hooks(), progress=False)
    trainer.run()
    train = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    losses = [r["objective"] for r in train]
    _report("30-step run", {"first_loss": losses[0], "last_loss": losses[-1], "pairs_per_s": train[-1]["pairs_per_s"]})
    assert len(train) == 6 and losses[-1] < losses[0], losses
    assert all({"pairs_per_s", "data_wait", "peak_mem_gib", "step_ms"} <= set(r) for r in train)
    if "H100" in torch.cuda.get_device_name() or "H200" in torch.cuda.get_device_name():
        assert all(0 < r["mfu"] < 1 for r in train)

    model = trainer.model
    model.eval()
    reloaded = load_matcher(tmp_path / "run" / "model", map_location="cuda")
    set_channels_last(reloaded)  # the run's layout, so cuDNN picks the same kernels
    reloaded.eval()
    ours, theirs = model.state_dict(), reloaded.state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k].to(ours[k].dtype)) for k in ours), "weights differ after reload"
    images = torch.rand(2, 2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)).cuda()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        a, b = model(images), reloaded(images)
    assert all(torch.equal(a[k], b[k]) for k in ("grid", "conf")), "outputs differ after reload"


def test_torchrun_one_rank_with_nccl(tmp_path):
    d = _gpu_run_manifest(tmp_path / "run", 4)
    d["model"] = {
        "preset": "tiny",
        "split_index": 2,
        "matcher": {"grid_mode": "correlation", "head_init": "random", "geometry_heads": False},
    }
    d["stages"][0]["resolution"] = [56, 56]
    d["distributed"] = {"backend": "nccl"}
    d["log"] = {"every": 2, "tensorboard": False}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(d))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    cmd += ["-m", "training", "train", str(path), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert "nccl" in json.dumps(info["environment"]).lower()
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4] and all("peak_mem_gib" in r for r in train)
    final = [r for r in records if r["split"] == "final"]
    assert final and final[0]["ranks_in_sync"] == 1.0
