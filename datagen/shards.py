"""Writing pair shards: deterministic WebDataset tars, made atomically, in parallel, resumably.

A shard is a plain (uncompressed) tar of the schema's members, grouped by sample key, written exactly as
``webdataset.TarWriter(mtime=0)`` writes them (PAX tar, members of a sample in sorted order, mode 0o444,
owner ``bigdata``, mtime 0), so stock ``webdataset`` and ``tar`` read it and the same samples always give the
same bytes. It is written to a temp file, fsynced, renamed into place and recorded (see
:mod:`datagen.dataset_dir` for how concurrent writers share a folder).

Two entry points:

* :func:`write_shard` writes any iterator of schema sample dicts as shard ``i`` of a :class:`DatasetDir`;
  ``datagen real`` uses it for real pairs.
* :func:`write_shards` renders shards ``i:j`` of a :class:`~datagen.config.RenderConfig` with ``N`` worker
  processes (spawn: each imports its own GL), a tqdm bar in pairs/s and per-stage timings.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, BinaryIO

from tqdm import tqdm

import datagen
from datagen.config import DROPPED_PAIRS, RenderConfig
from datagen.dataset_dir import DatasetDir
from loaders.dataset_manifest import DatasetManifest, ShardEntry
from loaders.members import encode_sample

__all__ = [
    "TAR_OWNER",
    "ShardWriteError",
    "format_bytes",
    "WriteReport",
    "sample_members",
    "write_tar",
    "write_shard",
    "render_generator_record",
    "render_dataset_dir",
    "render_shard",
    "prepare_run",
    "finish_run",
    "write_shards",
]

GenerateFn = Callable[[RenderConfig, int, "dict[str, float] | None"], Iterator[Mapping[str, Any]]]

TAR_OWNER = "bigdata"  # webdataset.TarWriter's default owner: our tars equal its output byte for byte
TAR_MODE = 0o444


def format_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class ShardWriteError(RuntimeError):
    """A shard could not be written as asked (bad sample keys, wrong sample count)."""


class _HashingFile:
    """A write-only file wrapper that hashes and counts the bytes going through it."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.nbytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.nbytes += len(data)
        return self._f.write(data)

    def tell(self) -> int:
        return self.nbytes


def sample_members(sample: Mapping[str, Any]) -> tuple[str, list[tuple[str, bytes]]]:
    """The tar members of one sample: ``(key, [(field, bytes), ...])`` with fields sorted.

    ``sample`` is a schema sample dict (encoded here with :func:`loaders.schema.encode_sample`) or an
    already-encoded member dict (``__key__`` plus ``pair.json``, ``img0.jpg``, ... as bytes).
    """
    members = sample if "pair.json" in sample else encode_sample(sample)
    key = str(members["__key__"])
    if not key or "." in key or "/" in key:
        raise ShardWriteError(
            f"sample key {key!r} must be non-empty without '.' or '/' (webdataset splits keys at dots)"
        )
    fields = []
    for name in sorted(members):
        if name.startswith("_"):
            continue
        value = members[name]
        fields.append((name, value.encode() if isinstance(value, str) else bytes(value)))
    return key, fields


def write_tar(
    samples: Iterable[Mapping[str, Any]],
    f: BinaryIO,
    timings: dict[str, float] | None = None,
    on_sample: Any = None,
) -> tuple[int, int, str]:
    """Write samples to an open binary file as one WebDataset tar.

    Args:
        samples: schema sample dicts (or encoded member dicts) with unique ``__key__``.
        f: binary file opened for writing.
        timings: when given, seconds are added under ``encode`` and ``write``.
        on_sample: called with no arguments after each sample (progress).

    Returns:
        ``(samples, bytes, sha256 hex)`` of what was written.
    """
    timings = {} if timings is None else timings
    out = _HashingFile(f)
    seen: set[str] = set()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for sample in samples:
            t0 = time.perf_counter()
            key, fields = sample_members(sample)
            t1 = time.perf_counter()
            if key in seen:
                raise ShardWriteError(f"sample key {key!r} appears twice in one shard")
            seen.add(key)
            for name, data in fields:
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size, info.mtime, info.mode = len(data), 0, TAR_MODE
                info.uname = info.gname = TAR_OWNER
                tar.addfile(info, io.BytesIO(data))
            timings["encode"] = timings.get("encode", 0.0) + (t1 - t0)
            timings["write"] = timings.get("write", 0.0) + (time.perf_counter() - t1)
            if on_sample is not None:
                on_sample()
    return len(seen), out.nbytes, out.sha256.hexdigest()


