#!/usr/bin/env python
"""Measure the blenderproc (Cycles) renderer: GT agreement per family, seconds per frame and per pair beside
pyrender, and a figure of one pair from both renderers with ground-truth arrows.

    python scripts/bench_photoreal.py --agreement --frames 2 --pairs 4 --figure docs/figures/photoreal_pair.png

``scripts/bench_datagen.py --renderer blenderproc`` reuses :func:`frame_seconds` and :func:`pair_seconds` for its
table beside pyrender.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from datagen.config import DROPPED_PAIRS, PhotorealConfig, RenderConfig
from datagen.families import family_names, get_family
from datagen.photoreal import INSTALL_HINT, photoreal_available
from datagen.photoreal.views import PhotorealViews
from datagen.pipeline import _Group, generate_shard
from datagen.render import get_renderer


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its children that have ended (a shard's Cycles worker, once
    closed)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _config(category: str, size: int, samples: int, backend: str, **kw: Any) -> RenderConfig:
    return RenderConfig(
        category=category,
        size=size,
        backend=backend,
        renderer="blenderproc",
        photoreal=PhotorealConfig(samples=samples),
        **kw,
    )


def agreement_by_family(
    size: int = 256, views: int = 2, samples: int = 4, backend: str = "pyrender", families: list[str] | None = None
) -> list[dict[str, Any]]:
    """Cycles' mask and depth against the exact path for ``views`` views of one instance of every family (with the
    default truncation and occluder shares). One row per view."""
    rows = []
    for name in families or family_names():
        config = _config(name, size, samples, backend, instances_per_group=1, views_per_instance=views)
        photoreal = PhotorealViews(config)
        group = _Group(config, get_family(name), get_renderer(backend), 0, 0, None, photoreal)
        try:
            for v in range(views):
                meta = group.view(v).meta
                pr = meta["photoreal"]
                row = {"family": name, "view": v, "occluded": bool(meta["occluders"]), "background": pr["background"]}
                rows.append({**row, **pr["agreement"]})
        finally:
            group.release()
            photoreal.close()
    return rows


def frame_seconds(
    category: str, size: int, n_views: int, samples: int, backend: str = "pyrender", threads: int = 0
) -> dict[str, Any]:
    """Wall seconds of one Cycles view (both passes, scene upload, read-back), after a first warm-up view that
    also starts the worker; median over ``n_views`` views."""
    config = _config(category, size, samples, backend, instances_per_group=1, views_per_instance=n_views + 1)
    photoreal = PhotorealViews(config, threads=threads)
    group = _Group(config, get_family(category), get_renderer(backend), 0, 0, None, photoreal)
    times = []
    try:
        t0 = time.perf_counter()
        group.view(0)
        first = time.perf_counter() - t0
        for v in range(1, n_views + 1):
            timings: dict[str, float] = {}
            group.timings = timings
            group.view(v)
            times.append(timings["photoreal"])
    finally:
        group.release()
        photoreal.close()
    return {"size": size, "samples": samples, "device": photoreal.device, "first_view_s": round(first, 2),
            "view_s": round(float(np.median(times)), 2), "views": n_views}  # fmt: skip


def pair_seconds(category: str, size: int, n_pairs: int, samples: int, backend: str = "pyrender") -> dict[str, Any]:
    """Seconds per pair of one shard of ``n_pairs`` with each renderer (default group settings: views are reused
    across pairs): wall seconds (``<renderer>_s_per_pair``) and CPU seconds of this process and the shard's Cycles
    worker, all threads (``<renderer>_cpu_s_per_pair``: its inverse is pairs/s per core), and the pairs the
    photoreal check dropped."""
    out: dict[str, Any] = {"size": size, "pairs": n_pairs, "samples": samples}
    for renderer in ("pyrender", "blenderproc"):
        config = dataclasses.replace(
            _config(category, size, samples, backend, n_pairs=n_pairs, shard_size=n_pairs), renderer=renderer
        )
        timings: dict[str, float] = {}
        t0, c0 = time.perf_counter(), cpu_seconds()
        n = sum(1 for _ in generate_shard(config, 0, timings))  # the generator's end closes the Cycles worker
        out[f"{renderer}_s_per_pair"] = round((time.perf_counter() - t0) / n, 3)
        out[f"{renderer}_cpu_s_per_pair"] = round((cpu_seconds() - c0) / n, 3)
        if renderer == "blenderproc":
            out["dropped"] = int(timings.get(DROPPED_PAIRS, 0))
    return out


def pair_figure(
    path: str | Path,
    category: str = "chair",
    size: int = 256,
    samples: int = 32,
    seed: int = 0,
    arrows: int = 24,
    backgrounds: str | None = None,
) -> dict[str, Any]:
    """One pair rendered by pyrender (top) and Cycles (bottom), with the same ground-truth arrows from view 0 to
    view 1 (valid pixels drawn with a fixed seed), over real photos with ``backgrounds``. Returns the pair's keys,
    agreement records and whether the GT fields of the two renders are identical."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = _config(category, size, samples, "pyrender", n_pairs=1, shard_size=1, seed=seed, backgrounds=backgrounds)
    samples_by = {}
    for renderer in ("pyrender", "blenderproc"):
        samples_by[renderer] = next(iter(generate_shard(dataclasses.replace(base, renderer=renderer), 0)))
    a, b = samples_by["pyrender"], samples_by["blenderproc"]
    if a["meta"]["instance_ids"] != b["meta"]["instance_ids"]:
        raise RuntimeError("the photoreal run dropped the first pair: choose another seed for the figure")
    valid = b["valid_0to1"]
    ys, xs = np.nonzero(valid)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(ys), size=min(arrows, len(ys)), replace=False) if len(ys) else np.zeros(0, int)
    fig, axes = plt.subplots(2, 1, figsize=(8, 8.4))
    for ax, (name, s) in zip(axes, (("pyrender", a), ("blenderproc (Cycles)", b))):
        ax.imshow(np.concatenate([s["image0"], s["image1"]], axis=1))
        for i in pick:
            x0, y0 = xs[i], ys[i]
            x1, y1 = s["corr_0to1"][y0, x0]
            color = plt.cm.hsv(float(x0 + y0 * 0.37) % size / size)
            ax.annotate("", xy=(x1 + size, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 0.9, "alpha": 0.85})  # fmt: skip
            ax.plot([x0], [y0], "o", ms=2.5, color=color)
        ax.set_title(f"{name}: {category} pair, {size}x{size}, GT arrows view 0 -> view 1", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {
        "instance_ids": b["meta"]["instance_ids"],
        "agreement": [v["photoreal"]["agreement"] for v in b["meta"]["views"]],
        "gt_identical": all(
            np.array_equal(a[k], b[k], equal_nan=True)
            for k in ("status_0to1", "corr_0to1", "depth0", "depth1", "mask0")
        ),
    }


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
    if not photoreal_available():
        print(f"bench_photoreal: error: {INSTALL_HINT}", file=sys.stderr)
        return 2
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
