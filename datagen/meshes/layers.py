"""Thin layers of a mesh: connected parts lying as a skin on another part (glass on a car's cabin, a label on a
bottle, a hub cap on a tyre, a lamp lens on a body).

A layer lies within a few millimetres of the surface under it, closer than any closest-point search can tell it
from that surface once a template is fitted with an error of the same size. :func:`layer_faces` finds them on any
mesh by their geometry alone, so the same test classifies the family's template and a user's mesh, and
:class:`datagen.canonical.RegisteredSurface` matches layers to layers and the rest to the rest.

A connected component (faces joined by shared vertices) is a layer when 90 % of its vertices lie within
``LAYER_REL`` of the bounding-box diagonal, and within ``LAYER_OWN_REL`` of the component's own extent, of the
surface of *another* component; a component holding more than a quarter of the mesh's vertices never is. The
distance is exact up to that limit (every face sampled at a spacing ``s``; a vertex's neighbourhood of radius
``limit + s`` holds a sample of every face nearer than ``limit``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401 (sp.csgraph)
from scipy.spatial import cKDTree

from datagen.meshes.proximity import closest_on_triangles, sample_faces

__all__ = ["LAYER_REL", "LAYER_OWN_REL", "components", "layer_faces", "layer_components", "welded_components"]

LAYER_REL = 0.008  # a part this close (x bbox diagonal) to another part's surface is a layer on it ...
LAYER_OWN_REL = 0.06  # ... if also this close relative to its own extent (glass, labels: not engines, gear)
_MAX_PAIRS = 4_000_000  # (vertex, sample) pairs examined at once


def components(n_vertices: int, faces: np.ndarray) -> np.ndarray:
    """int64 [n_vertices]: the connected component of every vertex (faces join the vertices they share)."""
    f = np.asarray(faces, np.int64)
    A = sp.coo_matrix((np.ones(3 * len(f)), (f.ravel(), np.roll(f, 1, axis=1).ravel())), shape=(n_vertices,) * 2)
    return sp.csgraph.connected_components(A, directed=False)[1].astype(np.int64)


def _weld(v: np.ndarray, faces: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices merged within ``tol`` (a grid of that size) and the faces re-indexed onto them: parts built of
    separate faces (a template's repeated seam vertices) join into their components."""
    key = np.round(v / max(tol, 1e-12)).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return v[first], inverse.reshape(-1)[faces]


def welded_components(vertices: np.ndarray, faces: np.ndarray, tol: float) -> np.ndarray:
    """int64 [F]: the connected piece of every face once vertices within ``tol`` are merged (a part built of
    separate faces is one piece)."""
    v, f = _weld(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), tol)
    return components(len(v), f)[f[:, 0]]


def _group_quantile(groups: np.ndarray, values: np.ndarray, q: float, n_groups: int) -> np.ndarray:
    """The ``q`` quantile (linear interpolation, as ``np.percentile``) of ``values`` per group: float [n_groups],
    NaN for empty groups."""
    order = np.lexsort((values, groups))
    g, x = groups[order], values[order]
    count = np.bincount(g, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    out = np.full(n_groups, np.nan)
    has = count > 0
    pos = q * (count[has] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, count[has] - 1)
    a, b = x[start[has] + lo], x[start[has] + hi]
    with np.errstate(invalid="ignore"):  # inf - inf
        out[has] = np.where(a == b, a, a + (pos - lo) * (b - a))
    return out


def layer_faces(
    vertices: np.ndarray, faces: np.ndarray, weld: bool = True, diagonal: float | None = None
) -> np.ndarray:
    """bool [F]: the faces of ``faces`` that belong to thin layers (see :func:`layer_components`)."""
    return layer_components(vertices, faces, weld, diagonal) >= 0


def layer_components(
    vertices: np.ndarray, faces: np.ndarray, weld: bool = True, diagonal: float | None = None
) -> np.ndarray:
    """int64 [F]: for every face of ``faces`` that belongs to a thin layer (see the module docstring) the id of
    its connected component, -1 for the others.

    Args:
        vertices: float64 [V, 3]; faces: int [F, 3].
        weld: merge coincident vertices first (a procedural instance's parts repeat their seam vertices).
        diagonal: the size the layer distance is relative to (default: the vertices' bounding-box diagonal).
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    if len(f) == 0:
        return np.zeros(0, np.int64)
    if diagonal is None:
        diagonal = float(np.linalg.norm(np.ptp(v[np.unique(f)], axis=0)))
    if weld:
        v, f = _weld(v, f, 1e-7 * max(diagonal, 1e-9))
    n = len(v)
    comp = components(n, f)
    n_comp = int(comp.max()) + 1
    face_comp = comp[f[:, 0]]
    out = np.full(len(f), -1, np.int64)
    if n_comp < 2:
        return out
    limit = LAYER_REL * diagonal
    size = np.bincount(comp, minlength=n_comp)
    used = np.zeros(n, bool)
    used[f.ravel()] = True
    lo = np.full((n_comp, 3), np.inf)
    hi = np.full((n_comp, 3), -np.inf)
    np.minimum.at(lo, comp[used], v[used])
    np.maximum.at(hi, comp[used], v[used])
    extent = (hi - lo).max(axis=1)
    cap = np.minimum(limit, LAYER_OWN_REL * extent)  # [n_comp] the distance under which a vertex counts
    candidate = (size <= 0.25 * n) & (np.bincount(face_comp, minlength=n_comp) > 0)
    query = np.flatnonzero(used & candidate[comp])
    if query.size == 0:
        return out
    spacing = limit
    pts, owner = sample_faces(v, f, spacing)
    tree = cKDTree(pts)
    best = np.full(n, np.inf)
    radius = cap[comp[query]] + 1.01 * spacing
    # the neighbourhood of every queried vertex, in chunks that bound the memory
    chunk = max(1, _MAX_PAIRS // 64)
    for s in range(0, len(query), chunk):
        q = query[s : s + chunk]
        near = tree.query_ball_point(v[q], radius[s : s + chunk], return_sorted=False)
        counts = np.fromiter((len(x) for x in near), np.int64, len(near))
        if counts.sum() == 0:
            continue
        qi = np.repeat(q, counts)
        si = np.fromiter((j for x in near for j in x), np.int64, int(counts.sum()))
        fi = owner[si]
        other = face_comp[fi] != comp[qi]
        qi, fi = qi[other], fi[other]
        if qi.size == 0:
            continue
        key = np.unique(qi * len(f) + fi)  # one exact distance per (vertex, face)
        qi, fi = key // len(f), key % len(f)
        _, foot = closest_on_triangles(v[qi], v[f[fi]])
        np.minimum.at(best, qi, np.linalg.norm(foot - v[qi], axis=1))
    p90 = _group_quantile(comp[query], best[query], 0.9, n_comp)
    layer = candidate & (p90 <= cap)  # NaN (no vertex) compares False
    return np.where(layer[face_comp], face_comp, -1)
