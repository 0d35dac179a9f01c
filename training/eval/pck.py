"""PCK@α, computed exactly as the peers' harness does (GeoAware-SC ``pck_train.py``; reference/benchmarks.md §B.5).

Point for point:

1. Only keypoints visible in **both** images are scored.
2. A prediction is correct when ``‖pred − gt‖ < α · L`` (strict ``<``), with ``L`` the larger side of the
   **target** bounding box (``threshold="bbox"``, SPair-71k and AP-10K) or of the **target image**
   (``threshold="img"``, PF-PASCAL). Peers measure in an 840-px padded frame and scale ``L`` with it; the ratio
   ``error / L`` is the same in original pixels, which is where this module works.
3. ``average="image"`` (peers' default): each pair's fraction of correct keypoints, averaged over pairs; a
   category's score is the mean over its pairs and the overall score the mean over all pairs (peers' average of
   category scores weighted by pair counts). ``average="keypoint"``: all keypoints pooled, per category and
   overall. A pair without any mutually visible keypoint is skipped (peers' mean over an empty set is NaN).
4. The geometry-aware subset (§B.6): for each symmetric group, when at least two members are visible in the
   target and at least one is visible in both, the members visible in both are geometry-aware. They are scored
   the same way; per image, only pairs holding at least one such keypoint count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "THRESHOLDS",
    "AVERAGES",
    "DEFAULT_ALPHAS",
    "threshold_length",
    "geo_aware_mask",
    "PCKAccumulator",
]

THRESHOLDS = ("bbox", "img")
AVERAGES = ("image", "keypoint")
DEFAULT_ALPHAS = {"spair": (0.01, 0.05, 0.1), "ap10k": (0.01, 0.05, 0.1), "pfpascal": (0.05, 0.1, 0.15)}
DEFAULT_THRESHOLD = {"spair": "bbox", "ap10k": "bbox", "pfpascal": "img"}


def threshold_length(kind: str, bbox_trg: Sequence[float] | None, image_size_trg: Sequence[int]) -> float:
    """``L`` of the threshold ``α · L`` in target pixels.

    Args:
        kind: ``"bbox"`` (max side of the target box ``x1, y1, x2, y2``) or ``"img"`` (max side of the target image).
        bbox_trg: target box, needed for ``"bbox"``.
        image_size_trg: target ``(H, W)``.
    """
    if kind == "bbox":
        if bbox_trg is None:
            raise ValueError("threshold 'bbox' needs the target bounding box, and this pair has none")
        x1, y1, x2, y2 = (float(v) for v in bbox_trg)
        return max(x2 - x1, y2 - y1)
    if kind == "img":
        return float(max(image_size_trg))
    raise ValueError(f"unknown threshold {kind!r}; expected one of {THRESHOLDS}")


def geo_aware_mask(vis_src: np.ndarray, vis_trg: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """bool [N]: keypoints of the geometry-aware subset of one pair (see the module docstring, point 4)."""
    vis_trg = np.asarray(vis_trg, bool)
    both = np.asarray(vis_src, bool) & vis_trg
    out = np.zeros_like(both)
    for group in groups:
        g = np.asarray(group, int)
        g = g[g < len(both)]
        if np.count_nonzero(vis_trg[g]) >= 2 and both[g].any():
            out[g[both[g]]] = True
    return out


@dataclass
class _PairRecord:
    category: str
    ratio: np.ndarray  # float [M]: error / L of the mutually visible keypoints
    geo: np.ndarray  # bool [M]: which of them are geometry-aware


@dataclass
class PCKAccumulator:
    """Collects per-pair keypoint errors, then scores PCK for any α, averaging mode and subset.

    Example:
        >>> acc = PCKAccumulator()
        >>> acc.add("cat", pred, gt, vis_src, vis_trg, length_px=120.0, sym_groups=[[0, 1]])
        >>> acc.summary(alphas=(0.05, 0.1), average="image")["overall"]["pck"]
    """

    pairs: list[_PairRecord] = field(default_factory=list)
    skipped: int = 0

    def add(
        self,
        category: str,
        pred_xy: np.ndarray,
        gt_xy: np.ndarray,
        vis_src: np.ndarray,
        vis_trg: np.ndarray,
        length_px: float,
        sym_groups: Sequence[Sequence[int]] = (),
    ) -> None:
        """Record one pair.

        Args:
            category: the pair's category.
            pred_xy: float [N, 2] predicted target positions of the source keypoints (x, y px, target image).
            gt_xy: float [N, 2] annotated target keypoints.
            vis_src, vis_trg: bool [N] visibility in the source and target.
            length_px: ``L`` from :func:`threshold_length`.
            sym_groups: the category's symmetric groups (for the geometry-aware subset).
        """
        vis_src, vis_trg = np.asarray(vis_src, bool), np.asarray(vis_trg, bool)
        both = vis_src & vis_trg
        if not both.any():
            self.skipped += 1
            return
        if not length_px > 0:
            raise ValueError(f"threshold length must be positive, got {length_px}")
        err = np.linalg.norm(np.asarray(pred_xy, np.float64)[both] - np.asarray(gt_xy, np.float64)[both], axis=-1)
        geo = geo_aware_mask(vis_src, vis_trg, sym_groups)[both]
        self.pairs.append(_PairRecord(category, err / float(length_px), geo))

    def extend(self, other: PCKAccumulator) -> None:
        self.pairs.extend(other.pairs)
        self.skipped += other.skipped

    @staticmethod
    def _score(records: list[_PairRecord], alphas: np.ndarray, average: str, geo: bool) -> dict:
        per_pair = []
        pooled_correct = np.zeros(len(alphas))
        n_kps = 0
        for r in records:
            ratio = r.ratio[r.geo] if geo else r.ratio
            if ratio.size == 0:
                continue
            correct = ratio[None, :] < alphas[:, None]  # [A, M], strict as peers
            per_pair.append(correct.mean(axis=1))
            pooled_correct += correct.sum(axis=1)
            n_kps += ratio.size
        if average == "image":
            pck = np.mean(per_pair, axis=0) if per_pair else np.full(len(alphas), np.nan)
        elif average == "keypoint":
            pck = pooled_correct / n_kps if n_kps else np.full(len(alphas), np.nan)
        else:
            raise ValueError(f"unknown average {average!r}; expected one of {AVERAGES}")
        return {"pck": [float(v) for v in pck], "pairs": len(per_pair), "keypoints": int(n_kps)}

    def summary(self, alphas: Sequence[float], average: str = "image") -> dict:
        """PCK per category and overall, on all mutually visible keypoints and on the geometry-aware subset.

        Returns:
            ``{"alphas", "average", "categories": {cat: {"pck", "pairs", "keypoints", "geo": {...}}},
            "overall": {..., "category_mean"}, "skipped_pairs"}``; ``pck`` lists one fraction in [0, 1] per α;
            ``category_mean`` is the unweighted mean of the category scores (peers report the weighted one).
        """
        a = np.asarray(alphas, np.float64)
        cats = sorted({r.category for r in self.pairs})
        out: dict = {"alphas": [float(v) for v in a], "average": average, "categories": {}}
        for c in cats:
            recs = [r for r in self.pairs if r.category == c]
            out["categories"][c] = {**self._score(recs, a, average, False), "geo": self._score(recs, a, average, True)}
        out["overall"] = {
            **self._score(self.pairs, a, average, False),
            "geo": self._score(self.pairs, a, average, True),
        }
        scored = [v["pck"] for v in out["categories"].values() if v["pairs"]]
        out["overall"]["category_mean"] = [float(v) for v in np.mean(scored, axis=0)] if scored else []
        out["skipped_pairs"] = self.skipped
        return out
