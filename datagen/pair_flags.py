"""Truncation and occlusion shares of pairs, SPair-71k style, for real annotations and for rendered datasets.

SPair-71k (Min et al. 2019, arXiv 1908.10543) annotates every pair with a ``truncation`` and an ``occlusion`` flag:
0 = neither image, 1 = the source only, 2 = the target only, 3 = both (the codes as the pair JSONs use them). A
rendered dataset records per view whether the object is cut by the border (``views[v].truncated``) and how much of
it occluders hide (``views[v].occlusion.hidden``), so its pairs get the same four-way flags. When views are
truncated or occluded independently with probability ``p`` (:class:`datagen.config.CameraConfig`,
:class:`datagen.config.OccluderConfig`), the shares are ``(1 - p)^2``, ``p (1 - p)``, ``p (1 - p)``, ``p^2``, and
:func:`view_fraction` inverts that, so the defaults can be set from SPair's own numbers::

    python scripts/pair_flags.py --spair /data/SPair-71k --split trn     # SPair's shares and the implied p
    python scripts/pair_flags.py --dataset data/chair                    # a rendered dataset's shares
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FLAGS",
    "FLAG_NAMES",
    "pair_flag",
    "spair_flags",
    "dataset_flags",
    "shares",
    "view_fraction",
    "status_shares",
]

FLAGS = ("truncation", "occlusion")
FLAG_NAMES = ("none", "source", "target", "both")


def pair_flag(source: bool, target: bool) -> int:
    """The SPair code of a pair: 0 none, 1 source only, 2 target only, 3 both."""
    return int(source) + 2 * int(target)


def spair_flags(root: str | Path, split: str = "trn") -> dict[str, np.ndarray]:
    """The ``truncation`` and ``occlusion`` codes of every pair of a SPair-71k split (``PairAnnotation/<split>``).

    Raises:
        FileNotFoundError: no pair annotation there.
    """
    folder = Path(root) / "PairAnnotation" / split
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no SPair-71k pair annotation in {folder}")
    rows = [json.loads(f.read_text()) for f in files]
    return {k: np.array([int(r.get(k, 0)) for r in rows], np.int64) for k in FLAGS}


def _view_flags(view: Mapping[str, Any]) -> tuple[bool, bool]:
    occlusion = view.get("occlusion") or {}
    return bool(view.get("truncated")), bool(view.get("occluders")) and float(occlusion.get("hidden", 0.0)) > 0


def dataset_flags(metas: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The same codes for rendered pairs, from their ``meta`` (views without the records count as neither)."""
    out: dict[str, list[int]] = {k: [] for k in FLAGS}
    for meta in metas:
        views = meta.get("views") or [{}, {}]
        (t0, o0), (t1, o1) = _view_flags(views[0]), _view_flags(views[1])
        out["truncation"].append(pair_flag(t0, t1))
        out["occlusion"].append(pair_flag(o0, o1))
    return {k: np.array(v, np.int64) for k, v in out.items()}


def shares(codes: np.ndarray) -> dict[str, float]:
    """Share of pairs per code, by name (:data:`FLAG_NAMES`)."""
    n = max(len(codes), 1)
    return {name: float((np.asarray(codes) == i).sum() / n) for i, name in enumerate(FLAG_NAMES)}


def view_fraction(codes: np.ndarray) -> float:
    """The share of single images flagged: (source + target + 2 both) / (2 pairs), the ``p`` to configure."""
    s = shares(codes)
    return (s["source"] + s["target"] + 2.0 * s["both"]) / 2.0


def status_shares(samples: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Share of the object pixels (status not background) of both directions of decoded samples, by status name
    (matched, occluded, outside, no counterpart)."""
    from loaders.schema import Status

    counts = np.zeros(len(Status), np.int64)
    for s in samples:
        for d in ("status_0to1", "status_1to0"):
            if d in s:
                counts += np.bincount(np.asarray(s[d]).ravel(), minlength=len(Status))[: len(Status)]
    obj = max(int(counts[1:].sum()), 1)
    return {st.name.lower(): float(counts[st] / obj) for st in Status if st != Status.BACKGROUND}
