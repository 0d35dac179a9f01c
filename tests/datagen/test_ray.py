"""``datagen render --ray`` on real Ray (the cluster extra): a local 2-CPU instance started by the CLI, a running
instance joined by its address, a worker SIGKILLed mid-shard and retried, and ``scripts/ray_render.py``. Every run
must give the plain run's shards and manifest byte for byte and pass ``datagen verify``.

CI runs these after installing the extra (``.ci/run``: ``pytest -m ray``); there a missing ray fails them instead
of skipping them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datagen.cli import main
from datagen.cluster import KILL_HOOK_ENV
from datagen.verify import verify_dataset

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--category", "chair", "--n", "6", "--size", "32", "--shard-size", "2"]

pytestmark = [pytest.mark.ray, pytest.mark.integration]


@pytest.fixture(scope="module", autouse=True)
def _ray_installed(request):
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError:
        if "ray" in (request.config.getoption("markexpr") or ""):
            pytest.fail("-m ray asks for the Ray tests, but ray is not installed: EXTRAS=cluster bash scripts/setup.sh")
        pytest.skip("ray is not installed (EXTRAS=cluster bash scripts/setup.sh); CI runs these with -m ray")


def published(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def datagen(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "RAY_USAGE_STATS_ENABLED": "0",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "datagen", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A plain single-process run of ARGS."""
    root = tmp_path_factory.mktemp("ray") / "plain"
    assert main(["render", *ARGS, "--no-progress", "--out", str(root), "--workers", "1"]) == 0
    return root


def test_ray_local_instance_matches_a_plain_run(reference, tmp_path):
    """``--ray`` alone: the CLI starts (and stops) a local 2-CPU Ray instance; progress over all tasks."""
    out = tmp_path / "local"
    r = datagen("render", *ARGS, "--out", str(out), "--workers", "2", "--ray")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Ray tasks on a local Ray instance with 2 CPUs" in r.stdout
    assert "6/6" in r.stderr and "shards 3/3" in r.stderr  # the tqdm bar over all tasks reached the end
    assert f"dataset: {out}  (complete: 3/3 shards, 6 pairs" in r.stdout
    assert published(out) == published(reference)


def test_no_cluster_at_the_address_is_one_line_and_touches_nothing(tmp_path):
    """``--ray auto`` with no cluster running: exit 2, one line, no folder (runs before the module's instance)."""
    from ray._private.services import find_gcs_addresses

    if find_gcs_addresses():  # `auto` would join it
        pytest.skip("a Ray cluster is running on this machine")
    out = tmp_path / "none"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run(
        [sys.executable, "-m", "datagen", "render", *ARGS, "--out", str(out), "--ray", "auto"],
        env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("datagen render: error: no Ray cluster at 'auto'")
    assert not out.exists()


@pytest.fixture(scope="module")
def ray_cluster():
    """A running 2-CPU Ray instance (as `ray start` would leave): its GCS address."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 1024**2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_killed_worker_is_retried_and_the_dataset_verifies(reference, ray_cluster, tmp_path):
    """``--ray ADDRESS``: the first attempt of shard 1 SIGKILLs its worker after writing one sample; Ray retries
    the task, the retry removes the dead attempt's temp file, and the dataset is the plain run's."""
    out, marker = tmp_path / "killed", tmp_path / "killed-once"
    r = datagen(
        "render", *ARGS, "--no-progress", "--out", str(out), "--ray", ray_cluster,
        env={KILL_HOOK_ENV: f"1:{marker}"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert marker.exists(), "the kill hook never fired: shard 1's first attempt was not killed"
    assert f"Ray tasks on {ray_cluster}" in r.stdout
    assert published(out) == published(reference)
    assert list((out / ".datagen" / "tmp").iterdir()) == []  # nothing left of the killed attempt
    report = verify_dataset(out, samples=2, progress=False)
    assert not any(s.file_problems or s.read_problems for s in report.shards)
    assert datagen("verify", str(out), "--samples", "0", "--no-progress").returncode == 0


def test_ray_render_script_is_the_cli(reference, ray_cluster, tmp_path, capsys):
    """``scripts/ray_render.py`` with its own options, inside a process already connected to Ray."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import ray_render
    finally:
        sys.path.remove(str(REPO / "scripts"))
    out = tmp_path / "script"
    args = [*ARGS, "--no-progress", "--out", str(out), "--cpus-per-task", "1", "--max-retries", "1"]
    assert ray_render.main(args) == 0
    assert "Ray tasks on a local Ray instance" in capsys.readouterr().out
    assert published(out) == published(reference)


def test_task_error_stops_the_run_with_one_line(ray_cluster, tmp_path):
    """A task's own exception is not retried: the run stops naming the shard and the cause, exit 1."""
    out = tmp_path / "bad"
    r = datagen(
        "render", *ARGS, "--no-progress", "--out", str(out), "--ray", ray_cluster,
        env={KILL_HOOK_ENV: "not-a-number:x"},
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("datagen render: error: shard ") and "ValueError" in err and "--resume" in err
