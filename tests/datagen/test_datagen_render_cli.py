"""``datagen render`` end to end with the real generator at tiny sizes: output as users see it, determinism
across worker counts and split runs, SIGKILL + ``--resume``, and the error cases (clear message, exit code 2,
nothing already written touched)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import webdataset as wds

from datagen.cli import main
from datagen.verify import verify_dataset
from loaders.dataset_manifest import DatasetManifest, shard_name
from loaders.members import decode_sample

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--category", "chair", "--n", "6", "--size", "32", "--shard-size", "2", "--no-progress"]

pytestmark = pytest.mark.integration


def published(root: Path) -> dict[str, str]:
    """sha256 of the dataset's visible files (shards + manifest) by name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


def everything(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def render(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted single-process run of ARGS."""
    root = tmp_path_factory.mktemp("cli") / "ref"
    assert main(["render", *ARGS, "--out", str(root), "--workers", "1"]) == 0
    return root


def test_render_output_as_a_user_sees_it(reference, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = render(capsys, *ARGS, "--workers", "1")  # no --out: data/<category> under the cwd
    assert code == 0, err
    root = tmp_path / "data" / "chair"
    lines = out.splitlines()
    assert lines[1].strip() == f"output: {root}"  # the absolute path, at the start ...
    assert lines[-1].startswith(f"dataset: {root}  (complete: 3/3 shards, 6 pairs")  # ... and at the end
    assert "made 3 shards (6 pairs" in out and "pairs/s" in out and "time per stage" in out
    assert published(root) == published(reference)
    manifest = DatasetManifest.load(root)
    assert manifest.complete and manifest.n_samples == 6 and manifest.verify_files(root) == []
    raw = list(wds.WebDataset(str(root / shard_name(1)), shardshuffle=False))
    assert [r["__key__"] for r in raw] == ["s000001_00000", "s000001_00001"]
    sample = decode_sample(raw[0])
    assert sample["image0"].shape == (32, 32, 3) and sample["meta"]["category"] == "chair"
    listing = subprocess.run(["tar", "-tf", str(root / shard_name(2))], capture_output=True, text=True, check=True)
    assert "s000002_00001.pair.json" in listing.stdout.split()
    report = verify_dataset(root, samples=2, progress=False)
    assert not any(s.file_problems or s.read_problems for s in report.shards)


def test_two_workers_and_split_runs_give_the_same_dataset(reference, tmp_path, capsys):
    assert render(capsys, *ARGS, "--out", str(tmp_path / "w2"), "--workers", "2")[0] == 0
    assert published(tmp_path / "w2") == published(reference)
    split = tmp_path / "split"
    assert render(capsys, *ARGS, "--out", str(split), "--shards", "1:3", "--workers", "1")[0] == 0
    code, out, _ = render(capsys, *ARGS, "--out", str(split), "--shards", "0:1", "--workers", "1")
    assert code == 0 and "complete: 3/3 shards" in out
    assert published(split) == published(reference)


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    args = [*ARGS[:3], "12", *ARGS[4:], "--workers", "1"]  # 6 shards: the kill lands mid-run even on a busy box
    root = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "datagen", "render", *args, "--out", str(root)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    receipt = root / ".datagen" / "receipts" / "pairs-000000.json"
    deadline = time.monotonic() + 120
    while not receipt.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no shard landed in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    landed = len(list((root / ".datagen" / "receipts").glob("*.json")))
    assert 1 <= landed < 6 and not DatasetManifest.load(root).complete
    code, _, err = render(capsys, *args, "--out", str(root))
    assert code == 2 and "pass --resume" in err
    code, out, err = render(capsys, *args, "--out", str(root), "--resume")
    assert code == 0, err
    assert f"kept {landed} complete shards" in out and "complete: 6/6 shards" in out
    assert not list((root / ".datagen" / "tmp").iterdir())
    assert render(capsys, *args, "--out", str(tmp_path / "whole"))[0] == 0
    assert published(root) == published(tmp_path / "whole")


def _refused(capsys, args: list[str], message: str) -> None:
    code, out, err = render(capsys, *args)
    assert code == 2, (out, err)
    assert err.startswith("datagen render: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_errors_are_one_clear_line_and_touch_nothing(reference, tmp_path, capsys, monkeypatch):
    before = everything(reference)
    _refused(
        capsys, ["--category", "sofa", "--out", str(tmp_path / "x")], "unknown category 'sofa'; known categories: "
    )
    _refused(capsys, ["--category", "chair", "--n", "0", "--out", str(tmp_path / "x")], "--n must be a positive")
    _refused(capsys, ["--category", "chair", "--n", "-5", "--out", str(tmp_path / "x")], "--n must be a positive")
    _refused(
        capsys, [*ARGS, "--out", str(reference), "--shards", "3:5"], "selects no shard; this dataset has shards 0..2"
    )
    _refused(capsys, [*ARGS, "--out", str(reference)], "already holds 3 of the 3 requested shards")
    other = [*ARGS[:3], "8", *ARGS[4:], "--out", str(reference)]  # --n 8 instead of 6
    for extra in ([], ["--resume"]):
        _refused(capsys, other + extra, "holds a different dataset (n_pairs 6 there vs 8 here)")
    _refused(capsys, [*ARGS, "--out", str(reference), "--seed", "1"], "holds a different dataset (seed 0 there vs 1")
    assert everything(reference) == before
    assert not (tmp_path / "x").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    _refused(capsys, [*ARGS, "--out", str(mine)], "is not empty and holds no dataset.json (found thesis.tex)")
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]

    from datagen import render as render_pkg
    from datagen.render import GLUnavailable

    def no_gl(backend):
        raise GLUnavailable("no usable OpenGL backend: EGL failed (x); install Mesa's EGL ... or use --backend embree")

    monkeypatch.setattr(render_pkg, "get_renderer", no_gl)
    _refused(capsys, [*ARGS, "--out", str(tmp_path / "y")], "no usable OpenGL backend: EGL failed (x); install")
    assert not (tmp_path / "y").exists()


def test_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write to a 0o555 folder (root)")
        _refused(capsys, [*ARGS, "--out", str(ro / "chair")], "cannot be created")
        _refused(capsys, [*ARGS, "--out", str(ro)], "is not writable")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_shards_argument_forms():
    from datagen.commands.render import UsageError, parse_shards

    assert parse_shards(None, 5) == range(5)
    assert parse_shards("1:3", 5) == range(1, 3)
    assert parse_shards("2:", 5) == range(2, 5)
    assert parse_shards(":2", 5) == range(0, 2)
    assert parse_shards("4", 5) == range(4, 5)
    assert parse_shards("4:8", 5) == range(4, 5)  # clamped like a slice: a fixed-size array's last task
    for bad in ("3:3", "5:6", "a:b", "-1:2", "1:2:3"):
        with pytest.raises(UsageError, match="--shards"):
            parse_shards(bad, 5)


def test_manifest_is_plain_json_for_readers(reference):
    manifest = json.loads((reference / "dataset.json").read_text())
    assert manifest["complete"] is True and manifest["n_samples"] == 6
    assert [s["name"] for s in manifest["shards"]] == [shard_name(i) for i in range(3)]
    assert oct((reference / "dataset.json").stat().st_mode & 0o044) == oct(0o044)  # others can read it


def test_slurm_array_tasks_running_at_once_make_the_dataset(reference, tmp_path):
    """Three array tasks of two shards each, started together into one folder; the last is past the end."""
    root = tmp_path / "slurm"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "DATAGEN": f"{sys.executable} -m datagen",
        "SHARDS_PER_TASK": "2",
        "SLURM_CPUS_PER_TASK": "1",
    }
    cmd = ["bash", str(REPO / "scripts" / "slurm_render.sh"), *ARGS, "--out", str(root)]
    tasks = [
        subprocess.Popen(cmd, cwd=tmp_path, env={**env, "SLURM_ARRAY_TASK_ID": str(k)}, stdout=subprocess.PIPE)
        for k in range(3)
    ]
    outs = [t.communicate(timeout=300)[0].decode() for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0, 0], outs
    assert "shards 0..1 of 3" in outs[0] and "shards 2..2 of 3" in outs[1] and "nothing to do" in outs[2]
    assert published(root) == published(reference)


def test_ray_missing_is_one_line_and_touches_nothing(tmp_path, capsys, monkeypatch):
    """Without ray, ``--ray`` and ``scripts/ray_render.py`` refuse before any work, saying how to install it. (Real
    Ray runs are in tests/datagen/test_ray.py, marked ``ray``.)"""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ModuleNotFoundError, as when not installed
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import ray_render
    finally:
        sys.path.remove(str(REPO / "scripts"))
    hint = "ray is not installed; install it with: EXTRAS=cluster bash scripts/setup.sh"
    assert ray_render.main([*ARGS, "--out", str(tmp_path / "script")]) == 2
    assert hint in capsys.readouterr().err
    code, out, err = render(capsys, *ARGS, "--out", str(tmp_path / "cli"), "--ray")
    assert code == 2 and out == "" and err.startswith("datagen render: error: " + hint) and err.count("\n") == 1
    assert not (tmp_path / "script").exists() and not (tmp_path / "cli").exists()


def _view_direction(T_cam_from_world) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of the direction from the look-at target to the camera (OpenCV camera:
    the optical axis in world coordinates is the third row of the rotation)."""
    import numpy as np

    d = -np.asarray(T_cam_from_world, np.float64)[2, :3]
    return float(np.degrees(np.arctan2(d[0], d[2]))), float(np.degrees(np.arcsin(np.clip(d[1], -1, 1))))


def test_viewpoint_gap_options(tmp_path, capsys):
    root = tmp_path / "narrow"
    args = ["--category", "chair", "--n", "12", "--size", "32", "--shard-size", "12", "--no-progress", "--workers", "1"]
    # the gap bounds where the cameras stand; a truncated view also turns its optical axis (from which the gap is
    # measured here) off the object, so truncation is off
    args += ["--truncation", "0"]
    code, out, err = render(capsys, *args, "--out", str(root), "--max-azimuth-gap", "20", "--max-elevation-gap", "8")
    assert code == 0, err
    cam = json.loads((root / "dataset.json").read_text())["generator"]["config"]["camera"]
    assert cam["max_pair_azimuth_gap_deg"] == 20.0 and cam["max_pair_elevation_gap_deg"] == 8.0
    gaps = []
    for raw in wds.WebDataset(str(root / shard_name(0)), shardshuffle=False):
        s = decode_sample(raw)
        (az0, el0), (az1, el1) = _view_direction(s["T_cam0_from_world"]), _view_direction(s["T_cam1_from_world"])
        gaps.append((abs((az0 - az1 + 180.0) % 360.0 - 180.0), abs(el0 - el1)))
    assert len(gaps) == 12
    assert all(az <= 20.0 + 1e-3 and el <= 8.0 + 1e-3 for az, el in gaps), gaps
    _refused(capsys, [*args, "--out", str(tmp_path / "bad"), "--max-azimuth-gap", "-5"], "azimuth gap must be within")
    _refused(capsys, [*args, "--out", str(tmp_path / "bad"), "--max-elevation-gap", "400"], "elevation gap must be")
    assert not (tmp_path / "bad").exists()


def test_family_camera_defaults_go_into_the_recorded_config():
    import argparse

    from datagen.commands.render import _build_config

    def config(category: str, **extra):
        ns = {"n": 4, "size": 32, "shard_size": 2, "seed": 0, "backend": "pyrender", "workers": 1}
        ns.update(same_instance_fraction=0.0, max_azimuth_gap=None, max_elevation_gap=None)
        ns.update(extra)
        return _build_config(argparse.Namespace(category=category, **ns))

    assert config("table").camera.elevation_deg == (15.0, 50.0)  # no near edge-on table tops
    assert config("chair").camera.elevation_deg == (-5.0, 45.0)
    assert config("table", max_azimuth_gap=30.0).camera.max_pair_azimuth_gap_deg == 30.0
