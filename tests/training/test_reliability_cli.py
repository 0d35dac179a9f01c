"""Every error a user can cause in the CLIs is one line naming the bad thing, with exit status 2 (issue 19's list:
a truncated checkpoint, a zero-size target box, an output folder that cannot be created, a dataset folder given to
``python -m loaders stats``, overrides after an option, a PyOpenGL that pip put back, SPair files that disagree)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_real_formats import SPAIR_PAIRS, write_spair

from datagen.real import DatasetFormatError, read_pairs
from training.cli import main as semmatch

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TQDM_DISABLE"] = "1"
    return env


def _one_line(stderr: str, prefix: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from training.model.config import VGGTConfig
    from training.model.io import save_matcher
    from training.model.matcher import MatcherConfig, SemanticMatcher

    root = tmp_path_factory.mktemp("ckpt")
    return save_matcher(SemanticMatcher(MatcherConfig(vggt=VGGTConfig.tiny(), split_index=1)), root / "ckpt")


@pytest.mark.parametrize(
    ("name", "keep"), [("model.safetensors", 5), ("model.safetensors", 4000), ("model_config.json", 9)]
)
def test_eval_names_a_truncated_checkpoint_file(checkpoint, tmp_path, capsys, name, keep):
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    data = (ckpt / name).read_bytes()
    (ckpt / name).write_bytes(data[:keep])
    spair = write_spair(tmp_path / "SPair-71k")
    rc = semmatch(["eval", "--checkpoint", str(ckpt), "--dataset", "spair", "--root", str(spair), "--out",
                   str(tmp_path / "e")])  # fmt: skip
    assert rc == 2
    line = _one_line(capsys.readouterr().err, f"semmatch eval: {ckpt / name}: not a readable matcher checkpoint")
    assert not (tmp_path / "e").exists(), line  # nothing written


def _zero_box(spair: Path) -> Path:
    """Give the first test pair's target box zero width; returns that pair file."""
    path = sorted((spair / "PairAnnotation" / "test").glob("*.json"))[0]
    data = json.loads(path.read_text())
    x1, y1, _, y2 = data["trg_bndbox"]
    data["trg_bndbox"] = [x1, y1, x1, y2]
    path.write_text(json.dumps(data))
    return path


def test_zero_size_target_box_is_named_before_any_evaluation(tmp_path, capsys):
    spair = write_spair(tmp_path / "SPair-71k")
    bad = _zero_box(spair)
    rc = semmatch(["eval", "--checkpoint", "identity", "--dataset", "spair", "--root", str(spair), "--out",
                   str(tmp_path / "e")])  # fmt: skip
    assert rc == 2
    line = _one_line(capsys.readouterr().err, f"semmatch eval: {bad}: trg_bndbox must be")
    assert "x1 < x2" in line
    # the same folder cannot become training shards with a silently dropped box either
    from datagen.cli import main as datagen

    assert datagen(["real", "--dataset", "spair", "--root", str(spair), "--split", "test", "--out",
                    str(tmp_path / "shards"), "--no-progress"]) == 2  # fmt: skip
    assert str(bad) in capsys.readouterr().err


def test_a_pair_without_a_usable_threshold_is_named(tmp_path):
    """Pairs built around the readers (a zero box, or no box for the bbox threshold) name the pair, not only the
    arithmetic."""
    import dataclasses

    from training.baselines.identity import IdentityMatcher
    from training.eval.benchmark import evaluate_pairs

    pair = read_pairs("spair", write_spair(tmp_path / "SPair-71k"), "test")[0]
    for box in (np.array([5.0, 5.0, 5.0, 5.0]), None):
        odd = dataclasses.replace(pair, bboxes=(pair.bboxes[0], box))
        with pytest.raises(DatasetFormatError, match=rf"pair {pair.pair_id} \({pair.category}\)"):
            evaluate_pairs(IdentityMatcher(), [odd], "bbox", size=56, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["/proc/semmatch-x", "/sys/semmatch-x"])
