"""Reporting PCK: one table (a pandas DataFrame) written as Markdown, CSV or JSON records; the JSON record of a run;
a PCK-versus-α plot.

:func:`pck_frame` turns :meth:`~training.eval.pck.PCKAccumulator.summary` into the table: one row per category,
then ``all`` (over all pairs, averaged as the summary's ``average`` says) and ``category_mean`` (the unweighted mean
of the category scores; PCK columns only, present when a category was scored). Columns: ``category``,
``threshold``, ``average``, ``pairs``, ``keypoints``, ``PCK@<α>`` per α, ``geo_pairs``, ``geo_keypoints``,
``geo@<α>`` per α (the geometry-aware subset). PCK values are fractions in [0, 1] as in ``pck.json``, full
precision in CSV and JSON; :func:`markdown_table` shows them in percent. A notebook reads it back with
``pandas.read_csv("pck.csv")`` (several runs: ``pd.concat``; ``threshold`` and ``average`` tell them apart).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loaders import tables
from loaders.tables import check_suffix, frame_records, table_text
from training.eval.pck import PCKAccumulator

__all__ = [
    "TABLE_FORMATS",
    "pck_frame",
    "markdown_table",
    "format_table",
    "frame_records",  # loaders.tables.frame_records, re-exported
    "write_table",
    "write_json",
    "plot_pck_curve",
    "PLOT_ALPHAS",
]

PLOT_ALPHAS = tuple(np.round(np.linspace(0.0025, 0.2, 80), 4))
TABLE_FORMATS = ("md", "csv", "json")
_COUNTS = ("pairs", "keypoints", "geo_pairs", "geo_keypoints")


def _alpha_columns(alphas) -> tuple[list[str], list[str]]:
    return [f"PCK@{a:g}" for a in alphas], [f"geo@{a:g}" for a in alphas]


def pck_frame(summary: dict[str, Any], threshold: str | None = None) -> pd.DataFrame:
    """The per-category PCK table of ``summary`` (see the module docstring); ``threshold`` fills its column."""
    pck_cols, geo_cols = _alpha_columns(summary["alphas"])

    def row(name: str, r: dict) -> dict[str, Any]:
        return {
            "category": name,
            "pairs": r["pairs"],
            "keypoints": r["keypoints"],
            **dict(zip(pck_cols, r["pck"], strict=True)),
            "geo_pairs": r["geo"]["pairs"],
            "geo_keypoints": r["geo"]["keypoints"],
            **dict(zip(geo_cols, r["geo"]["pck"], strict=True)),
        }

    rows = [row(cat, r) for cat, r in summary["categories"].items()] + [row("all", summary["overall"])]
    if summary["overall"].get("category_mean"):
        means = summary["overall"]["category_mean"]
        rows.append({"category": "category_mean", **dict(zip(pck_cols, means, strict=True))})
    columns = ["category", "threshold", "average", "pairs", "keypoints", *pck_cols, "geo_pairs", "geo_keypoints",
               *geo_cols]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["threshold"] = threshold
    frame["average"] = summary["average"]
    frame[list(_COUNTS)] = frame[list(_COUNTS)].astype("Int64")
    frame[pck_cols + geo_cols] = frame[pck_cols + geo_cols].astype("float64")
    return frame


def _pct(v: float) -> str:
    return "–" if v is None or pd.isna(v) or not np.isfinite(v) else f"{100 * v:.1f}"


def markdown_table(table: pd.DataFrame | dict[str, Any], title: str | None = None) -> str:
    """The table as Markdown: PCK in percent with pair and keypoint counts, geometry-aware columns, the ``all`` row
    (bold, with the averaging mode) and the mean of categories. ``table`` is a :func:`pck_frame` (or a summary)."""
    frame = pck_frame(table) if isinstance(table, dict) else table
    pck_cols = [c for c in frame.columns if c.startswith("PCK@")]
    geo_cols = [c for c in frame.columns if c.startswith("geo@")]
    heads = pck_cols + geo_cols
    lines = [f"### {title}", ""] if title else []
    lines.append("| category | pairs | kps | " + " | ".join(heads) + " | geo kps |")
    lines.append("|---|---:|---:|" + "---:|" * (len(heads) + 1))
    for r in frame.to_dict("records"):
        pcks = " | ".join(_pct(r[c]) for c in pck_cols)
        if r["category"] == "category_mean":
            lines.append(f"| mean of categories | | | {pcks} |" + " |" * (len(geo_cols) + 1))
            continue
        name = f"**all ({r['average']})**" if r["category"] == "all" else r["category"]
        geos = " | ".join(_pct(r[c]) for c in geo_cols)
        lines.append(f"| {name} | {r['pairs']} | {r['keypoints']} | {pcks} | {geos} | {r['geo_keypoints']} |")
    return "\n".join(lines) + "\n"


def format_table(frame: pd.DataFrame, fmt: str, title: str | None = None) -> str:
    """``frame`` as ``"md"`` (:func:`markdown_table`), ``"csv"`` (full precision, empty cells for missing values) or
    ``"json"`` (a list of row records, missing values as null): :func:`loaders.tables.table_text`."""
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; expected one of {TABLE_FORMATS}")
    return table_text(frame, fmt, markdown_table(frame, title) if fmt == "md" else "")


def write_table(frame: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Write ``frame`` in the format its suffix names (``.md``, ``.csv``, ``.json``) with
    :func:`loaders.tables.write_table`; returns the path."""
    path = check_suffix(path)
    return tables.write_table(frame, path, markdown_table(frame, title) if path.suffix.lower() == ".md" else "")


def write_json(path: str | Path, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON (NaN written as null)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not np.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    Path(path).write_text(json.dumps(clean(record), indent=1) + "\n")


def plot_pck_curve(
    curves: dict[str, PCKAccumulator], path: str | Path, average: str, title: str = "", marks=()
) -> None:
    """PCK (all keypoints, solid; geometry-aware subset, dashed) versus α for each named accumulator.

    Args:
        curves: label -> accumulator (e.g. one per matcher, or ``{"all": acc}``).
        path: PNG to write.
        average: ``"image"`` or ``"keypoint"``.
        marks: α values to mark with vertical lines (the reported ones).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for i, (label, acc) in enumerate(curves.items()):
        s = acc.summary(PLOT_ALPHAS, average)["overall"]
        color = f"C{i}"
        ax.plot(PLOT_ALPHAS, 100 * np.asarray(s["pck"]), color=color, label=f"{label} (all, {s['pairs']} pairs)")
        if s["geo"]["keypoints"]:
            ax.plot(PLOT_ALPHAS, 100 * np.asarray(s["geo"]["pck"]), "--", color=color, label=f"{label} (geo-aware)")
    for a in marks:
        ax.axvline(a, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("α (threshold = α · L)")
    ax.set_ylabel(f"PCK (%), per-{average} average")
    ax.set_xlim(0, max(PLOT_ALPHAS))
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
