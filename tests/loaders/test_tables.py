"""``loaders.tables``: the one table writer of every report (loaders stats, datagen verify, datagen meshes report,
semmatch eval)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from loaders import tables


def _frame() -> pd.DataFrame:
    frame = pd.DataFrame({"name": ["a", "b|c"], "n": [1, None], "x": [0.1 + 0.2, float("nan")], "ok": [True, None]})
    frame["n"] = frame["n"].astype("Int64")
    frame["ok"] = frame["ok"].astype("boolean")
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".json", ".md", ".CSV"])
def test_write_table_by_suffix(tmp_path, suffix):
    frame = _frame()
    path = tables.write_table(frame, tmp_path / "sub" / f"t{suffix}", markdown="as printed\n")
    text = path.read_text()
    assert text == tables.table_text(frame, suffix, "as printed\n")
    if suffix.lower() == ".csv":
        back = pd.read_csv(path)
        assert back["x"][0] == 0.1 + 0.2 and pd.isna(back["x"][1]) and pd.isna(back["n"][1])  # full precision
        assert list(back["name"]) == ["a", "b|c"]
    elif suffix == ".json":
        assert json.loads(text) == [
            {"name": "a", "n": 1, "x": 0.1 + 0.2, "ok": True},
            {"name": "b|c", "n": None, "x": None, "ok": None},
        ]
    else:
        assert text == "as printed\n"


def test_bad_suffix_and_format():
    with pytest.raises(ValueError, match=r"t\.xlsx: a report is written as \.md, \.csv, \.json"):
        tables.write_table(_frame(), "t.xlsx", "")
    with pytest.raises(ValueError, match="unknown table format 'xlsx'"):
        tables.table_text(_frame(), "xlsx")


def test_reports_share_the_writer():
    """Verify, eval and the mesh-intake report write through loaders.tables, not copies of it."""
    import datagen.meshes.report
    import datagen.verify
    import training.eval.report

    assert training.eval.report.frame_records is tables.frame_records
    frame = _frame()
    assert training.eval.report.format_table(frame, "csv") == tables.table_text(frame, "csv")
    assert training.eval.report.format_table(frame, "json") == tables.table_text(frame, "json")
    assert not hasattr(datagen.verify, "REPORT_SUFFIXES")  # the suffixes are loaders.tables.TABLE_SUFFIXES
    for write in (datagen.verify.write_report, datagen.meshes.report.write_report, training.eval.report.write_table):
        with pytest.raises(ValueError, match=r"r\.txt: a report is written as \.md, \.csv, \.json"):
            write(frame, "r.txt")
