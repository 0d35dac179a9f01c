#!/usr/bin/env python
"""Loader throughput per core at 518²: decoded + transformed pairs/s beside the raw floor (tar + JPEGs).

    .venv/bin/python scripts/bench_loaders.py            # 48 pairs x 5 rounds, about a minute
    .venv/bin/python scripts/bench_loaders.py --n 96 --rounds 7
    .venv/bin/python scripts/bench_loaders.py --photo        # photo-like JPEGs (the issue's ~125 pairs/s floor)
    .venv/bin/python scripts/bench_loaders.py --data data/synthetic/chair   # rendered shards instead

The *raw floor* reads the tar bytes and decodes the two images, nothing else: what any loader of these shards
must pay. The pipelines add the dense fields, transforms and tensor conversion, through the real path
(``PairStream`` -> ``PairLoader`` batches). Every pipeline run follows a run of the floor, so that a busy shared
machine slows both alike; the ratios are the result. Reported: the quietest round (the one whose floor ran fastest)
and the median ratio over rounds. Results and their reading: docs/bench/loaders.md.

Targets (issue #3): >= 40 pairs/s per core and at most 2.5x the raw floor's time per pair.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from loaders.augment import (  # noqa: E402
    ColorJitter,
    Compose,
    RandomHFlip,
    RandomSwap,
    VggtPreprocess,
    default_train_transforms,
)
from loaders.batch import ARRAY_KEYS  # noqa: E402
from loaders.codec import decode_dense  # noqa: E402
from loaders.loader import PairLoader  # noqa: E402
from loaders.members import decode_image, encode_sample  # noqa: E402
from loaders.sources import ShardReader, count_samples, expand_spec  # noqa: E402
from loaders.stream import PairStream  # noqa: E402
from loaders.synthetic import synthetic_pair  # noqa: E402


def write_bench_shards(
    directory: Path, n: int, size: int, seed: int = 0, photo: bool = False
) -> tuple[list[str], float]:
    """Write ``n`` synthetic pairs into one tar; returns the shard list and the mean bytes per pair."""
    import webdataset as wds

    rng = np.random.default_rng(seed)
    path = directory / "bench-000000.tar"
    with wds.TarWriter(str(path), mtime=0) as w:
        for i in range(n):
            w.write(encode_sample(synthetic_pair(size, rng, f"s000000_{i:05d}", photo)))
    return [str(path)], path.stat().st_size / n


def _floor(urls: list[str], seed: int, batch: int) -> int:
    """Read the tar bytes and decode the two images: what any loader of these shards must pay."""
    n = 0
    for url in urls:
        with ShardReader(url) as reader:
            for _, members in reader:
                decode_image(members["img0.jpg"]), decode_image(members["img1.jpg"])
                n += 1
    return n


def _dense_only(urls: list[str], seed: int, batch: int) -> int:
    n = 0
    for url in urls:
        with ShardReader(url) as reader:
            for _, members in reader:
                decode_dense(members["dense.bin"])
                n += 1
    return n


def _loader(
    transform: Callable | None, uint8_images: bool = False, fields: tuple[str, ...] | None = None, shared: bool = False
) -> Callable:
    """The real path: PairStream (exact epoch, one process) -> plan/decode -> transform -> batches of the loader.

    ``shared``: the batches go to fresh shared memory, as in a DataLoader worker (``PairStream.batches``, the code
    each worker runs; nothing is sent to another process)."""

    def run(urls: list[str], seed: int, batch: int) -> int:
        stream = PairStream(urls, mode="exact", seed=seed, transform=transform, progress=False)
        if shared:
            return sum(len(b["key"]) for b in stream.batches(batch, False, uint8_images, fields, shared=True))
        loader = PairLoader(stream, batch, num_workers=0, uint8_images=uint8_images, fields=fields)
        return sum(len(b["key"]) for b in loader)

    return run


NO_DEPTH = tuple(k for k in ARRAY_KEYS if k != "depth")  # what the trainer reads (no depth)
FLOOR = "raw floor: tar + 2 JPEG decodes"
STANDARD = "VGGT crop, flip, jitter, swap: uint8, no depth"


def pipelines(size: int = 518) -> dict[str, Callable]:
    """The timed pipelines, each ``(urls, seed, batch) -> pairs``; augmentations work at ``size``².

    "float32, all" is the batch of docs/interfaces.md §4 as it is by default; "uint8, no depth" is what a trainer
    that converts the images on the GPU (``loaders.batch.images_to_float``) and reads no depth asks for.
    """
    exact_aug = Compose([VggtPreprocess("crop", size), RandomHFlip(0.5), ColorJitter(0.2, 0.2, 0.2), RandomSwap(0.5)])
    random_aug = default_train_transforms((size, size))
    return {
        FLOOR: _floor,
        "dense.bin decode only (both views)": _dense_only,
        "no transform: float32, all fields": _loader(None),
        "no transform: uint8, no depth": _loader(None, True, NO_DEPTH),
        "VGGT crop, flip, jitter, swap: float32, all fields": _loader(exact_aug),
        "VGGT crop, flip, jitter, swap: float32, no depth": _loader(exact_aug, False, NO_DEPTH),
        STANDARD: _loader(exact_aug, True, NO_DEPTH),
        "  the same into fresh shared memory (as a worker)": _loader(exact_aug, True, NO_DEPTH, shared=True),
        "random scale/rotate/crop, flip, jitter, swap: float32, all": _loader(random_aug),
        "random scale/rotate/crop, flip, jitter, swap: uint8, no depth": _loader(random_aug, True, NO_DEPTH),
    }


def _time(urls: list[str], fn: Callable, seed: int, batch: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(urls, seed, batch)
    return time.perf_counter() - t0, n


def run(
    n: int = 48,
    size: int = 518,
    rounds: int = 5,
    seed: int = 0,
    batch: int = 8,
    data: str | None = None,
    photo: bool = False,
) -> dict[str, Any]:
    """Time every pipeline over the same shards in ``rounds`` alternating rounds on one thread.

    Args:
        data: a shard spec (dataset folder, shard, pattern) to time instead of ``n`` synthetic ``size``² pairs.
        photo: synthetic pairs get photo-like images (the JPEG floor of real photographs).

    Returns:
        ``{"rows": [(name, pairs/s, ms/pair, ratio to the adjacent floor — all three in the quietest round (the one
        whose floor ran fastest) —, median ratio over rounds)], "bytes_per_pair": float, ...}``.
    """
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if data is None:
            urls, bpp = write_bench_shards(Path(tmp), n, size, seed, photo)
        else:
            refs = expand_spec(data)
            urls = [r.url for r in refs]
            n = sum(count_samples(u) for u in urls)
            bpp = sum(Path(u).stat().st_size for u in urls) / max(n, 1)
        timed = pipelines(size)
        # each pipeline runs right after its own floor measurement, so load drift hits both alike
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in timed}  # (pipeline, adjacent floor) s/pair
        for r in range(rounds + 1):
            for name, fn in timed.items():
                dt_floor, n_floor = _time(urls, timed[FLOOR], seed + r, batch)
                dt, count = (dt_floor, n_floor) if name == FLOOR else _time(urls, fn, seed + r, batch)
                if r > 0:  # round 0 warms up (page cache, imports, allocator, buffer pool)
                    times[name].append((dt / count, dt_floor / n_floor))
    rows = []
    for name in timed:
        quiet_t, quiet_floor = min(times[name], key=lambda tf: tf[1])  # the round whose floor ran fastest
        ratio_med = statistics.median(t / f for t, f in times[name])
        rows.append((name, 1.0 / quiet_t, 1e3 * quiet_t, quiet_t / quiet_floor, ratio_med))
    return {
        "rows": rows,
        "bytes_per_pair": bpp,
        "n": n,
        "size": size,
        "rounds": rounds,
        "data": data or ("synthetic, photo-like images" if photo else "synthetic"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=48, help="pairs in the shard (default 48)")
    p.add_argument("--size", type=int, default=518, help="square view size (default 518)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="time these shards (a dataset folder, e.g. from datagen render)")
    p.add_argument("--photo", action="store_true", help="synthetic pairs with photo-like images (~170 KB JPEGs)")
    args = p.parse_args(argv)
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
