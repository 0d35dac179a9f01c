"""PF-PASCAL reader (reference/benchmarks.md §B.2).

Layout under ``root`` (the ``PF-dataset-PASCAL`` folder)::

    {trn,val,test}_pairs_pf_pascal.csv    # header row; source_image, target_image, class[, XA, YA, XB, YB]
    JPEGImages/<name>.jpg
    Annotations/<category>/<name>.mat     # "kps": [K, 2] (NaN rows = absent), "bbox": [[x1, y1, x2, y2]]

Image paths in the CSVs are relative to the folder *above* ``root`` (``PF-dataset-PASCAL/JPEGImages/...``).
``class`` is 1-based into :data:`~datagen.real.tables.PFPASCAL_CATEGORIES`. Evaluation CSVs carry the
matched points as ``;``-separated strings (XA, YA for the source, XB, YB for the target); peers score those,
so they are used when present (``keypoints="auto"``). Training pairs read ``kps`` from the ``.mat`` files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import scipy.io
from tqdm import tqdm

from datagen.real.pair import DatasetFormatError, RealPair, check_keypoints, image_size
from datagen.real.tables import PFPASCAL_CATEGORIES, pfpascal_table

__all__ = ["read_pfpascal", "read_pfpascal_mat"]

_SPLIT_ALIASES = {"trn": ("trn", "train"), "train": ("train", "trn"), "val": ("val",), "test": ("test",)}


def _csv_path(root: Path, split: str) -> Path:
    for name in _SPLIT_ALIASES.get(split, (split,)):
        path = root / f"{name}_pairs_pf_pascal.csv"
        if path.is_file():
            return path
    raise DatasetFormatError(root / f"{split}_pairs_pf_pascal.csv", "pairs CSV is missing")


def _resolve_image(root: Path, rel: str, csv_path: Path, line: int) -> Path:
    rel_path = Path(rel.strip())
    for candidate in (root.parent / rel_path, root / rel_path, root / "JPEGImages" / rel_path.name):
        if candidate.is_file():
            return candidate
    raise DatasetFormatError(
        root / "JPEGImages" / rel_path.name, f"image file is missing (listed in {csv_path}:{line})"
    )


def _points(text: str, csv_path: Path, line: int) -> np.ndarray:
    try:
        return np.array([float(v) for v in text.split(";") if v.strip()], np.float32)
    except ValueError:
        raise DatasetFormatError(
            csv_path, f"line {line}: keypoint list {text!r} is not ';'-separated numbers"
        ) from None


def read_pfpascal_mat(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One annotation file: float32 [K, 2] keypoints, bool [K] visible (non-NaN rows), bbox [4] or ``None``."""
    if not path.is_file():
        raise DatasetFormatError(path, "annotation file is missing")
    try:
        mat = scipy.io.loadmat(str(path))
    except (ValueError, OSError, TypeError) as e:
        raise DatasetFormatError(path, f"not a readable .mat file ({e})") from e
    if "kps" not in mat:
        raise DatasetFormatError(path, "missing variable 'kps'")
    kps = np.asarray(mat["kps"], np.float64)
    if kps.size == 0:
        kps = kps.reshape(0, 2)
    if kps.ndim != 2 or kps.shape[1] != 2:
        raise DatasetFormatError(path, f"'kps' must be [K, 2], got shape {kps.shape}")
    vis = np.isfinite(kps).all(axis=1)
    bbox = None
    if "bbox" in mat:
        bbox = np.asarray(mat["bbox"], np.float64).ravel()
        if bbox.shape != (4,):
            raise DatasetFormatError(path, f"'bbox' must hold x1, y1, x2, y2, got shape {bbox.shape}")
        if not np.isfinite(bbox).all() or bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
            raise DatasetFormatError(path, f"'bbox' must have x1 < x2 and y1 < y2, got {bbox.tolist()}")
    return np.nan_to_num(kps).astype(np.float32), vis, bbox


