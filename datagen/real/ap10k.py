"""AP-10K reader, in the semantic-correspondence layout peers build (GeoAware-SC; reference/benchmarks.md §B.3).

Layout under ``root`` (the ``ap-10k`` folder)::

    JPEGImages/<family>/<species>/<id>.jpg
    ImageAnnotation/<family>/<species>/<id>.json   # COCO annotation + image fields: "bbox" (l, t, w, h),
                                                   # "keypoints" (17 x [x, y, v]), "width", "height", ...
    PairAnnotation/<split>/<src>-<trg>:<category>.json   # {"src_json_path": ..., "trg_json_path": ...}

``<split>`` is ``trn``, ``val``, ``test`` or an evaluation subset (``test_cross_species``,
``test_cross_family``, ...). ``<category>`` is the species (intra-species), the family (cross-species) or
``all`` (cross-family). The JSON paths in pair files were written relative to the peers' working directory
(``data/ap-10k/ImageAnnotation/...``), so they are resolved from their ``ImageAnnotation`` component on.
A keypoint is visible when its COCO flag ``v`` is positive, as peers count it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from datagen.real.pair import DatasetFormatError, RealPair, check_keypoints, image_size
from datagen.real.spair import load_json
from datagen.real.tables import ap10k_table

__all__ = ["read_ap10k", "read_ap10k_image"]


def _resolve(root: Path, stored: str, pair_path: Path) -> Path:
    parts = Path(str(stored).replace("\\", "/")).parts
    if "ImageAnnotation" not in parts:
        raise DatasetFormatError(pair_path, f"image annotation path {stored!r} has no 'ImageAnnotation' component")
    return root.joinpath(*parts[parts.index("ImageAnnotation") :])


def read_ap10k_image(path: Path) -> dict:
    """One image annotation: ``kps`` float32 [17, 2], ``vis`` bool [17], ``bbox`` x1 y1 x2 y2, ``hw``, names."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise DatasetFormatError(path, "expected a JSON object")
    for key in ("keypoints", "bbox", "width", "height"):
        if key not in data:
            raise DatasetFormatError(path, f"missing field {key!r}")
    raw = np.asarray(data["keypoints"], np.float64).ravel()
    if raw.shape != (17 * 3,):
        raise DatasetFormatError(path, f"'keypoints' must hold 17 x [x, y, v], got {raw.size} numbers")
    raw = raw.reshape(17, 3)
    box = np.asarray(data["bbox"], np.float64).ravel()
    if box.shape != (4,) or not np.isfinite(box).all() or (box[2:] <= 0).any():
        raise DatasetFormatError(
            path, f"'bbox' must be [left, top, width, height] with width, height > 0, got {data['bbox']!r}"
        )
    return {
        "kps": raw[:, :2].astype(np.float32),
        "vis": raw[:, 2] > 0,
        "bbox": np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]]),
        "hw": (int(data["height"]), int(data["width"])),
        "species": data.get("name"),
        "family": data.get("supercategory"),
    }


def read_ap10k(root: str | Path, split: str = "test", categories: list[str] | None = None) -> list[RealPair]:
    """Read and validate every pair of an AP-10K correspondence split.

    Args:
        root: the ``ap-10k`` folder.
        split: ``trn``, ``val``, ``test``, or a subset such as ``test_cross_species``.
        categories: keep only pairs whose file-name category (species, family or ``all``) is listed.

    Raises:
        DatasetFormatError: naming the file when something is missing or malformed.
    """
    root = Path(root)
    pair_dir = root / "PairAnnotation" / split
    if not pair_dir.is_dir():
        raise DatasetFormatError(pair_dir, f"no pair annotations for split {split!r}")
    files = sorted(pair_dir.glob("*.json"))
    if categories is not None:
        files = [f for f in files if f.stem.rsplit(":", 1)[-1] in set(categories)]
    if not files:
        raise DatasetFormatError(pair_dir, "holds no pair annotation files (*.json)")
    table = ap10k_table()
    cache: dict[Path, dict] = {}
    pairs = []
    for path in tqdm(files, desc=f"ap10k {split}", unit="pair", leave=False):
        data = load_json(path)
        views = []
        for key in ("src_json_path", "trg_json_path"):
            if not isinstance(data, dict) or key not in data:
                raise DatasetFormatError(path, f"missing field {key!r}")
            anno_path = _resolve(root, data[key], path)
            if anno_path not in cache:
                cache[anno_path] = read_ap10k_image(anno_path)
            anno = cache[anno_path]
            rel = anno_path.relative_to(root / "ImageAnnotation").with_suffix(".jpg")
            image_path = root / "JPEGImages" / rel
            hw = image_size(image_path)
            if hw != anno["hw"]:
                raise DatasetFormatError(
                    anno_path, f"annotated as {anno['hw'][1]}x{anno['hw'][0]}, image is {hw[1]}x{hw[0]}"
                )
            check_keypoints(anno_path, anno["kps"], anno["vis"], hw)
            views.append((image_path, anno))
        (p0, a0), (p1, a1) = views
        pairs.append(
            RealPair(
                dataset="ap10k",
                split=split,
                category=path.stem.rsplit(":", 1)[-1],
                pair_id=path.stem,
                image_paths=(p0, p1),
                image_sizes=(a0["hw"], a1["hw"]),
                kps=(a0["kps"], a1["kps"]),
                vis=(a0["vis"], a1["vis"]),
                table=table,
                bboxes=(a0["bbox"], a1["bbox"]),
                extra={"species": [a0["species"], a1["species"]], "family": [a0["family"], a1["family"]]},
            )
        )
    return pairs