def write_shard(
    dataset: DatasetDir,
    index: int,
    samples: Iterable[Mapping[str, Any]],
    expected_samples: int | None = None,
    timings: dict[str, float] | None = None,
    on_sample: Any = None,
) -> ShardEntry | None:
    """Write ``samples`` as shard ``index`` of ``dataset``: temp file, fsync, rename, receipt, manifest.

    Args:
        dataset: the claimed dataset folder (:meth:`DatasetDir.claim` done).
        index: shard index in ``0 .. dataset.n_shards - 1``.
        samples: the shard's samples in order (consumed lazily, so a generator renders as it writes).
        expected_samples: when given, a shard with another count is an error and is not published.
        timings: seconds accumulated under ``encode`` and ``write``.
        on_sample: progress callback, called after each sample.

    Returns:
        The shard's manifest entry, or None when another live process owns the shard (it makes it instead).
    """
    if not 0 <= index < dataset.n_shards:
        raise ShardWriteError(f"shard {index} outside 0..{dataset.n_shards - 1}")
    timings = {} if timings is None else timings
    with dataset.own_shard(index) as owned:
        if not owned:
            return None
        tmp = dataset.temp_path(index)
        try:
            with open(tmp, "wb") as f:
                n, nbytes, sha = write_tar(samples, f, timings, on_sample)
                t0 = time.perf_counter()
                f.flush()
                os.fsync(f.fileno())
                timings["write"] = timings.get("write", 0.0) + time.perf_counter() - t0
            if expected_samples is not None and n != expected_samples:
                raise ShardWriteError(f"shard {index}: the generator gave {n} samples, expected {expected_samples}")
            dropped = int(timings.pop(DROPPED_PAIRS, 0))  # a count, not seconds: it goes to the manifest
            return dataset.commit_shard(index, tmp, n, nbytes, sha, dropped=dropped)
        finally:
            Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------
# rendered datasets


@dataclass
class WriteReport:
    """What :func:`write_shards` did. Times in seconds; ``timings`` sums the per-stage times of made shards."""

    out_dir: Path
    requested: list[int]
    made: list[ShardEntry] = field(default_factory=list)
    kept: list[ShardEntry] = field(default_factory=list)  # complete before this run (``resume``)
    busy: list[int] = field(default_factory=list)  # owned by another live process, left to it
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    manifest: DatasetManifest | None = None

    def add(self, index: int, entry: ShardEntry | None, timings: Mapping[str, float]) -> None:
        """Record the outcome of one shard job."""
        if entry is None:
            self.busy.append(index)
        else:
            self.made.append(entry)
        for k, v in timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v

    @property
    def pairs_made(self) -> int:
        return sum(e.samples for e in self.made)

    @property
    def bytes_made(self) -> int:
        return sum(e.bytes for e in self.made)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs_made / self.seconds if self.seconds > 0 else 0.0


def render_generator_record(config: RenderConfig) -> dict[str, Any]:
    """The manifest's ``generator`` record of a rendered dataset."""
    return {
        "name": "datagen.render",
        "version": datagen.__version__,
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
    }


def render_dataset_dir(config: RenderConfig, out_dir: str | Path) -> DatasetDir:
    """The :class:`DatasetDir` of the dataset ``config`` describes, in ``out_dir``."""
    return DatasetDir(out_dir, render_generator_record(config), root_seed=config.seed, n_shards=config.n_shards)


def _default_generate() -> GenerateFn:
    from datagen.pipeline import generate_shard  # imported in the worker process: it owns its GL context

    return generate_shard


_PROGRESS_QUEUE: Any = None  # set in worker processes: one item per written sample


def _init_worker(queue: Any) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


def _report_sample() -> None:
    _PROGRESS_QUEUE.put(1)


def render_shard(
    config: RenderConfig,
    out_dir: str | Path,
    index: int,
    generate: GenerateFn | None = None,
    on_sample: Callable[[], None] | None = None,
) -> tuple[ShardEntry | None, dict[str, float]]:
    """Render shard ``index`` of ``config`` into a claimed folder (one Ray task or one pool job).

    Returns:
        ``(entry, timings)``; ``entry`` is None when another live process owns the shard.
    """
    generate = generate or _default_generate()
    timings: dict[str, float] = {}
    samples = generate(config, index, timings)
    entry = write_shard(
        render_dataset_dir(config, out_dir), index, samples, config.shard_count(index), timings, on_sample
    )
    return entry, timings


