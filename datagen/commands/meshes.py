"""``datagen meshes``: take a collection of your own category-aligned meshes into a mesh library.

Examples::

    datagen meshes ingest ShapeNetCore.v2/03001627 --category chair --out libs/chair
    datagen meshes ingest my_glbs/ --category chair --out libs/chair --up +z --front -y --workers 8
    datagen meshes ingest chairs.csv --category chair --out libs/chair     # path,category[,up,front,scale]
    datagen meshes report libs/chair                                       # the summary table again
    datagen meshes report libs/chair --report intake.csv                   # every file as a table (.md/.csv/.json)

A re-run with the same arguments resumes: finished meshes are kept, only the rest is done. Exit codes: 0 when
the run finished (rejected files are listed in LIB/intake.json with their reasons), 1 when no mesh was
accepted, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

__all__ = ["register", "run_ingest", "run_report"]

PROG = "datagen meshes"


class _AxisParser(argparse.ArgumentParser):
    """An argument parser that reads ``-x``, ``-y``, ``-z`` as values (``--front -z``), not as unknown options."""

    def _parse_optional(self, arg_string):
        if re.fullmatch(r"-[xyzXYZ]", arg_string):
            return None
        return super()._parse_optional(arg_string)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "meshes",
        help="take your own mesh collections (ShapeNet, a folder, a CSV) into a mesh library",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]).replace("``", "").replace("::", ":"),
    )
    sub = p.add_subparsers(dest="meshes_command", required=True, metavar="ACTION", parser_class=_AxisParser)
    ing = sub.add_parser(
        "ingest",
        help="read, check, repair and normalise a collection into LIB",
        description="Read, check, repair and normalise a mesh collection into a mesh library (resumable).",
    )
    ing.add_argument("source", type=Path, help="a ShapeNet-layout folder, a folder of mesh files, or a .csv listing")
    ing.add_argument("--category", required=True, help="category family the meshes belong to (datagen categories)")
    ing.add_argument("--out", type=Path, required=True, help="library folder (created; re-use it to resume)")
    ing.add_argument("--workers", type=int, default=None, help="worker processes; default all cores")
    ing.add_argument("--up", default=None, help="file axis pointing to the object's top, e.g. +y, +z (default: +y)")
    ing.add_argument(
        "--front",
        default=None,
        help="file axis the object's front faces, e.g. +z, -z (default: -z for ShapeNet folders, else +z)",
    )
    ing.add_argument("--max-faces", type=int, default=None, help="decimate meshes above this; default 100000")
    ing.add_argument(
        "--parts",
        default="auto",
        choices=("auto", "sidecar", "groups", "none"),
        help="per-face part labels: <stem>.labels.txt, the file's groups/nodes, auto (sidecar, else groups), none",
    )
    ing.add_argument(
        "--stages",
        default=None,
        metavar="NAMES",
        help="run only the first stages, comma-separated (e.g. intake: check a collection before the slower "
        "registration); default all",
    )
    ing.add_argument("--no-progress", action="store_true", help="no progress bar")
    ing.add_argument("--all-rows", action="store_true", help="print every file in the summary (default: problems)")
    ing.set_defaults(func=run_ingest)

    rep = sub.add_parser("report", help="print the summary of a library's intake.json")
    rep.add_argument("lib", type=Path, help="library folder")
    rep.add_argument("--all-rows", action="store_true", help="every file, not only rejected and repaired ones")
    rep.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write the table of every file to PATH (.md, .csv or .json), as datagen verify --report does",
    )
    rep.set_defaults(func=run_report)


def _error(action: str, message: str) -> int:
    print(f"{PROG} {action}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def run_ingest(args: argparse.Namespace) -> int:
    from datagen.families import family_names
    from datagen.meshes.discover import DiscoveryError
    from datagen.meshes.ingest import default_workers, ingest, plan_collection
    from datagen.meshes.library import INTAKE_FILE, LibraryError, read_json
    from datagen.meshes.report import format_summary
    from datagen.meshes.stages import select_stages

    known = family_names()
    if args.category not in known:
        return _error("ingest", f"unknown category {args.category!r}; known categories: {', '.join(known)}")
    if args.workers is not None and args.workers < 1:
        return _error("ingest", f"--workers must be at least 1, got {args.workers}")
    if args.max_faces is not None and args.max_faces < 4:
        return _error("ingest", f"--max-faces must be at least 4, got {args.max_faces}")
    try:
        stages = select_stages(args.stages)
    except ValueError as e:
        return _error("ingest", str(e))
    try:
        collection, options = plan_collection(
            args.source, args.category, args.up, args.front, args.max_faces, args.parts
        )
    except DiscoveryError as e:
        return _error("ingest", str(e))
    except ValueError as e:
        return _error("ingest", f"--up/--front: {e}")
    up, front = options["up"], options["front"]
    workers = args.workers or default_workers()
    print(
        f"{PROG} ingest: {len(collection.sources)} {args.category} files ({collection.layout} layout, up {up}, "
        f"front {front}) -> {args.out}, reference size {options['reference_size_m']:.3f} m, "
        f"stages {', '.join(st.name for st in stages)}, {workers} worker{'s' * (workers > 1)}",
        flush=True,
    )
    try:
        report = ingest(collection, args.out, options, workers=workers, progress=not args.no_progress, stages=stages)
    except LibraryError as e:
        return _error("ingest", str(e))
    except KeyboardInterrupt:
        print(f"\n{PROG} ingest: interrupted; finished meshes are kept. Re-run the same command to finish")
        return 130
    except BrokenProcessPool:
        print(
            f"{PROG} ingest: error: a worker process died (out of memory on a huge mesh?); finished meshes are kept. "
            "Re-run the same command to finish (fewer --workers, or a lower --max-faces, if memory is short)",
            file=sys.stderr,
        )
        return 1
    print(format_summary(read_json(report.lib_dir / INTAKE_FILE), "all" if args.all_rows else "problems"))
    if report.mesh_seconds:
        per = sorted(report.mesh_seconds)
        print(
            f"this run: {len(report.done_now)} meshes in {report.seconds:.1f} s "
            f"(per mesh: median {per[len(per) // 2]:.2f} s, max {per[-1]:.2f} s); kept {len(report.kept)} from before"
        )
    else:
        print(f"this run: nothing to do; all {len(report.kept)} files were finished before")
    if report.failed:
        print(f"{len(report.failed)} meshes failed with an error and will be retried on the next run: {report.failed}")
    print(f"library: {report.lib_dir}")
    return 0 if report.count("accepted") + report.count("repaired") else 1


def run_report(args: argparse.Namespace) -> int:
    from datagen.meshes.library import INTAKE_FILE, read_json
    from datagen.meshes.report import format_summary, intake_frame, write_report
    from loaders.tables import TABLE_SUFFIXES

    if args.report is not None and args.report.suffix.lower() not in TABLE_SUFFIXES:
        return _error("report", f"--report {args.report}: the suffix must be one of {', '.join(TABLE_SUFFIXES)}")
    path = args.lib / INTAKE_FILE
    if not path.is_file():
        return _error("report", f"{args.lib}: no {INTAKE_FILE} (not a mesh library, or its first ingest never ended)")
    intake = read_json(path)
    frame = intake_frame(intake)
    print(format_summary(intake, "all" if args.all_rows else "problems", frame))
    if args.report is not None:
        try:
            written = write_report(frame, args.report, title=f"datagen meshes report {args.lib}")
        except OSError as e:
            return _error("report", f"cannot write the report: {e}")
        print(f"wrote {written}", file=sys.stderr)  # stdout stays the summary
    return 0
