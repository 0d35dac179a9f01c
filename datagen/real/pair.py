"""One annotated real image pair, as every benchmark reader yields it, and its conversion to a schema sample.

A :class:`RealPair` holds annotations only (paths, keypoints, boxes); images and masks are read on demand, so a
reader can validate a whole split up front without decoding thousands of JPEGs. Coordinates are the dataset's
own pixel coordinates of the original images, ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datagen.real.tables import KeypointTable
from loaders.schema import SCHEMA_VERSION

__all__ = ["DatasetFormatError", "RealPair", "read_image", "read_mask", "image_size", "check_keypoints"]

# A visible keypoint may sit at most this far (px) outside the pixel-centre rectangle [-0.5, W - 0.5]; the
# datasets annotate in 0- or 1-based integer pixels, so a point on the last column or row must still pass.
KEYPOINT_SLACK_PX = 1.0


class DatasetFormatError(ValueError):
    """A dataset folder does not follow its format; the message starts with the offending file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, or :class:`DatasetFormatError` naming it."""
    if not path.is_file():
        raise DatasetFormatError(path, "image file is missing")
    try:
        with Image.open(path) as im:
            w, h = im.size
    except OSError as e:
        raise DatasetFormatError(path, f"not a readable image ({e})") from e
    return h, w


def read_image(path: Path) -> np.ndarray:
    """uint8 [H, W, 3] RGB."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).copy()
    except OSError as e:
        raise DatasetFormatError(path, f"not a readable image ({e})") from e


def read_mask(path: Path) -> np.ndarray:
    """bool [H, W]: the object's pixels of a segmentation PNG (any label other than 0 and the 255 'void' border)."""
    try:
        with Image.open(path) as im:
            labels = np.asarray(im if im.mode in ("L", "P", "I", "I;16", "1") else im.convert("L"))
    except OSError as e:
        raise DatasetFormatError(path, f"not a readable mask ({e})") from e
    return (labels != 0) & (labels != 255)


def check_keypoints(path: Path, kps: np.ndarray, vis: np.ndarray, hw: tuple[int, int]) -> None:
    """Raise :class:`DatasetFormatError` naming ``path`` if a visible keypoint is non-finite or off the image."""
    h, w = hw
    for i in np.flatnonzero(vis):
        x, y = kps[i]
        if not (np.isfinite(x) and np.isfinite(y)):
            raise DatasetFormatError(path, f"keypoint {i} is visible but has no finite position")
        lo = -0.5 - KEYPOINT_SLACK_PX
        if not (lo <= x <= w - 0.5 + KEYPOINT_SLACK_PX and lo <= y <= h - 0.5 + KEYPOINT_SLACK_PX):
            raise DatasetFormatError(path, f"keypoint {i} at ({x:g}, {y:g}) lies outside the {w}x{h} image")


@dataclass
class RealPair:
    """An annotated ordered pair (view 0 = source, view 1 = target) of one benchmark.

    Attributes:
        dataset: ``"spair"``, ``"pfpascal"`` or ``"ap10k"`` (the schema's ``meta.source``).
        split: the benchmark split it was read from.
        category: category (SPair/PF-PASCAL class, AP-10K species or family).
        pair_id: unique name of the pair within the split.
        image_paths: the two image files.
        image_sizes: ``(H, W)`` of each image.
        kps: float32 [N, 2] (x, y) px per view, in the table's id order; arbitrary where not visible.
        vis: bool [N] per view.
        table: the category's keypoint semantics (names, flip pairs, symmetric groups).
        bboxes: ``(x1, y1, x2, y2)`` px per view, or ``None`` where the dataset has none.
        mask_paths: segmentation PNG per view, or ``None``.
        extra: dataset-specific annotations worth keeping (viewpoint variation, species, ...).
    """

    dataset: str
    split: str
    category: str
    pair_id: str
    image_paths: tuple[Path, Path]
    image_sizes: tuple[tuple[int, int], tuple[int, int]]
    kps: tuple[np.ndarray, np.ndarray]
    vis: tuple[np.ndarray, np.ndarray]
    table: KeypointTable
    bboxes: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    mask_paths: tuple[Path | None, Path | None] = (None, None)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_keypoints(self) -> int:
        return int(self.kps[0].shape[0])

    def load_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Both images, uint8 [H, W, 3]; their sizes are checked against the annotations."""
        out = []
        for path, hw in zip(self.image_paths, self.image_sizes):
            img = read_image(path)
            if img.shape[:2] != tuple(hw):
                raise DatasetFormatError(path, f"image is {img.shape[1]}x{img.shape[0]}, annotated as {hw[1]}x{hw[0]}")
            out.append(img)
        return out[0], out[1]

    def load_masks(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Both masks (bool [H, W]) where the dataset has them, else ``None``; sizes are checked."""
        out: list[np.ndarray | None] = []
        for path, hw in zip(self.mask_paths, self.image_sizes):
            if path is None:
                out.append(None)
                continue
            mask = read_mask(path)
            if mask.shape != tuple(hw):
                raise DatasetFormatError(path, f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {hw[1]}x{hw[0]}")
            out.append(mask)
        return out[0], out[1]

    def meta(self) -> dict[str, Any]:
        """The schema ``meta`` of this pair before any augmentation (image sizes are the originals)."""
        t = self.table
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.dataset,
            "category": self.category,
            "split": self.split,
            "pair_id": self.pair_id,
            "image_names": [p.name for p in self.image_paths],
            "image_size0": list(self.image_sizes[0]),
            "image_size1": list(self.image_sizes[1]),
            "keypoint_names": list(t.names),
            "keypoint_sides": None if t.sides is None else list(t.sides),
            "flip_perm": t.flip_perm,
            "sym_groups": [list(g) for g in t.sym_groups],
            "bbox0": None if self.bboxes[0] is None else [float(v) for v in self.bboxes[0]],
            "bbox1": None if self.bboxes[1] is None else [float(v) for v in self.bboxes[1]],
            **({"annotations": self.extra} if self.extra else {}),
        }

    def to_sample(self, key: str = "") -> dict[str, Any]:
        """Read the images (and masks) and return a schema sample dict (no dense fields)."""
        image0, image1 = self.load_images()
        mask0, mask1 = self.load_masks()
        sample: dict[str, Any] = {
            "__key__": key,
            "image0": image0,
            "image1": image1,
            "kps0": np.asarray(self.kps[0], np.float32),
            "kps1": np.asarray(self.kps[1], np.float32),
            "kps0_vis": np.asarray(self.vis[0], bool),
            "kps1_vis": np.asarray(self.vis[1], bool),
            "meta": self.meta(),
        }
        if mask0 is not None:
            sample["mask0"] = mask0
        if mask1 is not None:
            sample["mask1"] = mask1
        return sample
