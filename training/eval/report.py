"""Reporting PCK: a per-category Markdown table, a JSON record and a PCK-versus-α plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.eval.pck import PCKAccumulator

__all__ = ["markdown_table", "write_json", "plot_pck_curve", "PLOT_ALPHAS"]

PLOT_ALPHAS = tuple(np.round(np.linspace(0.0025, 0.2, 80), 4))


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"


def markdown_table(summary: dict[str, Any], title: str | None = None) -> str:
    """Per-category PCK (percent) with pair and keypoint counts, geometry-aware columns and the overall rows."""
    alphas = summary["alphas"]
    heads = [f"PCK@{a:g}" for a in alphas] + [f"geo@{a:g}" for a in alphas]
    lines = [f"### {title}", ""] if title else []
    lines.append("| category | pairs | kps | " + " | ".join(heads) + " | geo kps |")
    lines.append("|---|---:|---:|" + "---:|" * (len(heads) + 1))

    def row(name: str, r: dict) -> str:
        cells = [_pct(v) for v in r["pck"]] + [_pct(v) for v in r["geo"]["pck"]]
        return f"| {name} | {r['pairs']} | {r['keypoints']} | " + " | ".join(cells) + f" | {r['geo']['keypoints']} |"

    for cat, r in summary["categories"].items():
        lines.append(row(cat, r))
    lines.append(row(f"**all ({summary['average']})**", summary["overall"]))
    if summary["overall"].get("category_mean"):
        means = " | ".join(_pct(v) for v in summary["overall"]["category_mean"])
        lines.append(f"| mean of categories | | | {means} |" + " |" * (len(alphas) + 1))
    return "\n".join(lines) + "\n"


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
