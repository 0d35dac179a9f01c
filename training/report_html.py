"""Interactive HTML pages of a matcher's predictions (``semmatch match --html``, ``semmatch eval --html``).

The pages are the dataset explorer's (:mod:`datagen.explore.page`) with a prediction per pair: hovering a pixel shows
the predicted match and confidence beside the ground-truth match where the pair has one; colour layers for the
confidence and the per-pixel error; the predicted keypoints with their errors; for ``eval``, the PCK table and curve
at the top and the worst pairs first.

``eval --html`` predicts the shown pairs once more, densely (the evaluation itself predicts keypoints only, on real
benchmarks): on real benchmarks the ``--html-pairs`` worst pairs of the whole split (read from ``pairs.jsonl``), on
shards the first ``--html-pairs`` samples, ranked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datagen.explore.page import pair_record, write_page

__all__ = ["sample_at", "prediction_of", "write_match_page", "write_eval_report", "CURVE_ALPHAS"]

CURVE_ALPHAS = tuple(round(a, 3) for a in np.linspace(0.0, 0.2, 41))


def sample_at(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear read of float [H, W, C] at float [N, 2] pixel positions (border values beyond the edge): [N, C]."""
    xy = np.asarray(xy, np.float32).reshape(-1, 1, 2)
    out = cv2.remap(
        np.ascontiguousarray(field, np.float32), xy[..., 0], xy[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return out.reshape(len(xy), -1)


def prediction_of(
    sample: Mapping[str, Any],
    dense: Sequence[np.ndarray],
    threshold_px: float | None,
    alphas: Sequence[float],
) -> dict[str, Any]:
    """The page's prediction record of one pair, and its per-pair figures.

    Args:
        sample: the decoded pair (dense ground truth and keypoints optional).
        dense: ``(corr_0to1, conf0, corr_1to0, conf1)`` from :func:`training.eval.predict.predict_dense`.
        threshold_px: the PCK length ``L`` of the pair (None: no keypoint scoring).
        alphas: the PCK thresholds shown.

    Returns:
        ``{"corr_0to1", "conf0", "corr_1to0", "conf1", "kp"?, "stats"}``; ``stats`` holds ``pck`` (fraction of the
        keypoints visible in both views within the middle α), ``kp_err_px`` (their mean error) and ``epe_median_px``
        (dense 0→1 error over the matched pixels) where defined.
    """
    corr01, conf0, corr10, conf1 = dense
    pred: dict[str, Any] = {"corr_0to1": corr01, "conf0": conf0, "corr_1to0": corr10, "conf1": conf1, "stats": {}}
    stats = pred["stats"]
    if "valid_0to1" in sample and sample["valid_0to1"].any():
        valid = sample["valid_0to1"]
        err = np.linalg.norm(corr01[valid] - sample["corr_0to1"][valid], axis=-1)
        stats["epe_median_px"] = round(float(np.median(err)), 3)
    if sample.get("kps0") is not None and sample.get("kps1") is not None and threshold_px:
        xy = sample_at(corr01, sample["kps0"])
        conf = sample_at(conf0[..., None], sample["kps0"])[:, 0]
        pred["kp"] = {"xy": xy, "conf": conf, "threshold_px": float(threshold_px), "alphas": list(alphas)}
        both = np.asarray(sample["kps0_vis"], bool) & np.asarray(sample["kps1_vis"], bool)
        if both.any():
            err = np.linalg.norm(xy[both] - np.asarray(sample["kps1"])[both], axis=-1)
            mid = sorted(alphas)[len(alphas) // 2]
            stats["pck"] = round(float((err < mid * threshold_px).mean()), 4)
            stats["kp_err_px"] = round(float(err.mean()), 3)
    return pred


def _worst_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lowest PCK first, then largest dense error (pairs without a figure last)."""

    def key(r: dict[str, Any]) -> tuple[float, float]:
        s = r["stats"]
        return (s.get("pck", 2.0), -s.get("epe_median_px", -1.0))

    return sorted(records, key=key)


_PRED_COLUMNS = [
    ("pck", "PCK@α", "pct"),
    ("kp_err_px", "kp err px", "px"),
    ("epe_median_px", "EPE med px", "px"),
    ("valid_0to1", "valid 0→1", "pct"),
    ("cycle_median_px", "cycle px", "px"),
]


def write_match_page(
    path: str | Path, image_a: np.ndarray, image_b: np.ndarray, dense: Sequence[np.ndarray], title: str
) -> Path:
    """The page of one predicted pair without ground truth (``semmatch match --html``)."""
    sample = {
        "__key__": "A → B",
        "image0": image_a,
        "image1": image_b,
        "meta": {"category": "", "source": "images", "keypoint_names": []},
    }
    rec = pair_record(sample, prediction_of(sample, dense, None, ()))
    notes = ["hover a pixel of A or B: the red × is the predicted match in the other image, with its confidence"]
    return write_page(path, [rec], title, subtitle="semmatch match", summary={"notes": notes}, columns=[])


def _pck_summary(summary: Mapping[str, Any], curve: Mapping[str, Any] | None) -> dict[str, Any]:
    rows = [["overall", summary["overall"]["pairs"], summary["overall"]["pck"]]]
    rows += [[c, v["pairs"], v["pck"]] for c, v in summary.get("categories", {}).items()]
    out: dict[str, Any] = {"alphas": summary["alphas"], "rows": rows}
    if curve is not None:
        out["curve"] = {"alphas": list(CURVE_ALPHAS), "pck": curve["overall"]["pck"]}
    return out


def write_eval_report(
    path: str | Path,
    acc: Any,
    record: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    dense: Sequence[Sequence[np.ndarray]],
    thresholds: Sequence[float | None],
    alphas: Sequence[float],
    title: str,
) -> Path:
    """The ``semmatch eval --html`` page.

    Args:
        acc: the evaluation's :class:`training.eval.pck.PCKAccumulator` (all pairs: table and curve).
        record: the evaluation record (``pck.json``: settings, ``summary``, ``dense``).
        samples: the pairs shown (decoded samples), with their dense predictions ``dense`` and PCK lengths.
        alphas: the thresholds of the table.
    """
    summary = record.get("summary")
    pck = None
    if summary and acc.pairs:
        pck = _pck_summary(summary, acc.summary(CURVE_ALPHAS, record.get("average", "image")))
    notes = [
        f"checkpoint {record.get('checkpoint')} · {record.get('dataset')} {record.get('split') or ''} · threshold "
        f"{record.get('threshold')} · average {record.get('average')} · {len(samples)} pairs shown, worst first"
    ]
    d = (record.get("dense") or {}).get("all") or {}
    if d.get("pixels"):
        notes.append(f"dense EPE over {d['pixels']} valid pixels: mean {d['epe_mean']:.2f} px, "
                     f"median {d['epe_median']:.2f} px")  # fmt: skip
    records = [pair_record(s, prediction_of(s, dn, t, alphas)) for s, dn, t in zip(samples, dense, thresholds)]
    mid = sorted(alphas)[len(alphas) // 2] if len(alphas) else None
    columns = [(k, f"PCK@{mid:g}" if k == "pck" and mid is not None else lab, f) for k, lab, f in _PRED_COLUMNS]
    return write_page(
        path, _worst_first(records), title, subtitle="semmatch eval", summary={"pck": pck, "notes": notes},
        columns=columns,
    )  # fmt: skip


def eval_html(args: Any, acc: Any, record: Mapping[str, Any], pairs: Any, matcher: Any, device: Any, out: Path) -> Path:
    """What ``semmatch eval --html`` runs after the evaluation: pick the pairs, predict them densely, write the page.

    Real benchmarks: the ``args.html_pairs`` pairs with the lowest PCK at the middle α in ``out/pairs.jsonl``;
    shards: the first ``args.html_pairs`` samples.
    """
    from training.eval.pck import threshold_length
    from training.eval.predict import predict_dense
    from training.eval.synthetic import iter_shard_samples, sample_bbox

    alphas = record["summary"]["alphas"]
    n = max(1, int(args.html_pairs))
    if pairs is not None:
        mid = sorted(alphas)[len(alphas) // 2]
        rows = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines() if line.strip()]
        by_id = {p.pair_id: p for p in pairs}

        def score(r: dict) -> float:
            e = np.asarray(r["error_px"], np.float64)
            return float((e < mid * r["threshold_px"]).mean()) if e.size else 2.0

        chosen = [by_id[r["pair_id"]] for r in sorted(rows, key=score)[:n] if r["pair_id"] in by_id]
        samples = [p.to_sample(key=p.pair_id) for p in chosen]
    else:
        samples = list(iter_shard_samples(args.shards, n, skip_bad=args.skip_bad))
    dense, thresholds = [], []
    for s in samples:
        dense.append(predict_dense(matcher, s["image0"], s["image1"], args.size, args.resize, device))
        length = None
        if s.get("kps1") is not None:
            bbox = sample_bbox(s, 1) if record["threshold"] == "bbox" else None
            kind = record["threshold"] if (record["threshold"] == "img" or bbox is not None) else "img"
            length = threshold_length(kind, bbox, s["image1"].shape[:2])
        thresholds.append(length)
    title = f"semmatch eval: {record.get('checkpoint')} on {record.get('dataset')}"
    return write_eval_report(args.html, acc, record, samples, dense, thresholds, alphas, title)
