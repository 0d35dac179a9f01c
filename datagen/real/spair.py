"""SPair-71k reader (reference/benchmarks.md §B.1).

Layout under ``root``::

    JPEGImages/<category>/<name>.jpg
    ImageAnnotation/<category>/<name>.json   # "kps": {"0": [x, y] | null, ...}, "bndbox", "image_width", ...
    PairAnnotation/{trn,val,test}/<pair>:<category>.json
    Segmentation/<category>/<name>.png       # optional object masks
    Layout/large/{trn,val,test}.txt          # optional: the pair names of each split, one per line

A pair file names its two images (``src_imname``, ``trg_imname``), their sizes (``src_imsize`` = W, H, C) and
boxes (``src_bndbox`` = x1, y1, x2, y2, with positive width and height). Keypoints come from the image annotations
(every id, with visibility), as peers read them; when an image annotation is absent the pair's own
``src_kps``/``trg_kps`` at ``kps_ids`` (the mutually visible points) are used instead. Where both exist they must
agree: every ``kps_ids`` point visible in both image annotations, at the pair file's position within
:data:`KPS_AGREE_PX`. When ``Layout/large/<split>.txt`` exists (peers iterate it), it must list exactly the split's
pair files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from datagen.real.pair import DatasetFormatError, RealPair, check_keypoints, image_size
from datagen.real.tables import SPAIR_CATEGORIES, spair_table

__all__ = ["read_spair", "load_json"]

SPLITS = ("trn", "val", "test")
KPS_AGREE_PX = 1.0  # a pair file's src_kps/trg_kps against its image annotations
_EXTRA_FIELDS = ("viewpoint_variation", "scale_variation", "truncation", "occlusion", "mirror")


def load_json(path: Path) -> Any:
    """Parse a JSON file, or raise :class:`DatasetFormatError` naming it."""
    if not path.is_file():
        raise DatasetFormatError(path, "annotation file is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(path, f"malformed JSON ({e})") from e


def _field(data: dict, key: str, path: Path) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise DatasetFormatError(path, f"missing field {key!r}")
    return data[key]


def _box(value: Any, path: Path, key: str) -> np.ndarray:
    box = np.asarray(value, dtype=np.float64).ravel() if isinstance(value, list) else np.zeros(0)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise DatasetFormatError(path, f"{key} must be [x1, y1, x2, y2] with x1 < x2, y1 < y2, got {value!r}")
    return box


def _image_keypoints(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Keypoints of one image annotation: float32 [n, 2], bool [n], and the parsed JSON."""
    data = load_json(path)
    table = _field(data, "kps", path)
    if not isinstance(table, dict):
        raise DatasetFormatError(path, "'kps' must map keypoint ids to [x, y] or null")
    kps = np.zeros((n, 2), np.float32)
    vis = np.zeros(n, bool)
    for key, point in table.items():
        if point is None:
            continue
        try:
            i = int(key)
        except ValueError:
            raise DatasetFormatError(path, f"keypoint id {key!r} is not an integer") from None
        if not 0 <= i < n:
            raise DatasetFormatError(path, f"keypoint id {i} is beyond the category's {n} keypoints")
        if not (isinstance(point, list) and len(point) >= 2):
            raise DatasetFormatError(path, f"keypoint {i} must be [x, y], got {point!r}")
        kps[i] = point[:2]
        vis[i] = True
    return kps, vis, data


