"""Training curves of a run: the objective and its terms, and held-out PCK / EPE against the baseline.

python scripts/plot_curves.py runs/chair_cpu_demo [--out runs/chair_cpu_demo/curves.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a run folder (holds metrics.jsonl)")
    p.add_argument("--out", type=Path, help="PNG path (default <run_dir>/curves.png)")
    p.add_argument("--title", default=None)
    args = p.parse_args()

    from training.train.plots import plot_run

    out = plot_run(args.run_dir, args.out or args.run_dir / "curves.png", title=args.title)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
