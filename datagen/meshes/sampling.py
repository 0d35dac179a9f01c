"""Surface samples of a mesh and the shift that sets a shape at rest, for the template search and registration."""

from __future__ import annotations

import numpy as np

__all__ = ["sample_surface", "rest_shift"]


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points uniformly over a mesh's area: points [n, 3], unit face normals [n, 3], faces [n]."""
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    f = rng.choice(len(area), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], 1)
    pts = np.einsum("nk,nkd->nd", w, tri[f])
    nrm = cross[f] / np.maximum(area[f], 1e-300)[:, None]
    return pts, nrm, f


def rest_shift(points: np.ndarray) -> np.ndarray:
    """The translation putting points on y = 0 with their bbox centred in x and z (the intake's placement)."""
    lo, hi = points.min(0), points.max(0)
    return -np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])
