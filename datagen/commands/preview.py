"""``datagen preview DIR --out preview.png``: a contact sheet of pairs to judge a dataset at a glance.

Each row shows one pair: both views with named keypoints joined across the views, the dense 0→1 field
coloured by where each pixel lands in view 1, and view 1 coloured by its own positions (same colours = same
place), with occluded / outside / no-counterpart pixels marked. Examples::

    datagen preview data/chair --out preview.png
    datagen preview data/chair --out preview.png --n 8 --seed 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "preview",
        help="draw a contact sheet of pairs from a dataset folder",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]).replace("``", "").replace("::", ":"),
    )
    p.add_argument("dir", type=Path, help="dataset folder (holds dataset.json)")
    p.add_argument("--out", type=Path, default=Path("preview.png"), help="PNG to write; default preview.png")
    p.add_argument("--n", type=int, default=6, help="pairs to show; default 6")
    p.add_argument("--seed", type=int, default=0, help="which pairs (seeded draw); default 0")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datagen.preview import load_samples, render_preview
    from loaders.dataset_manifest import ManifestError
    from loaders.schema import SchemaError

    if args.n <= 0:
        print(f"datagen preview: error: --n must be positive, got {args.n}", file=sys.stderr)
        return 2
    try:
        samples = load_samples(args.dir, args.n, args.seed)
    except (ManifestError, SchemaError, ValueError, OSError) as e:
        print(f"datagen preview: error: {e}", file=sys.stderr)
        return 2
    out = render_preview(samples, args.out)
    print(f"datagen preview: {len(samples)} pairs from {args.dir.absolute()} -> {out.absolute()}")
    return 0
