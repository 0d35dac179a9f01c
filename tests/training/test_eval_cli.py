"""Evaluation end to end: prediction at keypoints through the model frame, PCK on benchmark folders, shards."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_real_formats import write_pfpascal, write_spair

from datagen.real import read_pairs
from training.baselines.identity import IdentityMatcher
from training.cli import main
from training.eval.benchmark import evaluate_pairs, subsample_pairs
from training.eval.matchers import load_eval_matcher
from training.eval.predict import fit_frame, predict_points
from training.eval.synthetic import evaluate_shards, iter_shard_samples
from training.geometry import pixel_grid


def _img(h, w):
    return np.zeros((h, w, 3), np.uint8)


@pytest.mark.parametrize("mode", ["pad", "stretch"])
def test_points_go_through_the_model_frame_and_back(mode):
    kps = np.array([[0.0, 0.0], [12.3, 40.7], [99.0, 59.0]])
    same, _ = predict_points(IdentityMatcher(), _img(60, 100), _img(60, 100), kps, 56, mode, "cpu")
    np.testing.assert_allclose(same, kps, atol=1e-3)  # same frame both ways: the identity comes back exactly
    other, _ = predict_points(IdentityMatcher(), _img(60, 100), _img(30, 200), kps, 56, mode, "cpu")
    m0, m1 = fit_frame((60, 100), 56, mode), fit_frame((30, 200), 56, mode)
    np.testing.assert_allclose(other, m1.from_model(m0.to_model(kps)), atol=1e-3)
    if mode == "stretch":  # x' = (x + .5) W1 / W0 - .5
        np.testing.assert_allclose(other[:, 0], (kps[:, 0] + 0.5) * 2 - 0.5, atol=1e-3)
        np.testing.assert_allclose(other[:, 1], (kps[:, 1] + 0.5) * 0.5 - 0.5, atol=1e-3)


def test_a_perfect_matcher_scores_100(tmp_path):
    pairs = read_pairs("spair", write_spair(tmp_path / "SPair-71k"), "test")
    self_pairs = [
        dataclasses.replace(p, image_paths=(p.image_paths[0],) * 2, image_sizes=(p.image_sizes[0],) * 2,
                            kps=(p.kps[0],) * 2, vis=(p.vis[0],) * 2, bboxes=(p.bboxes[0],) * 2)
        for p in pairs
    ]  # fmt: skip
    acc, records = evaluate_pairs(IdentityMatcher(), self_pairs, "bbox", size=70, progress=False)
    s = acc.summary((0.01, 0.1))
    assert s["overall"]["pck"] == [1.0, 1.0] and s["overall"]["pairs"] == 3
    assert max(e for r in records for e in r["error_px"]) < 0.01
    acc, _ = evaluate_pairs(IdentityMatcher(), pairs, "bbox", size=70, progress=False)
    assert acc.summary((0.01,))["overall"]["pck"][0] < 0.5  # different images: identity is mostly wrong
    assert [p.category for p in subsample_pairs(pairs, 1, seed=0)] == ["car", "cat"]


@pytest.mark.slow
def test_semmatch_eval_sift_on_benchmarks(tmp_path, capsys):
    spair = write_spair(tmp_path / "SPair-71k")
    out = tmp_path / "eval-spair"
    rc = main(["eval", "--checkpoint", "sift", "--dataset", "spair", "--root", str(spair), "--size", "112",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| car | 2 |" in printed and "PCK@0.1" in printed
    record = json.loads((out / "pck.json").read_text())
    assert record["threshold"] == "bbox" and record["summary"]["alphas"] == [0.01, 0.05, 0.1]
    assert record["summary"]["overall"]["pairs"] == 3 and set(record["summary"]["categories"]) == {"car", "cat"}
    assert len((out / "pairs.jsonl").read_text().splitlines()) == 3
    with Image.open(out / "pck_curve.png") as im:
        assert im.size[0] > 400
    _table_matches_the_record(pd.read_csv(out / "pck.csv"), record, printed)
    assert (out / "pck.md").read_text() in printed
    pf = write_pfpascal(tmp_path / "PF-dataset-PASCAL")
    rc = main(["eval", "--checkpoint", "sift", "--dataset", "pfpascal", "--root", str(pf), "--size", "112",
               "--average", "keypoint", "--out", str(tmp_path / "eval-pf")])  # fmt: skip
    assert rc == 0
    record = json.loads((tmp_path / "eval-pf" / "pck.json").read_text())
    assert record["threshold"] == "img" and record["summary"]["alphas"] == [0.05, 0.1, 0.15]
    assert record["summary"]["average"] == "keypoint" and record["summary"]["overall"]["keypoints"] == 3
    capsys.readouterr()
    rc = main(["eval", "--checkpoint", "sift", "--dataset", "pfpascal", "--root", str(pf), "--size", "112",
               "--average", "keypoint", "--out", str(tmp_path / "eval-pf2"), "--format", "csv"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr()
    assert printed.out == (tmp_path / "eval-pf2" / "pck.csv").read_text()  # the table alone, for a pipe
    assert "wrote " in printed.err and "wrote " not in printed.out
    table = pd.read_csv(io.StringIO(printed.out))
    _table_matches_the_record(table, json.loads((tmp_path / "eval-pf2" / "pck.json").read_text()))
    pd.testing.assert_frame_equal(table, pd.read_csv(tmp_path / "eval-pf" / "pck.csv"))  # same numbers either way
    rc = main(["eval", "--checkpoint", "sift", "--dataset", "pfpascal", "--root", str(pf), "--size", "112",
               "--average", "keypoint", "--out", str(tmp_path / "eval-pf3"), "--format", "json"])  # fmt: skip
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)  # the same table as JSON records, missing values as null
    csv = pd.read_csv(tmp_path / "eval-pf" / "pck.csv").to_dict("records")
    assert rows == [{k: None if pd.isna(v) else v for k, v in r.items()} for r in csv]


def _table_matches_the_record(table: pd.DataFrame, record: dict, printed: str | None = None) -> None:
    """``pck.csv`` holds the numbers of ``pck.json`` exactly, one row per category then ``all`` and
    ``category_mean``; the printed Markdown shows the same numbers in percent."""
    s = record["summary"]
    assert list(table["category"]) == [*s["categories"], "all", "category_mean"]
    assert set(table["threshold"]) == {record["threshold"]} and set(table["average"]) == {s["average"]}
    rows = table.set_index("category")
    for name, r in [*s["categories"].items(), ("all", s["overall"])]:
        assert rows.loc[name, "pairs"] == r["pairs"] and rows.loc[name, "keypoints"] == r["keypoints"]
        assert rows.loc[name, "geo_pairs"] == r["geo"]["pairs"]
        assert rows.loc[name, "geo_keypoints"] == r["geo"]["keypoints"]
        for i, a in enumerate(s["alphas"]):
            assert rows.loc[name, f"PCK@{a:g}"] == r["pck"][i]  # exact: CSV keeps full precision
            geo = r["geo"]["pck"][i]
            assert np.isnan(rows.loc[name, f"geo@{a:g}"]) if geo is None else rows.loc[name, f"geo@{a:g}"] == geo
        if printed is not None:
            label = f"**all ({s['average']})**" if name == "all" else name
            pcks = " | ".join(f"{100 * v:.1f}" for v in rows.loc[name, [f"PCK@{a:g}" for a in s["alphas"]]])
            assert f"| {label} | {r['pairs']} | {r['keypoints']} | {pcks} |" in printed
    means = rows.loc["category_mean", [f"PCK@{a:g}" for a in s["alphas"]]]
    assert list(means) == s["overall"]["category_mean"]
    assert rows.loc["category_mean", ["pairs", "keypoints", "geo_pairs", "geo_keypoints"]].isna().all()


def test_semmatch_eval_reports_bad_input(tmp_path, capsys):
    spair = write_spair(tmp_path / "SPair-71k")
    (spair / "ImageAnnotation" / "cat" / "2009_000001.json").write_text("{")
    assert main(["eval", "--checkpoint", "sift", "--dataset", "spair", "--root", str(spair)]) == 2
    assert "2009_000001.json" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "nope"), "--shards", str(tmp_path)]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


class WarpOracle:
    """Knows each warp pair's homography (in shard order) and answers in the model frame ('stretch')."""

    def __init__(self, directory, size):
        self.samples = iter_shard_samples(directory)
        self.size = size

    def __call__(self, images):
        s = next(self.samples)
        H = np.array(s["meta"]["warp"]["H"])
        hw = s["image0"].shape[:2]
        m = fit_frame(hw, self.size, "stretch")
        S = np.array(
            [[m.scale_xy[0], 0, 0.5 * m.scale_xy[0] - 0.5], [0, m.scale_xy[1], 0.5 * m.scale_xy[1] - 0.5], [0, 0, 1]]
        )
        grids = []
        for M in (S @ H @ np.linalg.inv(S), S @ np.linalg.inv(H) @ np.linalg.inv(S)):
            p = pixel_grid(self.size, self.size).double().numpy().reshape(-1, 2)
            q = np.c_[p, np.ones(len(p))] @ M.T
            grids.append(torch.from_numpy(q[:, :2] / q[:, 2:]).float().reshape(self.size, self.size, 2))
        return {"grid": torch.stack(grids)[None], "conf": torch.ones(1, 2, self.size, self.size) * 0.9}


