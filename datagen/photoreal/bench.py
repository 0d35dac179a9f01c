"""Measurements of the ``blenderproc`` renderer: GT agreement per family, seconds per frame and per pair beside
pyrender, and a picture of one pair from both renderers with ground-truth arrows (``scripts/bench_photoreal.py``)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from datagen.config import DROPPED_PAIRS, PhotorealConfig, RenderConfig
from datagen.families import family_names, get_family
from datagen.photoreal.views import PhotorealViews
from datagen.pipeline import _Group, generate_shard
from datagen.render import get_renderer

__all__ = ["agreement_by_family", "frame_seconds", "pair_seconds", "pair_figure"]


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
    across pairs), and the pairs the photoreal check dropped."""
    out: dict[str, Any] = {"size": size, "pairs": n_pairs, "samples": samples}
    for renderer in ("pyrender", "blenderproc"):
        config = dataclasses.replace(
            _config(category, size, samples, backend, n_pairs=n_pairs, shard_size=n_pairs), renderer=renderer
        )
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        n = sum(1 for _ in generate_shard(config, 0, timings))
        out[f"{renderer}_s_per_pair"] = round((time.perf_counter() - t0) / n, 3)
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
