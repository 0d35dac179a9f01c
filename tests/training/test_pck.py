"""PCK against hand-computed cases and against a literal transcription of the peers' protocol (benchmarks §B.5)."""

from __future__ import annotations

import numpy as np
import pytest

from training.eval.pck import PCKAccumulator, geo_aware_mask, threshold_length


def _single(pred, gt, vs, vt, length, alphas, average="image", groups=()):
    acc = PCKAccumulator()
    acc.add("c", np.array(pred, float), np.array(gt, float), np.array(vs), np.array(vt), length, groups)
    return acc.summary(alphas, average)


def test_hand_computed_pair_with_invisible_keypoints():
    gt = [[10, 10], [50, 50], [20, 20], [30, 30]]
    pred = [[14, 10], [50, 56], [99, 99], [99, 99]]  # errors 4, 6, (91 px, invisible in source), (invisible in target)
    vs, vt = [True, True, False, True], [True, True, True, False]
    length = threshold_length("bbox", [10, 20, 110, 70], (200, 300))  # max(100, 50)
    assert length == 100
    s = _single(pred, gt, vs, vt, length, (0.04, 0.05, 0.06, 0.061, 0.1))
    # only keypoints 0 and 1 count; 6 < 6 is false (strict), 6 < 6.1 true
    assert s["overall"]["pck"] == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0])
    assert s["overall"]["keypoints"] == 2 and s["overall"]["pairs"] == 1


def test_bbox_versus_image_threshold():
    assert threshold_length("img", [10, 20, 110, 70], (200, 300)) == 300
    assert threshold_length("bbox", [0, 0, 30, 80], (200, 300)) == 80
    with pytest.raises(ValueError, match="bounding box"):
        threshold_length("bbox", None, (200, 300))
    gt, pred = [[0, 0], [0, 0]], [[4, 0], [0, 6]]
    img = _single(pred, gt, [True, True], [True, True], threshold_length("img", None, (200, 300)), (0.01, 0.02, 0.021))
    assert img["overall"]["pck"] == pytest.approx([0.0, 0.5, 1.0])  # thresholds 3, 6, 6.3 px


def test_per_image_versus_per_keypoint_averaging():
    acc = PCKAccumulator()
    acc.add("cat", np.array([[0.0, 0]]), np.zeros((1, 2)), [True], [True], 10.0)  # 1 of 1 correct
    acc.add("cat", np.array([[0.0, 0], [5, 0], [5, 0]]), np.zeros((3, 2)), [True] * 3, [True] * 3, 10.0)  # 1 of 3
    acc.add("dog", np.array([[5.0, 0], [0, 0]]), np.zeros((2, 2)), [True] * 2, [True] * 2, 10.0)  # 1 of 2
    img, kpt = acc.summary([0.1], "image"), acc.summary([0.1], "keypoint")
    assert img["categories"]["cat"]["pck"] == pytest.approx([(1 + 1 / 3) / 2])
    assert kpt["categories"]["cat"]["pck"] == pytest.approx([2 / 4])
    assert img["overall"]["pck"] == pytest.approx([(1 + 1 / 3 + 1 / 2) / 3])  # mean over pairs (weighted by pairs)
    assert kpt["overall"]["pck"] == pytest.approx([3 / 6])
    assert img["overall"]["category_mean"] == pytest.approx([((1 + 1 / 3) / 2 + 1 / 2) / 2])


def test_pair_without_mutually_visible_keypoints_is_skipped():
    acc = PCKAccumulator()
    acc.add("c", np.zeros((2, 2)), np.zeros((2, 2)), [True, False], [False, True], 10.0)
    assert acc.skipped == 1 and acc.summary([0.1])["overall"]["pairs"] == 0


def test_geo_aware_subset():
    groups = [[0, 1, 2, 3], [4, 5]]
    # group 1: two members visible in the target (0, 1), one of them also in the source (0) -> 0 is geo-aware
    # group 2: 4 visible in both but 5 not in the target -> only one target member, not geo-aware
    vs = np.array([True, False, True, True, True, True])
    vt = np.array([True, True, False, False, True, False])
    np.testing.assert_array_equal(geo_aware_mask(vs, vt, groups), [True, False, False, False, False, False])
    vt2 = np.array([True, False, False, False, True, True])  # group 1 now has one target member only
    np.testing.assert_array_equal(geo_aware_mask(vs, vt2, groups), [False, False, False, False, True, True])
    gt = np.zeros((6, 2))
    pred = np.array([[9, 0], [0, 0], [0, 0], [0, 0], [1, 0], [0, 0]], float)
    s = _single(pred, gt, vs, vt2, 10.0, (0.5,), groups=groups)
    assert s["overall"]["geo"]["pck"] == pytest.approx([1.0]) and s["overall"]["geo"]["keypoints"] == 2
    assert s["overall"]["pck"] == pytest.approx([2 / 3])  # visible in both: 0 (wrong), 4 and 5 (right)


