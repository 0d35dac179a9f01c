"""One self-contained HTML page to explore pairs: images, dense ground truth, keypoints and (optionally) predictions.

The page (``template.html`` beside this module, vanilla JS, no network) holds every pair as one JSON block
(``<script type="application/json">``, parsed only when the pair is opened). Dense fields are stored at full
resolution and exactly as the shards hold them:

* correspondences in steps of :data:`loaders.schema.CORR_STEP_PX` (the shards' own step, so a hovered value is the
  shard's value to the bit), depth in steps of :data:`DEPTH_STEP_M`, predicted confidence in steps of
  :data:`CONF_STEP`;
* each field is an integer raster, rows filled across the pixels that hold no value (so the predictor sees no jump
  at silhouettes), predicted from its neighbours by the schema's planar predictor (:func:`loaders.schema.encode_plane`:
  an int8 residual plane plus an escape table) and deflated (zlib); the browser inflates it with its built-in
  ``DecompressionStream`` and undoes the predictor with one 2-D prefix sum;
* status codes as one deflated byte per pixel; images as JPEG (quality :data:`JPEG_QUALITY`).

Measured per 518² pair: 0.16 MB for rendered chairs (ground truth only), 0.35 MB with photo-like images, 0.57 MB
with a dense SIFT prediction; ground truth is never downsampled. A prediction is stored in steps of
:data:`PRED_STEP_PX` and, only when the pair would exceed :data:`PAIR_BUDGET` (a very noisy field), at every 2nd
(4th, 8th) pixel, interpolated by the page and marked so on hover. Canonical coordinates (the dense-field
colours) are not stored: the page back-projects each pixel through its depth and camera (``K``,
``T_cam_from_world``; world = the instance's canonical frame, docs/design.md §3).
"""

from __future__ import annotations

import base64
import html
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from loaders.codec import encode_plane
from loaders.schema import CORR_STEP_PX, STORED_STATUSES, Status

__all__ = [
    "DEPTH_STEP_M",
    "CONF_STEP",
    "PRED_STEP_PX",
    "PAIR_BUDGET",
    "JPEG_QUALITY",
    "encode_field",
    "keypoint_sides",
    "pair_stats",
    "pair_record",
    "build_page",
    "write_page",
]

DEPTH_STEP_M = 1e-4  # depth shown to 0.1 mm
CONF_STEP = 1.0 / 256.0
JPEG_QUALITY = 90
PRED_STEP_PX = 1.0 / 16.0  # predicted matches: shown to 1/32 px
PAIR_BUDGET = 1_900_000  # bytes per pair in the page (the 2 MB, with room for the page itself)
_LIMIT = 2**22 - 1  # encode_plane's range (|q| < 2**22)

