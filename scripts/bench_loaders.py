#!/usr/bin/env python
"""Loader throughput per core at 518²: decoded + transformed pairs/s beside the raw floor (tar + JPEGs).

    .venv/bin/python scripts/bench_loaders.py            # 48 pairs x 5 rounds, about a minute
    .venv/bin/python scripts/bench_loaders.py --n 96 --rounds 7
    .venv/bin/python scripts/bench_loaders.py --photo        # photo-like JPEGs (the issue's ~125 pairs/s floor)
    .venv/bin/python scripts/bench_loaders.py --data data/synthetic/chair   # rendered shards instead

Targets (issue #3): >= 40 pairs/s per core and at most 2.5x the raw floor's time per pair.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=48, help="pairs in the shard (default 48)")
    p.add_argument("--size", type=int, default=518, help="square view size (default 518)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="time these shards (a dataset folder, e.g. from datagen render)")
    p.add_argument("--photo", action="store_true", help="synthetic pairs with photo-like images (~170 KB JPEGs)")
    args = p.parse_args(argv)
    from loaders.bench import STANDARD, run

    res = run(n=args.n, size=args.size, rounds=args.rounds, seed=args.seed, data=args.data, photo=args.photo)
    what = f"{res['data']} {res['size']}² pairs" if args.data is None else f"pairs from {args.data}"
    print(f"# loaders benchmark: {res['n']} {what}, {res['bytes_per_pair'] / 1e6:.2f} MB/pair on disk")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}  one thread")
    print(f"# {res['rounds']} rounds, each pipeline right after a floor run; ratio = time per pair / that floor's;")
    print("# pairs/s, ms/pair and x floor from the quietest round (fastest floor), then the median ratio\n")
    print(f"| {'pipeline (518², batches of 8)':<62} | pairs/s/core | ms/pair | x floor | x floor, median |")
    print(f"|{'-' * 64}|-------------:|--------:|--------:|----------------:|")
    for name, rate, ms, ratio, ratio_med in res["rows"]:
        print(f"| {name:<62} | {rate:12.1f} | {ms:7.2f} | {ratio:7.2f} | {ratio_med:15.2f} |")
    rate, ratio, ratio_med = next((r[1], r[3], r[4]) for r in res["rows"] if r[0] == STANDARD)
    print(
        f"\n{STANDARD}: {rate:.1f} pairs/s per core (target >= 40: {'met' if rate >= 40 else 'NOT met'}),"
        f" {ratio:.2f}x the floor, median {ratio_med:.2f}x (target <= 2.5x: {'met' if ratio <= 2.5 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