def _render_shard_job(config_dict: dict[str, Any], out_dir: str, index: int, generate: GenerateFn | None) -> Any:
    entry, timings = render_shard(RenderConfig.from_dict(config_dict), out_dir, index, generate, _report_sample)
    return index, entry, timings


def write_shards(
    config: RenderConfig,
    out_dir: str | Path,
    shards: range | None = None,
    workers: int = 1,
    resume: bool = False,
    progress: bool = True,
    generate: GenerateFn | None = None,
) -> WriteReport:
    """Render shards of ``config`` into ``out_dir`` and record them in its ``dataset.json``.

    Args:
        config: the dataset.
        out_dir: its folder; created if missing. Must be new, empty, or hold this same dataset.
        shards: which shards to make (default all); the unit of cluster fan-out.
        workers: processes; 1 renders in this process, more start spawned workers that import GL themselves.
        resume: keep requested shards that are already complete (checked by sha256) and make the rest;
            without it, a folder that already holds any requested shard is refused.
        progress: show a tqdm bar (pairs/s) on stderr.
        generate: ``generate(config, shard_index, timings) -> Iterator[sample]``, default
            :func:`datagen.pipeline.generate_shard`; must be picklable (module-level) when ``workers > 1``.

    Raises:
        OutputFolderError / DatasetExistsError: the folder cannot take this dataset (nothing is touched).
    """
    dataset, report, todo = prepare_run(config, out_dir, shards, resume)
    start = time.perf_counter()
    bar = tqdm(total=sum(config.shard_count(i) for i in todo), unit="pair", disable=not progress, smoothing=0.05)
    try:
        for index, entry, timings in _run_jobs(config, dataset.root, todo, workers, generate, bar):
            report.add(index, entry, timings)
    finally:
        bar.close()
    return finish_run(dataset, report, time.perf_counter() - start)


def prepare_run(
    config: RenderConfig, out_dir: str | Path, shards: range | None, resume: bool
) -> tuple[DatasetDir, WriteReport, list[int]]:
    """Check and claim the folder, find what ``resume`` keeps: ``(dataset, report, shards still to make)``.

    Shared by the local runner (:func:`write_shards`) and the Ray runner (:mod:`datagen.cluster`).
    """
    shards = range(config.n_shards) if shards is None else shards
    if shards.step != 1 or not (0 <= shards.start <= shards.stop <= config.n_shards) or len(shards) == 0:
        raise ValueError(f"shards {shards.start}:{shards.stop} must be a non-empty range within 0:{config.n_shards}")
    dataset = render_dataset_dir(config, out_dir)
    dataset.check(list(shards), resume)
    dataset.claim()
    report = WriteReport(out_dir=dataset.root, requested=list(shards))
    report.kept = list(dataset.completed(list(shards), checksums=True).values()) if resume else []
    kept = {e.index for e in report.kept}
    return dataset, report, [i for i in shards if i not in kept]


def finish_run(dataset: DatasetDir, report: WriteReport, seconds: float) -> WriteReport:
    """Sort the report, refresh ``dataset.json`` from all receipts and attach it."""
    report.made.sort(key=lambda e: e.index)
    report.busy.sort()
    report.seconds = seconds
    report.manifest = dataset.sync_manifest()
    return report


def _run_jobs(
    config: RenderConfig, root: Path, todo: list[int], workers: int, generate: GenerateFn | None, bar: tqdm
) -> list[tuple[int, ShardEntry | None, dict[str, float]]]:
    if not todo:
        return []
    if workers <= 1 or len(todo) == 1:
        out = []
        for i in todo:
            entry, timings = render_shard(config, root, i, generate, lambda: bar.update(1))
            out.append((i, entry, timings))
        return out
    ctx = multiprocessing.get_context("spawn")  # never fork: a GL context must not cross into a child
    queue = ctx.Queue()
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(queue,))
    out = []
    try:
        pending = {pool.submit(_render_shard_job, config.to_dict(), str(root), i, generate) for i in todo}
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(queue, bar)
            out.extend(f.result() for f in finished)  # re-raises a worker's error here
        _drain(queue, bar)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _drain(queue: Any, bar: tqdm) -> None:
    n = 0
    with contextlib.suppress(Empty):
        while True:
            n += queue.get_nowait()
    if n:
        bar.update(n)