def _peers_per_image_pck(pairs, alphas, anno_size=840, bbox_threshold=True):
    """A literal transcription of benchmarks.md §B.5: resize+pad every image to ANNO_SIZE, move the keypoints the
    same way, threshold α·max(target bbox) in the padded frame (or α·ANNO_SIZE), strict <, mutual visibility,
    mean over pairs of each pair's fraction."""

    def pad_frame(xy, hw):
        h, w = hw
        scale = anno_size / max(w, h)
        out = xy * scale
        if h < w:
            out[:, 1] += int((anno_size - int(np.around(anno_size * h / w))) / 2)
        elif w < h:
            out[:, 0] += int((anno_size - int(np.around(anno_size * w / h))) / 2)
        return out, scale

    per_pair = []
    for p in pairs:
        gt, _ = pad_frame(p["gt"].copy(), p["hw_t"])
        pred, scale = pad_frame(p["pred"].copy(), p["hw_t"])
        vis = p["vs"] & p["vt"]
        if bbox_threshold:
            x1, y1, x2, y2 = p["bbox_t"]
            thr = max(y2 - y1, x2 - x1) * scale
        else:
            thr = anno_size
        err = np.linalg.norm(gt[vis] - pred[vis], axis=-1)
        per_pair.append([np.mean(err < a * thr) for a in alphas])
    return np.mean(per_pair, axis=0)


@pytest.mark.parametrize("bbox_threshold", [True, False])
def test_agrees_with_the_peers_protocol_point_for_point(bbox_threshold):
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(40):
        n = 12
        h, w = int(rng.integers(120, 500)), int(rng.integers(120, 500))
        gt = rng.uniform(0, [w, h], (n, 2))
        x1, y1 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
        bbox = [x1, y1, rng.uniform(x1 + 10, w), rng.uniform(y1 + 10, h)]
        pred = gt + rng.normal(0, rng.uniform(2, 40), (n, 2))
        vs, vt = rng.random(n) < 0.8, rng.random(n) < 0.8
        vs[0] = vt[0] = True
        pairs.append({"gt": gt, "pred": pred, "vs": vs, "vt": vt, "bbox_t": bbox, "hw_t": (h, w)})
    alphas = (0.01, 0.05, 0.1, 0.15)
    acc = PCKAccumulator()
    for p in pairs:
        length = threshold_length("bbox" if bbox_threshold else "img", p["bbox_t"], p["hw_t"])
        acc.add("c", p["pred"], p["gt"], p["vs"], p["vt"], length)
    ours = acc.summary(alphas, "image")["overall"]["pck"]
    np.testing.assert_allclose(ours, _peers_per_image_pck(pairs, alphas, bbox_threshold=bbox_threshold), atol=1e-12)


def test_the_table_is_one_frame_written_as_markdown_csv_and_json(tmp_path):
    """``pck_frame`` holds the summary's numbers; CSV and JSON give them back exactly, Markdown in percent."""
    import json

    import pandas as pd

    from training.eval.report import markdown_table, pck_frame, write_table

    acc = PCKAccumulator()
    acc.add("cat", np.array([[0.0, 0]]), np.zeros((1, 2)), [True], [True], 10.0)
    acc.add("cat", np.array([[0.0, 0], [5, 0], [5, 0]]), np.zeros((3, 2)), [True] * 3, [True] * 3, 10.0, [[0, 1]])
    acc.add("dog", np.array([[5.0, 0], [0, 0]]), np.zeros((2, 2)), [True] * 2, [True] * 2, 10.0)
    s = acc.summary((0.1, 0.7), "image")
    frame = pck_frame(s, "bbox")
    for suffix in ("csv", "json", "md"):
        write_table(frame, tmp_path / f"pck.{suffix}", title="t")
    csv = pd.read_csv(tmp_path / "pck.csv").set_index("category")
    records = {r["category"]: r for r in json.loads((tmp_path / "pck.json").read_text())}
    assert list(csv.index) == list(records) == ["cat", "dog", "all", "category_mean"]
    for name, r in [("cat", s["categories"]["cat"]), ("dog", s["categories"]["dog"]), ("all", s["overall"])]:
        for table in (csv.loc[name], records[name]):
            assert [table["PCK@0.1"], table["PCK@0.7"]] == r["pck"]  # exact, not rounded
            assert (table["pairs"], table["keypoints"], table["geo_keypoints"]) == (
                r["pairs"], r["keypoints"], r["geo"]["keypoints"])  # fmt: skip
    assert csv.loc["cat", "PCK@0.1"] == pytest.approx((1 + 1 / 3) / 2)
    assert csv.loc["cat", "geo@0.1"] == 0.5 and np.isnan(csv.loc["dog", "geo@0.1"])
    assert records["dog"]["geo@0.1"] is None
    assert [csv.loc["category_mean", "PCK@0.1"], records["category_mean"]["PCK@0.7"]] == s["overall"]["category_mean"]
    assert records["category_mean"]["pairs"] is None and set(csv["threshold"]) == {"bbox"}
    md = (tmp_path / "pck.md").read_text()
    assert md == markdown_table(s, "t")  # a summary or its frame: one table
    assert "| cat | 2 | 4 | 66.7 | 100.0 | 50.0 | 100.0 | 2 |" in md
    assert "| **all (image)** | 3 | 6 | 61.1 | 100.0 | 50.0 | 100.0 | 2 |" in md
    assert "| mean of categories | | | 58.3 | 100.0 |" in md
