#!/usr/bin/env python
"""Shard-writing throughput: encode, tar (ours vs webdataset.TarWriter), sha256, fsync, beside rendering.

Renders a few real pairs once (the rendering rate is measured in the same run as the baseline), then times each
writing stage on those samples, repeated. Prints a table; all rates are for one process on one core.

Usage::

    python scripts/bench_shards.py                      # 518 px, 16 pairs, 5 repeats
    python scripts/bench_shards.py --size 256 --pairs 32
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import webdataset as wds

from datagen.config import RenderConfig
from datagen.pipeline import generate_shard
from datagen.shards import sample_members, write_tar
from loaders.dataset_manifest import sha256_file
from loaders.members import encode_sample


def best_of(repeats: int, fn) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=518)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    config = RenderConfig(category="chair", n_pairs=args.pairs, shard_size=args.pairs, size=args.size)
    t0 = time.perf_counter()
    samples = list(generate_shard(config, 0))
    render_s = time.perf_counter() - t0
    encoded = [dict([("__key__", k), *fields]) for k, fields in (sample_members(s) for s in samples)]
    nbytes = sum(len(v) for m in encoded for k, v in m.items() if k != "__key__")
    n = len(samples)

    tmp = Path(tempfile.mkdtemp(prefix="bench_shards_", dir=os.environ.get("BENCH_DIR")))
    ours_path, stock_path = tmp / "ours.tar", tmp / "stock.tar"

    def ours(fsync: bool = False) -> None:
        with open(ours_path, "wb") as f:
            write_tar(encoded, f)  # sha256 computed while writing
            if fsync:
                f.flush()
                os.fsync(f.fileno())

    def stock(hash_after: bool) -> None:
        with open(stock_path, "wb") as f, wds.TarWriter(f, mtime=0, encoder=False) as w:
            for m in encoded:
                w.write(m)
        if hash_after:
            sha256_file(stock_path)

    def encode() -> None:
        for s in samples:
            encode_sample(s)

    rows = [
        ("render (pipeline, baseline)", render_s),
        ("encode_sample (JPEG + dense + json)", best_of(args.repeats, encode)),
        ("tar: ours, sha256 inline", best_of(args.repeats, ours)),
        ("tar: ours, sha256 inline + fsync", best_of(args.repeats, lambda: ours(True))),
        ("tar: webdataset.TarWriter(mtime=0)", best_of(args.repeats, lambda: stock(False))),
        ("tar: TarWriter + sha256 re-read", best_of(args.repeats, lambda: stock(True))),
        ("sha256 alone", best_of(args.repeats, lambda: hashlib.sha256(ours_path.read_bytes()).digest())),
    ]
    ours()
    stock(False)
    identical = ours_path.read_bytes() == stock_path.read_bytes()
    shard_bytes = ours_path.stat().st_size
    for p in (ours_path, stock_path):
        p.unlink()
    tmp.rmdir()

    print(f"{n} chair pairs at {args.size}x{args.size}: {shard_bytes / n / 1e6:.3f} MB per pair on disk")
    print(f"ours and webdataset.TarWriter(mtime=0) byte-identical: {identical}\n")
    print("| stage | s per pair | pairs/s | MB/s | vs render |\n|---|---:|---:|---:|---:|")
    for name, seconds in rows:
        per = seconds / n
        mbs = "" if name.startswith(("render", "encode")) else f"{nbytes / seconds / 1e6:.0f}"
        print(f"| {name} | {per * 1e3:.2f} ms | {1 / per:.1f} | {mbs} | {render_s / seconds:.0f}x |")


if __name__ == "__main__":
    main()
