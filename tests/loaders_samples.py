"""Analytic pair samples and tiny shard writers for the loaders tests.

``affine_pair`` builds a schema sample whose correspondences are known affine maps (one map for the body, another
for a "part" patch, so there is a seam), with a background, an occluded patch, a no-counterpart patch and
out-of-frame counterparts, keypoints on the same map and a linear depth. The exact answer after any chain of
transforms is the composed affine map.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loaders.dataset_manifest import DatasetManifest, ShardEntry, sha256_file, shard_name
from loaders.members import encode_sample
from loaders.schema import SCHEMA_VERSION, Status

KP_NAMES = ["left_eye", "right_eye", "nose", "left_ear", "right_ear"]
KP_FLIP = [1, 0, 2, 4, 3]

# view 0 -> view 1 maps: the body, and a part whose map is shifted (a seam in the field)
G_BODY = np.array([[0.9, 0.1, 6.3], [-0.05, 1.05, -4.2], [0, 0, 1]])
G_PART = G_BODY @ np.array([[1, 0, 9.0], [0, 1, -7.0], [0, 0, 1]])
PART_BOX = (slice(30, 45), slice(40, 60))  # rows, cols of view 0 that follow G_PART


def _apply(G: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ G[:2, :2].T + G[:2, 2]


def inside(xy: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return (xy[..., 0] >= -0.5) & (xy[..., 0] < hw[1] - 0.5) & (xy[..., 1] >= -0.5) & (xy[..., 1] < hw[0] - 0.5)


def _direction(G: np.ndarray, hw_src: tuple[int, int], hw_dst: tuple[int, int], part: bool):
    h, w = hw_src
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xy = np.stack([xx, yy], -1)
    corr = _apply(G, xy)
    if part:
        corr[PART_BOX] = _apply(G_PART, xy[PART_BOX])
    status = np.where(inside(corr, hw_dst), Status.MATCHED, Status.OUTSIDE).astype(np.uint8)
    status[:, :4] = Status.BACKGROUND
    status[h - 5 :, :] = Status.BACKGROUND
    status[8:14, 10:20] = np.where(status[8:14, 10:20] == Status.MATCHED, Status.OCCLUDED, status[8:14, 10:20])
    status[50:55, 20:30] = Status.NO_COUNTERPART
    corr[(status == Status.BACKGROUND) | (status == Status.NO_COUNTERPART)] = np.nan  # as decoded: NaN if not stored
    return corr.astype(np.float32), status


def affine_pair(
    hw0: tuple[int, int] = (64, 80), hw1: tuple[int, int] = (70, 76), seed: int = 0, dense: bool = True
) -> dict[str, Any]:
    """A schema sample whose ``corr_0to1`` is ``G_BODY`` (``G_PART`` on :data:`PART_BOX`) and ``corr_1to0`` is
    ``G_BODY^-1``; keypoints of view 1 are ``G_BODY`` of view 0's; ``depth0 = 2 + 0.01 x + 0.005 y``."""
    rng = np.random.default_rng(seed)
    sample: dict[str, Any] = {"__key__": f"s000000_{seed:05d}"}
    for v, hw in ((0, hw0), (1, hw1)):
        img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        sample[f"image{v}"] = img
    if dense:
        corr01, st01 = _direction(G_BODY, hw0, hw1, part=True)
        corr10, st10 = _direction(np.linalg.inv(G_BODY), hw1, hw0, part=False)
        sample.update(corr_0to1=corr01, status_0to1=st01, corr_1to0=corr10, status_1to0=st10)
        for v, hw, st in ((0, hw0, st01), (1, hw1, st10)):
            yy, xx = np.mgrid[0 : hw[0], 0 : hw[1]].astype(np.float32)
            sample[f"depth{v}"] = np.where(st > 0, 2 + 0.01 * xx + 0.005 * yy, 0).astype(np.float32)
            sample[f"valid_{('0to1', '1to0')[v]}"] = st == Status.MATCHED
            sample[f"mask{v}"] = st != Status.BACKGROUND
        for v in (0, 1):
            sample[f"K{v}"] = np.array([[100, 0, 40], [0, 110, 30], [0, 0, 1]], np.float32)
            sample[f"T_cam{v}_from_world"] = np.eye(4, dtype=np.float32)
    kps0 = np.stack([rng.uniform(5, hw0[1] - 6, len(KP_NAMES)), rng.uniform(5, hw0[0] - 6, len(KP_NAMES))], -1)
    kps1 = _apply(G_BODY, kps0)
    sample["kps0"], sample["kps1"] = kps0.astype(np.float32), kps1.astype(np.float32)
    sample["kps0_vis"] = np.ones(len(KP_NAMES), bool)
    sample["kps1_vis"] = inside(kps1, hw1)
    sample["meta"] = {
        "schema_version": SCHEMA_VERSION,
        "source": "warp" if dense else "spair",
        "category": "cat",
        "image_size0": list(hw0),
        "image_size1": list(hw1),
        "keypoint_names": list(KP_NAMES),
        "flip_perm": list(KP_FLIP),
    }
    return sample


def write_shard(path: Path, samples: Iterable[Mapping[str, Any]]) -> int:
    """Write samples through ``encode_sample`` into a deterministic tar (mtime 0); returns the sample count."""
    n = 0
    with tarfile.open(path, "w") as tar:
        for s in samples:
            members = encode_sample(s)
            key = members.pop("__key__")
            for name, data in members.items():
                data = data if isinstance(data, bytes) else str(data).encode()
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size, info.mtime, info.mode = len(data), 0, 0o444
                tar.addfile(info, io.BytesIO(data))
            n += 1
    return n


def small_sample(shard: int, index: int, hw: tuple[int, int] = (28, 28)) -> dict[str, Any]:
    """A tiny dense sample whose key encodes ``(shard, index)`` (for stream bookkeeping tests)."""
    s = affine_pair(hw, hw, seed=index)
    s["__key__"] = f"s{shard:06d}_{index:05d}"
    s["meta"]["source"] = "procedural"
    s["meta"]["seed"] = [0, shard, index]
    return s


def write_dataset(directory: Path, counts: list[int], hw: tuple[int, int] = (28, 28)) -> Path:
    """A dataset folder: ``pairs-{i:06d}.tar`` with ``counts[i]`` samples each and a complete ``dataset.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, n in enumerate(counts):
        p = directory / shard_name(i)
        write_shard(p, (small_sample(i, j, hw) for j in range(n)))
        entries.append(ShardEntry(index=i, name=p.name, samples=n, bytes=p.stat().st_size, sha256=sha256_file(p)))
    DatasetManifest(generator={"name": "tests"}, root_seed=0, n_shards=len(counts), shards=entries).save(directory)
    return directory
