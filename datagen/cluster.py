"""Rendering on a Ray cluster: one Ray task per shard, all writing into one folder every node can see.

The driver checks and claims the folder exactly as ``datagen render`` does (same refusals, same ``--resume``),
then submits :func:`datagen.shards.render_shard_record` once per shard still to make. Each task renders its
shard, publishes it atomically and writes its receipt; ``dataset.json`` is rebuilt after every shard and once
more at the end. A task that dies is retried by Ray (``max_retries``); a retried or duplicated shard is the
same bytes, and the per-shard lock keeps two live copies from writing it at once.

Ray is optional (``pip install "ray>=2.9"`` or ``pip install -e ".[cluster]"``); it is imported only here.
Every node needs this package installed and the output folder mounted at the same path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from datagen.config import RenderConfig
from datagen.shards import WriteReport, finish_run, prepare_run, render_shard_record
from loaders.dataset_manifest import ShardEntry

__all__ = ["RayUnavailable", "import_ray", "ray_write_shards"]


class RayUnavailable(RuntimeError):
    """``ray`` is not installed."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayUnavailable` saying how to install it."""
    try:
        import ray
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        raise RayUnavailable(
            "ray is not installed; install it with: pip install 'ray>=2.9' (or pip install -e '.[cluster]'), "
            "or fan out with Slurm (scripts/slurm_render.sh) or plain processes (datagen render --workers N)"
        ) from None
    return ray


def ray_write_shards(
    config: RenderConfig,
    out_dir: str | Path,
    shards: range | None = None,
    resume: bool = False,
    address: str | None = None,
    cpus_per_task: float = 1.0,
    max_retries: int = 2,
    progress: bool = True,
) -> WriteReport:
    """Render shards of ``config`` into ``out_dir`` with one Ray task per shard.

    Args:
        config, out_dir, shards, resume: as :func:`datagen.shards.write_shards`.
        address: Ray cluster address (``"auto"`` joins the running cluster); None starts a local one.
        cpus_per_task: CPUs Ray reserves per shard task.
        max_retries: Ray retries of a task whose worker died.
        progress: tqdm bar (updated per finished shard).
    """
    ray = import_ray()
    dataset, report, todo = prepare_run(config, out_dir, shards, resume)
    start = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=cpus_per_task, max_retries=max_retries)(render_shard_record)
        pending = [task.remote(config.to_dict(), str(dataset.root), i) for i in todo]
        with tqdm(total=sum(config.shard_count(i) for i in todo), unit="pair", disable=not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                record = ray.get(done[0])  # re-raises a task's error (after its retries) here
                entry = None if record["entry"] is None else ShardEntry(**record["entry"])
                report.add(record["index"], entry, record["timings"])
                bar.update(config.shard_count(record["index"]))
    finally:
        if started_here:
            ray.shutdown()
    return finish_run(dataset, report, time.perf_counter() - start)
