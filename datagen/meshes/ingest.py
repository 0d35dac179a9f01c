"""The ingest driver: every source through every stage, in parallel, resumable, with a report.

For each source the driver runs, in a worker process, every stage of :data:`datagen.meshes.stages.STAGES` whose
record is missing, in order, stopping at a rejection. Records are the truth: a killed run re-run with the same
arguments redoes nothing that finished (a mesh whose source file changed size is redone). At the end it writes
``intake.json`` (every source with its status, reason, notes and per-stage outcome) and returns an
:class:`IngestReport` for the summary table.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from datagen.meshes.discover import Collection, Source
from datagen.meshes.library import (
    FORMAT_VERSION,
    INTAKE_FILE,
    LIBRARY_FILE,
    TMP_PREFIX,
    LibraryError,
    atomic_write_json,
    read_json,
)
from datagen.meshes.stages import STAGES, Stage

__all__ = [
    "IngestReport",
    "ingest",
    "ingest_collection",
    "plan_collection",
    "library_options",
    "process_mesh",
    "STATUSES",
]

STATUSES = ("accepted", "repaired", "rejected")
# options that change what a stage makes: a library refuses a run with different values
_IDENTITY_KEYS = (
    "format_version",
    "category",
    "up",
    "front",
    "max_faces",
    "parts",
    "max_texture_side",
    "reference_size_m",
)


@dataclass
class IngestReport:
    """Outcome of one ingest run.

    Attributes:
        entries: one per source (the ``intake.json`` rows), in source order.
        done_now: mesh ids processed by this run; kept: ids whose every stage was already done.
        seconds: wall time; mesh_seconds: per mesh processed now, the sum of its stages' times.
    """

    lib_dir: Path
    layout: str
    entries: list[dict[str, Any]]
    done_now: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mesh_seconds: list[float] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(e["status"] == status for e in self.entries)


def library_options(
    category: str,
    collection: Collection,
    up: str | None,
    front: str | None,
    max_faces: int,
    parts: str,
    max_texture_side: int,
    reference_size_m: float,
) -> dict[str, Any]:
    """The library's ``library.json`` content for a run."""
    return {
        "format_version": FORMAT_VERSION,
        "category": category,
        "up": up or collection.default_up,
        "front": front or collection.default_front,
        "max_faces": int(max_faces),
        "parts": parts,
        "max_texture_side": int(max_texture_side),
        "reference_size_m": round(float(reference_size_m), 9),
        "layout": collection.layout,
        "source": str(collection.root),
    }


def _check_library(lib_dir: Path, options: dict[str, Any]) -> None:
    """Create ``library.json``, or refuse when the folder holds a library made with other options."""
    info = lib_dir / LIBRARY_FILE
    if info.is_file():
        old = read_json(info)
        diff = [k for k in _IDENTITY_KEYS if old.get(k) != options.get(k)]
        if diff:
            what = ", ".join(f"{k} {old.get(k)!r} (now {options.get(k)!r})" for k in diff)
            raise LibraryError(f"{lib_dir} holds a library made with {what}; use the same options or another --out")
        return
    if lib_dir.exists() and not lib_dir.is_dir():
        raise LibraryError(f"{lib_dir} is a file, not a folder; choose a folder for the library")
    if lib_dir.exists() and any(p for p in lib_dir.iterdir() if not p.name.startswith(".")):
        raise LibraryError(f"{lib_dir} exists and is not a mesh library (no {LIBRARY_FILE}); choose an empty --out")
    lib_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(info, options)


def _clear_temporaries(lib_dir: Path) -> None:
    for sub in ("meshes", "records"):
        folder = lib_dir / sub
        if folder.is_dir():
            for f in folder.glob(f"{TMP_PREFIX}*"):
                f.unlink(missing_ok=True)


def _fingerprint(src: Source) -> dict[str, Any]:
    try:
        size = src.path.stat().st_size
    except OSError:
        size = None
    return {"file": str(src.path), "bytes": size}


def _stage_records(lib_dir: Path, mesh_id: str, stages: list[Stage]) -> dict[str, dict]:
    out = {}
    for st in stages:
        p = st.record_path(lib_dir, mesh_id)
        if p.is_file():
            out[st.name] = read_json(p)
    return out