def read_pfpascal(
    root: str | Path, split: str = "test", categories: list[str] | None = None, keypoints: str = "auto"
) -> list[RealPair]:
    """Read and validate every pair of a PF-PASCAL split.

    Args:
        root: the ``PF-dataset-PASCAL`` folder.
        split: ``trn`` (alias ``train``), ``val`` or ``test``.
        categories: keep only these classes (default: all).
        keypoints: ``"csv"`` (the CSV's matched points), ``"mat"`` (the ``.mat`` annotations, with visibility)
            or ``"auto"`` (the CSV's points when it has them).

    Raises:
        DatasetFormatError: naming the file when something is missing or malformed.
    """
    root = Path(root)
    csv_path = _csv_path(root, split)
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetFormatError(csv_path, f"not a readable CSV ({e})") from e
    if len(rows) < 2:
        raise DatasetFormatError(csv_path, "holds no pairs (a header row and one row per pair expected)")
    has_points = len(rows[0]) >= 7
    use_csv = {"auto": has_points, "csv": True, "mat": False}[keypoints]
    if use_csv and not has_points:
        raise DatasetFormatError(csv_path, "has no keypoint columns (XA, YA, XB, YB); use keypoints='mat'")
    pairs = []
    for line, row in enumerate(tqdm(rows[1:], desc=f"pfpascal {split}", unit="pair", leave=False), start=2):
        if not row:
            continue
        if len(row) < (7 if use_csv else 3):
            raise DatasetFormatError(csv_path, f"line {line}: expected at least {7 if use_csv else 3} columns")
        try:
            class_id = int(float(row[2]))
        except ValueError:
            raise DatasetFormatError(csv_path, f"line {line}: class {row[2]!r} is not an integer") from None
        if not 1 <= class_id <= len(PFPASCAL_CATEGORIES):
            raise DatasetFormatError(csv_path, f"line {line}: class {class_id} outside 1..{len(PFPASCAL_CATEGORIES)}")
        category = PFPASCAL_CATEGORIES[class_id - 1]
        if categories is not None and category not in categories:
            continue
        paths = [_resolve_image(root, row[v], csv_path, line) for v in (0, 1)]
        sizes = [image_size(p) for p in paths]
        mats = []
        for p in paths:
            mat_path = root / "Annotations" / category / (p.stem + ".mat")
            mats.append((mat_path, read_pfpascal_mat(mat_path) if (not use_csv or mat_path.is_file()) else None))
        if use_csv:
            xa, ya, xb, yb = (_points(row[c], csv_path, line) for c in (3, 4, 5, 6))
            if not len(xa) == len(ya) == len(xb) == len(yb):
                raise DatasetFormatError(csv_path, f"line {line}: XA, YA, XB, YB hold different numbers of points")
            kps = [np.stack([xa, ya], 1), np.stack([xb, yb], 1)]
            vis = [np.ones(len(xa), bool), np.ones(len(xa), bool)]
            where = [csv_path, csv_path]
        else:
            n = max(m[1][0].shape[0] for m in mats)
            kps, vis = [], []
            for _, (k, v, _) in mats:
                kps.append(np.concatenate([k, np.zeros((n - len(k), 2), np.float32)]))
                vis.append(np.concatenate([v, np.zeros(n - len(v), bool)]))
            where = [m[0] for m in mats]
        for v in (0, 1):
            check_keypoints(where[v], kps[v], vis[v], sizes[v])
        pairs.append(
            RealPair(
                dataset="pfpascal",
                split=split,
                category=category,
                pair_id=f"{paths[0].stem}-{paths[1].stem}:{category}",
                image_paths=(paths[0], paths[1]),
                image_sizes=(sizes[0], sizes[1]),
                kps=(kps[0].astype(np.float32), kps[1].astype(np.float32)),
                vis=(vis[0], vis[1]),
                table=pfpascal_table(len(kps[0])),
                bboxes=tuple(None if m[1] is None else m[1][2] for m in mats),
            )
        )
    if not pairs:
        raise DatasetFormatError(csv_path, f"holds no pairs of the categories {categories}")
    return pairs
