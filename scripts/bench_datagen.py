#!/usr/bin/env python
"""Pair-generation throughput per core: where the time goes (mesh, raster, GT, encode, write), beside the raw
raster-only rate measured in the same run.

Per core: one process with llvmpipe pinned to one thread (``LP_NUM_THREADS=1``, set before GL starts) renders
``--pairs`` pairs of the default config into a real tar, after a warm-up group (shader compilation, first-touch
allocations); the lit + face-id GL passes alone are then timed on fresh views (the raster-only rate). Each size is
measured ``--repeats`` times and the quietest repeat (highest pairs/s) is printed with its own raster-only rate, so
the ratio between the two is a load-robust number on a shared machine; so is pairs per CPU-second of the process
(all its threads; what one core would deliver were it not shared). Finally ``datagen render --workers N``'s
code path (:func:`datagen.shards.write_shards`, spawned workers, ``LP_NUM_THREADS=1`` each) makes
``--parallel-shards`` shards per size; its wall rate includes starting the workers.

``--renderer blenderproc`` (or ``pyrender,blenderproc`` for both tables) measures the photoreal renderer instead,
with ``scripts/bench_photoreal.py``'s code: per size, seconds per Cycles frame (median of ``--frames`` views after a
warm-up view, Cycles pinned to ``--threads`` threads) and one shard of ``--pairs`` pairs (default 4) made by each
renderer, pyrender beside Cycles: seconds per pair and pairs/s per core (pairs per CPU-second of this process and
its Cycles worker, all threads), and the pairs the agreement check dropped. It needs the photoreal extra (bpy).

Usage::

    python scripts/bench_datagen.py                            # chair, 256 and 518 px, 100 pairs, 3 repeats
    python scripts/bench_datagen.py --category table --sizes 518 --repeats 1 --parallel 0 --backend embree
    python scripts/bench_datagen.py --renderer blenderproc     # Cycles beside pyrender, 256 and 518 px, 4 pairs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("mesh", "raster", "gt", "encode", "write")
RENDERERS = ("pyrender", "blenderproc")
DEFAULT_PAIRS = {"pyrender": 100, "blenderproc": 4}


def renderers(value: str) -> list[str]:
    """``--renderer``: one renderer or several, comma-separated."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in RENDERERS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected {' or '.join(RENDERERS)} (comma-separated for both), got {value!r}")
    return list(dict.fromkeys(names))


def raster_only_views_per_s(config, n_views: int) -> float:
    """Lit + face-id GL passes alone (no background, GT or encoding) on fresh views: views per second."""
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


def _config(args, size: int, n_pairs: int):
    from datagen.config import RenderConfig

    return RenderConfig(
        category=args.category,
        n_pairs=n_pairs,
        size=size,
        backend=args.backend,
        seed=args.seed,
        same_instance_fraction=0.1,
    )


def bench_size(args, size: int) -> dict:
    """One repeat at one size: the timed pipeline run and the raster-only rate right after it."""
    from datagen.pipeline import generate_shard
    from datagen.shards import write_tar

    config = _config(args, size, args.pairs)
    config = type(config).from_dict({**config.to_dict(), "shard_size": args.pairs})
    warm = type(config).from_dict({**config.to_dict(), "n_pairs": 4, "shard_size": 4, "seed": args.seed + 1})
    with tempfile.TemporaryDirectory() as tmp:
        with open(Path(tmp) / "warm.tar", "wb") as f:
            write_tar(generate_shard(warm, 0), f)
        timings: dict[str, float] = {}
        t0, c0 = time.perf_counter(), time.process_time()
        with open(Path(tmp) / "pairs.tar", "wb") as f:
            n, nbytes, _ = write_tar(generate_shard(config, 0, timings), f, timings)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    views_per_s = raster_only_views_per_s(config, args.raster_views)
    return {
        "size": size,
        "n": n,
        "wall": wall,
        "cpu": cpu,
        "bytes": nbytes,
        "timings": timings,
        "views_per_s": views_per_s,
    }


