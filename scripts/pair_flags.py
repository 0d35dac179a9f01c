#!/usr/bin/env python
"""Truncation and occlusion shares of pairs (none / source / target / both), SPair-71k style, and the per-view
fraction they imply: for SPair-71k's pair annotation (to set the generator's defaults) or a rendered dataset (to
check them; it also prints the share of object pixels by status). See :mod:`datagen.pair_flags`.

Usage::

    python scripts/pair_flags.py --spair /data/SPair-71k --split trn
    python scripts/pair_flags.py --dataset data/chair --n 500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spair", type=Path, help="SPair-71k root (holds PairAnnotation/)")
    src.add_argument("--dataset", type=Path, help="a rendered dataset folder (holds dataset.json)")
    p.add_argument("--split", default="trn", help="SPair split (trn, val, test); default trn")
    p.add_argument("--n", type=int, default=1000, help="pairs read from a rendered dataset; default 1000")
    args = p.parse_args(argv)

    from datagen.pair_flags import FLAG_NAMES, FLAGS, dataset_flags, shares, spair_flags, status_shares, view_fraction

    if args.spair is not None:
        try:
            codes = spair_flags(args.spair, args.split)
        except FileNotFoundError as e:
            print(f"pair_flags: error: {e}", file=sys.stderr)
            return 2
        what = f"SPair-71k {args.split}"
    else:
        from datagen.preview import load_samples

        samples = load_samples(args.dataset, args.n)
        codes = dataset_flags(s["meta"] for s in samples)
        what = str(args.dataset)
    n = len(codes[FLAGS[0]])
    print(f"{what}: {n} pairs")
    print("| flag | " + " | ".join(FLAG_NAMES) + " | per-view fraction |")
    print("|---" * (len(FLAG_NAMES) + 2) + "|")
    for flag in FLAGS:
        s = shares(codes[flag])
        cells = " | ".join(f"{100 * s[k]:.1f} %" for k in FLAG_NAMES)
        print(f"| {flag} | {cells} | {view_fraction(codes[flag]):.3f} |")
    if args.dataset is not None:
        st = status_shares(samples)
        print("object pixels by status: " + ", ".join(f"{k.replace('_', ' ')} {100 * v:.1f} %" for k, v in st.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
