"""PCK of a matcher on a real benchmark split (SPair-71k, PF-PASCAL, AP-10K)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from tqdm import tqdm

from datagen.real.pair import DatasetFormatError, RealPair
from training.eval.pck import PCKAccumulator, threshold_length
from training.eval.predict import Matcher, predict_points

__all__ = ["subsample_pairs", "evaluate_pairs"]


def subsample_pairs(pairs: list[RealPair], per_category: int, seed: int = 0) -> list[RealPair]:
    """At most ``per_category`` pairs of each category, drawn without replacement with a fixed seed.

    (Peers' quick setting draws 20 per category *with* replacement via ``np.random.seed(42)``; papers use all.)
    """
    if per_category <= 0:
        return pairs
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_cat[p.category].append(i)
    rng = np.random.default_rng(seed)
    keep = []
    for cat in sorted(by_cat):
        idx = by_cat[cat]
        keep += sorted(rng.choice(idx, size=min(per_category, len(idx)), replace=False).tolist())
    return [pairs[i] for i in sorted(keep)]


def _threshold(pair: RealPair, kind: str) -> float:
    """The pair's PCK threshold length ``L``; a pair without a usable one is named (``DatasetFormatError``)."""
    try:
        length = threshold_length(kind, pair.bboxes[1], pair.image_sizes[1])
    except ValueError as e:
        raise DatasetFormatError(pair.image_paths[1], f"pair {pair.pair_id} ({pair.category}): {e}") from None
    if not length > 0:
        box = None if pair.bboxes[1] is None else [float(v) for v in pair.bboxes[1]]
        raise DatasetFormatError(
            pair.image_paths[1], f"pair {pair.pair_id} ({pair.category}): target box {box} has zero size"
        )
    return length


def evaluate_pairs(
    matcher: Matcher,
    pairs: list[RealPair],
    threshold: str,
    size: int = 518,
    resize: str = "pad",
    device="cpu",
    progress: bool = True,
) -> tuple[PCKAccumulator, list[dict]]:
    """Predict every pair's target keypoints and collect them for PCK.

    Args:
        matcher: answers ``matcher(images [B, 2, 3, S, S]) -> {"grid", "conf"}``.
        pairs: the pairs to score.
        threshold: ``"bbox"`` or ``"img"`` (see :func:`training.eval.pck.threshold_length`).
        size, resize: the model frame (see :mod:`training.eval.predict`).

    Returns:
        ``(accumulator, per-pair records)``; a record holds the pair id, category and its predictions.
    """
    acc = PCKAccumulator()
    records = []
    for pair in tqdm(pairs, desc="eval", unit="pair", disable=not progress):
        image0, image1 = pair.load_images()
        pred, conf = predict_points(matcher, image0, image1, pair.kps[0], size, resize, device)
        length = _threshold(pair, threshold)
        acc.add(pair.category, pred, pair.kps[1], pair.vis[0], pair.vis[1], length, pair.table.sym_groups)
        both = pair.vis[0] & pair.vis[1]
        records.append(
            {
                "pair_id": pair.pair_id,
                "category": pair.category,
                "threshold_px": length,
                "keypoints": np.flatnonzero(both).tolist(),
                "pred_xy": np.round(pred[both], 2).tolist(),
                "error_px": np.round(np.linalg.norm(pred[both] - pair.kps[1][both], axis=1), 2).tolist(),
                "conf": np.round(conf[both], 4).tolist(),
            }
        )
    return acc, records
