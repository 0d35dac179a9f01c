"""Evaluation on pair shards (rendered or warp pairs): dense end-point error and keypoint PCK.

Dense EPE is measured in view 0's original pixels where ``valid_0to1`` holds (and the reverse direction where
``valid_1to0`` holds): ``‖pred − gt‖`` in the other view's pixels. Keypoints, when a sample has them, are scored
with the PCK protocol of :mod:`training.eval.pck`; the ``bbox`` threshold uses ``meta.bbox1`` when present,
else the bounding box of view 1's object mask.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from loaders.dataset_manifest import DatasetManifest
from loaders.members import decode_sample
from loaders.schema import SchemaError
from loaders.sources import ShardError, ShardReader
from training.eval.pck import PCKAccumulator, threshold_length
from training.eval.predict import Matcher, predict_dense

__all__ = ["iter_shard_samples", "sample_bbox", "DenseStats", "evaluate_shards", "EPE_THRESHOLDS_PX"]

EPE_THRESHOLDS_PX = (1.0, 3.0, 5.0, 10.0)
log = logging.getLogger("semmatch.eval")


def iter_shard_samples(
    directory: str | Path, limit: int | None = None, skip_bad: bool = False, skipped: list[str] | None = None
) -> Iterator[dict]:
    """Decoded samples of every shard listed in ``directory/dataset.json``, in shard and key order.

    Args:
        directory: a dataset folder.
        limit: stop after this many samples.
        skip_bad: pass over a sample that does not decode, and the rest of a shard that stops reading, instead of
            raising; each sample lost this way is logged and its error appended to ``skipped``.
        skipped: collects one message per sample lost (with ``skip_bad``).

    Raises:
        SchemaError, ShardError: without ``skip_bad``, naming the shard and sample.
    """
    manifest = DatasetManifest.load(directory)
    count = 0
    lost = skipped if skipped is not None else []
    for entry, path in zip(sorted(manifest.shards, key=lambda s: s.index), manifest.shard_paths(directory)):
        with ShardReader(str(path)) as reader:
            while True:
                try:
                    members = reader.next_sample()
                except ShardError as e:
                    if not skip_bad:
                        raise
                    rest = max(1, entry.samples - reader.index)  # nothing after the damage can be read
                    _lose(lost, [str(e)] * rest)
                    break
                if members is None:
                    break
                try:
                    sample = decode_sample(members)
                except SchemaError as e:
                    if not skip_bad:
                        raise
                    _lose(lost, [str(e)])
                    continue
                yield sample
                count += 1
                if limit is not None and count >= limit:
                    return


def _lose(lost: list[str], errors: list[str]) -> None:
    for e in errors:
        lost.append(e)
        if len(lost) <= 10:
            log.warning("skipping bad data (%d so far): %s", len(lost), e)


def sample_bbox(sample: dict, view: int) -> list[float] | None:
    """``x1, y1, x2, y2`` of a view's object: ``meta.bbox{v}`` when set, else its mask's extent, else None."""
    box = sample["meta"].get(f"bbox{view}")
    if box is not None:
        return list(box)
    mask = sample.get(f"mask{view}")
    if mask is None or not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _bilinear(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample float [H, W, C] at float [N, 2] pixel positions (clamped to the border): [N, C]."""
    h, w = field.shape[:2]
    x = np.clip(np.asarray(xy[:, 0], np.float64), 0, w - 1)
    y = np.clip(np.asarray(xy[:, 1], np.float64), 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2).clip(0), np.minimum(np.floor(y).astype(int), h - 2).clip(0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
    bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass
class DenseStats:
    """Pixel errors pooled per category (both directions), and the bad samples passed over (``skip_bad``)."""

    errors: dict[str, list[np.ndarray]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, category: str, err: np.ndarray) -> None:
        self.errors.setdefault(category, []).append(np.asarray(err, np.float32))

    @staticmethod
    def _summary(chunks: list[np.ndarray]) -> dict:
        e = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if e.size == 0:
            return {"pixels": 0}
        return {
            "pixels": int(e.size),
            "epe_mean": float(e.mean()),
            "epe_median": float(np.median(e)),
            **{f"within_{t:g}px": float((e < t).mean()) for t in EPE_THRESHOLDS_PX},
        }

    def summary(self) -> dict:
        out = {c: self._summary(v) for c, v in sorted(self.errors.items())}
        out["all"] = self._summary([e for v in self.errors.values() for e in v])
        return out


def evaluate_shards(
    matcher: Matcher,
    directory: str | Path,
    threshold: str = "bbox",
    size: int = 518,
    resize: str = "pad",
    device="cpu",
    limit: int | None = None,
    progress: bool = True,
    skip_bad: bool = False,
) -> tuple[PCKAccumulator, DenseStats]:
    """Dense EPE (where the sample has dense ground truth) and keypoint PCK of a matcher on a shard folder.
    ``skip_bad``: bad samples are passed over and listed in ``DenseStats.skipped`` instead of raising."""
    acc, dense = PCKAccumulator(), DenseStats()
    samples = iter_shard_samples(directory, limit, skip_bad, dense.skipped)
    for sample in tqdm(samples, desc="eval shards", unit="pair", disable=not progress):
        meta = sample["meta"]
        corr01, _, corr10, _ = predict_dense(matcher, sample["image0"], sample["image1"], size, resize, device)
        if "valid_0to1" in sample:
            for pred, d in ((corr01, "0to1"), (corr10, "1to0")):
                valid = sample[f"valid_{d}"]
                dense.add(meta["category"], np.linalg.norm(pred[valid] - sample[f"corr_{d}"][valid], axis=-1))
        if sample.get("kps0") is not None and sample.get("kps1") is not None:
            pred_kps = _bilinear(corr01, sample["kps0"])
            bbox = sample_bbox(sample, 1) if threshold == "bbox" else None
            kind = threshold if (threshold == "img" or bbox is not None) else "img"
            length = threshold_length(kind, bbox, sample["image1"].shape[:2])
            groups = meta.get("sym_groups") or ()
            acc.add(meta["category"], pred_kps, sample["kps1"], sample["kps0_vis"], sample["kps1_vis"], length, groups)
    return acc, dense
