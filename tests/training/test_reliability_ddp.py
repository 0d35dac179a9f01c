"""Every rank of a ``torchrun`` run ends, on every way out, in bounded time and with a truthful exit status.

Two CPU ranks (gloo) train the tiny matcher on in-memory synthetic pairs. A fault injected on one rank mid-run
(``tests/ddp_fault_entry.py``) must end both ranks non-zero within 60 s of the fault; SIGTERM to ``torchrun`` (what
a scheduler sends) must reach both ranks as a clean exit (status 143, or the error of a collective the other rank
left) within 60 s. The clean-exit path itself is soaked by ``scripts/torchrun_soak.sh`` (50 runs in a row).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tiny_manifest import tiny_model_and_data

from training.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "tests" / "ddp_fault_entry.py"
pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TQDM_DISABLE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _manifest(tmp_path: Path, steps: int) -> Path:
    d = {
        "name": "ddp_fault",
        "device": "cpu",
        "cpu_threads": 1,
        **tiny_model_and_data(),
        "stages": [
            {
                "name": "a",
                "steps": steps,
                "lr": 1e-3,
                "resolution": [28, 28],
                "data": {"syn": 1},
                "losses": {"dense_epe": {}},
            }
        ],
        "checkpoint": {"every": 1000},
        "log": {"every": 1, "tensorboard": False},
        "distributed": {"backend": "gloo"},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _torchrun(tmp_path: Path, fail_rank: int, fail_step: int, steps: int) -> tuple[list[str], Path, Path]:
    status, run_dir = tmp_path / "status", tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(ENTRY)]
    cmd += [str(fail_rank), str(fail_step), str(status), str(_manifest(tmp_path, steps)), f"out_dir={run_dir}"]
    return [*cmd, "--no-progress"], status, run_dir


def _statuses(status_dir: Path) -> dict[int, dict]:
    return {int(p.stem.split("_")[1]): json.loads(p.read_text()) for p in status_dir.glob("rank_*.json")}


def test_one_rank_raising_mid_run_ends_both_ranks_nonzero_within_60s(tmp_path):
    cmd, status_dir, run_dir = _torchrun(tmp_path, fail_rank=1, fail_step=4, steps=200)
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    ended = time.time()
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "injected fault on rank 1 in step 4" in proc.stderr
    statuses = _statuses(status_dir)
    assert sorted(statuses) == [0, 1], proc.stderr[-3000:]  # both ranks exited through Python (none was killed)
    for r in statuses.values():
        assert r["status"] not in (0, "unknown"), r  # non-zero: an int status or the exception that ended it
    assert statuses[1]["status"].startswith("RuntimeError: injected fault")
    fault_time = statuses[1]["time"]
    assert max(r["time"] for r in statuses.values()) - fault_time < 60
    assert ended - fault_time < 60  # torchrun itself is done too
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl", "train")]
    assert steps == [1, 2, 3]  # the fault came mid-run, after three synchronised steps


def test_sigterm_to_torchrun_ends_both_ranks_cleanly_within_60s(tmp_path):
    cmd, status_dir, run_dir = _torchrun(tmp_path, fail_rank=-1, fail_step=-1, steps=100_000)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not (run_dir / "metrics.jsonl").is_file() or not read_metrics(run_dir / "metrics.jsonl", "train"):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline, "training did not start within 180 s"
            time.sleep(0.5)
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    statuses = _statuses(status_dir)
    assert sorted(statuses) == [0, 1], err[-3000:]  # neither rank had to be killed
    for r in statuses.values():
        assert r["status"] not in (0, "unknown"), r
        assert r["time"] - sent < 60
    assert any(r["status"] == 143 for r in statuses.values()), statuses  # SIGTERM became a clean exit
    assert "stopped by SIGTERM" in err


def test_teardown_watchdog_ends_a_rank_deadlocked_while_holding_the_interpreter_lock():
    """The hang this guards against: the main thread blocked in C code with the interpreter lock held (as in
    ``~ProcessGroupGloo`` joining a thread that waits for that lock). No Python-level timer can fire then; the
    watchdog's C thread must dump the stacks and end the process with status 1."""
    code = (
        "import ctypes\n"
        "from training.train.distributed import teardown_watchdog\n"
        "with teardown_watchdog(1.0):\n"
        "    ctypes.PyDLL(None).sleep(60)  # PyDLL keeps the interpreter lock during the call\n"
    )
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert time.time() - t0 < 30
    assert "Timeout" in proc.stderr and "<string>" in proc.stderr  # the stack of the stuck thread
