"""``datagen meshes`` end to end: a ShapeNet-layout folder with an empty and an unreadable model (exit 0, both
reported by folder name), one-line errors with exit code 2, the report command, parallel workers agreeing with
one, and SIGKILL + re-run redoing nothing finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from meshes_files import box, sphere, textured_box, write_obj

from datagen.cli import main
from datagen.meshes.library import MeshLibrary

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["meshes", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _shapenet(root: Path) -> Path:
    syn = root / "03001627"
    m = box((0.5, 0.9, 0.5))
    write_obj(syn / "plain" / "models" / "model_normalized.obj", m.vertices, m.faces)
    textured = syn / "textured" / "models"
    textured.mkdir(parents=True)
    textured_box().export(textured / "model_normalized.obj")
    (syn / "empty" / "models").mkdir(parents=True)
    (syn / "empty" / "models" / "model_normalized.obj").write_text("")
    (syn / "bad" / "models").mkdir(parents=True)
    (syn / "bad" / "models" / "model_normalized.obj").write_bytes(os.urandom(2048) + b"\x00")
    return root


def test_shapenet_folder_with_an_empty_and_an_unreadable_model(tmp_path, capsys):
    src, lib = _shapenet(tmp_path / "ShapeNetCore.v2"), tmp_path / "lib"
    args = ["ingest", str(src), "--category", "chair", "--out", str(lib), "--stages", "intake", "--no-progress"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "4 chair files (shapenet layout, up +y, front -z)" in out
    assert "2 accepted, 0 repaired, 2 rejected" in out
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("rejected")}
    assert "unreadable: binary data, not a text OBJ file" in lines["03001627/bad"]
    assert "empty: no faces (0 vertices)" in lines["03001627/empty"]
    report = json.loads((lib / "intake.json").read_text())
    rows = {r["name"]: r for r in report["meshes"]}
    assert rows["03001627/empty"]["status"] == rows["03001627/bad"]["status"] == "rejected"
    assert rows["03001627/bad"]["file"].endswith("bad/models/model_normalized.obj")
    library = MeshLibrary(lib, stages=["intake"])
    assert library.ids == ["plain", "textured"] and library.category == "chair"
    tex = library.load("textured")
    assert tex.corner_uv is not None and any(m.texture is not None for m in tex.materials)
    plain = library.load("plain")
    assert plain.bbox_diagonal_m == pytest.approx(library.reference_size_m, rel=1e-9)
    np.testing.assert_allclose(plain.transform[:3, :3] / abs(plain.transform[0, 0]), np.diag([-1.0, 1.0, -1.0]))
    code, out, _ = run(capsys, "report", str(lib), "--all-rows")
    assert code == 0 and "03001627/plain" in out and "03001627/bad" in out
    code, printed, err = run(capsys, "report", str(lib), "--report", str(tmp_path / "r" / "intake.csv"))
    assert code == 0 and err == f"wrote {tmp_path / 'r' / 'intake.csv'}\n" and "2 rejected" in printed
    table = pd.read_csv(tmp_path / "r" / "intake.csv", keep_default_na=False, na_values=[""]).set_index("name")
    assert table["status"].to_dict() == {r["name"]: r["status"] for r in report["meshes"]}
    assert table.loc["03001627/bad", "reason"] == rows["03001627/bad"]["reason"]
    assert table.loc["03001627/plain", "faces_in"] == rows["03001627/plain"]["stages"]["intake"]["faces_in"]
    assert run(capsys, "report", str(lib), "--report", str(tmp_path / "intake.json"))[0] == 0
    assert [r["mesh_id"] for r in json.loads((tmp_path / "intake.json").read_text())] == [
        r["mesh_id"] for r in report["meshes"]]  # fmt: skip
    assert run(capsys, "report", str(lib), "--report", str(tmp_path / "intake.md"))[0] == 0
    assert (tmp_path / "intake.md").read_text().startswith(f"# datagen meshes report {lib}\n\nchair meshes from")
    code, out, err = run(capsys, "report", str(lib), "--report", str(tmp_path / "intake.xlsx"))
    assert code == 2 and out == "" and err.count("\n") == 1 and ".md, .csv, .json" in err
    assert not (tmp_path / "intake.xlsx").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--category", "sofa"], "unknown category 'sofa'; known categories: aeroplane"),
        (["--up", "+q"], "--up/--front: axis '+q': expected one of x, y, z"),
        (["--up", "+z", "--front", "-z"], "must be different axes"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--max-faces", "2"], "--max-faces must be at least 4, got 2"),
        (["--stages", "paint"], "--stages 'paint': unknown stage paint"),
    ],
)
def test_bad_arguments_are_one_line_with_exit_2(tmp_path, capsys, extra, message):
    m = box()
    write_obj(tmp_path / "src" / "a.obj", m.vertices, m.faces)
    args = ["ingest", str(tmp_path / "src"), "--category", "chair", "--out", str(tmp_path / "lib"), *extra]
    code, out, err = run(capsys, *args)
    assert code == 2 and err.startswith("datagen meshes ingest: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "lib").exists()


def test_missing_source_empty_folder_and_foreign_out(tmp_path, capsys):
    base = ["--category", "chair", "--out", str(tmp_path / "lib")]
    code, _, err = run(capsys, "ingest", str(tmp_path / "nowhere"), *base)
    assert code == 2 and f"{tmp_path / 'nowhere'}: no such folder or file" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "ingest", str(tmp_path / "empty"), *base)
    assert code == 2 and "no mesh files" in err
    m = box()
    write_obj(tmp_path / "src" / "a.obj", m.vertices, m.faces)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    code, _, err = run(capsys, "ingest", str(tmp_path / "src"), "--category", "chair", "--out", str(tmp_path / "mine"))
    assert code == 2 and "is not a mesh library" in err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
    code, _, err = run(capsys, "report", str(tmp_path / "mine"))
    assert code == 2 and "no intake.json" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "ingest", str(tmp_path / "src"), "--category", "chair", "--out", str(tmp_path / "afile"))
    assert code == 2 and "is a file, not a folder" in err


def test_csv_listing_with_axes_scale_and_negative_axis_options(tmp_path, capsys):
    m = box((40.0, 50.0, 90.0))  # centimetres, z up
    write_obj(tmp_path / "files" / "cm.obj", m.vertices, m.faces)
    write_obj(tmp_path / "files" / "other.obj", m.vertices, m.faces)
    (tmp_path / "list.csv").write_text(
        "path,category,up,front,scale\nfiles/cm.obj,chair,,,0.01\nfiles/other.obj,car,,,\n"
    )
    lib = tmp_path / "lib"
    args = ["ingest", str(tmp_path / "list.csv"), "--category", "chair", "--out", str(lib), "--stages", "intake"]
    args += ["--up", "+z"]
    code, out, err = run(capsys, *args, "--front", "-y", "--no-progress")
    assert code == 0, err
    assert "2 chair files (csv layout, up +z, front -y)" in out
    assert "other category: listed as 'car', this library is 'chair'" in out
    um = MeshLibrary(lib).load("cm")
    np.testing.assert_allclose(um.vertices.max(0) - um.vertices.min(0), [0.4, 0.9, 0.5])  # metric, y up


def test_nothing_accepted_exits_1(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "e.obj").write_text("")
    code, out, _ = run(capsys, "ingest", str(tmp_path / "src"), "--category", "chair", "--out", str(tmp_path / "l"))
    assert code == 1 and "0 accepted, 0 repaired, 1 rejected" in out


def _records(lib: Path) -> dict[str, dict]:
    out = {}
    for p in sorted((lib / "records").glob("*.json")):
        rec = json.loads(p.read_text())
        out[p.name] = {k: v for k, v in rec.items() if k not in ("seconds", "intake_seconds")}
    return out


def test_parallel_workers_make_the_same_library(tmp_path, capsys):
    src = tmp_path / "src"
    for i in range(4):
        m = sphere(2, radius=0.2 + 0.05 * i)
        write_obj(src / f"s{i}.obj", m.vertices, m.faces[: 300 + 5 * i])  # open bowls of different sizes
    args = ["--category", "bottle", "--stages", "intake", "--no-progress"]
    assert run(capsys, "ingest", str(src), "--out", str(tmp_path / "one"), "--workers", "1", *args)[0] == 0
    assert run(capsys, "ingest", str(src), "--out", str(tmp_path / "two"), "--workers", "2", *args)[0] == 0
    assert _records(tmp_path / "one") == _records(tmp_path / "two")
    for mesh_id in MeshLibrary(tmp_path / "one", stages=["intake"]).ids:
        a = (tmp_path / "one" / "meshes" / f"{mesh_id}.npz").read_bytes()
        assert a == (tmp_path / "two" / "meshes" / f"{mesh_id}.npz").read_bytes()


def test_sigkill_then_rerun_redoes_nothing_finished(tmp_path, capsys):
    src, lib = tmp_path / "src", tmp_path / "lib"
    for i in range(12):
        m = sphere(4, radius=0.3 + 0.01 * i)  # 5,120 faces each: ~0.05 s per mesh, the kill lands mid-run
        write_obj(src / f"m{i:02d}.obj", m.vertices, m.faces)
    args = [
        "meshes",
        "ingest",
        str(src),
        "--category",
        "bottle",
        "--out",
        str(lib),
        "--workers",
        "1",
        "--stages",
        "intake",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datagen", *args, "--no-progress"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def finished() -> list[Path]:
        folder = lib / "records"
        return sorted(p for p in folder.glob("*.intake.json") if not p.name.startswith(".")) if folder.is_dir() else []

    deadline = time.monotonic() + 120
    while not finished():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no mesh finished in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = finished()
    assert 1 <= len(done) < 12
    assert not (lib / "intake.json").exists()  # the report is written at the end only
    meshes = [lib / "meshes" / f"{p.name.split('.')[0]}.npz" for p in done]
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in [*done, *meshes]}
    code, out, err = run(capsys, *args[1:], "--no-progress")
    assert code == 0, err
    assert f"this run: {12 - len(done)} meshes" in out and f"kept {len(done)} from before" in out
    for p, stamp in stamps.items():
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, f"{p.name} was redone"
    assert MeshLibrary(lib, stages=["intake"]).ids == [f"m{i:02d}" for i in range(12)]
    assert not list(lib.rglob(".tmp-*"))
    code, out, _ = run(capsys, *args[1:], "--no-progress")
    assert code == 0 and "nothing to do; all 12 files were finished before" in out
