"""The smooth deformation of a template instance onto a user's mesh (:func:`deform`; step 2 of
:mod:`datagen.meshes.register`): bidirectional closest points against a graph-Laplacian smoothness, small parts
joined to what they are set in, thin layers following the part under them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401 (sp.csgraph)
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

__all__ = ["deform", "small_part_joins", "JOIN_EXTENT_REL", "JOIN_REL", "LAYER_REL", "LAYER_OWN_REL"]

JOIN_SMALL_PARTS = True  # small parts follow the part they are set in (see small_part_joins)
JOIN_EXTENT_REL = 0.1
JOIN_REL = 0.02
LAYER_REL = 0.005  # a template part this close (x bbox diagonal) to another part is a layer on it ...
LAYER_OWN_REL = 0.03  # ... if also this close relative to its own extent (glass, labels: not engines, gear)


def small_part_joins(v: np.ndarray, faces: np.ndarray, diagonal: float) -> np.ndarray:
    """Edges [m, 2] joining small template parts (extent under ``JOIN_EXTENT_REL`` of the diagonal: ears, horns,
    mirrors) to the part they are set in: each of their vertices within ``JOIN_REL`` of the diagonal of another
    component's surface, to that component's nearest vertex. The smoothness then carries an ear with the head it
    sits on, where its own closest points, on a thin part, would leave it behind."""
    from datagen.meshes.layers import components

    n = len(v)
    comp = components(n, faces)
    n_comp = int(comp.max()) + 1 if n else 0
    if n_comp < 2:
        return np.zeros((0, 2), np.int64)
    used = np.zeros(n, bool)
    used[faces.ravel()] = True
    out = []
    for c in range(n_comp):
        mine = np.flatnonzero((comp == c) & used)
        if mine.size == 0 or np.ptp(v[mine], axis=0).max() > JOIN_EXTENT_REL * diagonal:
            continue
        others = np.flatnonzero((comp != c) & used)
        if others.size == 0:
            continue
        d, j = cKDTree(v[others]).query(v[mine])
        close = d < JOIN_REL * diagonal
        if close.any():
            out.append(np.stack([mine[close], others[j[close]]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def _layers(v: np.ndarray, faces: np.ndarray, diagonal: float) -> tuple[np.ndarray, np.ndarray]:
    """Template parts that lie as thin layers on another part (glass on a cabin, a label on a bottle, a hub cap on
    a tyre): connected components 90 % of whose vertices are within ``LAYER_REL`` of the diagonal and
    ``LAYER_OWN_REL`` of their own extent from another component's surface. Returns a bool [n] mask of their
    vertices and attachment edges [m, 2] (each layer vertex to the nearest vertex of the part under it), so the
    layer moves with that part."""
    from datagen.meshes.proximity import closest_on_triangles, sample_faces

    n = len(v)
    A = sp.coo_matrix((np.ones(3 * len(faces)), (faces.ravel(), np.roll(faces, 1, axis=1).ravel())), shape=(n, n))
    n_comp, comp = sp.csgraph.connected_components(A, directed=False)
    if n_comp < 2:
        return np.zeros(n, bool), np.zeros((0, 2), np.int64)
    pts, owner = sample_faces(v, faces, 2 * LAYER_REL * diagonal)
    pts_comp = comp[faces[owner, 0]]
    layer = np.zeros(n, bool)
    under = np.full(n, -1, np.int64)
    for c in range(n_comp):
        mine = np.flatnonzero(comp == c)
        others = np.flatnonzero(pts_comp != c)
        if len(mine) > 0.25 * n or len(others) == 0:
            continue
        _, idx = cKDTree(pts[others]).query(v[mine], k=min(8, len(others)))
        idx = idx.reshape(len(mine), -1)
        best = np.full(len(mine), np.inf)
        for j in range(idx.shape[1]):
            f = owner[others[idx[:, j]]]
            bary, q = closest_on_triangles(v[mine], v[faces[f]])
            d = np.linalg.norm(q - v[mine], axis=1)
            better = d < best
            best[better] = d[better]
            under[mine[better]] = faces[f[better], np.argmax(bary[better], axis=1)]
        # thin against the whole and against its own size (a band's end caps reach inside what it wraps: 90 %)
        extent = float(np.ptp(v[mine], axis=0).max())
        if np.percentile(best, 90) <= min(LAYER_REL * diagonal, LAYER_OWN_REL * extent):
            layer[mine] = True
    edges = np.stack([np.flatnonzero(layer), under[layer]], 1)
    return layer, edges


def _laplacian(n: int, faces: np.ndarray, extra_edges: np.ndarray | None = None) -> sp.csr_matrix:
    """Uniform graph Laplacian [n, n] of a triangle mesh (degree on the diagonal, -1 per edge), with optional
    extra edges [m, 2]."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    if extra_edges is not None and len(extra_edges):
        e = np.concatenate([e, extra_edges])
    e = np.unique(np.sort(e, axis=1), axis=0)
    A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    A = ((A + A.T) > 0).astype(np.float64)
    return (sp.diags(np.asarray(A.sum(1)).ravel()) - A).tocsr()


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    tri = v[f]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1), 1e-300)[:, None]