def bench_parallel(args, size: int) -> tuple[int, float]:
    """``write_shards`` with ``args.parallel`` spawned workers: (pairs, wall seconds including worker start)."""
    from datagen.shards import write_shards

    config = _config(args, size, args.parallel_shards * 100)
    with tempfile.TemporaryDirectory() as tmp:
        report = write_shards(config, Path(tmp) / "d", workers=args.parallel, progress=False)
    return report.pairs_made, report.seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--category", default="chair")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 518])
    p.add_argument("--renderer", type=renderers, default=["pyrender"], help="pyrender, blenderproc, or both: a,b")
    p.add_argument("--pairs", type=int, default=None, help="pairs per timed run (default: 100 = one default shard; "
                   "blenderproc: 4)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="timed runs per size; the quietest is printed")
    p.add_argument("--backend", default="pyrender", choices=["pyrender", "embree"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raster-views", type=int, default=64, help="views rendered for the raster-only rate")
    p.add_argument("--threads", default="1", help="LP_NUM_THREADS for llvmpipe (default 1: per-core rates)")
    p.add_argument("--parallel", type=int, default=2, help="also run write_shards with this many workers (0: skip)")
    p.add_argument("--parallel-shards", type=int, default=4, help="100-pair shards per size for --parallel")
    p.add_argument("--samples", type=int, default=32, help="blenderproc: Cycles samples per pixel")
    p.add_argument("--frames", type=int, default=2, help="blenderproc: Cycles views timed per size (after a warm-up)")
    args = p.parse_args(argv)
    if "blenderproc" in args.renderer:
        from datagen.photoreal import INSTALL_HINT, photoreal_available

        if not photoreal_available():
            print(f"bench_datagen: error: --renderer blenderproc: {INSTALL_HINT}", file=sys.stderr)
            return 2
    os.environ["LP_NUM_THREADS"] = args.threads  # before any GL context exists (inherited by spawned workers)
    os.environ.setdefault("TQDM_DISABLE", "1")
    if "pyrender" in args.renderer:
        bench_pyrender(argparse.Namespace(**{**vars(args), "pairs": args.pairs or DEFAULT_PAIRS["pyrender"]}))
    if "blenderproc" in args.renderer:
        bench_blenderproc(argparse.Namespace(**{**vars(args), "pairs": args.pairs or DEFAULT_PAIRS["blenderproc"]}))
    return 0


def bench_blenderproc(args) -> None:
    """Cycles beside pyrender at each size (``scripts/bench_photoreal.py``'s measurements): prints a table."""
    from bench_photoreal import frame_seconds, pair_seconds  # this script's sibling (scripts/ is on sys.path)

    threads = int(args.threads)
    load0 = os.getloadavg()
    rows = {}
    for size in args.sizes:
        frame = frame_seconds(args.category, size, args.frames, args.samples, args.backend, threads=threads)
        rows[size] = (frame, pair_seconds(args.category, size, args.pairs, args.samples, args.backend))
    load1 = os.getloadavg()
    print(
        f"\nblenderproc (Cycles, {args.samples} spp, device {frame['device'] or '?'}) beside pyrender: category "
        f"{args.category}, backend {args.backend}, one {args.pairs}-pair shard per renderer and size; frames with "
        f"Cycles on {threads or 'all'} thread(s), median of {args.frames} after a warm-up; per core = pairs per "
        f"CPU-second (this process and its Cycles worker, all threads); load average {load0[0]:.2f} at start, "
        f"{load1[0]:.2f} at end"
    )
    head = (
        "| size | Cycles s per frame | Cycles s per pair | Cycles pairs/s per core | pyrender s per pair | "
        "pyrender pairs/s per core | Cycles ÷ pyrender (CPU per pair) | dropped |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for size, (frame, pair) in rows.items():
        cycles_cpu = max(pair["blenderproc_cpu_s_per_pair"], 1e-3)  # rounded to ms: never 0
        pyrender_cpu = max(pair["pyrender_cpu_s_per_pair"], 1e-3)
        print(
            f"| {size} | {frame['view_s']:.2f} | {pair['blenderproc_s_per_pair']:.2f} | {1 / cycles_cpu:.3f} | "
            f"{pair['pyrender_s_per_pair']:.3f} | {1 / pyrender_cpu:.2f} | {cycles_cpu / pyrender_cpu:.0f}x | "
            f"{pair['dropped']} |"
        )


def bench_pyrender(args) -> None:
    """The pipeline's per-core rate, stages and raster-only rate at each size, then ``write_shards``: a table."""
    load0 = os.getloadavg()
    best, ratios = {}, {}
    for _ in range(args.repeats):
        for size in args.sizes:
            r = bench_size(args, size)
            rate = r["n"] / r["wall"]
            ratios.setdefault(size, []).append(rate / (r["views_per_s"] / 2))
            if size not in best or rate > best[size]["n"] / best[size]["wall"]:
                best[size] = r
    parallel = {s: bench_parallel(args, s) for s in args.sizes} if args.parallel > 1 else {}
    load1 = os.getloadavg()

    print(
        f"\ncategory {args.category}, backend {args.backend}, LP_NUM_THREADS={args.threads}, {args.pairs} pairs per "
        f"run, quietest of {args.repeats}; load average {load0[0]:.2f} at start, {load1[0]:.2f} at end"
    )
    head = (
        "| size | pairs/s per core | pairs per CPU-s | "
        + " | ".join(f"{k} ms" for k in STAGES)
        + " | other ms | MB/pair | "
    )
    head += "raster-only views/s | raster-only pairs/s (2 fresh views) | pairs/s ÷ raster-only (all repeats) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for size in args.sizes:
        r = best[size]
        n = r["n"]
        parts = [1000 * r["timings"].get(k, 0.0) / n for k in STAGES]
        other = 1000 * r["wall"] / n - sum(parts)
        spread = ", ".join(f"{x:.2f}" for x in ratios[size])
        print(
            f"| {size} | {n / r['wall']:.2f} | {n / r['cpu']:.2f} | "
            + " | ".join(f"{x:.1f}" for x in parts)
            + f" | {other:.1f} | {r['bytes'] / n / 1e6:.3f} | {r['views_per_s']:.1f} | {r['views_per_s'] / 2:.1f}"
            + f" | {spread} |"
        )
    if parallel:
        print(
            f"\n{args.parallel} workers (write_shards, {args.parallel_shards} shards of 100, wall incl. worker start):"
        )
        for size, (n, seconds) in parallel.items():
            print(f"  {size} px: {n} pairs in {seconds:.1f} s = {n / seconds:.2f} pairs/s")


if __name__ == "__main__":
    sys.exit(main())
