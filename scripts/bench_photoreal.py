"""Measure the blenderproc (Cycles) renderer: GT agreement per family, seconds per frame and per pair beside
pyrender, and a figure of one pair from both renderers. Thin launcher over datagen.photoreal.bench.

    python scripts/bench_photoreal.py --agreement --frames --pairs --figure docs/figures/photoreal_pair.png
"""

from __future__ import annotations

import argparse
import json
import sys

from datagen.photoreal.bench import agreement_by_family, frame_seconds, pair_figure, pair_seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--category", default="chair")
    p.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel for timings and the figure")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 518])
    p.add_argument("--agreement", action="store_true", help="mask IoU / depth error per family at 256 px")
    p.add_argument("--families", nargs="*", default=None, help="with --agreement: these families only")
    p.add_argument("--frames", type=int, default=0, metavar="N", help="time N views per size")
    p.add_argument("--pairs", type=int, default=0, metavar="N", help="time an N-pair shard per size, both renderers")
    p.add_argument("--figure", default=None, help="write the pyrender / Cycles pair figure here")
    p.add_argument("--backend", default="pyrender", choices=["pyrender", "embree"])
    p.add_argument("--backgrounds", default=None, help="with --figure: a folder or list of photos as backgrounds")
    args = p.parse_args(argv)
    if args.agreement:
        rows = agreement_by_family(256, backend=args.backend, families=args.families)
        for r in rows:
            print(json.dumps(r), flush=True)
        iou = [r["mask_iou"] for r in rows]
        med = [r["depth_median_m"] for r in rows]
        print(json.dumps({"views": len(rows), "min_mask_iou": min(iou), "max_depth_median_m": max(med),
                          "failing": sum(i < 0.99 or m > 1e-3 for i, m in zip(iou, med))}), flush=True)  # fmt: skip
    for size in args.sizes if args.frames else []:
        print(json.dumps({"frame": frame_seconds(args.category, size, args.frames, args.samples, args.backend)}))
    for size in args.sizes if args.pairs else []:
        print(json.dumps({"pairs": pair_seconds(args.category, size, args.pairs, args.samples, args.backend)}))
    if args.figure:
        print(
            json.dumps(
                {
                    "figure": args.figure,
                    **pair_figure(args.figure, args.category, 256, args.samples, backgrounds=args.backgrounds),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