STATUS_INFO = {  # code -> (name shown on hover, RGB 0-255 of the status layer); colours as datagen.preview's panel 5
    int(Status.BACKGROUND): ("background", None),
    int(Status.MATCHED): ("matched", (41, 168, 61)),
    int(Status.OCCLUDED): ("occluded", (255, 143, 0)),
    int(Status.OUTSIDE): ("outside", (219, 20, 128)),
    int(Status.NO_COUNTERPART): ("no counterpart", (41, 92, 242)),
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _deflate(data: bytes) -> str:
    return _b64(zlib.compress(data, 9))


def _fill(q: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Fill the pixels outside ``keep`` of an int64 [h, w, c] raster: along each row from the nearest kept pixel on
    the left (else the right); rows with nothing kept copy the nearest row above that has something (else below)."""
    h, w = keep.shape
    cols = np.arange(w)
    left = np.maximum.accumulate(np.where(keep, cols, -1), axis=1)
    right = np.minimum.accumulate(np.where(keep, cols, w)[:, ::-1], axis=1)[:, ::-1]
    src = np.where(left >= 0, left, np.minimum(right, w - 1))
    out = np.take_along_axis(q, src[..., None], axis=1)
    filled = keep.any(axis=1)
    if filled.any():
        rows = np.maximum.accumulate(np.where(filled, np.arange(h), -1))
        rows[rows < 0] = int(np.flatnonzero(filled)[0])
        out = out[rows]
    return out


def encode_field(values: np.ndarray, keep: np.ndarray, step: float, sub: int = 1) -> dict[str, Any] | None:
    """Encode a float field for the page: integer steps of ``step`` at the kept pixels (see the module docstring).

    Args:
        values: float [h, w] or [h, w, c]; read only where ``keep`` (must be finite there).
        keep: bool [h, w], the pixels whose values the page shows.
        step: the quantisation step; the page shows ``round(value / step) * step``.
        sub: keep every ``sub``-th pixel of every ``sub``-th row (pixels ``(sub·i, sub·j)``); the page interpolates
            the others bilinearly (only predictions are ever subsampled: ground truth is always full resolution).

    Returns:
        ``{"shape": [h, w, c], "step", "base": [c ints], "plane": b64 deflate(uint8 [h*w*c]), "esc": b64
        deflate(int32 [2E]: flat indices then residuals), "sub", "full": [H, W]}`` (``shape`` is the stored raster's,
        ``full`` the view's), or None when nothing is kept.
    """
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[..., None]
    full = [int(values.shape[0]), int(values.shape[1])]
    if sub > 1:
        values, keep = values[::sub, ::sub], np.asarray(keep, bool)[::sub, ::sub]
    keep = np.asarray(keep, bool) & np.isfinite(values).all(axis=-1)
    if not keep.any():
        return None
    q = np.zeros(values.shape, np.int64)
    q[keep] = np.rint(values[keep].astype(np.float64) / step).astype(np.int64)
    base = q[keep].min(axis=0)
    q -= base
    q[~keep] = 0
    np.clip(q, 0, _LIMIT, out=q)
    plane, esc_idx, esc_val = encode_plane(_fill(q, keep))
    escapes = np.concatenate([esc_idx, esc_val]).astype("<i4").tobytes()
    return {
        "shape": list(q.shape),
        "step": step,
        "base": [int(b) for b in base],
        "plane": _deflate(plane),
        "esc": _deflate(escapes),
        "sub": int(sub),
        "full": full,
    }


def keypoint_sides(names: Sequence[str], flip_perm: Sequence[int] | None = None) -> list[str]:
    """``"L"``, ``"R"`` or ``""`` per keypoint: the object's own left/right side, read from the name's words
    (``left``/``l``, ``right``/``r``); a keypoint that the mirror permutation maps onto itself is central."""
    sides = []
    for i, name in enumerate(names):
        words = [w.lower() for w in re.split(r"[^A-Za-z]+|(?<=[a-z])(?=[A-Z])", str(name)) if w]
        side = "L" if ("left" in words or "l" in words) else "R" if ("right" in words or "r" in words) else ""
        if flip_perm is not None and i < len(flip_perm) and flip_perm[i] == i:
            side = ""
        sides.append(side)
    return sides


def _sides(meta: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """Keypoint sides from ``meta.keypoint_sides`` (real benchmarks: left/right/center) when set, else from names."""
    given = meta.get("keypoint_sides")
    if isinstance(given, Sequence) and len(given) == len(names):
        return [{"left": "L", "right": "R"}.get(str(s), "") for s in given]
    return keypoint_sides(names, meta.get("flip_perm"))


def _jpeg(image: np.ndarray) -> str:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + _b64(buf.tobytes())


def _kind(meta: Mapping[str, Any]) -> str:
    ids = meta.get("instance_ids")
    if isinstance(ids, Sequence) and len(ids) == 2 and not isinstance(ids, str):
        return "same instance" if ids[0] == ids[1] else "cross-instance"
    return str(meta.get("source", ""))


def pair_stats(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Per-pair figures of the pair list: status shares of each view's object pixels and the raw cycle error
    (:func:`datagen.invariants.fields.cycle`), or just the keypoint count for a pair without dense fields."""
    stats: dict[str, Any] = {}
    if "status_0to1" in sample:
        for d in ("0to1", "1to0"):
            st = sample[f"status_{d}"]
            obj = max(int((st != Status.BACKGROUND).sum()), 1)
            stats[f"valid_{d}"] = round(float((st == Status.MATCHED).sum()) / obj, 4)
            for code in (Status.OCCLUDED, Status.OUTSIDE, Status.NO_COUNTERPART):
                stats[f"{STATUS_INFO[int(code)][0].replace(' ', '_')}_{d}"] = round(float((st == code).sum()) / obj, 4)
        from datagen.invariants.fields import cycle

        valid = {f"valid_{d}": sample[f"status_{d}"] == Status.MATCHED for d in ("0to1", "1to0")}
        c = cycle({**sample, **valid})
        stats["cycle_median_px"] = round(float(c["cycle_median_px"]), 3) if c.get("n_cycle") else None
        stats["cycle_within_1.5px"] = round(float(c["cycle_frac_within_1.5px"]), 4) if c.get("n_cycle") else None
    if sample.get("kps0_vis") is not None and sample.get("kps1_vis") is not None:
        stats["keypoints_both"] = int((np.asarray(sample["kps0_vis"]) & np.asarray(sample["kps1_vis"])).sum())
    return stats


def _view_record(sample: Mapping[str, Any], v: int) -> dict[str, Any]:
    d = "0to1" if v == 0 else "1to0"
    image = sample[f"image{v}"]
    h, w = image.shape[:2]
    rec: dict[str, Any] = {"w": int(w), "h": int(h), "img": _jpeg(image)}
    status = sample.get(f"status_{d}")
    if status is not None:
        rec["status"] = _deflate(np.ascontiguousarray(status, np.uint8).tobytes())
        stored = np.isin(status, [int(s) for s in STORED_STATUSES])
        rec["corr"] = encode_field(sample[f"corr_{d}"], stored, CORR_STEP_PX)
        if sample.get(f"depth{v}") is not None:
            rec["depth"] = encode_field(sample[f"depth{v}"], status != Status.BACKGROUND, DEPTH_STEP_M)
    for key, out in ((f"K{v}", "K"), (f"T_cam{v}_from_world", "T")):
        if sample.get(key) is not None:
            rec[out] = np.asarray(sample[key], np.float64).round(7).tolist()
    if sample.get(f"kps{v}") is not None:
        rec["kps"] = np.nan_to_num(np.asarray(sample[f"kps{v}"], np.float64), posinf=0, neginf=0).round(3).tolist()
        rec["vis"] = np.asarray(sample[f"kps{v}_vis"], bool).astype(int).tolist()
    return rec


def pair_record(
    sample: Mapping[str, Any], prediction: Mapping[str, Any] | None = None, budget: int = PAIR_BUDGET
) -> dict[str, Any]:
    """The page's record of one decoded schema sample (``loaders.schema.decode_sample``), with an optional prediction.

    Args:
        sample: a decoded sample (dense fields optional: real pairs carry only images and keypoints).
        prediction: optional ``{"corr_0to1" [H0, W0, 2], "conf0" [H0, W0], "corr_1to0", "conf1"}`` (float, original
            pixels, either direction may be missing) and, for keypoints, ``"kp"``: ``{"xy": [N, 2] predicted view-1
            positions of view 0's keypoints, "conf": [N], "threshold_px": L, "alphas": [...]}`` plus any per-pair
            figures under ``"stats"`` (shown in the pair list).
        budget: bytes the pair may take in the page; a prediction that does not fit at full resolution is stored
            at every 2nd (then 4th, 8th) pixel, interpolated by the page (ground truth is never subsampled).

    Returns:
        a JSON-ready dict (images as data URLs, fields encoded with :func:`encode_field`).
    """
    meta = sample.get("meta", {})
    names = [str(n) for n in meta.get("keypoint_names", [])]
    rec: dict[str, Any] = {
        "key": str(sample.get("__key__", "")),
        "category": str(meta.get("category", "")),
        "source": str(meta.get("source", "")),
        "kind": _kind(meta),
        "names": names,
        "sides": _sides(meta, names),
        "views": [_view_record(sample, 0), _view_record(sample, 1)],
        "stats": pair_stats(sample),
    }
    if prediction is not None:
        pred: dict[str, Any] = {"views": _prediction_views(sample, prediction, budget - _size(rec))}
        kp = prediction.get("kp")
        if kp is not None:
            pred["kp"] = {
                "xy": np.nan_to_num(np.asarray(kp["xy"], np.float64), posinf=0, neginf=0).round(3).tolist(),
                "conf": np.asarray(kp.get("conf", np.ones(len(kp["xy"]))), np.float64).round(4).tolist(),
                "threshold_px": float(kp["threshold_px"]),
                "alphas": [float(a) for a in kp.get("alphas", (0.05, 0.1))],
            }
        rec["pred"] = pred
        rec["stats"].update(prediction.get("stats", {}))
    return rec


def _size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


def _prediction_views(sample: Mapping[str, Any], prediction: Mapping[str, Any], budget: int) -> list[dict[str, Any]]:
    """Both views' predicted fields, at full resolution when they fit ``budget`` bytes, else subsampled."""
    for sub in (1, 2, 4, 8):
        views = []
        for v, d in ((0, "0to1"), (1, "1to0")):
            corr, conf = prediction.get(f"corr_{d}"), prediction.get(f"conf{v}")
            everywhere = np.ones(sample[f"image{v}"].shape[:2], bool)
            views.append(
                {
                    "corr": None if corr is None else encode_field(corr, everywhere, PRED_STEP_PX, sub),
                    "conf": None if conf is None else encode_field(conf, everywhere, CONF_STEP, sub),
                }
            )
        if _size(views) <= budget:
            break
    return views


_COLUMNS = [  # pair-list columns: stats key, header, format ("pct", "px", "int", "str"), sort descending first
    ("valid_0to1", "valid 0→1", "pct"),
    ("valid_1to0", "valid 1→0", "pct"),
    ("cycle_median_px", "cycle med px", "px"),
    ("keypoints_both", "kps", "int"),
]


def build_page(
    records: Sequence[Mapping[str, Any]],
    title: str,
    subtitle: str = "",
    summary: Mapping[str, Any] | None = None,
    columns: Sequence[tuple[str, str, str]] | None = None,
    sort: tuple[str, bool] | None = None,
) -> str:
    """The HTML text of a page over ``records`` (from :func:`pair_record`).

    Args:
        records: the pairs, in list order.
        title, subtitle: the page heading.
        summary: optional block shown at the top: ``{"pck": {"alphas", "rows": [[label, n pairs, [pck per α]]],
            "curve": {"alphas": [...], "pck": [...]}}, "notes": [str]}``.
        columns: pair-list columns ``(stats key, header, format)``; default: valid fractions, cycle error, keypoints.
        sort: ``(stats key, ascending)`` the list starts sorted by; default: list order.
    """
    cols = list(columns) if columns is not None else list(_COLUMNS)
    index = []
    for i, r in enumerate(records):
        index.append({"i": i, "key": r["key"], "category": r["category"], "kind": r["kind"], "stats": r["stats"]})
    config = {
        "title": title,
        "subtitle": subtitle,
        "columns": [{"key": k, "label": lab, "fmt": f} for k, lab, f in cols],
        "sort": list(sort) if sort else None,
        "status": {str(k): {"name": n, "rgb": c} for k, (n, c) in STATUS_INFO.items()},
        "summary": summary or None,
        "index": index,
    }
    blocks = [f'<script type="application/json" id="pair-{i}">{_json(r)}</script>' for i, r in enumerate(records)]
    template = resources.files("datagen.explore").joinpath("template.html").read_text(encoding="utf-8")
    return (
        template.replace("__TITLE__", html.escape(title))
        .replace("/*__CONFIG__*/null", _json(config))
        .replace("<!--__PAIRS__-->", "\n".join(blocks))
    )


def _json(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` and no ``<!--``)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def write_page(path: str | Path, records: Sequence[Mapping[str, Any]], title: str, **kwargs: Any) -> Path:
    """:func:`build_page` into ``path`` (folders made); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_page(records, title, **kwargs), encoding="utf-8")
    return path
