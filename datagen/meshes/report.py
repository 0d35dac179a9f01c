"""The printed intake summary: counts, then one table row per file (status, name, faces, time, reason/notes)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["format_summary"]

_WIDTH = 48


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def format_summary(intake: dict[str, Any], rows: str = "all") -> str:
    """A plain-text table of an ``intake.json`` document.

    Args:
        intake: the parsed ``intake.json``.
        rows: ``all`` files, ``problems`` (rejected and repaired only), or ``none`` (counts only).
    """
    meshes = intake["meshes"]
    counts = intake["counts"]
    lines = [
        f"{intake['category']} meshes from {intake['source']} ({intake['layout']} layout): {len(meshes)} files, "
        + ", ".join(f"{counts[s]} {s}" for s in ("accepted", "repaired", "rejected"))
    ]
    seconds = [sum(st.get("seconds", 0.0) for st in e["stages"].values()) for e in meshes if e["status"] != "rejected"]
    if seconds:
        lines.append(
            f"time per accepted mesh (all stages): median {np.median(seconds):.2f} s, max {max(seconds):.2f} s"
        )
    shown = [e for e in meshes if rows == "all" or (rows == "problems" and e["status"] != "accepted")]
    if not shown:
        return "\n".join(lines)
    lines.append(f"{'status':<9} {'file':<{_WIDTH}} {'faces':>15} {'time':>7}  reason / notes")
    for e in shown:
        intake_rec = e["stages"].get("intake", {})
        faces = f"{intake_rec.get('faces_in', 0)}"
        if "faces" in intake_rec and intake_rec["faces"] != intake_rec.get("faces_in"):
            faces += f"->{intake_rec['faces']}"
        t = sum(st.get("seconds", 0.0) for st in e["stages"].values())
        said = e["reason"] if e["status"] == "rejected" else "; ".join(e["repairs"] + e["notes"])
        lines.append(f"{e['status']:<9} {_clip(e['name'], _WIDTH):<{_WIDTH}} {faces:>15} {t:>6.2f}s  {said}")
    return "\n".join(lines)
