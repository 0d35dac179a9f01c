"""Two "nodes" on one machine: two ``torchrun --nnodes 2`` launchers (node ranks 0 and 1) meet through a c10d
rendezvous on localhost, as the launchers of a 2-node Slurm job would, and train the tiny matcher (gloo, CPU) on
rendered shards. Checks what multi-node launches get wrong: every rank sees its global ``RANK`` (not its
``LOCAL_RANK``) and the node's ``GROUP_RANK``; the ranks take disjoint data (the shards split by global rank);
every rank runs the same number of batches; and all ranks end with identical parameters.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from tiny_manifest import tiny_model_and_data

from training.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
NODES, PROCS_PER_NODE, STEPS = 2, 2, 2  # 4 ranks; 8 one-pair shards: 2 shards per rank, one epoch
pytestmark = pytest.mark.integration

# the torchrun entry: `semmatch train` with each rank recording its environment and the keys of every batch
ENTRY = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    from training.cli import main as cli
    from training.train.trainer import Trainer

    record = {k: os.environ[k] for k in ("RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
    record["batches"] = []
    original = Trainer._train_step

    def recording(self, batch, *args, **kwargs):
        record["batches"].append(list(batch["key"]))
        return original(self, batch, *args, **kwargs)

    Trainer._train_step = recording
    status = cli(["train", *sys.argv[2:]])
    Path(sys.argv[1], f"rank_{record['RANK']}.json").write_text(json.dumps(record))
    sys.exit(status)
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env["TQDM_DISABLE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """8 pairs in 8 shards of 1: each of the 4 ranks gets 2 whole shards."""
    out = tmp_path_factory.mktemp("multinode") / "chairs"
    cmd = [sys.executable, "-m", "datagen", "render", "--category", "chair", "--n", "8", "--size", "32"]
    cmd += ["--shard-size", "1", "--seed", "3", "--workers", "1", "--no-progress", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _manifest(tmp_path: Path, data: Path) -> Path:
    d = {
        "name": "multinode",
        "device": "cpu",
        "cpu_threads": 1,
        **tiny_model_and_data(),
        "stages": [
            {
                "name": "a",
                "steps": STEPS,
                "lr": 1e-3,
                "resolution": [28, 28],
                "data": {"chair": 1},
                "losses": {"dense_epe": {}},
            }
        ],
        "checkpoint": {"every": 1000},
        "log": {"every": 1, "tensorboard": False},
        "distributed": {"backend": "gloo"},
    }
    d["data"] = {"sources": {"chair": {"path": str(data)}}, "batch_size": 1, "workers": 0, "mode": "exact"}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def test_two_nodes_by_c10d_rendezvous_train_in_step(shards, tmp_path):
    entry, records, run_dir = tmp_path / "entry.py", tmp_path / "ranks", tmp_path / "run"
    entry.write_text(ENTRY)
    records.mkdir()
    manifest = _manifest(tmp_path, shards)
    port = _free_port()
    launchers = []
    for node in range(NODES):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(NODES)]
        cmd += ["--nproc-per-node", str(PROCS_PER_NODE), "--node-rank", str(node)]
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}", "--rdzv-id", "multinode-test"]
        cmd += ["--rdzv-conf", f"is_host={int(node == 0)}", "--local-addr", "127.0.0.1", "--max-restarts", "0"]
        cmd += [str(entry), str(records), str(manifest), f"out_dir={run_dir}", "--no-progress"]
        launchers.append(
            subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = []
    try:
        for proc in launchers:
            outputs.append(proc.communicate(timeout=240))
    finally:
        for proc in launchers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for node, (proc, (_, err)) in enumerate(zip(launchers, outputs)):
        assert proc.returncode == 0, f"node {node}:\n{err[-3000:]}"

    world = NODES * PROCS_PER_NODE
    ranks = {int(p.stem.split("_")[1]): json.loads(p.read_text()) for p in records.glob("rank_*.json")}
    assert sorted(ranks) == list(range(world))
    for rank, r in ranks.items():  # global rank = node rank * procs per node + local rank
        assert r["WORLD_SIZE"] == str(world) and r["LOCAL_WORLD_SIZE"] == str(PROCS_PER_NODE)
        assert int(r["GROUP_RANK"]) * PROCS_PER_NODE + int(r["LOCAL_RANK"]) == rank
    assert {r["GROUP_RANK"] for r in ranks.values()} == {str(n) for n in range(NODES)}
    assert [len(r["batches"]) for r in ranks.values()] == [STEPS] * world  # equal per-rank batch counts
    keys = [k for r in ranks.values() for b in r["batches"] for k in b]
    assert len(set(keys)) == len(keys) == 8, keys  # one epoch: every pair exactly once over all ranks ...
    shards_by_rank = [{k.split("_")[0] for b in r["batches"] for k in b} for r in ranks.values()]
    assert all(len(s) == 2 for s in shards_by_rank)  # ... two whole shards per rank (split by global rank)

    final = read_metrics(run_dir / "metrics.jsonl", "final")
    assert len(final) == 1
    digests = final[0]["weights_sha256_by_rank"]
    assert len(digests) == world and len(set(digests)) == 1  # identical parameters on every rank
    assert final[0]["ranks_in_sync"] == 1.0
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["environment"]["world_size"] == world and info["environment"]["backend"] == "gloo"
