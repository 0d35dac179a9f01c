"""``datagen explore DIR --out explore.html``: an interactive page to check a dataset's ground truth by hand.

One self-contained HTML file (images and fields embedded, no server, no network), opened by double-click. Hover or
click a pixel in either image to see its ground-truth match in the other view, its status and depth; toggle colour
layers (status, canonical coordinates, the dense field) and named keypoints; sort and filter the pair list by valid
fraction and cycle error. Examples::

    datagen explore data/chair --out explore.html
    datagen explore data/chair --out explore.html --pairs 200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explore",
        help="write an interactive HTML page to explore a dataset's pairs",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]).replace("``", "").replace("::", ":"),
    )
    p.add_argument("dir", type=Path, help="dataset folder (holds dataset.json)")
    p.add_argument("--out", type=Path, default=Path("explore.html"), help="HTML to write; default explore.html")
    p.add_argument("--pairs", type=int, default=50, help="the first N pairs of the dataset; default 50")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datagen.explore import explore_dataset
    from loaders.dataset_manifest import ManifestError
    from loaders.schema import SchemaError
    from loaders.sources import ShardError

    if args.pairs <= 0:
        print(f"datagen explore: error: --pairs must be positive, got {args.pairs}", file=sys.stderr)
        return 2
    try:
        out, n = explore_dataset(args.dir, args.out, args.pairs)
    except (ManifestError, SchemaError, ShardError, ValueError, OSError) as e:
        print(f"datagen explore: error: {e}", file=sys.stderr)
        return 2
    size = out.stat().st_size
    print(
        f"datagen explore: {n} pairs from {args.dir.absolute()} -> {out.absolute()} ({size / 1e6:.1f} MB, "
        f"{size / 1e6 / n:.2f} MB per pair)"
    )
    return 0
