"""Normalisation into the canonical frame: axis remap, metric size, placement, and the category reference size.

A user's mesh becomes ``p_canonical = s * R @ p_file + t``:

- ``R`` from the collection's ``up``/``front`` axes (:func:`datagen.meshes.axes.canonical_rotation`);
- ``s`` metres per file unit: the file's own when given (CSV ``scale``), else the uniform scale that makes the
  bounding-box diagonal equal to the category's reference size (:func:`reference_size`), so user meshes come out
  at the size of the procedural instances they are paired with;
- ``t`` puts the object on the ground (min y = 0) with its bounding box centred in x and z, as the procedural
  families place their instances.
"""

from __future__ import annotations

import functools

import numpy as np

from datagen.meshes.axes import canonical_rotation

__all__ = ["REFERENCE_SAMPLES", "reference_size", "normalising_transform", "apply_transform"]

REFERENCE_SAMPLES = 64


@functools.cache
def reference_size(category: str) -> float:
    """The category's reference size in metres: the median bounding-box diagonal of 64 instances of its family.

    The instances are ``family.build(family.sample_params(rng), id)`` with ``rng = np.random.default_rng(0)``,
    drawn in sequence; the value is cached per process (about a second per family to compute).

    Raises:
        KeyError: unknown category (the message lists the known ones).
    """
    from datagen.families import get_family

    family = get_family(category)
    rng = np.random.default_rng(0)
    diagonals = []
    for i in range(REFERENCE_SAMPLES):
        inst = family.build(family.sample_params(rng), f"{category}-reference-{i}")
        v = np.asarray(inst.vertices, np.float64)
        diagonals.append(float(np.linalg.norm(v.max(0) - v.min(0))))
    return float(np.median(diagonals))


def normalising_transform(
    vertices_file: np.ndarray, up: str, front: str, target_diagonal_m: float | None, scale_m_per_unit: float | None
) -> np.ndarray:
    """float64 [4, 4] file -> canonical transform of a mesh.

    Args:
        vertices_file: float [V, 3] the mesh's (used) vertices in file coordinates.
        up, front: the file axes of the object's top and front (``+y``, ``-z``, ...).
        target_diagonal_m: bounding-box diagonal wanted in metres (ignored when ``scale_m_per_unit`` is given).
        scale_m_per_unit: metres per file unit, when the file's scale is known.

    Raises:
        ValueError: neither size is given, or the mesh has no extent.
    """
    R = canonical_rotation(up, front)
    rotated = np.asarray(vertices_file, np.float64) @ R.T
    lo, hi = rotated.min(0), rotated.max(0)
    diagonal = float(np.linalg.norm(hi - lo))
    if scale_m_per_unit is not None:
        s = float(scale_m_per_unit)
        if not np.isfinite(s) or s <= 0:
            raise ValueError(f"scale must be a positive number of metres per file unit, got {scale_m_per_unit}")
    elif target_diagonal_m is not None:
        if diagonal <= 0:
            raise ValueError("the mesh has no extent")
        s = float(target_diagonal_m) / diagonal
    else:
        raise ValueError("give target_diagonal_m or scale_m_per_unit")
    t = -s * np.array([(lo[0] + hi[0]) / 2.0, lo[1], (lo[2] + hi[2]) / 2.0])
    T = np.eye(4)
    T[:3, :3] = s * R
    T[:3, 3] = t
    return T


def apply_transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """float64 [N, 3]: ``T`` [4, 4] applied to points [N, 3]."""
    return np.asarray(points, np.float64) @ T[:3, :3].T + T[:3, 3]
