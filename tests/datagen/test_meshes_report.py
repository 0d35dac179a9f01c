"""The mesh-intake report: ``intake.json`` as one DataFrame, the printed summary made from it, and the table written
as Markdown, CSV or JSON by the shared writer (``loaders.tables``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from datagen.meshes.report import format_summary, intake_frame, write_report


def _stage(status: str, seconds: float, **more) -> dict:
    return {"status": status, "reason": "", "seconds": seconds, **more}


def _intake() -> dict:
    """An ``intake.json`` with an accepted, a repaired (decimated, turned), a rejected and an unfinished file."""
    quality = {"mesh_to_template_p90": 0.012, "coverage": 0.97, "absent_slots": ["arm_l", "arm_r"]}
    return {
        "category": "chair",
        "layout": "folder",
        "source": "/data/chairs",
        "stages": ["intake", "register"],
        "counts": {"accepted": 1, "repaired": 1, "rejected": 2},
        "meshes": [
            {"mesh_id": "a", "name": "a.obj", "file": "/data/chairs/a.obj", "status": "accepted", "reason": "",
             "repairs": [], "notes": [],
             "stages": {"intake": _stage("accepted", 0.5, faces_in=100, faces=100, vertices=52, two_sided=False),
                        "register": _stage("accepted", 2.0, orientation="as given", quality=quality)}},
            {"mesh_id": "b", "name": "b.glb", "file": "/data/chairs/b.glb", "status": "repaired", "reason": "",
             "repairs": ["decimated 5000 -> 4000 faces"], "notes": ["open surface: kept"],
             "stages": {"intake": _stage("repaired", 1.25, faces_in=5000, faces=4000, two_sided=True),
                        "register": _stage("repaired", 4.0, orientation="turned front/back", quality=quality)}},
            {"mesh_id": "c", "name": "c.obj", "file": "/data/chairs/c.obj", "status": "rejected",
             "reason": "empty: no faces (0 vertices)", "repairs": [], "notes": [],
             "stages": {"intake": _stage("rejected", 0.01, faces_in=0)}},
            {"mesh_id": "d", "name": "d.obj", "file": "/data/chairs/d.obj", "status": "rejected",
             "reason": "not finished: intake did not run (retried on the next run)", "repairs": [], "notes": [],
             "stages": {}},
        ],
    }  # fmt: skip


def test_intake_frame_holds_every_file_and_stage():
    intake = _intake()
    frame = intake_frame(intake)
    assert list(frame["mesh_id"]) == ["a", "b", "c", "d"] and frame.columns[-1] == "file"
    assert list(frame["status"]) == [e["status"] for e in intake["meshes"]]
    assert frame["status"].value_counts().to_dict() == {k: v for k, v in intake["counts"].items() if v}
    b = frame.set_index("mesh_id").loc["b"]
    assert (b["faces_in"], b["faces"], b["seconds"]) == (5000, 4000, 5.25)
    assert (b["intake"], b["intake_s"], b["register"], b["register_s"]) == ("repaired", 1.25, "repaired", 4.0)
    assert b["repairs"] == "decimated 5000 -> 4000 faces" and b["notes"] == "open surface: kept"
    assert b["orientation"] == "turned front/back" and b["coverage"] == 0.97 and b["absent_slots"] == "arm_l; arm_r"
    c, d = frame.iloc[2], frame.iloc[3]
    assert c["reason"] == "empty: no faces (0 vertices)" and pd.isna(c["faces"]) and pd.isna(c["register"])
    assert pd.isna(d["intake"]) and pd.isna(d["faces_in"]) and d["seconds"] == 0.0
    assert str(frame["faces_in"].dtype) == "Int64" and str(frame["two_sided"].dtype) == "boolean"
    assert frame.attrs == {"category": "chair", "source": "/data/chairs", "layout": "folder",
                           "stages": ["intake", "register"]}  # fmt: skip


def test_summary_is_printed_from_the_frame():
    intake = _intake()
    text = format_summary(intake, "all")
    assert text.splitlines()[:2] == [
        "chair meshes from /data/chairs (folder layout): 4 files, 1 accepted, 1 repaired, 2 rejected",
        "time per accepted mesh (all stages): median 3.88 s, max 5.25 s",
    ]
    rows = {line.split()[1]: line for line in text.splitlines()[3:]}
    assert list(rows) == ["a.obj", "b.glb", "c.obj", "d.obj"]
    assert " 5000->4000 " in rows["b.glb"] and rows["b.glb"].endswith(
        "decimated 5000 -> 4000 faces; open surface: kept"
    )
    assert rows["c.obj"].endswith("empty: no faces (0 vertices)") and " 0 " in rows["d.obj"]
    problems = format_summary(intake, "problems")
    assert "a.obj" not in problems and "b.glb" in problems and "d.obj" in problems
    assert format_summary(intake, "none") == "\n".join(text.splitlines()[:2])
    frame = intake_frame(intake)
    frame.loc[0, "status"] = "rejected"  # the printed numbers come from the frame given
    assert "0 accepted, 1 repaired, 3 rejected" in format_summary(intake, "none", frame)


@pytest.mark.parametrize("suffix", [".csv", ".json", ".md"])
def test_report_is_the_frame_in_each_format(tmp_path, suffix):
    frame = intake_frame(_intake())
    path = write_report(frame, tmp_path / "out" / f"intake{suffix}", title="datagen meshes report lib")
    text = path.read_text()
    if suffix == ".csv":
        back = pd.read_csv(path, keep_default_na=False, na_values=[""])
        assert list(back.columns) == list(frame.columns) and list(back["mesh_id"]) == ["a", "b", "c", "d"]
        assert list(back["faces"].astype("Int64")) == list(frame["faces"]) and back["seconds"].tolist() == [
            2.5, 5.25, 0.01, 0.0]  # fmt: skip
    elif suffix == ".json":
        rows = json.loads(text)
        assert [r["mesh_id"] for r in rows] == ["a", "b", "c", "d"] and set(rows[0]) == set(frame.columns)
        assert rows[1]["faces"] == 4000 and rows[2]["faces"] is None and rows[3]["intake"] is None
    else:
        assert text.startswith("# datagen meshes report lib\n\nchair meshes from /data/chairs (folder layout): 4 files")
        table = [line for line in text.splitlines() if line.startswith("| ")]
        assert table[0].split("|")[1].strip() == "mesh_id" and len(table) == 1 + len(frame)
    with pytest.raises(ValueError, match=r"\.md, \.csv, \.json"):
        write_report(frame, tmp_path / "intake.txt")
