"""``datagen verify DIR``: check a dataset folder (manifest, checksums, schema, docs/design.md §5 invariants).

Exit code 0 when every check passes, 1 when any fails (each problem names its shard and sample), 2 on bad
input. The printed summary and ``--report`` come from one table (datagen/verify.py ``report_frame``: a row per
check, part, sampled pair and problem), which ``--report PATH`` writes as Markdown, CSV or JSON records by the
suffix; verify never writes into the dataset folder. Examples::

    datagen verify data/chair
    datagen verify data/chair --samples 64 --workers 8 --report reports/chair-verify.csv
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check a dataset folder: manifest, checksums, schema, invariants",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]).replace("``", "").replace("::", ":"),
    )
    p.add_argument("dir", type=Path, help="dataset folder (holds dataset.json)")
    p.add_argument(
        "--samples", type=int, default=8, help="pairs checked against docs/design.md §5 (seeded draw); default 8"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of that draw; default 0")
    p.add_argument("--workers", type=int, default=None, help="processes; default all cores")
    p.add_argument("--no-checksums", action="store_true", help="compare sizes only, skip sha256")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write the report table to PATH (.md, .csv or .json), outside the dataset",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datagen.verify import format_report, report_frame, verify_dataset, write_report
    from loaders.tables import TABLE_SUFFIXES

    if not args.dir.is_dir():
        print(f"datagen verify: error: {args.dir} is not a folder", file=sys.stderr)
        return 2
    if args.samples < 0:
        print(f"datagen verify: error: --samples must be >= 0, got {args.samples}", file=sys.stderr)
        return 2
    if args.report is not None:
        if args.report.suffix.lower() not in TABLE_SUFFIXES:
            print(f"datagen verify: error: --report {args.report}: the suffix must be one of "
                  f"{', '.join(TABLE_SUFFIXES)}", file=sys.stderr)  # fmt: skip
            return 2
        if args.report.resolve().is_relative_to(args.dir.resolve()):
            print(f"datagen verify: error: --report {args.report} is inside the dataset folder; verify leaves the "
                  "folder as it is, so write the report elsewhere", file=sys.stderr)  # fmt: skip
            return 2
    report = verify_dataset(
        args.dir,
        samples=args.samples,
        seed=args.seed,
        workers=args.workers or os.cpu_count() or 1,
        checksums=not args.no_checksums,
        progress=not args.no_progress,
    )
    frame = report_frame(report)
    print(format_report(report, frame))
    if args.report is not None:
        try:
            path = write_report(
                frame, args.report, title=f"datagen verify {report.root}: {'OK' if report.ok else 'FAILED'}"
            )
        except OSError as e:
            print(f"datagen verify: error: cannot write the report: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path}", file=sys.stderr)  # stdout stays the summary, ending in OK or FAILED
    return 0 if report.ok else 1