def deform(
    template_v: np.ndarray,
    template_f: np.ndarray,
    target_pts: np.ndarray,
    target_nrm: np.ndarray,
    diagonal: float,
    two_sided: bool,
    target_index=None,
    schedule: tuple[float, ...] = (200.0, 60.0, 20.0, 6.0, 2.0, 0.6),
    iters: int = 3,
    joins: np.ndarray | None = None,
) -> np.ndarray:
    """Move a template's vertices onto a target surface, smoothly.

    Minimises, per iteration, ``Σ w_i |x_i + d_i - c_i|² + λ |L d|²`` over the displacement ``d``: ``c_i`` the
    target sample nearest to vertex ``i`` (weight 1 where the normals agree and it lies within the current
    distance cut-off) and, for every target sample, the template vertex nearest to it pulled towards it (the
    target's parts the template does not reach yet). ``λ`` follows ``schedule`` (relative to the data weights):
    large first, so each connected part only translates, then small enough for local fitting.

    Args:
        template_v: float64 [n, 3] welded template vertices; template_f: int [m, 3].
        target_pts, target_nrm: float64 [S, 3] samples of the target surface and their unit normals.
        diagonal: the target's bbox diagonal (distance cut-offs scale with it).
        two_sided: the target's normals are unreliable in sign (open surfaces): compare |cos|.

    Returns:
        float64 [n, 3] the deformed vertices.
    """
    n = len(template_v)
    layer, attach = _layers(template_v, template_f, diagonal)
    if joins is not None and len(joins):  # small parts carried by what they are set in (see small_part_joins)
        attach = np.concatenate([attach, joins])
    L = _laplacian(n, template_f, attach)
    LtL = (L.T @ L).tocsc()
    tree_t = cKDTree(target_pts)
    d = np.zeros_like(template_v)
    cutoffs = np.geomspace(0.15, 0.03, len(schedule)) * diagonal
    for lam, cut in zip(schedule, cutoffs):
        for _ in range(iters):
            x = template_v + d
            vn = _vertex_normals(x, template_f)
            if target_index is None:
                dist, j = tree_t.query(x)
                c_pts, c_nrm = target_pts[j], target_nrm[j]
            else:  # the exact closest surface point (the samples' spacing is no longer an error)
                f_c, _, c_pts, dist = target_index.closest(x, normals=None if two_sided else vn)
                c_nrm = target_index.face_normals[f_c]
            cos = np.einsum("nd,nd->n", vn, c_nrm)
            agree = np.abs(cos) > 0.3 if two_sided else cos > 0.3
            w = ((dist < cut) & agree & ~layer).astype(np.float64)  # layers follow what they lie on
            rhs = w[:, None] * (c_pts - template_v)
            # target samples -> nearest template vertex
            dist_b, k = cKDTree(x).query(target_pts)
            cos_b = np.einsum("nd,nd->n", vn[k], target_nrm)
            ok_b = (dist_b < cut) & ((np.abs(cos_b) > 0.3) if two_sided else (cos_b > 0.3)) & ~layer[k]
            wb = np.bincount(k[ok_b], minlength=n).astype(np.float64)
            pull = np.zeros_like(template_v)
            for c in range(3):
                pull[:, c] = np.bincount(k[ok_b], weights=target_pts[ok_b, c], minlength=n)
            scale_b = 0.5 / np.maximum(wb, 1.0)  # each vertex's backward pull counts at most half a forward term
            rhs += (pull - wb[:, None] * template_v) * scale_b[:, None]
            diag = w + wb * scale_b
            A = (sp.diags(diag + 1e-6) + lam * LtL).tocsc()
            d = splu(A).solve(rhs + 1e-6 * d)
    return template_v + d
