"""Rendering on a Ray cluster: one Ray task per shard, all writing into one folder every node can see.

``datagen render ... --ray`` starts a local Ray instance (every core of this machine, or ``--workers``);
``datagen render ... --ray ADDRESS`` connects to a running cluster (``auto``, ``HOST:6379`` or ``ray://HOST:10001``).
``scripts/ray_render.py`` is the same with the per-task resources and retries as options.

The driver checks and claims the folder exactly as ``datagen render`` does (same refusals, same ``--resume``),
then submits one task per shard still to make. Each task renders its shard, publishes it atomically and writes
its receipt; ``dataset.json`` is rebuilt after every shard and once more at the end. A task whose worker dies
(killed, out of memory, a node lost) is retried by Ray up to ``max_retries`` times: shard ``i`` is a pure
function of ``(config, seed, i)``, so a retried shard is the same bytes, the per-shard ``flock`` keeps two live
copies from writing it at once, and the retry removes the dead attempt's temp files. An exception raised by the
task itself (a bug, no GL on a node) is not retried: it stops the run, complete shards are kept, and
``--resume`` finishes it.

Ray is optional (``EXTRAS=cluster bash scripts/setup.sh``); it is imported only here. Every node needs this
package installed and the output folder mounted at the same path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from datagen.config import RenderConfig
from datagen.shards import WriteReport, finish_run, prepare_run, render_shard
from loaders.dataset_manifest import ShardEntry

__all__ = ["KILL_HOOK_ENV", "ClusterError", "RayConnectError", "RayUnavailable", "import_ray", "ray_write_shards"]

KILL_HOOK_ENV = "DATAGEN_RAY_TEST_KILL"
"""Test hook, read by the driver: ``"INDEX:MARKER"`` makes the first attempt of shard INDEX SIGKILL its own worker
after writing one sample (creating the file MARKER first, so that the retry runs normally)."""

LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # tasks pass only small records; Ray's default takes 30 % of memory


class RayUnavailable(RuntimeError):
    """``ray`` is not installed."""


class RayConnectError(RuntimeError):
    """No Ray cluster at the given address (nothing was written)."""


class ClusterError(RuntimeError):
    """A shard task failed for good (its own error, or its worker died more than ``max_retries`` times)."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayUnavailable` saying how to install it."""
    try:
        import ray
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        raise RayUnavailable(
            "ray is not installed; install it with: EXTRAS=cluster bash scripts/setup.sh (the cluster extra, "
            "pip install -e '.[cluster]'), or fan out with Slurm (scripts/slurm_render.sh) or plain processes "
            "(datagen render --workers N)"
        ) from None
    return ray


def _kill_after_first_sample(marker: Path) -> Any:
    def hook() -> None:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # an earlier attempt already died: this is the retry
            return
        os.kill(os.getpid(), signal.SIGKILL)

    return hook


def shard_task(config_dict: dict[str, Any], out_dir: str, index: int, kill_hook: str | None = None) -> dict[str, Any]:
    """One Ray task: render shard ``index`` into the claimed folder ``out_dir``; plain data in and out.

    Returns:
        ``{"index", "entry": ShardEntry fields or None (another live writer owns it), "timings", "host", "pid"}``.
    """
    on_sample = None
    if kill_hook:
        kill_index, marker = kill_hook.split(":", 1)
        if int(kill_index) == index and not Path(marker).exists():
            on_sample = _kill_after_first_sample(Path(marker))
    entry, timings = render_shard(RenderConfig.from_dict(config_dict), out_dir, index, on_sample=on_sample)
    return {
        "index": index,
        "entry": None if entry is None else asdict(entry),
        "timings": timings,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def _describe_failure(ray: Any, error: BaseException, index: int, max_retries: int) -> str:
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause if getattr(error, "cause", None) is not None else error
        first = str(cause).strip().splitlines()
        return f"shard {index} failed: {type(cause).__name__}: {first[-1] if first else ''}"
    if isinstance(error, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
        return (
            f"shard {index}: its Ray worker died {max_retries + 1} times (out of memory, killed, or a crash in the "
            "GL driver)"
        )
    return f"shard {index}: {type(error).__name__}: {' '.join(str(error).split())[:300]}"


def ray_write_shards(
    config: RenderConfig,
    out_dir: str | Path,
    shards: range | None = None,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_task: float = 1.0,
    max_retries: int = 3,
    progress: bool = True,
) -> WriteReport:
    """Render shards of ``config`` into ``out_dir`` with one Ray task per shard.

    Args:
        config, out_dir, shards, resume: as :func:`datagen.shards.write_shards`.
        address: a Ray cluster to connect to (``"auto"`` joins the cluster ``ray start`` made on this machine);
            None starts a local instance for this run (and stops it at the end). When this process is already
            connected to Ray, that connection is used.
        num_cpus: CPUs of the local instance (None: all cores); ignored when connecting.
        cpus_per_task: CPUs Ray reserves per shard task.
        max_retries: Ray retries of a task whose worker died.
        progress: tqdm bar over all tasks, in pairs (a shard's pairs count when its task finishes).

    Raises:
        RayConnectError: no Ray cluster at ``address`` (the folder is not touched).
        ClusterError: a task failed for good; the shards finished so far are published and in ``dataset.json``.
    """
    ray = import_ray()
    start = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, TimeoutError, ValueError) as e:
                raise RayConnectError(f"no Ray cluster at {address!r}: {' '.join(str(e).split())}") from None
        else:  # "local": always a new instance, never a cluster that `ray start` left running
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            )
    kill_hook = os.environ.get(KILL_HOOK_ENV) or None
    try:
        dataset, report, todo = prepare_run(config, out_dir, shards, resume)
        task = ray.remote(num_cpus=cpus_per_task, max_retries=max_retries, retry_exceptions=False)(shard_task)
        pending = {task.remote(config.to_dict(), str(dataset.root), i, kill_hook): i for i in todo}
        with tqdm(
            total=sum(config.shard_count(i) for i in todo), unit="pair", disable=not progress, smoothing=0.05
        ) as bar:
            bar.set_postfix_str(f"shards 0/{len(todo)}")
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except (ray.exceptions.RayError, OSError) as e:
                        for other in pending:
                            with contextlib.suppress(Exception):
                                ray.cancel(other, force=True)
                        pending.clear()
                        finish_run(dataset, report, time.perf_counter() - start)
                        raise ClusterError(_describe_failure(ray, e, index, max_retries)) from e
                    entry = None if record["entry"] is None else ShardEntry(**record["entry"])
                    report.add(record["index"], entry, record["timings"])
                    bar.update(config.shard_count(index))
                    bar.set_postfix_str(f"shards {len(todo) - len(pending)}/{len(todo)}")
    finally:
        if started_here:
            ray.shutdown()
    return finish_run(dataset, report, time.perf_counter() - start)
