"""The mesh-intake report: ``intake.json`` as one table (a pandas DataFrame), the printed summary built from it, and
``datagen meshes report LIB --report R.md|.csv|.json``.

:func:`intake_frame` has one row per source file, in the collection's order (see its docstring for the columns);
:func:`format_summary` prints counts, the time per mesh and a row per file from it; :func:`write_report` writes
the whole table with :func:`loaders.tables.write_table` (``.csv`` full precision, ``.json`` row records, ``.md``
the summary lines and the table), as ``datagen verify --report`` and ``semmatch eval`` write theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["intake_frame", "format_summary", "write_report", "STATUSES"]

STATUSES = ("accepted", "repaired", "rejected")
_WIDTH = 48
# the intake record's keys that become columns (where some file has them)
_INTAKE_COLUMNS = ("vertices", "materials", "textures", "two_sided", "part_source", "bbox_diagonal_m", "up", "front")
_COUNT_COLUMNS = ("faces_in", "faces", "vertices", "materials", "textures")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def _seconds(stage_record: dict[str, Any]) -> float:
    return float(stage_record.get("seconds", 0.0))


def intake_frame(intake: dict[str, Any]) -> pd.DataFrame:
    """The parsed ``intake.json`` as one table, one row per source file:

    * ``mesh_id``, ``name`` (what reports call the file), ``status`` (accepted / repaired / rejected), ``reason``
      (why rejected; empty otherwise), ``repairs`` and ``notes`` (joined with ``"; "``);
    * ``faces_in`` (read from the file), ``faces`` (after intake: decimated, repaired), ``seconds`` (all stages);
    * per stage of the library (``intake``, ``register``, ...): ``<stage>`` its status (NA where it did not run) and
      ``<stage>_s`` its seconds;
    * from the intake record: ``vertices``, ``materials``, ``textures``, ``two_sided``, ``part_source``,
      ``bbox_diagonal_m``, ``up``, ``front``; from the registration: ``orientation``, the fit's numbers
      (``mesh_to_template_p90``, ``coverage``, ..., fractions of the bbox diagonal; :class:`~datagen.meshes.register.
      Quality`) and ``absent_slots`` (joined); only the columns some file has;
    * ``file``: the source path.

    ``frame.attrs`` keeps the document's ``category``, ``source``, ``layout`` and ``stages``. Counts are integers
    (NA where missing), ``two_sided`` boolean.
    """
    import pandas as pd

    stages = list(intake.get("stages") or [])
    rows = []
    for e in intake["meshes"]:
        recs = e.get("stages", {})
        intake_rec = recs.get("intake", {})
        row: dict[str, Any] = {
            "mesh_id": e["mesh_id"],
            "name": e["name"],
            "status": e["status"],
            "reason": e.get("reason") or "",
            "repairs": "; ".join(e.get("repairs", [])),
            "notes": "; ".join(e.get("notes", [])),
            "faces_in": intake_rec.get("faces_in"),
            "faces": intake_rec.get("faces"),
            "seconds": round(sum(_seconds(st) for st in recs.values()), 4),
        }
        for name in stages:
            row[name] = recs[name]["status"] if name in recs else None
            row[f"{name}_s"] = _seconds(recs[name]) if name in recs else None
        row.update({k: intake_rec[k] for k in _INTAKE_COLUMNS if k in intake_rec})
        reg = recs.get("register", {})
        if "orientation" in reg:
            row["orientation"] = reg["orientation"]
        for k, v in (reg.get("quality") or {}).items():
            row[k] = "; ".join(v) if isinstance(v, list) else v
        row["file"] = e.get("file", "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["mesh_id", "name", "status", "reason", "repairs", "notes", "faces_in", "faces",
                                      "seconds", *(c for s in stages for c in (s, f"{s}_s")), "file"])  # fmt: skip
    frame = frame[[c for c in frame.columns if c != "file"] + ["file"]]
    for c in _COUNT_COLUMNS:
        if c in frame:
            frame[c] = pd.to_numeric(frame[c]).astype("Int64")
    if "two_sided" in frame:
        frame["two_sided"] = frame["two_sided"].astype("boolean")
    frame["seconds"] = frame["seconds"].astype("float64")
    frame.attrs.update({k: intake.get(k) for k in ("category", "source", "layout")}, stages=stages)
    return frame


def _summary_lines(frame: pd.DataFrame) -> list[str]:
    import numpy as np

    a = frame.attrs
    counts = {s: int((frame["status"] == s).sum()) for s in STATUSES}
    lines = [
        f"{a.get('category')} meshes from {a.get('source')} ({a.get('layout')} layout): {len(frame)} files, "
        + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    ]
    seconds = frame.loc[frame["status"] != "rejected", "seconds"].to_numpy(float)
    if len(seconds):
        lines.append(
            f"time per accepted mesh (all stages): median {np.median(seconds):.2f} s, max {seconds.max():.2f} s"
        )
    return lines


def format_summary(intake: dict[str, Any], rows: str = "all", frame: pd.DataFrame | None = None) -> str:
    """The printed summary of an ``intake.json`` document, built from :func:`intake_frame` (pass ``frame`` to reuse
    one): counts, time per mesh, then a row per file (status, name, faces, time, reason or repairs and notes).

    Args:
        intake: the parsed ``intake.json``.
        rows: ``all`` files, ``problems`` (rejected and repaired only), or ``none`` (counts only).
        frame: :func:`intake_frame` of ``intake``, when already made.
    """
    frame = intake_frame(intake) if frame is None else frame
    lines = _summary_lines(frame)
    shown = frame if rows == "all" else frame[frame["status"] != "accepted"] if rows == "problems" else frame[:0]
    if shown.empty:
        return "\n".join(lines)
    lines.append(f"{'status':<9} {'file':<{_WIDTH}} {'faces':>15} {'time':>7}  reason / notes")
    for r in shown.to_dict("records"):
        faces_in = 0 if _na(r["faces_in"]) else int(r["faces_in"])
        text = str(faces_in)
        if not _na(r["faces"]) and r["faces"] != faces_in:
            text += f"->{r['faces']}"
        said = r["reason"] if r["status"] == "rejected" else "; ".join(x for x in (r["repairs"], r["notes"]) if x)
        lines.append(f"{r['status']:<9} {_clip(r['name'], _WIDTH):<{_WIDTH}} {text:>15} {r['seconds']:>6.2f}s  {said}")
    return "\n".join(lines)


def _na(v: Any) -> bool:
    import pandas as pd

    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def write_report(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Write :func:`intake_frame`'s table in the format ``path``'s suffix names (:func:`loaders.tables.write_table`):
    ``.csv`` (every file, every column, full precision), ``.json`` (a list of row records, missing values as null)
    or ``.md`` (the summary lines, then every file as one Markdown table)."""
    from loaders.tables import check_suffix, frame_markdown, write_table

    path = check_suffix(path)
    md = [f"# {title}", ""] if title else []
    md += [*_summary_lines(frame), "", frame_markdown(frame, {"seconds": ".2f", "bbox_diagonal_m": ".4g"})]
    return write_table(frame, path, "\n".join(md))