@pytest.mark.integration
def test_shard_eval_dense_epe(tmp_path, capsys):
    from datagen.cli import main as datagen_main

    spair = write_spair(tmp_path / "SPair-71k")
    shards = tmp_path / "warp"
    assert datagen_main(["real", "--dataset", "spair", "--root", str(spair), "--split", "trn", "--out", str(shards),
                         "--warp", "--warp-kind", "homography", "--size", "48", "--no-progress"]) == 0  # fmt: skip
    acc, dense = evaluate_shards(WarpOracle(shards, 56), shards, size=56, resize="stretch", progress=False)
    d = dense.summary()["all"]
    assert d["pixels"] > 1000 and d["epe_median"] < 0.05 and d["within_1px"] > 0.99, d
    assert acc.summary((0.05,))["overall"]["pck"] == [1.0]
    rc = main(["eval", "--checkpoint", "sift", "--shards", str(shards), "--size", "56", "--out", str(tmp_path / "e")])
    assert rc == 0 and "dense EPE over" in capsys.readouterr().out
    record = json.loads((tmp_path / "e" / "pck.json").read_text())
    assert record["dense"]["all"]["pixels"] > 1000


@pytest.mark.integration
def test_semmatch_eval_loads_a_checkpoint_folder(tmp_path):
    """A matcher saved by the model part (``save_matcher``) evaluates through ``--checkpoint DIR``."""
    from training.model.config import VGGTConfig
    from training.model.io import save_matcher
    from training.model.matcher import MatcherConfig, SemanticMatcher

    ckpt = save_matcher(SemanticMatcher(MatcherConfig(vggt=VGGTConfig.tiny(), split_index=1)), tmp_path / "ckpt")
    spair = write_spair(tmp_path / "SPair-71k")
    out = tmp_path / "e"
    rc = main(["eval", "--checkpoint", str(ckpt), "--dataset", "spair", "--root", str(spair), "--size", "56",
               "--categories", "cat", "--out", str(out)])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "pck.json").read_text())["summary"]
    assert summary["overall"]["pairs"] == 1 and len(summary["overall"]["pck"]) == 3


def test_identity_baseline_is_the_pixel_grid_and_reachable_from_the_cli():
    m = load_eval_matcher("identity")
    out = m.eval()(torch.rand(2, 2, 3, 14, 28))
    assert out["grid"].shape == (2, 2, 14, 28, 2)
    assert torch.equal(out["grid"][1, 1, 3, 5], torch.tensor([5.0, 3.0]))  # (x, y) of row 3, column 5
    assert torch.all(out["conf"] == 0.5)
