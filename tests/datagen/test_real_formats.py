"""Readers of SPair-71k, PF-PASCAL and AP-10K on small folders written here in exactly those formats.

The ``write_*`` helpers are imported by the other ``test_real_*`` / ``test_eval_*`` modules.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from datagen.real import DatasetFormatError, read_pairs
from datagen.real.tables import (
    AP10K_KEYPOINT_NAMES,
    PFPASCAL_CATEGORIES,
    SPAIR_CATEGORIES,
    ap10k_table,
    spair_table,
)

# ----------------------------------------------------------------------------------------------------------------
# format writers


def _jpeg(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(128, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95)
    return img


SPAIR_IMAGES = {  # name -> (category, H, W, visible keypoint ids)
    "2008_000001": ("car", 48, 64, [0, 2, 10, 11, 20]),
    "2008_000002": ("car", 40, 56, [1, 2, 10, 13, 21, 23]),
    "2008_000003": ("car", 64, 64, [0, 1, 10, 13, 20, 23]),
    "2009_000001": ("cat", 50, 40, [0, 1, 4, 5, 9]),
    "2009_000002": ("cat", 44, 60, [0, 4, 9, 10, 11]),
}
SPAIR_PAIRS = {"test": [("2008_000001", "2008_000002"), ("2008_000003", "2008_000001"), ("2009_000001", "2009_000002")],
               "trn": [("2008_000002", "2008_000003"), ("2009_000002", "2009_000001")]}  # fmt: skip


def spair_keypoint(name: str, i: int) -> list[float]:
    """A deterministic keypoint position inside the image."""
    _, h, w, _ = SPAIR_IMAGES[name]
    return [float(3 + (7 * i + len(name)) % (w - 6)), float(3 + (5 * i + 3) % (h - 6))]


def write_spair(root: Path) -> Path:
    """A SPair-71k folder: 5 images of car/cat, image + pair annotations (test, trn) and segmentation masks."""
    for k, (name, (cat, h, w, vis)) in enumerate(SPAIR_IMAGES.items()):
        _jpeg(root / "JPEGImages" / cat / f"{name}.jpg", h, w, k)
        kps = {str(i): (spair_keypoint(name, i) if i in vis else None) for i in range(30)}
        anno = {"filename": f"{name}.jpg", "category": cat, "image_width": w, "image_height": h, "image_depth": 3,
                "bndbox": [2, 3, w - 4, h - 2], "kps": kps, "azimuth_id": k % 8, "pose": "Frontal"}  # fmt: skip
        (root / "ImageAnnotation" / cat).mkdir(parents=True, exist_ok=True)
        (root / "ImageAnnotation" / cat / f"{name}.json").write_text(json.dumps(anno))
        seg = np.zeros((h, w), np.uint8)
        seg[3 : h - 2, 2 : w - 4] = 1
        seg[2, :] = 255  # a 'void' border row as PASCAL masks have
        (root / "Segmentation" / cat).mkdir(parents=True, exist_ok=True)
        Image.fromarray(seg, "L").save(root / "Segmentation" / cat / f"{name}.png")
    for split, pairs in SPAIR_PAIRS.items():
        (root / "PairAnnotation" / split).mkdir(parents=True, exist_ok=True)
        for n, (src, trg) in enumerate(pairs):
            cat = SPAIR_IMAGES[src][0]
            ids = sorted(set(SPAIR_IMAGES[src][3]) & set(SPAIR_IMAGES[trg][3]))
            data = {
                "pair_id": n,
                "filename": f"{src}-{trg}:{cat}",
                "category": cat,
                "src_imname": f"{src}.jpg",
                "trg_imname": f"{trg}.jpg",
                "src_imsize": [SPAIR_IMAGES[src][2], SPAIR_IMAGES[src][1], 3],
                "trg_imsize": [SPAIR_IMAGES[trg][2], SPAIR_IMAGES[trg][1], 3],
                "src_bndbox": [2, 3, SPAIR_IMAGES[src][2] - 4, SPAIR_IMAGES[src][1] - 2],
                "trg_bndbox": [2, 3, SPAIR_IMAGES[trg][2] - 4, SPAIR_IMAGES[trg][1] - 2],
                "src_kps": [spair_keypoint(src, i) for i in ids],
                "trg_kps": [spair_keypoint(trg, i) for i in ids],
                "kps_ids": ids,
                "mirror": 0,
                "viewpoint_variation": 1,
                "scale_variation": 0,
                "truncation": 0,
                "occlusion": 0,
            }
            (root / "PairAnnotation" / split / f"{n:06d}-{src}-{trg}:{cat}.json").write_text(json.dumps(data))
    return root


PF_IMAGES = {"2007_000027": ("cat", 40, 52), "2007_000032": ("cat", 48, 48), "2008_000008": ("bicycle", 44, 60)}
PF_KPS = {  # rows of the .mat 'kps' (NaN = absent)
    "2007_000027": [[5, 6], [20, 10], [np.nan, np.nan], [30, 30]],
    "2007_000032": [[8, 9], [np.nan, np.nan], [25, 12], [40, 40], [10, 44]],
    "2008_000008": [[3, 4], [50, 30]],
}


def write_pfpascal(root: Path) -> Path:
    """A PF-dataset-PASCAL folder (``root``) with images, .mat annotations and trn/test pair CSVs."""
    for k, (name, (cat, h, w)) in enumerate(PF_IMAGES.items()):
        _jpeg(root / "JPEGImages" / f"{name}.jpg", h, w, 10 + k)
        (root / "Annotations" / cat).mkdir(parents=True, exist_ok=True)
        kps = np.array(PF_KPS[name], np.float64)
        scipy.io.savemat(
            root / "Annotations" / cat / f"{name}.mat", {"kps": kps, "bbox": np.array([[1, 2, w - 3, h - 4]])}
        )
    rel = lambda n: f"PF-dataset-PASCAL/JPEGImages/{n}.jpg"  # noqa: E731
    cat_id = PFPASCAL_CATEGORIES.index("cat") + 1
    with open(root / "test_pairs_pf_pascal.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["source_image", "target_image", "class", "XA", "YA", "XB", "YB"])
        wr.writerow([rel("2007_000027"), rel("2007_000032"), cat_id, "5;30", "6;30", "8;40", "9;40"])
        wr.writerow([rel("2007_000032"), rel("2007_000027"), cat_id, "8", "9", "5", "6"])
    with open(root / "trn_pairs_pf_pascal.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["source_image", "target_image", "class", "flip"])
        wr.writerow([rel("2007_000027"), rel("2007_000032"), cat_id, 0])
        wr.writerow([rel("2008_000008"), rel("2008_000008"), PFPASCAL_CATEGORIES.index("bicycle") + 1, 0])
    return root


AP10K_IMAGES = {  # id -> (family, species, H, W)
    "000000000011": ("canidae", "dog", 48, 64),
    "000000000012": ("canidae", "dog", 56, 48),
    "000000000013": ("felidae", "cat", 40, 40),
}


def ap10k_keypoints(name: str) -> list[float]:
    """17 x [x, y, v] flattened; every third keypoint unlabeled (v = 0), one v = 1."""
    _, _, h, w = AP10K_IMAGES[name]
    out = []
    for i in range(17):
        v = 0 if i % 3 == 2 else (1 if i == 4 else 2)
        out += [float(2 + (3 * i + int(name[-1])) % (w - 4)), float(2 + (2 * i) % (h - 4)), v] if v else [0, 0, 0]
    return out


def write_ap10k(root: Path) -> Path:
    """An ap-10k folder in GeoAware-SC's correspondence layout (pair files hold peers' relative paths)."""
    for k, (name, (fam, sp, h, w)) in enumerate(AP10K_IMAGES.items()):
        _jpeg(root / "JPEGImages" / fam / sp / f"{name}.jpg", h, w, 20 + k)
        anno = {"id": int(name), "image_id": int(name), "file_name": f"{name}.jpg", "width": w, "height": h,
                "bbox": [2, 3, w - 6, h - 8], "keypoints": ap10k_keypoints(name), "num_keypoints": 11,
                "name": sp, "supercategory": fam, "category_id": 1, "iscrowd": 0}  # fmt: skip
        (root / "ImageAnnotation" / fam / sp).mkdir(parents=True, exist_ok=True)
        (root / "ImageAnnotation" / fam / sp / f"{name}.json").write_text(json.dumps(anno))
    path = lambda n: "data/ap-10k/ImageAnnotation/{}/{}/{}.json".format(*AP10K_IMAGES[n][:2], n)  # noqa: E731
    for split, pairs in {"test": [("000000000011", "000000000012")], "trn": [("000000000012", "000000000011")],
                         "test_cross_family": [("000000000011", "000000000013")]}.items():  # fmt: skip
        (root / "PairAnnotation" / split).mkdir(parents=True, exist_ok=True)
        for src, trg in pairs:
            cat = "all" if "family" in split else AP10K_IMAGES[src][1]
            data = {"src_json_path": path(src), "trg_json_path": path(trg)}
            (root / "PairAnnotation" / split / f"{src}-{trg}:{cat}.json").write_text(json.dumps(data))
    return root


# ----------------------------------------------------------------------------------------------------------------
# tables


@pytest.mark.parametrize("category", SPAIR_CATEGORIES)
def test_spair_tables_are_consistent(category):
    t = spair_table(category)
    perm = t.flip_perm
    assert sorted(perm) == list(range(t.n)) and all(perm[perm[i]] == i for i in range(t.n))
    for a, b in t.flip_pairs:  # a mirror swaps a left keypoint with a right one
        assert {t.sides[a], t.sides[b]} == {"left", "right"}, (category, a, b)
    for g in t.sym_groups:
        assert len(g) >= 2 and all(0 <= i < t.n for i in g)


def test_spair_keypoint_counts_and_ap10k_table():
    assert spair_table("car").n == 30 and spair_table("aeroplane").n == 25 and spair_table("pottedplant").n == 9
    t = ap10k_table()
    assert t.names == AP10K_KEYPOINT_NAMES and t.n == 17
    assert t.flip_perm[t.names.index("left_eye")] == t.names.index("right_eye")
    assert t.flip_perm[t.names.index("left_back_paw")] == t.names.index("right_back_paw")
    assert t.flip_perm[t.names.index("nose")] == t.names.index("nose")


# ----------------------------------------------------------------------------------------------------------------
# SPair-71k


def test_read_spair(tmp_path):
    root = write_spair(tmp_path / "SPair-71k")
    pairs = read_pairs("spair", root, "test")
    assert [p.category for p in pairs] == ["car", "car", "cat"]
    p = pairs[0]  # 2008_000001 -> 2008_000002
    assert p.image_sizes == ((48, 64), (40, 56))
    assert p.n_keypoints == 30 and p.table.n == 30
    np.testing.assert_array_equal(np.flatnonzero(p.vis[0]), [0, 2, 10, 11, 20])
    np.testing.assert_array_equal(np.flatnonzero(p.vis[1]), [1, 2, 10, 13, 21, 23])
    np.testing.assert_allclose(p.kps[0][11], spair_keypoint("2008_000001", 11))
    np.testing.assert_allclose(p.bboxes[1], [2, 3, 52, 38])
    img0, img1 = p.load_images()
    assert img0.shape == (48, 64, 3) and img1.shape == (40, 56, 3)
    m0, _ = p.load_masks()
    assert m0.shape == (48, 64) and m0[10, 10] and not m0[0, 0] and not m0[2, 10]  # 255 is void, not object
    s = p.to_sample("k")
    assert s["meta"]["source"] == "spair" and s["meta"]["flip_perm"] == spair_table("car").flip_perm
    assert s["meta"]["annotations"]["viewpoint_variation"] == 1
    assert len(read_pairs("spair", root, "trn")) == 2
    assert [q.category for q in read_pairs("spair", root, "test", ["cat"])] == ["cat"]


def test_spair_falls_back_to_pair_keypoints(tmp_path):
    root = write_spair(tmp_path / "SPair-71k")
    (root / "ImageAnnotation" / "car" / "2008_000002.json").unlink()
    p = read_pairs("spair", root, "test")[0]
    np.testing.assert_array_equal(np.flatnonzero(p.vis[1]), [2, 10])  # only the pair's mutually visible ids
    np.testing.assert_allclose(p.kps[1][10], spair_keypoint("2008_000002", 10))


@pytest.mark.parametrize(
    "breakage, culprit",
    [
        ("missing_image", "JPEGImages/car/2008_000002.jpg"),
        ("malformed_pair", "PairAnnotation/test/000000-2008_000001-2008_000002:car.json"),
        ("malformed_image_anno", "ImageAnnotation/car/2008_000003.json"),
        ("kp_outside", "ImageAnnotation/car/2008_000001.json"),
        ("no_split", "PairAnnotation/val"),
    ],
)
def test_bad_spair_folders_name_the_file(tmp_path, breakage, culprit):
    root = write_spair(tmp_path / "SPair-71k")
    split = "test"
    if breakage == "missing_image":
        (root / culprit).unlink()
    elif breakage == "malformed_pair":
        (root / culprit).write_text('{"category": "car", "src_imname": ')
    elif breakage == "malformed_image_anno":
        (root / culprit).write_text("not json")
    elif breakage == "kp_outside":
        anno = json.loads((root / culprit).read_text())
        anno["kps"]["0"] = [64 + 5, 10]  # the image is 64 wide
        (root / culprit).write_text(json.dumps(anno))
    else:
        split = "val"
    with pytest.raises(DatasetFormatError) as e:
        read_pairs("spair", root, split)
    assert str(root / culprit) in str(e.value)


# ----------------------------------------------------------------------------------------------------------------
# PF-PASCAL


def test_read_pfpascal_test_csv_points(tmp_path):
    root = write_pfpascal(tmp_path / "PF-dataset-PASCAL")
    pairs = read_pairs("pfpascal", root, "test")
    assert len(pairs) == 2 and pairs[0].category == "cat"
    np.testing.assert_allclose(pairs[0].kps[0], [[5, 6], [30, 30]])
    np.testing.assert_allclose(pairs[0].kps[1], [[8, 9], [40, 40]])
    assert pairs[0].vis[0].all() and pairs[0].table.flip_perm is None
    np.testing.assert_allclose(pairs[0].bboxes[1], [1, 2, 45, 44])  # from the .mat next to the CSV image
    assert pairs[0].image_paths[0] == root / "JPEGImages" / "2007_000027.jpg"


def test_read_pfpascal_trn_mat_keypoints(tmp_path):
    root = write_pfpascal(tmp_path / "PF-dataset-PASCAL")
    pairs = read_pairs("pfpascal", root, "trn")
    p = pairs[0]
    assert p.n_keypoints == 5  # padded to the longer of the two .mat files
    np.testing.assert_array_equal(p.vis[0], [True, True, False, True, False])
    np.testing.assert_array_equal(p.vis[1], [True, False, True, True, True])
    np.testing.assert_allclose(p.kps[1][4], [10, 44])
    assert pairs[1].category == "bicycle"


def test_bad_pfpascal_folders_name_the_file(tmp_path):
    root = write_pfpascal(tmp_path / "PF-dataset-PASCAL")
    mat = root / "Annotations" / "cat" / "2007_000032.mat"
    scipy.io.savemat(mat, {"kps": np.array([[8.0, 9.0], [100.0, 5.0]])})  # x = 100 outside a 48-wide image
    with pytest.raises(DatasetFormatError, match="outside") as e:
        read_pairs("pfpascal", root, "trn")
    assert str(mat) in str(e.value)
    mat.unlink()
    with pytest.raises(DatasetFormatError, match="missing") as e:
        read_pairs("pfpascal", root, "trn")
    assert str(mat) in str(e.value)
    (root / "test_pairs_pf_pascal.csv").write_text("source_image,target_image,class,XA,YA,XB,YB\na,b,99,1,1,1,1\n")
    with pytest.raises(DatasetFormatError, match="class 99") as e:
        read_pairs("pfpascal", root, "test")
    assert str(root / "test_pairs_pf_pascal.csv") in str(e.value)
    with pytest.raises(DatasetFormatError, match="val_pairs_pf_pascal.csv"):
        read_pairs("pfpascal", root, "val")


# ----------------------------------------------------------------------------------------------------------------
# AP-10K


def test_read_ap10k(tmp_path):
    root = write_ap10k(tmp_path / "ap-10k")
    (p,) = read_pairs("ap10k", root, "test")
    assert p.category == "dog" and p.n_keypoints == 17
    raw = np.array(ap10k_keypoints("000000000011")).reshape(17, 3)
    np.testing.assert_array_equal(p.vis[0], raw[:, 2] > 0)  # v = 1 counts as visible, as peers count it
    assert p.vis[0][4] and not p.vis[0][2]
    np.testing.assert_allclose(p.kps[0], raw[:, :2])
    np.testing.assert_allclose(p.bboxes[0], [2, 3, 60, 43])  # l, t, w, h -> x1, y1, x2, y2
    assert p.image_paths[1] == root / "JPEGImages" / "canidae" / "dog" / "000000000012.jpg"
    assert p.extra["family"] == ["canidae", "canidae"]
    (q,) = read_pairs("ap10k", root, "test_cross_family")
    assert q.category == "all" and q.extra["species"] == ["dog", "cat"]


def test_bad_ap10k_folders_name_the_file(tmp_path):
    root = write_ap10k(tmp_path / "ap-10k")
    anno = root / "ImageAnnotation" / "canidae" / "dog" / "000000000012.json"
    data = json.loads(anno.read_text())
    data["keypoints"] = data["keypoints"][:-3]
    anno.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match="17") as e:
        read_pairs("ap10k", root, "test")
    assert str(anno) in str(e.value)
    anno.unlink()
    with pytest.raises(DatasetFormatError, match="missing") as e:
        read_pairs("ap10k", root, "test")
    assert str(anno) in str(e.value)
