"""Keypoint-exact augmentation of real pairs: flips keep left/right semantics, keypoints stay on their pixels."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from datagen.real import read_pairs
from datagen.real.augment import AugmentConfig, augment_pair, fit_longest_side, transform_bbox
from datagen.real.tables import AP10K_KEYPOINT_NAMES

NAMES = AP10K_KEYPOINT_NAMES
H, W = 96, 96  # square, so a flip-only augmentation onto 96 x 96 is a pure mirror
# a frontal animal looking at the camera: its own left side is on the image's right
FACE = {"left_eye": (62, 24), "right_eye": (34, 24), "nose": (48, 38), "neck": (48, 56),
        "left_shoulder": (70, 62), "right_shoulder": (26, 62)}  # fmt: skip
COLOURS = {name: tuple(int(c) for c in np.random.default_rng(i).integers(40, 256, 3)) for i, name in enumerate(FACE)}


def _write_frontal_ap10k(root: Path) -> Path:
    """An AP-10K folder with two frontal 'animals' whose keypoints are painted as coloured discs."""
    for k, name in enumerate(("000000000101", "000000000102")):
        img = np.full((H, W, 3), 90, np.uint8)
        kps = []
        for kp in NAMES:
            if kp in FACE:
                x, y = FACE[kp][0] + k, FACE[kp][1] + k  # the second image is shifted by a pixel
                cv2.circle(img, (x, y), 4, COLOURS[kp], -1)
                kps += [x, y, 2]
            else:
                kps += [0, 0, 0]
        (root / "JPEGImages" / "bovidae" / "cow").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "JPEGImages" / "bovidae" / "cow" / f"{name}.png", format="PNG")
        (root / "JPEGImages" / "bovidae" / "cow" / f"{name}.png").rename(
            root / "JPEGImages/bovidae/cow" / f"{name}.jpg"
        )
        anno = {"width": W, "height": H, "bbox": [20, 15, 58, 50], "keypoints": kps, "name": "cow",
                "supercategory": "bovidae"}  # fmt: skip
        (root / "ImageAnnotation" / "bovidae" / "cow").mkdir(parents=True, exist_ok=True)
        (root / "ImageAnnotation" / "bovidae" / "cow" / f"{name}.json").write_text(json.dumps(anno))
    (root / "PairAnnotation" / "trn").mkdir(parents=True)
    pair = {"src_json_path": "data/ap-10k/ImageAnnotation/bovidae/cow/000000000101.json",
            "trg_json_path": "data/ap-10k/ImageAnnotation/bovidae/cow/000000000102.json"}  # fmt: skip
    (root / "PairAnnotation" / "trn" / "000000000101-000000000102:cow.json").write_text(json.dumps(pair))
    return root


def _colour_at(img: np.ndarray, xy) -> np.ndarray:
    x, y = int(round(float(xy[0]))), int(round(float(xy[1])))
    return img[y, x].astype(int)


def _frontal_sample(tmp_path):
    (pair,) = read_pairs("ap10k", _write_frontal_ap10k(tmp_path / "ap-10k"), "trn")
    return pair.to_sample("k")


FLIP_ONLY = AugmentConfig(size=96, flip_p=1.0, scale=(1.0, 1.0), rotate_deg=0.0, translate=0.0, jitter=0.0, hue=0.0)


def test_flip_keeps_left_and_right(tmp_path):
    sample = _frontal_sample(tmp_path)
    i = {n: NAMES.index(n) for n in FACE}
    out = augment_pair(fit_longest_side(sample, 96), np.random.default_rng(0), FLIP_ONLY)
    assert out["meta"]["augment"]["flipped_views"] == [0, 1]
    for v in (0, 1):
        k, vis = out[f"kps{v}"], out[f"kps{v}_vis"]
        # the animal still faces the camera after the mirror, so its left eye / shoulder are still on image right
        assert k[i["left_eye"], 0] > k[i["nose"], 0] > k[i["right_eye"], 0]
        assert k[i["left_shoulder"], 0] > k[i["neck"], 0] > k[i["right_shoulder"], 0]
        assert vis[i["left_eye"]] and vis[i["right_eye"]] and not vis[NAMES.index("root_of_tail")]
        # ... and each label sits exactly on the mirrored mark: the left eye now shows the right eye's disc
        img = out[f"image{v}"]
        np.testing.assert_allclose(k[i["left_eye"]], [W - 1 - (FACE["right_eye"][0] + v), FACE["right_eye"][1] + v])
        assert np.abs(_colour_at(img, k[i["left_eye"]]) - COLOURS["right_eye"]).max() <= 6
        assert np.abs(_colour_at(img, k[i["nose"]]) - COLOURS["nose"]).max() <= 6
    # the pair stays a correspondence: keypoint i of view 0 and keypoint i of view 1 are the same part
    np.testing.assert_allclose(out["kps1"][list(i.values())] - out["kps0"][list(i.values())], [[-1, 1]] * len(i))


def test_without_the_permutation_the_flip_would_swap_sides(tmp_path):
    """The control: a plain mirror (identity permutation) puts the 'left eye' label on the image left."""
    sample = _frontal_sample(tmp_path)
    sample["meta"] = {**sample["meta"], "flip_perm": list(range(len(NAMES)))}
    out = augment_pair(sample, np.random.default_rng(0), FLIP_ONLY)
    k = out["kps0"]
    assert k[NAMES.index("left_eye"), 0] < k[NAMES.index("right_eye"), 0]


def test_single_view_flip_keeps_semantics(tmp_path):
    sample = _frontal_sample(tmp_path)
    cfg = AugmentConfig(size=96, flip_p=0.5, scale=(1.0, 1.0), rotate_deg=0.0, translate=0.0, jitter=0.0, hue=0.0)
    seen = set()
    for seed in range(12):
        out = augment_pair(sample, np.random.default_rng(seed), cfg)
        seen.add(tuple(out["meta"]["augment"]["flipped_views"]))
        for v in (0, 1):
            k = out[f"kps{v}"]
            assert k[NAMES.index("left_eye"), 0] > k[NAMES.index("right_eye"), 0]
    assert {(0,), (1,)} <= seen  # one view alone was mirrored in some draws


def test_random_augmentation_keeps_keypoints_on_their_pixels(tmp_path):
    sample = _frontal_sample(tmp_path)
    cfg = AugmentConfig(size=112, flip_p=0.5, scale=(1.1, 1.5), rotate_deg=20.0, translate=0.05, jitter=0.0, hue=0.0)
    checked = 0
    for seed in range(6):
        out = augment_pair(sample, np.random.default_rng(seed), cfg)
        flipped = out["meta"]["augment"]["flipped_views"]
        for v in (0, 1):
            assert out[f"image{v}"].shape == (112, 112, 3)
            for name, idx in ((n, NAMES.index(n)) for n in FACE):
                if not out[f"kps{v}_vis"][idx]:
                    continue
                painted = name
                if v in flipped:  # after a mirror the label sits on its twin's disc
                    painted = NAMES[sample["meta"]["flip_perm"][idx]]
                assert np.abs(_colour_at(out[f"image{v}"], out[f"kps{v}"][idx]) - COLOURS[painted]).max() <= 12
                checked += 1
    assert checked > 40


def test_colour_jitter_changes_pixels_not_keypoints(tmp_path):
    sample = fit_longest_side(_frontal_sample(tmp_path), 96)
    cfg = AugmentConfig(size=96, flip_p=0.0, scale=(1.0, 1.0), rotate_deg=0.0, translate=0.0, jitter=0.4, hue=0.05)
    out = augment_pair(sample, np.random.default_rng(3), cfg)
    assert np.abs(out["image0"].astype(int) - sample["image0"].astype(int)).mean() > 3
    np.testing.assert_allclose(out["kps0"], sample["kps0"], atol=1e-4)


def test_bboxes_follow_the_maps(tmp_path):
    sample = _frontal_sample(tmp_path)
    assert sample["meta"]["bbox0"] == [20, 15, 78, 65]
    out = augment_pair(sample, np.random.default_rng(0), FLIP_ONLY)
    assert out["meta"]["bbox0"] == [W - 1 - 78, 15, W - 1 - 20, 65]
    half = fit_longest_side(sample, 48)  # exact half size: x -> (x + 0.5) / 2 - 0.5
    np.testing.assert_allclose(half["meta"]["bbox0"], [9.75, 7.25, 38.75, 32.25])
    assert transform_bbox([0, 0, 10, 10], np.array([[1, 0, 500.0], [0, 1, 0], [0, 0, 1]]), (48, 48)) is None
