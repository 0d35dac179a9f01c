"""Closest points on triangle meshes, vectorised: the exact point-triangle distance and a sampled-surface index.

:func:`closest_on_triangles` is Ericson's closed-form closest point of a point to a triangle (Real-Time Collision
Detection, 5.1.5), over arrays. :class:`SurfaceIndex` finds, for many query points at once, the closest point of
a whole mesh: a KD-tree over points sampled on every face (no two samples of a face farther apart than
``spacing``) proposes the faces of the ``k`` nearest samples, and the exact distance to each proposed face picks
the winner. The answer is exact whenever the true closest face owns one of the ``k`` nearest samples, which holds
unless the surface folds back within ``spacing`` of the query; the error is then below ``spacing``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["closest_on_triangles", "SurfaceIndex", "sample_faces"]


def closest_on_triangles(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest points of triangles to points.

    Args:
        p: float64 [N, 3] query points; tri: float64 [N, 3, 3] one triangle per point.

    Returns:
        ``bary`` float64 [N, 3] (barycentric coordinates of the closest point, summing to 1) and ``q`` float64
        [N, 3] the closest points. Degenerate triangles give their nearest vertex or edge point.
    """
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("nd,nd->n", ab, ap), np.einsum("nd,nd->n", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("nd,nd->n", ab, bp), np.einsum("nd,nd->n", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("nd,nd->n", ab, cp), np.einsum("nd,nd->n", ac, cp)
    vc = d1 * d4 - d3 * d2
    vb = d5 * d2 - d1 * d6
    va = d3 * d6 - d5 * d4
    n = len(p)
    bary = np.zeros((n, 3))
    done = np.zeros(n, bool)

    def take(mask: np.ndarray, w: np.ndarray) -> None:
        m = mask & ~done
        bary[m] = w[m]
        done[m] = True

    ones, zeros = np.ones(n), np.zeros(n)
    take((d1 <= 0) & (d2 <= 0), np.stack([ones, zeros, zeros], 1))  # vertex a
    take((d3 >= 0) & (d4 <= d3), np.stack([zeros, ones, zeros], 1))  # vertex b
    take((d6 >= 0) & (d5 <= d6), np.stack([zeros, zeros, ones], 1))  # vertex c
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(d1 - d3 != 0, d1 / (d1 - d3), 0.0)
        take((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - v, v, zeros], 1))  # edge ab
        w = np.where(d2 - d6 != 0, d2 / (d2 - d6), 0.0)
        take((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - w, zeros, w], 1))  # edge ac
        den = (d4 - d3) + (d5 - d6)
        u = np.where(den != 0, (d4 - d3) / den, 0.0)
        take((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([zeros, 1 - u, u], 1))  # edge bc
        total = va + vb + vc
        ok = np.abs(total) > 0
        denom = np.where(ok, total, 1.0)
        inside = np.stack([va / denom, vb / denom, vc / denom], 1)
        take(ok, inside)  # face interior
    take(np.ones(n, bool), np.stack([ones, zeros, zeros], 1))  # fully degenerate: vertex a
    q = np.einsum("nk,nkd->nd", bary, tri)
    return bary, q


def sample_faces(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on every face, no two samples of a face farther apart than about ``spacing`` (a regular barycentric
    grid of a face's own resolution, its vertices included).

    Returns:
        points float64 [S, 3] and the face of each int64 [S].
    """
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
    edge = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    res = np.clip(np.ceil(edge / max(spacing, 1e-12)).astype(np.int64), 1, 64)
    pts, owner = [], []
    for r in np.unique(res):
        sel = np.flatnonzero(res == r)
        i, j = np.meshgrid(np.arange(r + 1), np.arange(r + 1), indexing="ij")
        keep = i + j <= r
        w = np.stack([r - i[keep] - j[keep], i[keep], j[keep]], 1) / r  # [G, 3]
        pts.append(np.einsum("gk,fkd->fgd", w, tri[sel]).reshape(-1, 3))
        owner.append(np.repeat(sel, len(w)))
    return np.concatenate(pts), np.concatenate(owner)


class SurfaceIndex:
    """Closest-point queries against one triangle mesh.

    Args:
        vertices: float64 [V, 3]; faces: int [F, 3].
        spacing: sample spacing in the mesh's units (default: 1/150 of the bounding-box diagonal).
        face_mask: optional bool [F]: only these faces can be returned.
    """

    ESCALATE = 16  # how many times more samples a query with no agreeing candidate is proposed

    def __init__(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        spacing: float | None = None,
        face_mask: np.ndarray | None = None,
    ):
        self.vertices = np.asarray(vertices, np.float64)
        self.faces = np.asarray(faces, np.int64)
        if spacing is None:
            spacing = float(np.linalg.norm(np.ptp(self.vertices, axis=0))) / 150.0
        keep = np.arange(len(self.faces)) if face_mask is None else np.flatnonzero(face_mask)
        pts, owner = sample_faces(self.vertices, self.faces[keep], spacing)
        self.sample_face = keep[owner]
        self.tree = cKDTree(pts)
        self.spacing = spacing
        tri = self.vertices[self.faces]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        self.face_normals = fn / np.maximum(np.linalg.norm(fn, axis=1), 1e-300)[:, None]

    def closest(
        self, points: np.ndarray, k: int = 8, normals: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The closest surface point of every query point.

        Args:
            points: float64 [N, 3].
            k: samples (and so candidate faces) proposed per query.
            normals: optional unit normals [N, 3] of the surfaces the queries lie on: the closest point is then
                sought among faces facing the same way (positive dot product), which keeps a point of a thin
                plate's top on the top and not on the bottom a hair closer. Where none of the ``2k`` nearest
                samples lies on such a face (the query sits nearer the plate's far side than the spacing allows,
                as a misfit template does), ``ESCALATE`` times as many are proposed; a query with no agreeing
                candidate even then takes the closest of all.

        Returns:
            ``face`` int64 [N], ``bary`` float64 [N, 3], ``point`` float64 [N, 3], ``dist`` float64 [N].
        """
        p = np.asarray(points, np.float64)
        if normals is None:
            return self._best(p, self._propose(p, k))
        nrm = np.asarray(normals, np.float64)
        cand = self._propose(p, 2 * k)
        cand, ok = self._agreeing(cand, nrm)
        out = self._best(p, cand)
        retry = np.flatnonzero(~ok)
        if retry.size and 2 * k < len(self.sample_face):
            wide, ok_wide = self._agreeing(self._propose(p[retry], 2 * k * self.ESCALATE), nrm[retry])
            hit = retry[ok_wide]
            if hit.size:
                again = self._best(p[hit], wide[ok_wide])
                for arr, new in zip(out, again):
                    arr[hit] = new
        return out

    def _propose(self, p: np.ndarray, k: int) -> np.ndarray:
        """int64 [N, k']: the faces of the k' = min(k, samples) samples nearest each point."""
        k = min(k, len(self.sample_face))
        _, idx = self.tree.query(p, k=k)
        return self.sample_face[idx.reshape(len(p), k)]

    def _agreeing(self, cand: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidates facing the way of ``normals`` ([N, 3]): the candidate matrix with the others replaced by the
        first agreeing face (rows with none unchanged) and bool [N], whether a row has one."""
        n = len(cand)
        agree = np.einsum("nkd,nd->nk", self.face_normals[cand], normals) > 0
        ok = agree.any(axis=1)
        first = cand[np.arange(n), np.argmax(agree, axis=1)]
        return np.where(agree | ~ok[:, None], cand, first[:, None]), ok

    def _best(self, p: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The closest point of each query among its candidate faces ``cand`` int64 [N, k] (exact distances)."""
        n, k = cand.shape
        best_d = np.full(n, np.inf)
        face = np.zeros(n, np.int64)
        bary = np.zeros((n, 3))
        point = np.zeros((n, 3))
        # a face already proposed earlier in its row gives nothing new: mark every later repeat once, O(k log k) a
        # row (a stable sort keeps each face's first place first among its copies)
        order = np.argsort(cand, axis=1, kind="stable")
        in_order = np.take_along_axis(cand, order, axis=1)
        repeat_sorted = np.zeros(cand.shape, bool)
        repeat_sorted[:, 1:] = in_order[:, 1:] == in_order[:, :-1]
        repeat = np.zeros(cand.shape, bool)
        np.put_along_axis(repeat, order, repeat_sorted, axis=1)
        for j in range(k):
            f = cand[:, j]
            sel = np.flatnonzero(~repeat[:, j])
            if sel.size == 0:
                continue
            b, q = closest_on_triangles(p[sel], self.vertices[self.faces[f[sel]]])
            d = np.linalg.norm(q - p[sel], axis=1)
            better = d < best_d[sel]
            s = sel[better]
            best_d[s], face[s], bary[s], point[s] = d[better], f[sel][better], b[better], q[better]
        return face, bary, point, best_d
