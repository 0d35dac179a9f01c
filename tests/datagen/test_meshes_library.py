"""Discovery of collections (ShapeNet layout, folders, CSV), the library on disk (save/load round trip, records,
MeshLibrary) and the stage driver in-process (stage hook, rejection by a later stage, errors retried, resume,
changed sources, refused option changes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from meshes_files import box, checker, sphere, textured_box, write_obj

from datagen.meshes.discover import DiscoveryError, discover
from datagen.meshes.ingest import ingest, ingest_collection, library_options
from datagen.meshes.intake import IntakeOptions, intake_file
from datagen.meshes.library import LibraryError, MeshLibrary, load_mesh, save_mesh
from datagen.meshes.normalize import reference_size
from datagen.meshes.stages import STAGES, Stage, intake_stage, select_stages

INTAKE = [Stage("intake", intake_stage)]  # these tests are the intake's; later stages have their own

# ---- discovery ----------------------------------------------------------------------------------------------


def _shapenet(root: Path, good=("m1", "m2")) -> Path:
    for name in good:
        m = box()
        write_obj(root / "03001627" / name / "models" / "model_normalized.obj", m.vertices, m.faces)
    (root / "03001627" / "texonly" / "models").mkdir(parents=True)
    (root / "03001627" / "texonly" / "models" / "model_normalized.json").write_text("{}")
    return root


def test_discover_shapenet_layout_ids_are_model_folders(tmp_path):
    c = discover(_shapenet(tmp_path), "chair")
    assert c.layout == "shapenet" and (c.default_up, c.default_front) == ("+y", "-z")
    assert [s.mesh_id for s in c.sources] == ["m1", "m2", "texonly"]
    assert [s.name for s in c.sources] == ["03001627/m1", "03001627/m2", "03001627/texonly"]
    assert c.sources[2].error == "missing: no models/model_normalized.obj in the model folder"
    # a synset folder itself works too
    assert [s.mesh_id for s in discover(tmp_path / "03001627", "chair").sources] == ["m1", "m2", "texonly"]


def test_discover_folder_dedupes_stems_deterministically(tmp_path):
    for rel in ("chair.obj", "chair.glb", "sub/chair.obj", "b c.ply", ".hidden/x.obj", "notes.txt", "t.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    c = discover(tmp_path, "chair")
    assert c.layout == "folder" and (c.default_up, c.default_front) == ("+y", "+z")
    got = {s.name: s.mesh_id for s in c.sources}
    assert got == {"b c.ply": "b_c", "chair.glb": "chair_glb", "chair.obj": "chair_obj", "sub/chair.obj": "chair_obj_2"}


def test_discover_csv_rows_with_reasons(tmp_path):
    m = box()
    write_obj(tmp_path / "meshes" / "a.obj", m.vertices, m.faces)
    write_obj(tmp_path / "meshes" / "b.obj", m.vertices, m.faces)
    (tmp_path / "list.csv").write_text(
        "path,category,up,front,scale\n"
        "meshes/a.obj,chair,+z,-y,0.01\n"
        "meshes/b.obj,table,,,\n"
        "meshes/none.obj,chair,,,\n"
        "meshes/a.obj,,+y,+y,\n"
        "meshes/b.obj,chair,,,-3\n"
    )
    c = discover(tmp_path / "list.csv", "chair")
    assert c.layout == "csv"
    a, b, none, same_axes, bad_scale = c.sources
    assert (a.up, a.front, a.scale, a.error) == ("+z", "-y", 0.01, "")
    assert b.error == "other category: listed as 'table', this library is 'chair'"
    assert none.error == "missing: meshes/none.obj does not exist"
    assert same_axes.error.startswith("malformed row: up '+y' and front '+y' must be different axes")
    assert bad_scale.error.startswith("malformed row: scale '-3'")
    assert len({s.mesh_id for s in c.sources}) == 5
    # without a header: the documented column order
    (tmp_path / "plain.csv").write_text("meshes/a.obj,chair\n")
    assert discover(tmp_path / "plain.csv", "chair").sources[0].error == ""


def test_discover_errors(tmp_path):
    with pytest.raises(DiscoveryError, match="no such folder or file"):
        discover(tmp_path / "nope", "chair")
    with pytest.raises(DiscoveryError, match="no mesh files"):
        discover(tmp_path, "chair")
    (tmp_path / "y.csv").write_text("path,colour\n")
    with pytest.raises(DiscoveryError, match=r"unknown columns \['colour'\]"):
        discover(tmp_path / "y.csv", "chair")


# ---- the library --------------------------------------------------------------------------------------------


def test_save_load_round_trip_keeps_everything(tmp_path):
    mesh = textured_box()
    mesh.export(tmp_path / "t.obj")
    (tmp_path / "t.labels.txt").write_text("\n".join(["a"] * 6 + ["b"] * 6) + "\n")
    um = intake_file(tmp_path / "t.obj", "t", IntakeOptions(target_diagonal_m=1.0)).mesh
    files = save_mesh(tmp_path / "lib", um)
    assert [f.name for f in files] == ["t.tex0.png", "t.npz"]
    back = load_mesh(tmp_path / "lib", "t")
    for name in ("vertices", "faces", "face_material", "corner_uv", "face_part", "transform"):
        np.testing.assert_array_equal(getattr(back, name), getattr(um, name))
    assert back.part_names == ["a", "b"] and back.notes == um.notes and back.two_sided == um.two_sided
    assert [m.name for m in back.materials] == [m.name for m in um.materials]
    np.testing.assert_array_equal(back.materials[0].texture, checker())
    assert not list((tmp_path / "lib" / "meshes").glob(".tmp-*"))


def _collection(root: Path, n: int = 3):
    for i in range(n):
        m = sphere(2, radius=0.3 + 0.1 * i)
        write_obj(root / f"s{i}.obj", m.vertices, m.faces)
    (root / "empty.obj").write_text("")
    return discover(root, "bottle")


def _options(collection, **kw):
    base = {"up": None, "front": None, "max_faces": 100_000, "parts": "auto", "max_texture_side": 2048}
    return library_options("bottle", collection, **{**base, "reference_size_m": 0.3, **kw})


CALLS: list[str] = []


def count_stage(lib_dir, mesh_id, category, options):
    """A later stage: reads the mesh the intake saved, rejects the largest one, records its face count."""
    CALLS.append(mesh_id)
    mesh = load_mesh(lib_dir, mesh_id)
    if mesh_id == "s2":
        return {"status": "rejected", "reason": "quality: too round"}
    (Path(lib_dir) / "count").mkdir(exist_ok=True)
    (Path(lib_dir) / "count" / f"{mesh_id}.txt").write_text(str(mesh.n_faces))
    return {"status": "accepted", "faces_seen": mesh.n_faces, "category_seen": category}


def broken_stage(lib_dir, mesh_id, category, options):
    raise RuntimeError("out of coffee")


def test_ingest_with_an_added_stage_resumes_and_reports(tmp_path):
    c = _collection(tmp_path / "src")
    lib = tmp_path / "lib"
    stages = [*INTAKE, Stage("count", count_stage)]
    CALLS.clear()
    report = ingest(c, lib, _options(c), workers=1, progress=False, stages=stages)
    assert sorted(CALLS) == ["s0", "s1", "s2"]  # not the rejected empty.obj
    rows = {e["mesh_id"]: e for e in report.entries}
    assert rows["empty"]["status"] == "rejected" and rows["empty"]["reason"].startswith("empty: no faces")
    assert rows["s2"]["status"] == "rejected" and rows["s2"]["reason"] == "quality: too round"
    assert rows["s0"]["status"] == "accepted" and rows["s0"]["stages"]["count"]["faces_seen"] == 320
    assert rows["s0"]["stages"]["count"]["category_seen"] == "bottle"
    intake_json = json.loads((lib / "intake.json").read_text())
    assert intake_json["counts"] == {"accepted": 2, "repaired": 0, "rejected": 2}
    assert intake_json["stages"] == ["intake", "count"]
    lib_view = MeshLibrary(lib, stages=["intake", "count"])
    assert lib_view.ids == ["s0", "s1"] and lib_view.category == "bottle"
    assert MeshLibrary(lib, stages=["intake"]).ids == ["s0", "s1", "s2"]
    assert lib_view.load("s1").n_faces == 320
    assert lib_view.records["s2"]["count"]["status"] == "rejected"
    # a re-run does nothing; a new stage runs only itself
    CALLS.clear()
    again = ingest(c, lib, _options(c), workers=1, progress=False, stages=stages)
    assert CALLS == [] and again.done_now == [] and sorted(again.kept) == ["empty", "s0", "s1", "s2"]


def test_stage_errors_are_reported_not_recorded_and_retried(tmp_path):
    c = _collection(tmp_path / "src", n=1)
    lib = tmp_path / "lib"
    report = ingest(c, lib, _options(c), workers=1, progress=False, stages=[*INTAKE, Stage("broken", broken_stage)])
    row = {e["mesh_id"]: e for e in report.entries}["s0"]
    assert report.failed == ["s0"] and row["status"] == "rejected"
    assert row["reason"] == "not finished: broken: RuntimeError: out of coffee (retried on the next run)"
    assert not (lib / "records" / "s0.broken.json").exists() and (lib / "records" / "s0.intake.json").exists()
    CALLS.clear()
    ingest(c, lib, _options(c), workers=1, progress=False, stages=[*INTAKE, Stage("count", count_stage)])
    assert CALLS == ["s0"]  # the intake is kept, the missing stage runs


def test_changed_source_is_redone_and_other_options_refused(tmp_path):
    c = _collection(tmp_path / "src", n=2)
    lib = tmp_path / "lib"
    ingest(c, lib, _options(c), workers=1, progress=False, stages=INTAKE)
    before = {p.name: p.stat().st_mtime_ns for p in (lib / "records").iterdir()}
    m = box()
    write_obj(tmp_path / "src" / "s1.obj", m.vertices, m.faces)  # another file under the same name
    report = ingest(discover(tmp_path / "src", "bottle"), lib, _options(c), workers=1, progress=False, stages=INTAKE)
    assert report.done_now == ["s1"]
    assert (lib / "records" / "s0.intake.json").stat().st_mtime_ns == before["s0.intake.json"]
    assert MeshLibrary(lib).load("s1").n_faces == 12
    with pytest.raises(LibraryError, match="max_faces 100000 \\(now 500\\)"):
        ingest(c, lib, _options(c, max_faces=500), workers=1, progress=False, stages=INTAKE)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(LibraryError, match="is not a mesh library"):
        ingest(c, other, _options(c), workers=1, progress=False, stages=INTAKE)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(LibraryError, match="not a mesh library"):
        MeshLibrary(other)


def test_ingest_collection_in_one_call(tmp_path):
    _collection(tmp_path / "src", n=2)
    lib = tmp_path / "lib"
    report = ingest_collection(tmp_path / "src", lib, "bottle", max_faces=100, workers=1, progress=False, stages=INTAKE)
    assert report.count("repaired") == 2 and report.count("rejected") == 1  # decimated spheres, the empty file
    library = MeshLibrary(lib, stages=["intake"])
    assert library.ids == ["s0", "s1"] and library.info["max_faces"] == 100
    assert library.reference_size_m == pytest.approx(reference_size("bottle"))
    assert library.load("s0").n_faces <= 100
    with pytest.raises(ValueError, match="max_faces must be at least 4"):
        ingest_collection(tmp_path / "src", tmp_path / "lib", "bottle", max_faces=3)


def test_leftover_temporaries_are_cleared(tmp_path):
    c = _collection(tmp_path / "src", n=1)
    lib = tmp_path / "lib"
    ingest(c, lib, _options(c), workers=1, progress=False, stages=INTAKE)
    junk = lib / "meshes" / f".tmp-{os.getpid()}-s0.npz"
    junk.write_bytes(b"half")
    ingest(c, lib, _options(c), workers=1, progress=False, stages=INTAKE)
    assert not junk.exists()


def test_select_stages_takes_a_leading_part():
    assert select_stages(None) == STAGES
    assert [s.name for s in select_stages("intake")] == ["intake"]
    with pytest.raises(ValueError, match="unknown stage paint"):
        select_stages("intake,paint")
    if len(STAGES) > 1:
        with pytest.raises(ValueError, match="stages run in order"):
            select_stages(STAGES[1].name)
