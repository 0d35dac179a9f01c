"""A stand-in for ``datagen.pipeline.generate_shard`` in the shard-writing tests.

A pure function of ``(config, shard_index)`` giving schema-valid synthetic samples fast, with the same signature
as the real generator. Module-level so spawned worker processes can unpickle it by name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from datagen.config import RenderConfig, sample_rng
from loaders.schema import SCHEMA_VERSION, Status

KEYPOINT_NAMES = ["left_front_leg", "right_front_leg", "seat_center"]


def fake_sample(config: RenderConfig, shard_index: int, j: int) -> dict[str, Any]:
    """Sample ``j`` of shard ``shard_index``: an affine dense field between two noise images."""
    rng = sample_rng(config.seed, shard_index, j)
    h = w = config.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    status = np.zeros((h, w), np.uint8)
    r0, r1 = sorted(rng.integers(0, h, 2))
    status[r0 : r1 + 1, w // 4 : 3 * w // 4] = Status.MATCHED
    status[r0 : r1 + 1, w // 4 : w // 3] = Status.OCCLUDED
    shift = rng.uniform(-3, 3, 2).astype(np.float32)
    corr = np.stack([xx + shift[0], yy + shift[1]], -1)
    depth = np.where(status > 0, 1.5 + 0.01 * xx, 0).astype(np.float32)
    # view 1 shows the same band moved by the shift, so every matched target lands on its object
    src_x = np.clip(np.rint(xx - shift[0]), 0, w - 1).astype(np.int64)
    src_y = np.clip(np.rint(yy - shift[1]), 0, h - 1).astype(np.int64)
    status1 = status[src_y, src_x]
    depth1 = np.where(status1 > 0, 1.5 + 0.01 * xx, 0).astype(np.float32)
    # keypoints on the unoccluded part of the band, away from its edges by a pixel where it is that wide
    lo = np.array([w / 3 + 1, min(r0 + 1, (r0 + r1) / 2)])
    hi = np.array([3 * w / 4 - 2, max(r1 - 1, (r0 + r1) / 2)])
    kps = rng.uniform(lo, hi, (len(KEYPOINT_NAMES), 2)).astype(np.float32)
    return {
        "__key__": f"s{shard_index:06d}_{j:05d}",
        "image0": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "image1": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "status_0to1": status,
        "status_1to0": status1,
        "corr_0to1": corr,
        "corr_1to0": np.stack([xx - shift[0], yy - shift[1]], -1),
        "depth0": depth,
        "depth1": depth1,
        "K0": np.eye(3, dtype=np.float32),
        "K1": np.eye(3, dtype=np.float32),
        "T_cam0_from_world": np.eye(4, dtype=np.float32),
        "T_cam1_from_world": np.eye(4, dtype=np.float32),
        "kps0": kps,
        "kps1": kps + shift,
        "kps0_vis": np.ones(len(KEYPOINT_NAMES), bool),
        "kps1_vis": np.ones(len(KEYPOINT_NAMES), bool),
        "meta": {
            "schema_version": SCHEMA_VERSION,
            "source": "procedural",
            "category": config.category,
            "image_size0": [h, w],
            "image_size1": [h, w],
            "keypoint_names": KEYPOINT_NAMES,
            "seed": [config.seed, shard_index, j],
        },
    }


def generate_shard(
    config: RenderConfig, shard_index: int, timings: dict[str, float] | None = None
) -> Iterator[dict[str, Any]]:
    """Same contract as ``datagen.pipeline.generate_shard``; ``FAKE_PAIRS_DELAY_S`` slows it per sample."""
    delay = float(os.environ.get("FAKE_PAIRS_DELAY_S", "0"))
    for j in range(config.shard_count(shard_index)):
        t0 = time.perf_counter()
        time.sleep(delay)
        sample = fake_sample(config, shard_index, j)
        if timings is not None:
            timings["raster"] = timings.get("raster", 0.0) + time.perf_counter() - t0
        yield sample
