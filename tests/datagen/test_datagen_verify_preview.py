"""``datagen verify`` passes good folders and names what is wrong in bad ones; ``datagen preview`` draws a sheet
whose colours tie matching pixels together. Data from the fake generator (tests/fake_pairs.py)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import fake_pairs
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from datagen.cli import main
from datagen.config import RenderConfig
from datagen.preview import field_panel, load_samples, object_box, position_colors, render_preview
from datagen.shards import write_shards, write_tar
from datagen.verify import report_frame, verify_dataset
from loaders.dataset_manifest import sha256_file, shard_name
from loaders.schema import Status

CONFIG = RenderConfig(category="chair", n_pairs=7, shard_size=3, size=32)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify") / "good"
    write_shards(CONFIG, root, progress=False, generate=fake_pairs.generate_shard)
    return root


@pytest.fixture
def copy(good, tmp_path) -> Path:
    shutil.copytree(good, tmp_path / "copy")
    return tmp_path / "copy"


def _rewrite_shard(root: Path, index: int, edit) -> None:
    """Rewrite shard ``index`` with ``edit(sample)`` applied, and re-record its size and sha in the manifest, so
    that only the content check can notice."""
    samples = [edit(fake_pairs.fake_sample(CONFIG, index, j)) for j in range(CONFIG.shard_count(index))]
    path = root / shard_name(index)
    with open(path, "wb") as f:
        write_tar(samples, f)
    _edit_manifest(root, index, bytes=path.stat().st_size, sha256=sha256_file(path))


def _edit_manifest(root: Path, index: int, **fields) -> None:
    manifest = json.loads((root / "dataset.json").read_text())
    entry = next(s for s in manifest["shards"] if s["index"] == index)
    entry.update(fields)
    (root / "dataset.json").write_text(json.dumps(manifest))


def _verify(root: Path, capsys, *extra: str, workers: int = 1) -> tuple[int, str]:
    code = main(["verify", str(root), "--workers", str(workers), "--no-progress", "--samples", "7", *extra])
    return code, capsys.readouterr().out


@pytest.mark.integration
def test_verify_passes_a_good_folder(good, capsys):
    code, out = _verify(good, capsys, workers=2)  # shards checked in two spawned processes
    assert code == 0, out
    assert out.rstrip().endswith("OK")
    assert "7/7 samples read by stock webdataset" in out and "7/7 sampled pairs pass docs/design.md §5" in out
    report = verify_dataset(good, samples=7, progress=False)  # and in this process: the same table
    assert report.ok and len(report.invariant_rows) == 7
    assert all(row["cycle_frac_within_1.5px"] == 1.0 for row in report.invariant_rows)
    assert all(f"{row['key']:<15}cross" in out for row in report.invariant_rows)


def test_verify_fails_on_a_corrupted_shard(copy, capsys):
    path = copy / shard_name(1)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x55
    path.write_bytes(bytes(data))
    code, out = _verify(copy, capsys)
    assert code == 1 and "pairs-000001.tar: sha256 differs from the manifest" in out
    assert out.rstrip().endswith("FAILED")


def test_verify_fails_on_a_truncated_shard(copy, capsys):
    path = copy / shard_name(2)
    path.write_bytes(path.read_bytes()[:1500])
    code, out = _verify(copy, capsys)
    assert code == 1
    assert "pairs-000002.tar: 1500 bytes, the manifest says" in out
    assert "pairs-000002.tar: stock webdataset cannot read it at its start" in out
    assert "pairs-000002.tar: could read only 0 of the 1 samples the manifest lists" in out


def test_verify_fails_on_a_tampered_manifest(copy, capsys):
    _edit_manifest(copy, 0, samples=4)
    manifest = json.loads((copy / "dataset.json").read_text())
    manifest["shards"] = [s for s in manifest["shards"] if s["index"] != 2]
    (copy / "dataset.json").write_text(json.dumps(manifest))
    code, out = _verify(copy, capsys)
    assert code == 1
    assert "pairs-000000.tar: holds 3 samples, the manifest says 4" in out
    assert "incomplete: 1 of 3 shards not listed (2)" in out
    assert "pairs-000002.tar: in the folder but not in dataset.json" in out


def test_verify_names_a_sample_that_does_not_decode(copy, capsys):
    def break_one(sample):
        if sample["__key__"] == "s000001_00002":
            sample["meta"] = {**sample["meta"], "schema_version": 99}
        return sample

    _rewrite_shard(copy, 1, break_one)
    code, out = _verify(copy, capsys)
    assert code == 1 and "pairs-000001.tar: sample #2 (s000001_00002): sample s000001_00002" in out
    assert "schema_version 99" in out


def test_verify_names_a_sample_that_breaks_the_invariants(copy, capsys):
    def shift_back_field(sample):
        if sample["__key__"] == "s000000_00001":
            sample["corr_1to0"] = sample["corr_1to0"] + 5.0  # the cycle 0->1->0 now misses by 7 px
        return sample

    _rewrite_shard(copy, 0, shift_back_field)
    code, out = _verify(copy, capsys)
    assert code == 1
    failing = "pairs-000000.tar: sample s000000_00001: docs/design.md §5: cycle_frac_within_1.5px_smooth = 0"
    assert f"{failing} (limit >= 0.5)" in out
    assert "docs/design.md §5: cycle_frac_within_1.5px_smooth = " in out  # the dataset-level criterion fails too


def test_verify_report_is_the_printed_table(copy, tmp_path, capsys):
    """``--report`` writes the table the summary is printed from: CSV and JSON hold the same rows and the exact
    numbers (the pooled figures, every sampled pair, every problem); nothing is written into the dataset."""

    def shift_back_field(sample):
        if sample["__key__"] == "s000000_00001":
            sample["corr_1to0"] = sample["corr_1to0"] + 5.0
        return sample

    _rewrite_shard(copy, 0, shift_back_field)
    before = sorted(p.name for p in copy.iterdir())
    code, out = _verify(copy, capsys, "--report", str(tmp_path / "r" / "verify.csv"))
    assert code == 1 and out.rstrip().endswith("FAILED")  # the exit code and the summary as without --report
    assert (tmp_path / "r" / "verify.csv").is_file()  # the folder made as needed
    for suffix in ("json", "md"):
        code = main(["verify", str(copy), "--workers", "1", "--no-progress", "--samples", "7",
                     "--report", str(tmp_path / f"verify.{suffix}")])  # fmt: skip
        printed = capsys.readouterr()
        assert code == 1 and printed.out == out and f"wrote {tmp_path / f'verify.{suffix}'}" in printed.err
    assert sorted(p.name for p in copy.iterdir()) == before
    table = pd.read_csv(tmp_path / "r" / "verify.csv")
    records = json.loads((tmp_path / "verify.json").read_text())
    assert len(records) == len(table) and [r["section"] for r in records] == list(table["section"])
    report = verify_dataset(copy, samples=7, progress=False)
    checks = table[table["section"] == "check"].set_index("name")
    assert list(checks.index) == ["manifest", "files", "decode", "invariants", "cycle", "stretch", "keypoints",
                                  "left/right", "on object"]  # fmt: skip
    for name, r in checks.iterrows():  # the printed check lines, word for word
        assert f"  {name:<11} {'ok  ' if r['ok'] else 'FAIL'}  {r['text']}" in out
    assert not checks.loc["invariants", "ok"] and not checks.loc["cycle", "ok"] and checks.loc["files", "ok"]
    agg = report.aggregate
    for key, count in (("cycle_frac_within_1.5px_smooth", "n_cycle_smooth"), ("kp_frac_within_0.05", "n_kp")):
        row = next(r for r in records if r["section"] == "check" and r.get(key) is not None)
        assert row[key] == agg[key] and row[count] == agg[count]  # exact, as pooled
        assert checks[key].dropna().tolist() == [agg[key]]
    pairs = table[table["section"] == "pair"].set_index("name")
    assert len(pairs) == 7 and not pairs.loc["s000000_00001", "ok"] and pairs["ok"].sum() == 6
    for row in report.invariant_rows:
        assert pairs.loc[row["key"], "cycle_frac_within_1.5px_smooth"] == row["cycle_frac_within_1.5px_smooth"]
        assert pairs.loc[row["key"], "n_cycle"] == row["n_cycle"] and pairs.loc[row["key"], "pair"] == "cross"
        printed = f"{row['cycle_frac_within_1.5px']:>13.4g}{row['cycle_frac_within_1.5px_smooth']:>13.4g}"
        assert f"{row['key']:<15}{'cross':<6}{printed}" in out
    problems = table[table["section"] == "problem"]["text"].tolist()
    assert problems == report.problems and f"{len(problems)} problem(s):" in out
    assert all(f"  - {p}" in out for p in problems)
    md = (tmp_path / "verify.md").read_text()
    assert "## checks" in md and "## pairs" in md and "| s000000_00001 | False | pairs-000000.tar | cross |" in md
    frame = report_frame(report)
    pd.testing.assert_series_equal(frame["section"], table["section"])


def test_verify_report_bad_paths(good, tmp_path, capsys):
    code = main(["verify", str(good), "--no-progress", "--report", str(good / "verify.csv")])
    assert code == 2 and "inside the dataset folder" in capsys.readouterr().err
    assert not (good / "verify.csv").exists()
    code = main(["verify", str(good), "--no-progress", "--report", str(tmp_path / "verify.txt")])
    assert code == 2 and ".md, .csv, .json" in capsys.readouterr().err


ASSETS = Path(__file__).parents[1] / "assets"


def test_verify_fails_the_old_collapsing_table_map(tmp_path, capsys):
    """Shards written by datagen 0.1.0, whose table tops mapped fan triangle to fan triangle (a rectangle's four
    big sectors onto slivers of a round top): the raw and smooth cycle, the stretch check (per part: the top) and
    the keypoint transfer all fail, where the old gain-scaled cycle passed them."""
    root = tmp_path / "old"
    shutil.copytree(ASSETS / "old_table_map", root)
    code, out = _verify(root, capsys, "--samples", "6")
    assert code == 1, out
    assert "docs/design.md §5: cycle_frac_within_1.5px_smooth = " in out
    assert "docs/design.md §5: collapse_frac = " in out
    report = verify_dataset(root, samples=6, progress=False)
    agg = report.aggregate
    assert agg["cycle_frac_within_1.5px"] < 0.5 and agg["collapse_frac"] > 0.3
    assert agg["kp_frac_within_0.05"] < 0.9


def test_verify_bad_input(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    code, out = _verify(tmp_path, capsys)
    assert code == 1 and "no dataset manifest" in out


def test_position_colors_separate_places_and_stay_saturated():
    box = (10.0, 20.0, 110.0, 220.0)
    corners = np.array([[10, 20], [110, 20], [10, 220], [110, 220], [60, 120]], np.float32)
    rgb = position_colors(corners, box)
    assert rgb.shape == (5, 3)
    dist = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert dist[~np.eye(5, dtype=bool)].min() > 0.15  # every pair of places gets a visibly different colour
    assert (rgb.max(1) - rgb.min(1)).min() > 0.3  # never grey, so the status greys stay unambiguous
    assert object_box(np.zeros((4, 5), bool)) == (0.0, 0.0, 4.0, 3.0)


def test_field_panel_gives_matching_pixels_the_same_colour():
    h, w = 16, 20
    status = np.full((h, w), Status.BACKGROUND, np.uint8)
    status[4:12, 3:15] = Status.MATCHED
    status[4:6, 3:5] = Status.OCCLUDED
    status[10:12, 13:15] = Status.NO_COUNTERPART
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    corr = np.stack([xx + 2, yy + 1], -1)  # view 0 pixel (x, y) lands at (x + 2, y + 1) in view 1
    box = (5.0, 5.0, 16.0, 12.0)
    image = np.zeros((h, w, 3), np.uint8)
    p0 = field_panel(image, status, corr, box)
    own = np.stack([xx, yy], -1)
    p1 = field_panel(image, np.full((h, w), Status.MATCHED, np.uint8), own, box)
    assert np.allclose(p0[7, 6], p1[8, 8]) and np.allclose(p0[9, 12], p1[10, 14])
    assert not np.allclose(p0[7, 6], p0[9, 12])
    assert np.allclose(p0[4, 3], 0.45)  # occluded: mid grey
    assert set(np.unique(p0[10:12, 13:15])) <= {0.0, 1.0}  # no counterpart: black/white stripes


@pytest.mark.slow
def test_preview_draws_a_sheet(good, tmp_path, capsys):
    out = tmp_path / "sheet" / "preview.png"
    assert main(["preview", str(good), "--out", str(out), "--n", "3"]) == 0
    assert str(out) in capsys.readouterr().out
    with Image.open(io.BytesIO(out.read_bytes())) as im:
        assert im.width > 1200 and im.height > 3 * 300
    assert [s["__key__"] for s in load_samples(good, 3, seed=0)] == sorted(s["__key__"] for s in load_samples(good, 3))
    assert len(load_samples(good, 50)) == 7
    assert main(["preview", str(tmp_path), "--out", str(out)]) == 2
    assert "no dataset manifest" in capsys.readouterr().err


def test_preview_of_real_pairs_without_dense_fields(tmp_path):
    sample = fake_pairs.fake_sample(CONFIG, 0, 0)
    for k in ("status_0to1", "status_1to0", "corr_0to1", "corr_1to0", "depth0", "depth1"):
        del sample[k]
    sample["meta"]["source"] = "spair"
    assert render_preview([sample], tmp_path / "p.png").stat().st_size > 1000