def _pending(lib_dir: Path, src: Source, stages: list[Stage]) -> bool:
    """Whether ``src`` still has a stage to run (stale records of a changed source are removed)."""
    recs = _stage_records(lib_dir, src.mesh_id, stages)
    first = recs.get(stages[0].name)
    if first is not None and first.get("source") != _fingerprint(src):
        for st in stages:
            st.record_path(lib_dir, src.mesh_id).unlink(missing_ok=True)
        return True
    for st in stages:
        rec = recs.get(st.name)
        if rec is None:
            return True
        if rec.get("status") == "rejected":
            return False
    return False


def process_mesh(lib_dir: Path, src: Source, category: str, options: dict[str, Any], stages: list[Stage]) -> dict:
    """Run the missing stages of one mesh (in a worker): {"mesh_id", "seconds", "error"}.

    A stage's record is written when it returns; an exception is reported in ``error`` and not recorded.
    """
    t0 = time.perf_counter()
    opts = {**options, "source": src.to_json()}
    for st in stages:
        path = st.record_path(lib_dir, src.mesh_id)
        if path.is_file():
            if read_json(path).get("status") == "rejected":
                break
            continue
        t1 = time.perf_counter()
        if src.error and st is stages[0]:
            record = {"status": "rejected", "reason": src.error, "notes": [], "repairs": []}
        else:
            try:
                record = dict(st.run(lib_dir, src.mesh_id, category, opts))
            except Exception as e:  # a bug or a resource problem: report, do not record, retry next run
                return {
                    "mesh_id": src.mesh_id,
                    "seconds": time.perf_counter() - t0,
                    "error": f"{st.name}: {type(e).__name__}: {e}",
                }
        if record.get("status") not in STATUSES:
            return {
                "mesh_id": src.mesh_id,
                "seconds": time.perf_counter() - t0,
                "error": f"{st.name}: returned status {record.get('status')!r}, expected one of {STATUSES}",
            }
        record.setdefault("reason", "")
        record.setdefault("notes", [])
        record["stage"] = st.name
        record["mesh_id"] = src.mesh_id
        record["source"] = _fingerprint(src)
        record["seconds"] = round(time.perf_counter() - t1, 4)
        atomic_write_json(path, record)
        if record["status"] == "rejected":
            break
    return {"mesh_id": src.mesh_id, "seconds": time.perf_counter() - t0, "error": ""}


def _run_all(
    lib_dir: Path,
    todo: list[Source],
    category: str,
    options: dict,
    stages: list[Stage],
    workers: int,
) -> Iterator[dict]:
    if workers <= 1 or len(todo) <= 1:
        for src in todo:
            yield process_mesh(lib_dir, src, category, options, stages)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork: the parent may hold a GL context or threads
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx) as pool:
        queue = list(reversed(todo))
        running = set()
        while queue or running:
            while queue and len(running) < 2 * workers:  # bounded submission: a kill loses little queued work
                running.add(pool.submit(process_mesh, lib_dir, queue.pop(), category, options, stages))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()


def _entry(lib_dir: Path, src: Source, stages: list[Stage], failed: dict[str, str]) -> dict[str, Any]:
    """The ``intake.json`` row of a source: overall status, reason, notes and repairs, per-stage outcome."""
    recs = _stage_records(lib_dir, src.mesh_id, stages)
    entry: dict[str, Any] = {"mesh_id": src.mesh_id, "name": src.name, "file": str(src.path)}
    status, reason = "accepted", ""
    notes: list[str] = []
    repairs: list[str] = []
    for st in stages:
        rec = recs.get(st.name)
        if rec is None:
            status = "rejected"
            reason = f"not finished: {failed.get(src.mesh_id) or st.name + ' did not run'} (retried on the next run)"
            break
        notes += rec.get("notes", [])
        repairs += rec.get("repairs", [])
        if rec["status"] == "rejected":
            status, reason = "rejected", rec.get("reason", "")
            break
        if rec["status"] == "repaired":
            status = "repaired"
    entry.update(status=status, reason=reason, repairs=repairs, notes=notes)
    entry["stages"] = {
        name: {k: v for k, v in rec.items() if k not in ("notes", "repairs", "source")} for name, rec in recs.items()
    }
    return entry


