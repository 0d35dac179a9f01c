"""End to end: freshly rendered chair shards (the real ``datagen render``) -> ``semmatch train`` -> checkpoints,
metrics and a standalone matcher; and a 2-process ``torchrun`` (gloo, CPU) on uneven shards whose ranks end on
identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_manifest import tiny_model_and_data

from training.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env["TQDM_DISABLE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[str, Path]:
    """Train shards of uneven size (4 + 4 + 1 pairs) and held-out pairs of other instances (another seed)."""
    root = tmp_path_factory.mktemp("chairs")
    render = [sys.executable, "-m", "datagen", "render", "--category", "chair", "--size", "56", "--workers", "1"]
    _run(render + ["--n", "9", "--shard-size", "4", "--seed", "1", "--out", str(root / "train"), "--no-progress"])
    _run(render + ["--n", "4", "--shard-size", "4", "--seed", "2", "--out", str(root / "test"), "--no-progress"])
    return {"train": root / "train", "test": root / "test"}


def test_smoke_manifest_runs_end_to_end_from_rendered_shards(shards, tmp_path):
    run_dir = tmp_path / "run"
    _run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "manifests/runs/smoke_cpu.yaml",
            f"data.sources.chair.path={shards['train']}",
            f"eval.source.path={shards['test']}",
            f"out_dir={run_dir}",
            "cpu_threads=1",
            "--no-progress",
        ]
    )
    records = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    assert [r["stage"] for r in train] == ["dense", "dense", "sparse", "cycle_conf", "smooth"]
    for r in train:
        assert all(isinstance(v, float) for k, v in r.items() if k.startswith("loss_")), r  # finite
    assert "loss_sparse_epe" in train[2] and "loss_cycle" in train[3] and "loss_smoothness" in train[4]
    evals = {r["split"]: r for r in records if r["split"] in ("eval", "baseline")}
    assert set(evals) == {"eval", "baseline"}
    assert evals["eval"]["pairs"] == 8  # 4 held-out pairs, both directions
    assert 0.0 <= evals["eval"]["pck@0.1"] <= 1.0 and evals["eval"]["epe_px"] > 0
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step_000005"
    assert json.loads((run_dir / "model" / "model_config.json").read_text())["kind"] == "semantic"
    assert any((run_dir / "tb").iterdir())


def test_torchrun_two_ranks_on_uneven_shards_end_on_identical_weights(shards, tmp_path):
    run_dir = tmp_path / "ddp"
    proc = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "training",
            "train",
            "manifests/runs/smoke_cpu.yaml",
            f"data.sources.chair.path={shards['train']}",
            f"eval.source.path={shards['test']}",
            f"out_dir={run_dir}",
            "data.mode=exact",  # every sample once per epoch: 9 pairs over 2 ranks, evened out by the loaders
            "distributed.backend=gloo",
            "cpu_threads=1",
            "--no-progress",
        ],
        timeout=300,
    )
    final = read_metrics(run_dir / "metrics.jsonl", "final")
    assert len(final) == 1, proc.stderr[-2000:]
    digests = final[0]["weights_sha256_by_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert final[0]["ranks_in_sync"] == 1.0
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["environment"]["world_size"] == 2 and info["environment"]["backend"] == "gloo"
    assert sorted(p.name for p in (run_dir / "checkpoints" / "step_000005").glob("rank_*.pt")) == [
        "rank_00000.pt",
        "rank_00001.pt",
    ]


def test_fsdp2_under_torchrun_matches_ddp(tmp_path):
    """FSDP2 (``fully_shard`` per block, full checkpoints gathered) trains to the same weights as DDP, across a
    stage switch that changes the trainable set."""
    import yaml
    from safetensors.torch import load_file

    manifest = {
        "name": "fsdp",
        "cpu_threads": 1,
        **tiny_model_and_data(),
        "stages": [
            {
                "name": "a",
                "steps": 2,
                "lr": 1e-3,
                "resolution": [28, 28],
                "data": {"syn": 1},
                "losses": {"dense_epe": {}},
            },
            {
                "name": "b",
                "steps": 2,
                "lr": 1e-3,
                "resolution": [28, 28],
                "data": {"syn": 1},
                "trainable": ["@all"],
                "losses": {"dense_epe": {}, "cycle": {}},
            },
        ],
        "checkpoint": {"every": 2},
        "log": {"every": 1, "tensorboard": False},
        "distributed": {"backend": "gloo"},
    }
    path = tmp_path / "fsdp.yaml"
    path.write_text(yaml.safe_dump(manifest))
    weights = {}
    for strategy in ("fsdp", "ddp"):
        out = tmp_path / strategy
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        _run(torchrun + ["-m", "training", "train", str(path), f"out_dir={out}", f"distributed.strategy={strategy}"])
        weights[strategy] = load_file(str(out / "model" / "model.safetensors"))
    a, b = weights["fsdp"], weights["ddp"]
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-6, k
