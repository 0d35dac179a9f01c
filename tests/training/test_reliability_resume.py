"""Exact resume with real shard sources: a run stopped mid-stage and resumed ends on the weights of a straight
run, bit for bit, in both data modes (``exact``: the epoch's order replays; ``resampled``: each worker's draws
continue from the state saved in the checkpoint), in-process and with a DataLoader worker process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from training.train.hooks import default_hooks
from training.train.manifest import load_run_manifest
from training.train.metrics import read_metrics
from training.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """9 rendered chair pairs in shards of 4 + 4 + 1 (an epoch is 4 batches of 2: the runs cross epochs)."""
    out = tmp_path_factory.mktemp("chairs") / "train"
    cmd = [sys.executable, "-m", "datagen", "render", "--category", "chair", "--size", "56", "--workers", "1"]
    cmd += ["--n", "9", "--shard-size", "4", "--seed", "3", "--out", str(out), "--no-progress"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out


def _manifest(tmp_path: Path, shards: Path, mode: str, workers: int) -> Path:
    stage = {"lr": 2e-3, "resolution": [28, 28], "data": {"chair": 1.0}}
    d = {
        "name": "resume",
        "device": "cpu",
        "cpu_threads": 1,
        "model": {
            "preset": "tiny",
            "split_index": 2,
            "matcher": {"symmetric": False, "head_init": "random", "geometry_heads": False},
        },
        # the default training augmentation: random crops, flips, jitter and swaps, all drawn per sample
        "data": {"sources": {"chair": {"path": str(shards)}}, "batch_size": 2, "mode": mode, "workers": workers},
        "stages": [
            {**stage, "name": "a", "steps": 6, "losses": {"dense_epe": {}, "matchability": {"weight": 0.1}}},
            {**stage, "name": "b", "steps": 3, "trainable": ["@all"], "losses": {"dense_epe": {}, "cycle": {}}},
        ],
        "optim": {"warmup_steps": 1},
        "checkpoint": {"every": 100, "keep": 0},
        "log": {"every": 1, "tensorboard": False},
    }
    path = tmp_path / f"{mode}_{workers}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _train(path: Path, out: Path, stop_at: int | None = None, resume: bool = False) -> None:
    overrides = [f"out_dir={out}"] + (["resume=true"] if resume else [])
    Trainer(load_run_manifest(path, overrides), default_hooks(), progress=False, stop_at_step=stop_at).run()


@pytest.mark.parametrize(
    ("mode", "workers", "stop_at"),
    [("exact", 0, 3), ("resampled", 0, 3), ("resampled", 1, 5), ("exact", 1, 7)],
    ids=["exact-inproc-mid_a", "resampled-inproc-mid_a", "resampled-worker-mid_a", "exact-worker-mid_b"],
)
def test_stopped_mid_stage_and_resumed_equals_straight_run_bit_for_bit(tmp_path, shards, mode, workers, stop_at):
    path = _manifest(tmp_path, shards, mode, workers)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _train(path, straight)
    _train(path, resumed, stop_at=stop_at)
    assert not (resumed / "model").exists() and (resumed / "checkpoints" / f"step_{stop_at:06d}").is_dir()
    _train(path, resumed, resume=True)
    a = load_file(str(straight / "model" / "model.safetensors"))
    b = load_file(str(resumed / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"
    # the losses of every step after the resume are those of the straight run, exactly
    loss = {r["step"]: r["objective"] for r in read_metrics(straight / "metrics.jsonl", "train")}
    after = [r for r in read_metrics(resumed / "metrics.jsonl", "train") if r["step"] > stop_at]
    assert [r["step"] for r in after] == list(range(stop_at + 1, 10))
    assert all(r["objective"] == loss[r["step"]] for r in after), [(r["step"], r["objective"]) for r in after]
    before = load_file(str(resumed / "checkpoints" / f"step_{stop_at:06d}" / "model.safetensors"))
    assert any(not torch.equal(before[k], a[k]) for k in a)  # the steps after the stop changed the weights
