#!/usr/bin/env python
"""Ground-truth fidelity per family: the docs/design.md §5 figures of `datagen verify`, pooled over many rendered pairs.

For every family, image size and seed, ``datagen render`` makes ``--pairs`` pairs (optionally with another
checkout's code: ``--tree``, e.g. the commit before a change, for a before/after table in the same run) and every
pair is checked with this checkout's :mod:`datagen.invariants` (raw bilinear cycle, the smooth cycle, keypoint
transfer within 0.05 of the object's size, left/right swaps, the map's local collapse, matched targets off the
other object). Prints one row per family and size, pooled over the seeds, against the targets of issue 12.

Usage::

    python scripts/bench_gt_fidelity.py                                  # all families, 256 and 518 px
    python scripts/bench_gt_fidelity.py --families table --sizes 256 --tree /tmp/old_checkout --label before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(
    tree: Path, out: Path, family: str, size: int, pairs: int, seed: int, workers: int, extra: list[str]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "datagen", "render", "--category", family, "--n", str(pairs), "--size", str(size),
           "--seed", str(seed), "--out", str(out), "--workers", str(workers), "--no-progress", *extra]  # fmt: skip
    subprocess.run(cmd, env=env, cwd=tree, check=True, stdout=subprocess.DEVNULL)


def evaluate(folder: Path) -> list[dict]:
    import webdataset as wds

    from datagen import invariants
    from loaders.members import decode_sample

    rows = []
    for tar in sorted(folder.glob("*.tar")):
        for members in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False):
            sample = decode_sample(members)
            row = invariants.evaluate(sample)
            row["same"] = bool(sample["meta"].get("same_instance"))
            rows.append(row)
    return rows


def main() -> int:
    from datagen.families import family_names

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(family_names()))
    ap.add_argument("--sizes", default="256,518")
    ap.add_argument("--pairs", type=int, default=40, help="pairs per family, size and seed")
    ap.add_argument("--seeds", default="11,12,13")
    ap.add_argument("--tree", type=Path, default=ROOT, help="checkout whose datagen renders (default: this one)")
    ap.add_argument("--label", default="", help="printed beside every row (e.g. before / after)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the pooled rows here")
    ap.add_argument("--same-instance", action="store_true", help="same-instance pairs: the reprojection check")
    ap.add_argument("--render-args", default="", help="more `datagen render` options, e.g. '--truncation 0.3'")
    args = ap.parse_args()
    extra = (["--same-instance-fraction", "1.0"] if args.same_instance else []) + args.render_args.split()
    import numpy as np

    from datagen import invariants

    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'family':<10} {'size':>4} {'pairs':>5} {'cycle raw':>10} {'smooth':>8} {'kp<=0.05':>9} {'lr':>7} "
          f"{'collapse':>9} {'off obj':>8} {'worst part (collapse)':<28} {args.label}", flush=True)  # fmt: skip
    pooled_rows = []
    for family in args.families.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            rows, t0 = [], time.perf_counter()
            for seed in seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    render(args.tree, Path(tmp) / "d", family, size, args.pairs, seed, args.workers, extra)
                    rows += evaluate(Path(tmp) / "d")
            agg = invariants.aggregate(rows)
            nan = float("nan")
            worst = f"{agg.get('part_collapse_worst', '-')} {agg.get('part_collapse_frac', nan):.2%}"
            cells = [
                f"{agg.get('cycle_frac_within_1.5px', nan):>10.2%}",
                f"{agg.get('cycle_frac_within_1.5px_smooth', nan):>8.2%}",
                f"{agg.get('kp_frac_within_0.05', nan):>9.2%}",
                f"{agg.get('lr_violations', 0):>3}/{agg.get('n_lr', 0):<3}",
                f"{agg.get('collapse_frac', nan):>9.3%}",
                f"{agg.get('off_mask_frac', nan):>8.3%}",
                f"{worst:<28}",
            ]
            took = time.perf_counter() - t0
            reproj = [r for r in rows if "reproj_median_px" in r]
            if reproj:
                med = float(np.median([r["reproj_median_px"] for r in reproj]))
                p99 = float(np.median([r["reproj_p99_px"] for r in reproj]))
                cells.append(f"reproj median {med:.4f} px, p99 {p99:.4f} px (medians over pairs)")
                if "valid_agreement" in agg:
                    cells.append(f"valid agrees with a ray cast on {agg['valid_agreement']:.3%} of object pixels")
            print(f"{family:<10} {size:>4} {len(rows):>5} {' '.join(cells)} {args.label} ({took:.0f} s)", flush=True)
            row = {"family": family, "size": size, "pairs": len(rows), "label": args.label}
            row.update({k: v for k, v in agg.items() if k != "parts"}, parts=agg.get("parts"))
            pooled_rows.append(row)
    print("targets (issue 12): raw cycle >= 97 %, keypoints >= 99 %, no left/right swaps")
    if args.json:
        args.json.write_text(json.dumps(pooled_rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
