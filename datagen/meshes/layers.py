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
_PER_COMPONENT_MIN = 90  # queried vertices per candidate component from which components are searched one by one


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
    vertices: np.ndarray,
    faces: np.ndarray,
    weld: bool = True,
    diagonal: float | None = None,
    by_component: bool | None = None,
) -> np.ndarray:
    """int64 [F]: for every face of ``faces`` that belongs to a thin layer (see the module docstring) the id of
    its connected component, -1 for the others.

    Args:
        vertices: float64 [V, 3]; faces: int [F, 3].
        weld: merge coincident vertices first (a procedural instance's parts repeat their seam vertices).
        diagonal: the size the layer distance is relative to (default: the vertices' bounding-box diagonal).
        by_component: search other components' samples component by component (fast on dense meshes: it never
            looks at a vertex's own component) rather than in one shared tree (fast on small meshes with many
            components); default: by the number of vertices per component. Both give the same answer.
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
    pts, owner = sample_faces(v, f, limit)
    if by_component is None:  # many vertices per component: a shared tree would mostly see their own component
        by_component = len(query) >= _PER_COMPONENT_MIN * len(np.unique(comp[query]))
    if by_component:
        best = _nearest_by_component(v, f, comp, face_comp, query, cap, pts, owner, limit, lo, hi)
    else:
        best = _nearest_shared(v, f, comp, face_comp, query, cap, pts, owner, limit)
    p90 = _group_quantile(comp[query], best[query], 0.9, n_comp)
    layer = candidate & (p90 <= cap)  # NaN (no vertex) compares False
    return np.where(layer[face_comp], face_comp, -1)


def _exact_nearest(best: np.ndarray, qi: np.ndarray, fi: np.ndarray, v: np.ndarray, f: np.ndarray) -> None:
    """Lower ``best[qi]`` to the exact distance from vertex ``qi`` to face ``fi`` (pairs repeated are measured once)."""
    key = np.unique(qi * len(f) + fi)
    qi, fi = key // len(f), key % len(f)
    _, foot = closest_on_triangles(v[qi], v[f[fi]])
    np.minimum.at(best, qi, np.linalg.norm(foot - v[qi], axis=1))


def _nearest_shared(v, f, comp, face_comp, query, cap, pts, owner, spacing) -> np.ndarray:
    """float [V]: each queried vertex's exact distance to the nearest face of another component, where one lies
    within its component's cap (else inf): every sample within ``cap + spacing`` found in one tree of all samples.

    Args: the welded ``v`` [V, 3] and ``f`` [F, 3]; ``comp`` [V] and ``face_comp`` [F] the components; ``query``
    the vertices asked; ``cap`` [C]; ``pts`` [S, 3] samples of the faces ``owner`` [S] at ``spacing``."""
    best = np.full(len(v), np.inf)
    tree = cKDTree(pts)
    radius = cap[comp[query]] + 1.01 * spacing
    r_max = float(radius.max())
    chunk = max(1, _MAX_PAIRS // 64)
    for s in range(0, len(query), chunk):
        q = query[s : s + chunk]
        pairs = cKDTree(v[q]).sparse_distance_matrix(tree, r_max, output_type="ndarray")
        pairs = pairs[pairs["v"] <= radius[s : s + chunk][pairs["i"]]]
        qi, fi = q[pairs["i"]], owner[pairs["j"]]
        other = face_comp[fi] != comp[qi]
        if other.any():
            _exact_nearest(best, qi[other], fi[other], v, f)
    return best


def _nearest_by_component(v, f, comp, face_comp, query, cap, pts, owner, spacing, lo, hi) -> np.ndarray:
    """As :func:`_nearest_shared`, one component at a time against the samples of the other components whose
    bounding boxes (``lo``, ``hi`` [C, 3]) come within its radius: the pairs examined are those between components
    only."""
    n_comp = len(cap)
    sample_comp = face_comp[owner]
    order = np.argsort(sample_comp, kind="stable")
    pts, owner = pts[order], owner[order]
    bounds = np.searchsorted(sample_comp[order], np.arange(n_comp + 1))
    query_comp = comp[query]
    by_comp = np.argsort(query_comp, kind="stable")
    q_bounds = np.searchsorted(query_comp[by_comp], np.arange(n_comp + 1))
    best = np.full(len(v), np.inf)
    chunk = max(1, _MAX_PAIRS // 64)
    for c in np.flatnonzero(q_bounds[1:] > q_bounds[:-1]):
        q = query[by_comp[q_bounds[c] : q_bounds[c + 1]]]
        radius = float(cap[c]) + 1.01 * spacing
        box_lo, box_hi = lo[c] - radius, hi[c] + radius
        near = np.flatnonzero(np.all((lo <= box_hi) & (hi >= box_lo), axis=1))
        near = near[near != c]
        if near.size == 0:
            continue
        sel = np.concatenate([np.arange(bounds[d], bounds[d + 1]) for d in near])
        sel = sel[np.all((pts[sel] >= box_lo) & (pts[sel] <= box_hi), axis=1)]
        if sel.size == 0:
            continue
        tree = cKDTree(pts[sel])
        for s in range(0, len(q), chunk):
            qc = q[s : s + chunk]
            pairs = cKDTree(v[qc]).sparse_distance_matrix(tree, radius, output_type="ndarray")
            if pairs.size:
                _exact_nearest(best, qc[pairs["i"]], owner[sel[pairs["j"]]], v, f)
    return best
