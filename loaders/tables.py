"""Tables a person reads and a notebook loads: pandas DataFrames as Markdown, CSV or JSON.

:func:`frame_markdown` prints any DataFrame as a GitHub Markdown table whose plain text is aligned too (cells padded
to the column width, numeric columns right-aligned); ``formats`` says how a column's values are written (a format
spec such as ``".3f"``, or a function), so the printed numbers are chosen by the caller while the frame keeps full
precision. :func:`write_table` writes one table to a file in the format its suffix names (:data:`TABLE_SUFFIXES`):
``.md`` (the Markdown text the caller renders: the report as printed), ``.csv`` (the whole frame, full precision,
empty cells for missing values; read back with ``pandas.read_csv``), ``.json`` (a list of row records, missing
values as null); :func:`table_text` gives the same text. :func:`write_tables` writes several named tables to one
file: ``.csv`` stacks them with a ``table`` column first saying which, ``.json`` is ``{table: [row, ...]}``.

Generic on purpose (no loaders types), the one table writer of every report: ``python -m loaders stats``
(:func:`write_tables`), ``datagen verify --report``, ``datagen meshes report --report`` and ``semmatch eval``
(:func:`write_table`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TABLE_SUFFIXES", "frame_markdown", "frame_records", "tables_csv", "tables_json", "check_suffix",
           "table_text", "write_table", "write_tables"]  # fmt: skip

TABLE_SUFFIXES = (".md", ".csv", ".json")

Format = str | Callable[[Any], str]


def _missing(v: Any) -> bool:
    return v is None or (pd.api.types.is_scalar(v) and not isinstance(v, str) and bool(pd.isna(v)))


def _cell(v: Any, fmt: Format | None, na: str) -> str:
    if _missing(v):
        return na
    if callable(fmt):
        text = fmt(v)
    elif fmt is not None:
        text = format(v, fmt)
    elif isinstance(v, float | np.floating):
        text = f"{v:g}"
    else:
        text = str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def frame_markdown(frame: pd.DataFrame, formats: Mapping[str, Format] | None = None, na: str = "") -> str:
    """``frame`` as a Markdown table (no index), ending in a newline.

    Args:
        frame: the table; its column names are the header.
        formats: per column, a format spec (``".3f"``, ``"g"``) or a function of the value; other floats are
            written with ``g``, everything else with ``str``.
        na: what a missing value (None, NaN, NA) is written as.
    """
    formats = formats or {}
    cols = [str(c) for c in frame.columns]
    rows = [[_cell(v, formats.get(c), na) for c, v in zip(cols, r, strict=True)] for r in frame.itertuples(False)]
    right = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame]
    widths = [max([len(c), 3, *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right, strict=True))
    return "\n".join([line(cols), rule + "|", *(line(r) for r in rows)]) + "\n"


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as plain-Python dicts (missing values as None), for JSON."""

    def plain(v: Any) -> Any:
        if _missing(v):
            return None
        return v.item() if isinstance(v, np.generic) else v

    return [{k: plain(v) for k, v in r.items()} for r in frame.astype(object).to_dict("records")]


def _whole_numbers_as_int(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as nullable ``Int64`` so that stacking tables with other columns keeps them integers."""
    frame = frame.copy()
    for c in frame:
        if pd.api.types.is_integer_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            frame[c] = frame[c].astype("Int64")
    return frame


def tables_csv(tables: Mapping[str, pd.DataFrame]) -> str:
    """The tables stacked into one CSV: a ``table`` column naming each row's table, then the union of the columns
    (in first-seen order; a column a table lacks is empty there); full precision."""
    parts = [_whole_numbers_as_int(f).assign(table=name) for name, f in tables.items()]
    stacked = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["table"])
    stacked = stacked[["table", *[c for c in stacked.columns if c != "table"]]]
    return stacked.to_csv(index=False)


def tables_json(tables: Mapping[str, pd.DataFrame]) -> str:
    """The tables as ``{table: [row, ...]}`` (rows as records, missing values as null)."""
    return json.dumps({name: frame_records(f) for name, f in tables.items()}, indent=1) + "\n"


def check_suffix(path: str | Path) -> Path:
    """``path`` when its suffix is one of :data:`TABLE_SUFFIXES`; otherwise ValueError naming them."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: a report is written as {', '.join(TABLE_SUFFIXES)} (by the suffix)")
    return path


def table_text(frame: pd.DataFrame, fmt: str, markdown: str = "") -> str:
    """One table as the text of format ``fmt`` (``md``, ``csv`` or ``json``, a leading dot allowed): ``markdown``
    as given, the CSV of the whole frame (full precision, empty cells for missing values), or its row records as
    a JSON list (missing values as null)."""
    fmt = fmt.lower().lstrip(".")
    if fmt == "md":
        return markdown
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return json.dumps(frame_records(frame), indent=1) + "\n"
    raise ValueError(f"unknown table format {fmt!r}; expected one of {', '.join(s[1:] for s in TABLE_SUFFIXES)}")


def write_table(frame: pd.DataFrame, path: str | Path, markdown: str) -> Path:
    """Write one table to ``path`` in the format its suffix names (:func:`table_text`); ``markdown`` is the text a
    ``.md`` file gets (the report as printed). Creates the parent folder; returns the path."""
    path = check_suffix(path)
    text = table_text(frame, path.suffix, markdown)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_tables(tables: Mapping[str, pd.DataFrame], path: str | Path, markdown: str) -> Path:
    """Write ``tables`` to ``path`` in the format its suffix names (see the module doc); ``markdown`` is the text
    a ``.md`` file gets (the report as printed). Creates the parent folder; returns the path."""
    path = check_suffix(path)
    suffix = path.suffix.lower()
    text = markdown if suffix == ".md" else tables_csv(tables) if suffix == ".csv" else tables_json(tables)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
