"""Throughput of the real-pair pipeline and the dense SIFT baseline (prints a Markdown table).

    .venv/bin/python scripts/bench_real.py [--pairs 24] [--size 518]

Writes a SPair-71k-format folder of synthetic 500x375 images in a temp dir, then times (all in this run, so the
ratios are comparable on a shared machine): reading and validating the split; ``datagen real`` plain, augmented
and warp shards (samples/s); dense SIFT matching at the model size (pairs/s, and its error on a known affine warp).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from datagen.cli import main as datagen_main
from datagen.real import read_pairs


def write_folder(root: Path, n_pairs: int, rng: np.random.Generator) -> None:
    h, w = 375, 500
    names = [f"2010_{i:06d}" for i in range(n_pairs + 1)]
    for i, name in enumerate(names):
        (root / "JPEGImages" / "car").mkdir(parents=True, exist_ok=True)
        img = (rng.random((h // 25, w // 25, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).resize((w, h), Image.BICUBIC).save(root / "JPEGImages" / "car" / f"{name}.jpg", quality=90)
        kps = {str(k): ([float(20 + 15 * k), float(30 + 9 * k)] if k % 3 else None) for k in range(30)}
        anno = {"image_width": w, "image_height": h, "bndbox": [10, 20, 480, 350], "kps": kps, "azimuth_id": i % 8}
        (root / "ImageAnnotation" / "car").mkdir(parents=True, exist_ok=True)
        (root / "ImageAnnotation" / "car" / f"{name}.json").write_text(json.dumps(anno))
    (root / "PairAnnotation" / "trn").mkdir(parents=True, exist_ok=True)
    for i in range(n_pairs):
        data = {"category": "car", "src_imname": f"{names[i]}.jpg", "trg_imname": f"{names[i + 1]}.jpg",
                "src_imsize": [w, h, 3], "trg_imsize": [w, h, 3], "src_bndbox": [10, 20, 480, 350],
                "trg_bndbox": [10, 20, 480, 350]}  # fmt: skip
        (root / "PairAnnotation" / "trn" / f"{i:06d}:car.json").write_text(json.dumps(data))


def sift_accuracy(size: int) -> list[tuple[str, str, float, float, float]]:
    """Dense SIFT on a textured image vs. the same texture under a translation and a 10° / 1.1x affine warp."""

    from training.baselines.sift import DenseSiftMatcher
    from training.baselines.warp_check import edge_texture, warped_pair

    big = edge_texture(np.random.default_rng(0), 2 * size, 2 * size)
    ang, s = np.deg2rad(10.0), 1.1
    R = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    c = np.array([size / 2 - 0.5] * 2)
    affine = np.eye(3)
    affine[:2, :2], affine[:2, 2] = R, c - R @ c + [6.0, -4.0]
    rows = []
    for name, M in (("translation (13, -7) px", np.array([[1, 0, 13.0], [0, 1, -7.0], [0, 0, 1]])), ("affine", affine)):
        images = warped_pair(big, M, size)
        for label, kw in (("step 8, cosine", {}), ("step 4, cosine", {"step": 4}), ("step 8, l2", {"metric": "l2"})):
            t = time.perf_counter()
            grid = DenseSiftMatcher(**kw)(images)["grid"][0, 0].numpy()
            dt = time.perf_counter() - t
            yy, xx = np.mgrid[0:size, 0:size]
            p = np.stack([xx, yy], -1).astype(np.float64)
            gt = p @ M[:2, :2].T + M[:2, 2]
            m = 24
            keep = ((p > m) & (p < size - 1 - m)).all(-1) & ((gt > m) & (gt < size - 1 - m)).all(-1)
            e = np.linalg.norm(grid - gt, axis=-1)[keep]
            rows.append((name, label, float(np.median(e)), float(np.mean(e < 4.0)), dt))
    return rows


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--size", type=int, default=518)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "SPair-71k"
        write_folder(root, args.pairs, np.random.default_rng(0))
        dt = timed(lambda: read_pairs("spair", root, "trn"))
        rows.append(("read + validate split", args.pairs, dt, "pairs"))
        base = ["real", "--dataset", "spair", "--root", str(root), "--split", "trn", "--size", str(args.size),
                "--no-progress", "--shard-size", "50"]  # fmt: skip
        for name, extra, n in (
            ("datagen real, plain", [], args.pairs),
            ("datagen real, +1 augmented", ["--augment", "1"], 2 * args.pairs),
            ("datagen real, warp homography", ["--warp", "--warp-kind", "homography"], args.pairs + 1),
            ("datagen real, warp tps", ["--warp", "--warp-kind", "tps"], args.pairs + 1),
        ):
            out = Path(tmp) / name.replace(" ", "_").replace(",", "").replace("+", "")
            dt = timed(lambda out=out, extra=extra: datagen_main([*base, *extra, "--out", str(out)]))
            rows.append((name, n, dt, "samples"))
        import torch

        from training.baselines.sift import DenseSiftMatcher

        x = torch.rand(1, 2, 3, args.size, args.size)
        for step in (8, 4):
            m = DenseSiftMatcher(step=step)
            m(x)
            n = 3 if step >= 8 else 1
            dt = timed(lambda m=m, n=n: [m(x) for _ in range(n)])
            rows.append((f"dense SIFT match, step {step}, {args.size}^2", n, dt, "pairs"))
    print("| stage | items | seconds | items/s |\n|---|---:|---:|---:|")
    for name, n, dt, unit in rows:
        print(f"| {name} | {n} {unit} | {dt:.2f} | {n / dt:.2f} |")
    print("\n| dense SIFT, 192 px, known warp | setting | median error px | within 4 px | seconds |")
    print("|---|---|---:|---:|---:|")
    for name, label, med, frac, dt in sift_accuracy(192):
        print(f"| {name} | {label} | {med:.2f} | {100 * frac:.1f}% | {dt:.2f} |")


if __name__ == "__main__":
    main()
