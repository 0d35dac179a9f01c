"""Per-category keypoint tables of the real benchmarks: sides, left<->right flip pairs, symmetric groups.

The indices are the datasets' own keypoint ids (SPair-71k image annotations ``kps["0".."29"]``, AP-10K's 17
COCO-style keypoints), so a table row lines up with the annotation files without renumbering. The content
follows the tables peers evaluate with (GeoAware-SC ``utils_geoware.py``: ``SPAIR_LR``, ``SPAIR_FLIP_TRN``,
``SPAIR_GEO_AWARE``, ``AP10K_FLIP``, ``AP10K_GEO_AWARE``; see reference/benchmarks.md §B.6), re-expressed as
plain data: sides as strings, flips as disjoint swaps, symmetric groups as lists of two or more ids.

* ``sides[i]``: ``"left"``, ``"right"`` or ``"center"`` (peers' 1 / 2 / 0).
* ``flip_pairs``: the swaps that a horizontal mirror applies to keypoint identities (left eye <-> right eye).
* ``sym_groups``: keypoints that look alike (four wheels, four legs); a source keypoint is "geometry-aware"
  when its group has at least two members visible in the target (reference/benchmarks.md §B.6).

PF-PASCAL publishes no keypoint semantics, so it has no flip or symmetry table (``flip_perm`` is ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "KeypointTable",
    "SPAIR_CATEGORIES",
    "PFPASCAL_CATEGORIES",
    "AP10K_KEYPOINT_NAMES",
    "spair_table",
    "ap10k_table",
    "pfpascal_table",
    "flip_permutation",
]

SPAIR_CATEGORIES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "train", "tvmonitor",
)  # fmt: skip

# PF-PASCAL's class column is 1-based into this list (the 20 PASCAL VOC classes).
PFPASCAL_CATEGORIES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

AP10K_KEYPOINT_NAMES = (
    "left_eye", "right_eye", "nose", "neck", "root_of_tail",
    "left_shoulder", "left_elbow", "left_front_paw",
    "right_shoulder", "right_elbow", "right_front_paw",
    "left_hip", "left_knee", "left_back_paw",
    "right_hip", "right_knee", "right_back_paw",
)  # fmt: skip

_SIDE = {0: "center", 1: "left", 2: "right"}

# SPair-71k sides per keypoint id (0 center, 1 left, 2 right); the row length is the category's id count.
_SPAIR_SIDES = {
    "aeroplane": [0, 0, 0, 0, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 0, 0, 0],
    "bicycle": [0, 0, 2, 1, 0, 0, 2, 1, 0, 2, 1, 0, 0, 0],
    "bird": [0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 2, 1, 2, 1, 0],
    "boat": [0, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 0],
    "bottle": [1, 2, 1, 2, 1, 2, 1, 2, 1, 2],
    "bus": [2, 1, 2, 1, 0, 2, 1, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1],
    "car": [2, 1, 2, 1, 0, 0, 2, 1, 0, 0, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1],
    "cat": [2, 1, 2, 1, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0],
    "chair": [2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1],
    "cow": [2, 1, 2, 1, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1, 2, 1],
    "dog": [2, 1, 2, 1, 2, 1, 0, 0, 0, 2, 1, 2, 1, 0, 0, 0],
    "horse": [2, 1, 2, 1, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1],
    "motorbike": [2, 1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "person": [2, 1, 2, 1, 0, 0, 0, 0, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1],
    "pottedplant": [2, 0, 1, 0, 2, 1, 2, 0, 1],
    "sheep": [2, 1, 2, 1, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1, 2, 1],
    "train": [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2],
    "tvmonitor": [2, 0, 1, 2, 2, 0, 1, 1, 2, 0, 1, 2, 2, 0, 1, 1],
}

_ANIMAL_FLIP = [(0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12)]  # cat/cow/sheep-style heads and legs

# Left<->right swaps in SPair ids (bus ids 8, 9 and bicycle ids 11, 12 are unused in the dataset).
_SPAIR_FLIP = {
    "aeroplane": [(4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19), (20, 21)],
    "bicycle": [(2, 3), (6, 7), (9, 10)],
    "bird": [(1, 2), (4, 5), (7, 8), (10, 11), (12, 13), (14, 15)],
    "boat": [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)],
    "bottle": [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)],
    "bus": [(0, 1), (2, 3), (5, 6), (10, 20), (13, 23), (11, 21), (14, 24), (12, 22), (15, 25), (16, 17),
            (26, 27), (18, 19), (28, 29)],
    "car": [(0, 1), (2, 3), (6, 7), (10, 20), (13, 23), (11, 21), (14, 24), (12, 22), (15, 25), (16, 17),
            (26, 27), (18, 19), (28, 29)],
    "cat": [(0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12)],
    "chair": [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13)],
    "cow": _ANIMAL_FLIP + [(15, 16), (17, 18), (19, 20)],
    "dog": [(0, 1), (2, 3), (4, 5), (9, 10), (11, 12)],
    "horse": [(0, 1), (2, 3), (4, 5), (6, 7), (10, 11), (12, 13), (16, 17), (18, 19)],
    "motorbike": [(0, 1), (2, 3)],
    "person": [(0, 1), (2, 3), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19)],
    "pottedplant": [(0, 2), (4, 5), (6, 8)],
    "sheep": _ANIMAL_FLIP + [(15, 16), (17, 18), (19, 20)],
    "train": [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17)],
    "tvmonitor": [(0, 2), (4, 6), (3, 7), (8, 10), (12, 14), (11, 15)],
}  # fmt: skip

# Symmetric or repeated keypoints (groups of two or more ids) used for the geometry-aware subset.
_SPAIR_SYM = {
    "aeroplane": [[4, 5], [6, 7], [8, 9], [10, 11], [12, 13], [14, 15], [16, 17], [18, 19], [20, 21]],
    "bicycle": [[2, 3], [6, 7], [9, 10]],
    "bird": [[1, 2], [10, 11], [12, 13], [14, 15]],
    "boat": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]],
    "bottle": [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]],
    "bus": [[0, 1], [2, 3, 5, 6], [4, 7], [10, 13, 20, 23], [11, 14, 21, 24], [12, 15, 22, 25],
            [16, 17, 26, 27], [18, 19, 28, 29]],
    "car": [[0, 1], [2, 3, 6, 7], [4, 8], [5, 9], [10, 13, 20, 23], [11, 14, 21, 24], [12, 15, 22, 25],
            [16, 17, 26, 27], [18, 19, 28, 29]],
    "cat": [[2, 3], [9, 10, 11, 12]],
    "chair": [[0, 1], [2, 3], [4, 5, 6, 7], [8, 9], [10, 11], [12, 13]],
    "cow": [[2, 3], [9, 10, 11, 12], [15, 16, 17, 18], [19, 20]],
    "dog": [[2, 3], [9, 10, 11, 12]],
    "horse": [[2, 3], [10, 11, 12, 13], [16, 17, 18, 19]],
    "motorbike": [[0, 1], [2, 3]],
    "person": [[8, 9], [10, 11], [12, 13], [14, 15], [16, 17], [18, 19]],
    "pottedplant": [[0, 1, 2, 3], [4, 5], [6, 8]],
    "sheep": [[2, 3], [9, 10, 11, 12], [15, 16, 17, 18], [19, 20]],
    "train": [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13], [14, 15], [16, 17]],
    "tvmonitor": [[0, 2, 4, 6], [1, 3, 5, 7], [8, 10, 12, 14], [9, 11, 13, 15]],
}  # fmt: skip

_AP10K_SIDES = [1, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]
_AP10K_FLIP = [(0, 1), (5, 8), (6, 9), (7, 10), (11, 14), (12, 15), (13, 16)]
_AP10K_SYM = [[5, 8], [6, 9, 12, 15], [7, 10, 13, 16], [11, 14]]


@dataclass(frozen=True)
class KeypointTable:
    """The keypoint semantics of one category.

    Attributes:
        names: keypoint names in id order (length N).
        sides: ``"left"``/``"right"``/``"center"`` per keypoint, or ``None`` when the dataset defines none.
        flip_pairs: left<->right swaps applied by a horizontal mirror, or ``None`` when undefined.
        sym_groups: groups (>= 2 ids) of symmetric or repeated keypoints.
    """

    names: tuple[str, ...]
    sides: tuple[str, ...] | None
    flip_pairs: tuple[tuple[int, int], ...] | None
    sym_groups: tuple[tuple[int, ...], ...]

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def flip_perm(self) -> list[int] | None:
        """``perm[i]`` = the id keypoint ``i`` becomes after a mirror (an involution), or ``None``."""
        return None if self.flip_pairs is None else flip_permutation(self.n, self.flip_pairs)


def flip_permutation(n: int, pairs) -> list[int]:
    """The involution on ``range(n)`` that swaps each pair and fixes every other id."""
    perm = list(range(n))
    for a, b in pairs:
        if perm[a] != a or perm[b] != b:
            raise ValueError(f"flip pairs overlap at ({a}, {b})")
        perm[a], perm[b] = b, a
    return perm


def spair_table(category: str) -> KeypointTable:
    """SPair-71k keypoint table of ``category`` (ids are the dataset's ``kps`` keys)."""
    if category not in _SPAIR_SIDES:
        raise KeyError(f"unknown SPair-71k category {category!r}; expected one of {SPAIR_CATEGORIES}")
    sides = tuple(_SIDE[s] for s in _SPAIR_SIDES[category])
    names = tuple(f"{category}_{i:02d}" + ("" if s == "center" else f"_{s}") for i, s in enumerate(sides))
    return KeypointTable(
        names=names,
        sides=sides,
        flip_pairs=tuple(_SPAIR_FLIP[category]),
        sym_groups=tuple(tuple(g) for g in _SPAIR_SYM[category]),
    )


def ap10k_table() -> KeypointTable:
    """AP-10K's 17 keypoints (shared by every species)."""
    return KeypointTable(
        names=AP10K_KEYPOINT_NAMES,
        sides=tuple(_SIDE[s] for s in _AP10K_SIDES),
        flip_pairs=tuple(_AP10K_FLIP),
        sym_groups=tuple(tuple(g) for g in _AP10K_SYM),
    )


def pfpascal_table(n: int) -> KeypointTable:
    """PF-PASCAL: ``n`` anonymous keypoints in annotation order, no flip or symmetry semantics."""
    return KeypointTable(names=tuple(f"kp{i:02d}" for i in range(n)), sides=None, flip_pairs=None, sym_groups=())
