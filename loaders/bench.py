"""Loader throughput on one core: decoded (+ transformed) pairs/s beside the raw floor of the same shards.

The *raw floor* reads the tar bytes and decodes the two images, nothing else: what any loader of these shards
must pay. The pipelines add the dense fields, transforms and tensor conversion. Every pipeline run follows a run
of the floor, so that a busy shared machine slows both alike; the ratios are the result. Reported: the quietest
round (the one whose floor ran fastest) and the median ratio over rounds.

``scripts/bench_loaders.py`` is the command line.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from loaders.augment import ColorJitter, Compose, RandomHFlip, RandomSwap, VggtPreprocess, default_train_transforms
from loaders.batch import ARRAY_KEYS
from loaders.codec import decode_dense
from loaders.loader import PairLoader
from loaders.members import decode_image, encode_sample
from loaders.schema import SCHEMA_VERSION, Status
from loaders.sources import ShardReader, count_samples, expand_spec
from loaders.stream import PairStream

__all__ = ["synthetic_pair", "write_bench_shards", "run", "pipelines", "NO_DEPTH", "FLOOR", "STANDARD"]


def _photo_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [h, w, 3] multi-scale noise: JPEGs of photo-like size (~170 KB at 518², q95) and decode cost."""
    acc = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((4, 60), (16, 40), (64, 25), (160, 14), (518, 2)):
        noise = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        acc += amp * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + acc, 0, 255).astype(np.uint8)


def _view(size: int, rng: np.random.Generator, other: int, photo: bool = False) -> dict[str, np.ndarray]:
    """Dense fields of one rendered-looking view: an elliptic body with a seam-separated part, occluded and
    out-of-frame areas, a projective correspondence map and a smooth depth."""
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy, ax, ay = rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h, 0.35 * w, 0.33 * h
    body = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
    legs = (np.abs((xx - cx) % (0.25 * w) - 0.12 * w) < 0.02 * w) & (yy > cy) & (yy < cy + 0.45 * h)
    status = np.where(body | legs, Status.MATCHED, Status.BACKGROUND).astype(np.uint8)
    a = rng.uniform(0.8, 1.2, 4) * [1, 0.1, 0.1, 1]
    den = 1 + 3e-4 * (xx - cx) + 2e-4 * (yy - cy)
    corr_x = (a[0] * (xx - cx) + a[1] * (yy - cy)) / den + other * 0.5
    corr_y = (a[2] * (xx - cx) + a[3] * (yy - cy)) / den + other * 0.5
    part = body & (yy < cy - 0.1 * h) & (xx > cx)
    corr_x[part] += 23.5
    corr_y[part] -= 11.25
    corr = np.stack([corr_x, corr_y], -1).astype(np.float32)
    status[body & (xx < cx - 0.2 * w) & (yy < cy)] = Status.OCCLUDED
    lo, hi = -0.5, other - 0.5
    outside = (corr[..., 0] < lo) | (corr[..., 0] >= hi) | (corr[..., 1] < lo) | (corr[..., 1] >= hi)
    status[(status > 0) & outside] = Status.OUTSIDE
    status[body & (np.abs(xx - cx) < 0.03 * w) & (yy > cy + 0.1 * h)] = Status.NO_COUNTERPART
    corr[~np.isin(status, [1, 2, 3])] = np.nan
    depth = np.where(status > 0, 2.0 + 0.3 * np.sin(xx / 60) + 0.2 * yy / h + 0.3 * legs, 0).astype(np.float32)
    if photo:
        image = _photo_texture(h, w, rng)
    else:
        shade = np.clip(80 + 120 * np.cos(xx / 90) * np.sin(yy / 70) + rng.normal(0, 6, (h, w)), 0, 255)
        image = np.where((status > 0)[..., None], np.stack([shade, shade * 0.8, shade * 0.6], -1), 235)
    return {"status": status, "corr": corr, "depth": depth, "image": image.astype(np.uint8)}


def synthetic_pair(size: int, rng: np.random.Generator, key: str, photo: bool = False) -> dict[str, Any]:
    """A schema sample that looks like a rendered ``size``² pair (for benchmarks; not geometry); ``photo``
    gives the images a photo-like texture (JPEG size and decode cost of real photographs)."""
    v0, v1 = _view(size, rng, size, photo), _view(size, rng, size, photo)
    names = [f"kp{i}" for i in range(12)]
    sample = {
        "__key__": key,
        "image0": v0["image"],
        "image1": v1["image"],
        "status_0to1": v0["status"],
        "status_1to0": v1["status"],
        "corr_0to1": v0["corr"],
        "corr_1to0": v1["corr"],
        "depth0": v0["depth"],
        "depth1": v1["depth"],
        "kps0": rng.uniform(0, size - 1, (12, 2)).astype(np.float32),
        "kps1": rng.uniform(0, size - 1, (12, 2)).astype(np.float32),
        "kps0_vis": np.ones(12, bool),
        "kps1_vis": np.ones(12, bool),
        "meta": {
            "schema_version": SCHEMA_VERSION,
            "source": "procedural",
            "category": "bench",
            "image_size0": [size, size],
            "image_size1": [size, size],
            "keypoint_names": names,
            "flip_perm": list(range(12)),
        },
    }
    for v in (0, 1):
        sample[f"K{v}"] = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], np.float32)
        sample[f"T_cam{v}_from_world"] = np.eye(4, dtype=np.float32)
    return sample


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
    that converts the images on the GPU (:func:`loaders.batch.images_to_float`) and reads no depth asks for.
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
