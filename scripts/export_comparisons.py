"""Save the untrained model of a run and the zero-shot NN baselines (untrained and trained backbone) for
``semmatch eval``.

    python scripts/export_comparisons.py runs/chair_cpu_demo --out runs/chair_cpu_demo/compare
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, help="default <run_dir>/compare")
    args = p.parse_args()
    from training.train.export import export_comparisons

    for name, path in export_comparisons(args.run_dir, args.out or args.run_dir / "compare").items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
