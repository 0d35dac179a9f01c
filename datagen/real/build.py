"""Writing real pairs (plain, augmented, or warp pairs) into pair shards.

The run is planned in full before anything is written: the split is read and validated (annotations, image
headers), the list of items is fixed, and shard ``i`` holds items ``i * shard_size ..`` in that order. Sample
``j`` of shard ``i`` draws every random choice from ``sample_rng(seed, i, j)`` (datagen/config.py), so a shard is
a pure function of the config and the dataset, and ``--resume`` remakes exactly the missing ones. Shards go
through :func:`datagen.shards.write_shard` (temp file, fsync, rename, receipt): an error in the middle of a shard
leaves no partial file, and the shards already made stay listed in ``dataset.json``.

Items:

* pair mode: every pair once as is (resized so its longer side is ``size``), then ``augment`` randomly
  augmented copies (:mod:`datagen.real.augment`);
* warp mode: every distinct image of the split, ``warps`` times, each with its own random warp
  (:mod:`datagen.real.warp`); keypoints, flip permutation and symmetric groups come along.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import datagen
from datagen.config import sample_rng
from datagen.real.augment import AugmentConfig, augment_pair, fit_longest_side
from datagen.real.pair import DatasetFormatError, RealPair, read_image
from datagen.real.warp import make_warp_sample, random_warp
from loaders.warp import affine_resize, apply_affine, inside_frame

__all__ = ["RealConfig", "Item", "plan_items", "make_sample", "generator_record", "shard_items"]


@dataclass(frozen=True)
class RealConfig:
    """Everything that determines a real-pair dataset's content (besides the benchmark files themselves)."""

    dataset: str
    split: str
    categories: tuple[str, ...] | None = None
    size: int = 518
    augment: int = 0  # augmented copies per pair (pair mode)
    warp: bool = False
    warps: int = 1  # warps per image (warp mode)
    warp_kind: str = "mixed"
    warp_strength: float = 0.2
    seed: int = 0
    shard_size: int = 100
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.size < 14:
            raise ValueError(f"--size must be at least 14 px, got {self.size}")
        if self.augment < 0 or self.warps < 1 or self.shard_size < 1:
            raise ValueError("--augment must be >= 0, --warps >= 1 and --shard-size >= 1")
        if self.warp_kind not in ("homography", "tps", "mixed"):
            raise ValueError(f"--warp-kind must be homography, tps or mixed, got {self.warp_kind!r}")
        if not 0 < self.warp_strength <= 0.5:
            raise ValueError(f"--warp-strength must lie in (0, 0.5], got {self.warp_strength}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Item:
    """One sample to make: pair ``pair`` (pair mode), or view ``view`` of pair ``pair`` (warp mode); ``copy``."""

    pair: int
    copy: int
    view: int | None = None


def plan_items(pairs: list[RealPair], cfg: RealConfig) -> list[Item]:
    """The samples of the run, in order."""
    if not cfg.warp:
        return [Item(i, c) for i in range(len(pairs)) for c in range(1 + cfg.augment)]
    seen: set[Path] = set()
    items = []
    for i, p in enumerate(pairs):
        for v in (0, 1):
            if p.image_paths[v] not in seen:
                seen.add(p.image_paths[v])
                items += [Item(i, c, v) for c in range(cfg.warps)]
    return items


def shard_items(items: list[Item], cfg: RealConfig) -> list[list[Item]]:
    return [items[i : i + cfg.shard_size] for i in range(0, len(items), cfg.shard_size)]


def generator_record(pairs: list[RealPair], cfg: RealConfig, n_items: int) -> dict[str, Any]:
    """The manifest's ``generator`` record; the fingerprint covers the config and the pairs read."""
    ids = hashlib.sha256(
        "\n".join(f"{p.pair_id}|{p.image_paths[0].name}|{p.image_paths[1].name}" for p in pairs).encode()
    )
    config = {**cfg.to_dict(), "pairs_sha256": ids.hexdigest(), "n_pairs": len(pairs), "n_samples": n_items}
    fingerprint = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return {"name": "datagen.real", "version": datagen.__version__, "config": config, "fingerprint": fingerprint}


def _warp_sample(pair: RealPair, item: Item, cfg: RealConfig, rng: np.random.Generator, key: str) -> dict[str, Any]:
    v = item.view
    image = read_image(pair.image_paths[v])
    if image.shape[:2] != tuple(pair.image_sizes[v]):
        raise DatasetFormatError(pair.image_paths[v], f"image size {image.shape[:2]} differs from its annotation")
    h, w = image.shape[:2]
    s = cfg.size / max(h, w)
    hw = (max(1, round(h * s)), max(1, round(w * s)))
    A = affine_resize((h, w), hw)
    image = cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    kps = apply_affine(A, pair.kps[v])
    vis = pair.vis[v] & inside_frame(kps, hw)
    base = pair.meta()
    bbox0 = None
    if pair.bboxes[v] is not None:
        x1, y1, x2, y2 = pair.bboxes[v]
        (bx1, by1), (bx2, by2) = apply_affine(A, np.array([[x1, y1], [x2, y2]]))
        bbox0 = [float(bx1), float(by1), float(bx2), float(by2)]
    warp = random_warp(rng, hw, cfg.warp_kind, cfg.warp_strength)
    meta = {
        k: base[k] for k in ("category", "keypoint_names", "keypoint_sides", "flip_perm", "sym_groups") if k in base
    }
    meta["origin"] = {"dataset": pair.dataset, "split": pair.split, "pair_id": pair.pair_id, "view": v}
    meta["image_names"] = [pair.image_paths[v].name] * 2
    meta["bbox0"] = bbox0
    meta["bbox1"] = None if bbox0 is None else _warped_box(bbox0, warp, hw)
    return make_warp_sample(image, warp, meta, kps, vis, key)


def _warped_box(bbox: list[float], warp, hw: tuple[int, int]) -> list[float] | None:
    """Axis-aligned box of the warped box outline (64 points per side), clipped to the frame."""
    x1, y1, x2, y2 = bbox
    t = np.linspace(0, 1, 64)
    outline = np.concatenate(
        [np.stack([x1 + (x2 - x1) * t, np.full_like(t, y)], 1) for y in (y1, y2)]
        + [np.stack([np.full_like(t, x), y1 + (y2 - y1) * t], 1) for x in (x1, x2)]
    )
    pts = warp.forward(outline)
    lo = np.maximum(pts.min(0), -0.5)
    hi = np.minimum(pts.max(0), np.array([hw[1], hw[0]]) - 0.5)
    return None if (hi <= lo).any() else [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]


def make_sample(pairs: list[RealPair], item: Item, cfg: RealConfig, shard: int, index: int) -> dict[str, Any]:
    """Sample ``index`` of shard ``shard``: a pure function of the pairs, the item and the config."""
    key = f"s{shard:06d}_{index:05d}"
    rng = sample_rng(cfg.seed, shard, index)
    pair = pairs[item.pair]
    if item.view is not None:
        out = _warp_sample(pair, item, cfg, rng, key)
    elif item.copy == 0:
        out = fit_longest_side(pair.to_sample(key), cfg.size)
    else:
        sample = pair.to_sample(key)
        out = augment_pair(sample, rng, dataclasses.replace(cfg.augmentation, size=cfg.size))
    meta = dict(out["meta"])
    meta["copy"] = item.copy
    meta["seed"] = [cfg.seed, shard, index]
    out["meta"] = meta
    out["__key__"] = key
    return out
