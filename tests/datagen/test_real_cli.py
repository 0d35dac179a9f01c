"""``datagen real`` end to end on small benchmark folders: plain, augmented and warp shards; errors; resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_real_formats import write_ap10k, write_spair

from datagen import invariants
from datagen.cli import main
from loaders.dataset_manifest import DatasetManifest
from training.eval.synthetic import iter_shard_samples

pytestmark = pytest.mark.integration


def _run(*args) -> int:
    return main(["real", *map(str, args), "--no-progress"])


def test_plain_and_augmented_pairs(tmp_path, capsys):
    root = write_spair(tmp_path / "SPair-71k")
    out = tmp_path / "out"
    assert _run("--dataset", "spair", "--root", root, "--split", "trn", "--out", out, "--augment", 2,
                "--size", 64, "--shard-size", 4) == 0  # fmt: skip
    manifest = DatasetManifest.load(out)
    assert manifest.complete and manifest.n_samples == 2 * 3 and manifest.n_shards == 2
    assert manifest.verify_files(out) == []
    samples = list(iter_shard_samples(out))
    assert [s["__key__"] for s in samples[:2]] == ["s000000_00000", "s000000_00001"]
    for s in samples:
        meta = s["meta"]
        assert meta["source"] == "spair" and "status_0to1" not in s
        assert s["kps0"].shape == (len(meta["keypoint_names"]), 2) and s["mask0"].shape == s["image0"].shape[:2]
        assert meta["flip_perm"] is not None and meta["bbox1"] is not None
        if meta["copy"] == 0:
            assert max(s["image0"].shape[:2]) == 64 and "augment" not in meta
        else:
            assert s["image0"].shape == (64, 64, 3) and "augment" in meta
        for v in (0, 1):  # visible keypoints are inside the frame
            k = s[f"kps{v}"][s[f"kps{v}_vis"]]
            h, w = s[f"image{v}"].shape[:2]
            assert ((k >= -0.5) & (k < [w - 0.5, h - 0.5])).all()
    assert "made 2 shards" in capsys.readouterr().out
    # same command, same bytes: shards are pure functions of the config
    out2 = tmp_path / "out2"
    assert _run("--dataset", "spair", "--root", root, "--split", "trn", "--out", out2, "--augment", 2,
                "--size", 64, "--shard-size", 4) == 0  # fmt: skip
    assert [s.sha256 for s in DatasetManifest.load(out2).shards] == [s.sha256 for s in manifest.shards]
    # real-pair shards verify: sparse samples skip the dense invariants rather than failing them
    capsys.readouterr()
    assert main(["verify", str(out), "--samples", "4", "--no-progress"]) == 0, capsys.readouterr().out


def test_warp_pairs_have_exact_dense_ground_truth(tmp_path):
    root = write_ap10k(tmp_path / "ap-10k")
    out = tmp_path / "warp"
    assert _run("--dataset", "ap10k", "--root", root, "--split", "test", "--out", out, "--warp", "--warps", 2,
                "--size", 56, "--warp-kind", "mixed") == 0  # fmt: skip
    samples = list(iter_shard_samples(out))
    assert len(samples) == 2 * 2  # two distinct images, two warps each
    kinds = set()
    for s in samples:
        assert s["meta"]["source"] == "warp" and s["meta"]["origin"]["dataset"] == "ap10k"
        assert s["meta"]["flip_perm"] is not None and len(s["kps0"]) == 17
        kinds.add(s["meta"]["warp"]["kind"])
        metrics = invariants.evaluate(s)
        assert invariants.failures(metrics) == [] and metrics["cycle_median_px"] < 0.1, metrics
    assert kinds <= {"homography", "tps"}


def test_bad_folder_fails_before_writing(tmp_path, capsys):
    root = write_spair(tmp_path / "SPair-71k")
    bad = root / "ImageAnnotation" / "cat" / "2009_000002.json"
    bad.write_text("{")
    out = tmp_path / "out"
    assert _run("--dataset", "spair", "--root", root, "--split", "trn", "--out", out) == 2
    assert str(bad) in capsys.readouterr().err
    assert not out.exists()


def test_failure_half_way_leaves_complete_shards_and_resume_finishes(tmp_path, capsys):
    root = write_spair(tmp_path / "SPair-71k")
    image = root / "JPEGImages" / "cat" / "2009_000001.jpg"  # used by the second trn pair only
    good = image.read_bytes()
    image.write_bytes(good[: len(good) // 2])  # the header (size) still reads; decoding fails later
    out = tmp_path / "out"
    args = ("--dataset", "spair", "--root", root, "--split", "trn", "--out", out, "--shard-size", 1, "--size", 48)
    assert _run(*args) == 2
    err = capsys.readouterr().err
    assert str(image) in err and "--resume" in err
    manifest = DatasetManifest.load(out)
    assert [s.index for s in manifest.shards] == [0] and not manifest.complete
    assert sorted(p.name for p in out.glob("*.tar")) == ["pairs-000000.tar"]
    assert list((out / ".datagen" / "tmp").iterdir()) == []  # no partial shard anywhere
    first = json.loads((out / "dataset.json").read_text())["shards"][0]
    image.write_bytes(good)
    assert _run(*args, "--resume") == 0
    manifest = DatasetManifest.load(out)
    assert manifest.complete and manifest.n_samples == 2
    assert json.loads((out / "dataset.json").read_text())["shards"][0] == first
    assert np.all([s["meta"]["category"] for s in iter_shard_samples(out)] == np.array(["car", "cat"]))