def ingest(
    collection: Collection,
    lib_dir: Path,
    options: dict[str, Any],
    workers: int = 1,
    progress: bool = True,
    stages: list[Stage] | None = None,
) -> IngestReport:
    """Take a collection into the library at ``lib_dir`` (created, or resumed when it holds the same options).

    Args:
        collection: from :func:`datagen.meshes.discover.discover`.
        lib_dir: the library folder.
        options: :func:`library_options` (written to ``library.json``; passed to every stage).
        workers: processes (1: in this process).
        progress: a tqdm bar on stderr, in meshes, with the last mesh's time.
        stages: default :data:`~datagen.meshes.stages.STAGES`.

    Raises:
        LibraryError: ``lib_dir`` holds something else, or a library made with other options.
    """
    t0 = time.perf_counter()
    stages = list(STAGES if stages is None else stages)
    lib_dir = Path(lib_dir).absolute()
    _check_library(lib_dir, options)
    _clear_temporaries(lib_dir)
    todo = [s for s in collection.sources if _pending(lib_dir, s, stages)]
    todo_ids = {s.mesh_id for s in todo}
    report = IngestReport(lib_dir, collection.layout, [])
    report.kept = [s.mesh_id for s in collection.sources if s.mesh_id not in todo_ids]
    failed: dict[str, str] = {}
    category = options["category"]
    with tqdm(total=len(todo), unit="mesh", disable=not progress, dynamic_ncols=True) as bar:
        for res in _run_all(lib_dir, todo, category, options, stages, workers):
            report.done_now.append(res["mesh_id"])
            report.mesh_seconds.append(res["seconds"])
            if res["error"]:
                failed[res["mesh_id"]] = res["error"]
            bar.set_postfix_str(f"{res['mesh_id'][:24]} {res['seconds']:.2f} s", refresh=False)
            bar.update(1)
    report.failed = sorted(failed)
    report.entries = [_entry(lib_dir, s, stages, failed) for s in collection.sources]
    report.seconds = time.perf_counter() - t0
    atomic_write_json(
        lib_dir / INTAKE_FILE,
        {
            "category": category,
            "layout": collection.layout,
            "source": str(collection.root),
            "stages": [s.name for s in stages],
            "counts": {s: report.count(s) for s in STATUSES},
            "meshes": report.entries,
        },
    )
    return report


def default_workers() -> int:
    return os.cpu_count() or 1


def plan_collection(
    source: Path,
    category: str,
    up: str | None = None,
    front: str | None = None,
    max_faces: int | None = None,
    parts: str = "auto",
) -> tuple[Collection, dict[str, Any]]:
    """List ``source`` and resolve the library options: (collection, ``library.json`` options).

    ``up``/``front`` default to the layout's axes (see :mod:`datagen.meshes.axes`), ``max_faces`` to
    :data:`~datagen.meshes.intake.DEFAULT_MAX_FACES`.

    Raises:
        DiscoveryError: nothing to ingest at ``source``. KeyError: unknown category. ValueError: malformed
        ``up``/``front``, ``max_faces`` below 4, or an unknown ``parts`` mode.
    """
    from datagen.meshes.axes import canonical_rotation
    from datagen.meshes.discover import discover
    from datagen.meshes.intake import DEFAULT_MAX_FACES
    from datagen.meshes.labels import PART_MODES
    from datagen.meshes.normalize import reference_size
    from datagen.meshes.textures import MAX_TEXTURE_SIDE

    if parts not in PART_MODES:
        raise ValueError(f"unknown part-label mode {parts!r}; choose one of {', '.join(PART_MODES)}")
    faces = DEFAULT_MAX_FACES if max_faces is None else int(max_faces)
    if faces < 4:
        raise ValueError(f"max_faces must be at least 4, got {faces}")
    size = reference_size(category)
    collection = discover(source, category)
    up, front = up or collection.default_up, front or collection.default_front
    canonical_rotation(up, front)
    return collection, library_options(category, collection, up, front, faces, parts, MAX_TEXTURE_SIDE, size)


def ingest_collection(
    source: Path,
    lib_dir: Path,
    category: str,
    up: str | None = None,
    front: str | None = None,
    max_faces: int | None = None,
    parts: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    stages: list[Stage] | None = None,
) -> IngestReport:
    """:func:`plan_collection` then :func:`ingest`: what ``datagen meshes ingest`` does, in one call.

    ``workers`` defaults to all cores. Raises what those two raise.
    """
    collection, options = plan_collection(source, category, up, front, max_faces, parts)
    return ingest(collection, lib_dir, options, workers or default_workers(), progress, stages)