def test_render_into_a_folder_that_cannot_exist_is_one_line(where):
    if not Path(where).parent.is_dir():
        pytest.skip(f"no {Path(where).parent} here")
    cmd = [sys.executable, "-m", "datagen", "render", "--category", "chair", "--n", "2", "--size", "56", "--out",
           where, "--no-progress", "--workers", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    _one_line(proc.stderr, f"datagen render: error: {where}: ")
    assert not Path(where).exists()


def test_loaders_stats_takes_a_folder_shards_or_a_manifest(tmp_path, capsys):
    from loaders_samples import write_dataset

    from loaders.cli import main as loaders

    ds = write_dataset(tmp_path / "ds", [3, 2])
    run = ["stats", "--decode", "0", "-k", "20"]
    shards = [str(ds / "pairs-000000.tar"), str(ds / "pairs-000001.tar")]
    for data, name in (([str(ds)], "ds"), (shards, "shards"), ([str(ds / "dataset.json")], "ds")):
        assert loaders(run + data) == 0
        out = capsys.readouterr().out
        assert "mixture drawn over 20 samples" in out and f"\n| {name:<6} | {ds} |" in out, out
    (tmp_path / "empty").mkdir()
    assert loaders(run + [str(tmp_path / "empty")]) == 2
    _one_line(capsys.readouterr().err, f"error: {tmp_path / 'empty'}: a shard folder needs a dataset.json")


def test_train_takes_overrides_after_options(tmp_path, capsys):
    import yaml
    from tiny_manifest import tiny_model_and_data

    stage = {
        "name": "a",
        "steps": 1,
        "lr": 1e-3,
        "resolution": [28, 28],
        "data": {"syn": 1},
        "losses": {"dense_epe": {}},
    }
    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump({"name": "x", **tiny_model_and_data(), "stages": [stage]}))
    out = tmp_path / "run"
    rc = semmatch(["train", str(manifest), "--no-progress", "--check", f"out_dir={out}", "cpu_threads=1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"out_dir: {out}" in text and "cpu_threads: 1" in text
    with pytest.raises(SystemExit) as e:  # anything else left over is still refused
        semmatch(["train", str(manifest), "--check", "--bogus"])
    assert e.value.code == 2


def test_render_refuses_a_pyopengl_that_pip_put_back(monkeypatch, capsys, tmp_path):
    import datagen.glcheck as glcheck
    from datagen.cli import main as datagen

    monkeypatch.setattr(glcheck, "version", lambda name: "3.1.0")
    problem = glcheck.pyopengl_problem()
    assert problem is not None and "PyOpenGL 3.1.0" in problem and glcheck.fix_command() in problem
    rc = datagen(["render", "--category", "chair", "--n", "2", "--size", "56", "--out", str(tmp_path / "d")])
    assert rc == 2
    _one_line(capsys.readouterr().err, "datagen render: error: PyOpenGL 3.1.0 is installed")
    assert not (tmp_path / "d").exists()  # refused before any work
    monkeypatch.setattr(glcheck, "version", lambda name: "3.1.10")
    assert glcheck.pyopengl_problem() is None


def test_spair_pair_keypoints_must_agree_with_the_image_annotations(tmp_path):
    spair = write_spair(tmp_path / "SPair-71k")
    path = sorted((spair / "PairAnnotation" / "test").glob("*.json"))[0]
    data = json.loads(path.read_text())
    data["src_kps"][0] = [data["src_kps"][0][0] + 7, data["src_kps"][0][1]]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=rf"{path}: src_kps puts keypoint {data['kps_ids'][0]} at"):
        read_pairs("spair", spair, "test")


def test_spair_layout_lists_must_match_the_pair_files(tmp_path):
    spair = write_spair(tmp_path / "SPair-71k")
    stems = sorted(p.stem for p in (spair / "PairAnnotation" / "test").glob("*.json"))
    layout = spair / "Layout" / "large" / "test.txt"
    layout.parent.mkdir(parents=True)
    layout.write_text("\n".join(stems) + "\n")
    assert len(read_pairs("spair", spair, "test")) == len(SPAIR_PAIRS["test"])  # agreeing lists read as before
    layout.write_text("\n".join(stems[1:]) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"{layout}: does not list 1 pair file"):
        read_pairs("spair", spair, "test")
    layout.write_text("\n".join([*stems, "999999-x-y:car"]) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"{layout}: lists 1 pair\(s\) with no file"):
        read_pairs("spair", spair, "test")