def _pair_keypoints(data: dict, side: str, path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        ids = [int(i) for i in _field(data, "kps_ids", path)]
        pts = np.asarray(_field(data, f"{side}_kps", path), np.float32).reshape(-1, 2)
    except (TypeError, ValueError) as e:
        raise DatasetFormatError(path, f"kps_ids / {side}_kps must be integer ids and [x, y] points ({e})") from None
    if len(ids) != len(pts) or any(not 0 <= i < n for i in ids):
        raise DatasetFormatError(path, f"kps_ids and {side}_kps disagree or name ids outside 0..{n - 1}")
    kps = np.zeros((n, 2), np.float32)
    vis = np.zeros(n, bool)
    kps[ids] = pts
    vis[ids] = True
    return kps, vis


def _check_pair_keypoints(
    data: dict, side: str, path: Path, n: int, kps: np.ndarray, vis: np.ndarray, anno_path: Path
) -> None:
    """The pair file's ``{side}_kps`` at ``kps_ids`` must be visible in the image annotation, at the same place."""
    own, own_vis = _pair_keypoints(data, side, path, n)
    for i in np.flatnonzero(own_vis):
        if not vis[i]:
            raise DatasetFormatError(path, f"kps_ids has keypoint {i}, which {anno_path.name} marks absent")
        if np.abs(own[i] - kps[i]).max() > KPS_AGREE_PX:
            raise DatasetFormatError(
                path, f"{side}_kps puts keypoint {i} at {own[i].tolist()}, {anno_path.name} at {kps[i].tolist()}"
            )


def _check_layout(layout: Path, pair_dir: Path, files: list[Path], subset: bool) -> None:
    """When the split's layout list exists, it and the pair files name the same pairs (``subset``: the files
    were filtered by category, so only they must be listed)."""
    if not layout.is_file():
        return
    listed = {ln.strip().removesuffix(".json") for ln in layout.read_text().splitlines() if ln.strip()}
    present = {f.stem for f in files}
    unlisted = sorted(present - listed)
    if unlisted:
        raise DatasetFormatError(
            layout, f"does not list {len(unlisted)} pair file(s) of {pair_dir} (first: {unlisted[0]}.json)"
        )
    missing = sorted(listed - present)
    if missing and not subset:
        raise DatasetFormatError(
            layout, f"lists {len(missing)} pair(s) with no file in {pair_dir} (first: {missing[0]})"
        )


def read_spair(root: str | Path, split: str = "test", categories: list[str] | None = None) -> list[RealPair]:
    """Read and validate every pair of a SPair-71k split.

    Args:
        root: the ``SPair-71k`` folder.
        split: ``trn``, ``val`` or ``test``.
        categories: keep only these categories (default: all).

    Returns:
        Pairs sorted by pair file name.

    Raises:
        DatasetFormatError: naming the file when something is missing or malformed.
    """
    root = Path(root)
    pair_dir = root / "PairAnnotation" / split
    if not pair_dir.is_dir():
        raise DatasetFormatError(pair_dir, f"no pair annotations for split {split!r} (expected one of {SPLITS})")
    files = sorted(pair_dir.glob("*.json"))
    if categories is not None:
        wanted = set(categories)
        files = [f for f in files if f.stem.rsplit(":", 1)[-1] in wanted]
    if not files:
        raise DatasetFormatError(pair_dir, "holds no pair annotation files (*.json)")
    _check_layout(root / "Layout" / "large" / f"{split}.txt", pair_dir, files, categories is not None)
    cache: dict[Path, tuple[np.ndarray, np.ndarray, dict]] = {}
    pairs = []
    for path in tqdm(files, desc=f"spair {split}", unit="pair", leave=False):
        data = load_json(path)
        category = _field(data, "category", path)
        if category not in SPAIR_CATEGORIES:
            raise DatasetFormatError(path, f"unknown category {category!r}")
        table = spair_table(category)
        views = []
        for side in ("src", "trg"):
            name = str(_field(data, f"{side}_imname", path))
            image_path = root / "JPEGImages" / category / name
            hw = image_size(image_path)
            imsize = _field(data, f"{side}_imsize", path)
            if not isinstance(imsize, list) or list(imsize[:2]) != [hw[1], hw[0]]:
                raise DatasetFormatError(path, f"{side}_imsize {imsize[:2]} but {image_path} is {hw[1]}x{hw[0]}")
            anno_path = root / "ImageAnnotation" / category / (Path(name).stem + ".json")
            if anno_path.is_file():
                if anno_path not in cache:
                    cache[anno_path] = _image_keypoints(anno_path, table.n)
                kps, vis, anno = cache[anno_path]
                where = anno_path
                if "kps_ids" in data:
                    _check_pair_keypoints(data, side, path, table.n, kps, vis, anno_path)
            else:
                kps, vis = _pair_keypoints(data, side, path, table.n)
                anno, where = {}, path
            check_keypoints(where, kps, vis, hw)
            box_key = f"{side}_bndbox"
            bbox = _box(data[box_key] if box_key in data else _field(anno, "bndbox", path), path, box_key)
            mask_path = root / "Segmentation" / category / (Path(name).stem + ".png")
            views.append((image_path, hw, kps, vis, bbox, mask_path if mask_path.is_file() else None))
        extra = {k: data[k] for k in _EXTRA_FIELDS if k in data}
        pairs.append(
            RealPair(
                dataset="spair",
                split=split,
                category=category,
                pair_id=str(data.get("filename", path.stem)),
                image_paths=(views[0][0], views[1][0]),
                image_sizes=(views[0][1], views[1][1]),
                kps=(views[0][2], views[1][2]),
                vis=(views[0][3], views[1][3]),
                table=table,
                bboxes=(views[0][4], views[1][4]),
                mask_paths=(views[0][5], views[1][5]),
                extra=extra,
            )
        )
    return pairs
