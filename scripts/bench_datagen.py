#!/usr/bin/env python
"""Pair-generation throughput per core: where the time goes (mesh, raster, GT, encode, write), beside the raw
raster-only rate measured in the same run.

One process, llvmpipe pinned to one thread (``LP_NUM_THREADS=1``, set before GL starts), so the rates are per
core; on an N-core machine ``datagen render --workers N`` scales them by about N. Each size renders a warm-up
group first (shader compilation, first-touch allocations), then times ``--pairs`` pairs written to a real tar.

Usage::

    python scripts/bench_datagen.py                            # chair, 256 and 518 px, 48 pairs each
    python scripts/bench_datagen.py --category table --sizes 518 --pairs 96 --backend embree
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def raster_only_views_per_s(config, n_views: int) -> float:
    """Lit + face-id passes alone (no GT, no encode) on the views of one group: views per second."""
    import numpy as np

    from datagen.families import get_family
    from datagen.pipeline import _Group
    from datagen.render import get_renderer
    from datagen.render.appearance import sample_lighting

    group = _Group(config, get_family(config.category), get_renderer(config.backend), 10_000, 0, None)
    renderer = group.renderer
    views = [group.views[i % len(group.views)] for i in range(n_views)]
    handles = [group._instance(v.instance).handle for v in views]  # upload first (counted as mesh, not raster)
    lights = [sample_lighting(np.random.default_rng(i), v.view.T_cam_from_world) for i, v in enumerate(views)]
    t0 = time.perf_counter()
    for v, h, li in zip(views, handles, lights):
        renderer.render_lit(h, v.view, li)
        renderer.render_face_ids(h, v.view)
    dt = time.perf_counter() - t0
    group.release()
    return n_views / dt


def bench_size(args, size: int) -> dict:
    from datagen.config import RenderConfig
    from datagen.pipeline import generate_shard
    from datagen.shards import write_tar

    config = RenderConfig(
        category=args.category,
        n_pairs=args.pairs,
        size=size,
        shard_size=args.pairs,
        backend=args.backend,
        seed=args.seed,
        same_instance_fraction=0.1,
    )
    warm = RenderConfig(**{**config.to_dict(), "camera": config.camera, "n_pairs": 4, "shard_size": 4})
    with tempfile.TemporaryDirectory() as tmp:
        with open(Path(tmp) / "warm.tar", "wb") as f:
            write_tar(generate_shard(warm, 0), f)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        with open(Path(tmp) / "pairs.tar", "wb") as f:
            n, nbytes, _ = write_tar(generate_shard(config, 0, timings), f, timings)
        wall = time.perf_counter() - t0
    views_per_s = raster_only_views_per_s(config, args.raster_views)
    return {"size": size, "n": n, "wall": wall, "bytes": nbytes, "timings": timings, "views_per_s": views_per_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--category", default="chair")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 518])
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--backend", default="pyrender", choices=["pyrender", "embree"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raster-views", type=int, default=24, help="views rendered for the raster-only rate")
    p.add_argument("--threads", default="1", help="LP_NUM_THREADS for llvmpipe (default 1: per-core rates)")
    args = p.parse_args(argv)
    os.environ["LP_NUM_THREADS"] = args.threads  # before any GL context exists
    os.environ.setdefault("TQDM_DISABLE", "1")

    rows = [bench_size(args, s) for s in args.sizes]
    keys = ("mesh", "raster", "gt", "encode", "write")
    print(f"\ncategory {args.category}, backend {args.backend}, LP_NUM_THREADS={args.threads}, {args.pairs} pairs/size")
    head = "| size | pairs/s | " + " | ".join(f"{k} ms" for k in keys) + " | other ms | MB/pair | "
    head += "raster-only views/s | raster-only pairs/s (2 fresh views) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        n = r["n"]
        parts = [1000 * r["timings"].get(k, 0.0) / n for k in keys]
        other = 1000 * r["wall"] / n - sum(parts)
        print(
            f"| {r['size']} | {n / r['wall']:.2f} | "
            + " | ".join(f"{x:.1f}" for x in parts)
            + f" | {other:.1f} | {r['bytes'] / n / 1e6:.3f} | {r['views_per_s']:.1f} | {r['views_per_s'] / 2:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
