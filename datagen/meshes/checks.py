"""Geometry checks and repairs of a read mesh, each with a reason.

The steps, in the order :func:`datagen.meshes.intake.intake_file` runs them:

1. :func:`check_finite`: a face that uses a NaN/inf vertex rejects the mesh; unused bad vertices are dropped.
2. :func:`clean`: duplicate vertices merged (by position; texture coordinates live on face corners, so seams are
   not lost), unreferenced vertices dropped, zero-area and duplicate faces removed. A mesh with no faces is
   rejected as empty, one whose faces all have zero area as degenerate.
3. :func:`make_winding_consistent`: neighbouring faces (sharing a manifold edge) made to agree in winding.
4. :func:`decimate` (only above ``max_faces``): quadric edge collapse (fast-simplification), materials, texture
   coordinates and part labels carried over from the nearest original face.
5. :func:`orient`: per connected component; a closed one with negative signed volume (wound inward) is
   flipped; an open one (boundary or non-manifold edges) makes the mesh ``two_sided``.

Each step edits a :class:`Surface` in place and returns :class:`Note` s: ``repair`` notes (the surface or its
winding changed) make the outcome "repaired", ``info`` notes (cleanup, multi-body, open) do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

__all__ = [
    "Surface",
    "Note",
    "Rejected",
    "check_finite",
    "clean",
    "make_winding_consistent",
    "decimate",
    "orient",
    "face_components",
]

_MERGE_REL = 2.0**-32  # vertices closer than this fraction of the bbox diagonal (per axis) are merged
_AREA_REL = 1e-14  # faces smaller than this fraction of the squared bbox diagonal have zero area


class Rejected(Exception):
    """The mesh cannot be used; ``str(e)`` is the reason, starting with its kind ("empty: ...")."""


@dataclass(frozen=True)
class Note:
    kind: Literal["repair", "info", "warning"]
    text: str


@dataclass
class Surface:
    """A mesh being checked: geometry and per-face attributes, edited in place by the steps.

    Attributes:
        vertices: float64 [V, 3] (file frame or canonical, the steps do not care).
        faces: int64 [F, 3].
        face_material: int32 [F].
        corner_uv: float32 [F, 3, 2] or None.
        face_part: int32 [F] or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray
    corner_uv: np.ndarray | None = None
    face_part: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        return int(len(self.faces))

    def keep_faces(self, keep: np.ndarray) -> None:
        """Keep the faces selected by ``keep`` (bool mask or indices) and their attributes."""
        self.faces = self.faces[keep]
        self.face_material = self.face_material[keep]
        if self.corner_uv is not None:
            self.corner_uv = self.corner_uv[keep]
        if self.face_part is not None:
            self.face_part = self.face_part[keep]

    def flip(self, mask: np.ndarray) -> None:
        """Reverse the winding of the faces in ``mask`` (corners 1 and 2 swap, with their coordinates)."""
        self.faces[mask] = self.faces[mask][:, [0, 2, 1]]
        if self.corner_uv is not None:
            self.corner_uv[mask] = self.corner_uv[mask][:, [0, 2, 1]]

    def drop_unreferenced(self) -> int:
        """Remove vertices no face uses; returns how many."""
        used = np.zeros(len(self.vertices), bool)
        used[self.faces.ravel()] = True
        n = int((~used).sum())
        if n:
            remap = np.cumsum(used) - 1
            self.vertices = self.vertices[used]
            self.faces = remap[self.faces]
        return n

    @property
    def diagonal(self) -> float:
        """Bounding-box diagonal of the used vertices (file units)."""
        if not len(self.faces):
            return 0.0
        mask = np.zeros(len(self.vertices), bool)
        mask[self.faces.ravel()] = True
        used = self.vertices[mask]
        return float(np.linalg.norm(used.max(0) - used.min(0)))

    def areas(self) -> np.ndarray:
        tri = self.vertices[self.faces]
        return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each distinct row's first occurrence, sorted by row; int64 [N] inverse) of int64 [N, K] rows."""
    order = np.lexsort(rows.T[::-1])
    srt = rows[order]
    new = np.ones(len(rows), bool)
    new[1:] = (srt[1:] != srt[:-1]).any(1)
    group = np.cumsum(new) - 1
    inverse = np.empty(len(rows), np.int64)
    inverse[order] = group
    first = np.full(int(group[-1]) + 1 if len(rows) else 0, len(rows), np.int64)
    np.minimum.at(first, group, order)
    return first, inverse


def check_finite(s: Surface) -> list[Note]:
    """Reject a mesh whose faces use NaN/inf vertices; drop unused non-finite vertices."""
    bad = ~np.isfinite(s.vertices).all(1)
    if not bad.any():
        return []
    used_bad = np.unique(s.faces[bad[s.faces].any(1)].ravel()) if len(s.faces) else np.zeros(0, np.int64)
    used_bad = used_bad[bad[used_bad]]
    if len(used_bad):
        raise Rejected(f"non-finite: {len(used_bad)} of {len(s.vertices)} vertices used by faces are NaN or inf")
    n = s.drop_unreferenced()
    return [Note("repair", f"dropped {n} unused vertices with NaN/inf coordinates")]


def clean(s: Surface) -> list[Note]:
    """Merge duplicate vertices, drop unreferenced ones, remove zero-area and duplicate faces.

    Raises:
        Rejected: no faces ("empty") or no face with area ("degenerate").
    """
    notes: list[Note] = []
    if s.n_faces == 0:
        raise Rejected(f"empty: no faces ({len(s.vertices)} vertices)")
    n_unref = s.drop_unreferenced()
    diag = s.diagonal
    if diag == 0.0:
        raise Rejected(f"degenerate: all {s.n_faces} faces collapse to one point (no area)")
    key = np.round(s.vertices / (diag * _MERGE_REL)).astype(np.int64)
    first, inverse = _unique_rows(key)
    n_dup = len(s.vertices) - len(first)
    if n_dup:
        s.vertices = s.vertices[first]
        s.faces = inverse.reshape(-1)[s.faces]
    if n_unref:
        notes.append(Note("info", f"dropped {n_unref} unreferenced vertices"))
    if n_dup:
        notes.append(Note("info", f"merged {n_dup} duplicate vertices"))

    f = s.faces
    area = s.areas()
    zero = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2]) | (area <= _AREA_REL * diag**2)
    if zero.all():
        raise Rejected(f"degenerate: all {s.n_faces} faces have zero area")
    if zero.any():
        notes.append(Note("repair", f"removed {int(zero.sum())} zero-area faces"))
        s.keep_faces(~zero)
    first, _ = _unique_rows(np.sort(s.faces, axis=1))
    if len(first) < s.n_faces:
        notes.append(Note("repair", f"removed {s.n_faces - len(first)} duplicate faces (same three vertices)"))
        s.keep_faces(np.sort(first))
    n = s.drop_unreferenced()
    if n:
        notes.append(Note("info", f"dropped {n} vertices left unused"))
    return notes


def _edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges of the faces: (edge id int64 [F, 3], edge use count [E], directed bool [F, 3]).

    Corner ``k`` of face ``f`` starts the directed edge ``(faces[f, k], faces[f, k+1])``; ``directed`` says
    whether that runs from the lower to the higher vertex index.
    """
    a = faces
    b = np.roll(faces, -1, axis=1)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * (int(faces.max()) + 1) + hi
    uniq, inverse, counts = np.unique(key.ravel(), return_inverse=True, return_counts=True)
    return inverse.reshape(-1, 3), counts, a < b


def face_components(faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of faces through shared edges: (count, int32 [F] label)."""
    edge, counts, _ = _edges(faces)
    F = len(faces)
    fe = np.repeat(np.arange(F), 3)
    inc = sp.csr_matrix((np.ones(3 * F), (fe, edge.ravel())), shape=(F, len(counts)))
    n, labels = csgraph.connected_components(inc @ inc.T, directed=False)
    return int(n), labels.astype(np.int32)


def make_winding_consistent(s: Surface) -> list[Note]:
    """Reverse faces so that every two faces sharing a manifold edge traverse it in opposite directions.

    Each part connected through manifold edges keeps the winding of the majority of its area (the file's intent
    where it was mostly right); which way a closed component faces is :func:`orient`'s job. Parts that cannot be
    made consistent (non-orientable) keep a spanning tree's choice.
    """
    F = s.n_faces
    edge, counts, forward = _edges(s.faces)
    manifold = counts[edge] == 2  # [F, 3]
    fe, corner = np.nonzero(manifold)
    e = edge[fe, corner]
    order = np.argsort(e, kind="stable")
    fe, corner, e = fe[order], corner[order], e[order]
    fa, fb = fe[0::2], fe[1::2]  # the two faces of each manifold edge
    # same direction along the shared edge -> one of the two must flip (parity 1)
    parity = (forward[fa, corner[0::2]] == forward[fb, corner[1::2]]).astype(np.int8)
    lo, hi = np.minimum(fa, fb), np.maximum(fa, fb)
    _, first = np.unique(lo * F + hi, return_index=True)  # one edge per face pair
    first = first[lo[first] != hi[first]]
    fa, fb, parity = fa[first], fb[first], parity[first]
    # a spanning forest of the graph of faces joined by manifold edges, grown from a virtual root (node F)
    # joined to one face of each of its components
    pairs = sp.csr_matrix((np.ones(len(fa)), (fa, fb)), shape=(F, F))
    n_comp, labels = csgraph.connected_components(pairs, directed=False)
    seeds = np.unique(labels, return_index=True)[1]
    rows = np.concatenate([fa, fb, np.full(len(seeds), F)])
    cols = np.concatenate([fb, fa, seeds])
    vals = np.concatenate([parity, parity, np.zeros(len(seeds), np.int8)]) + 1.0  # 1: agree, 2: one must flip
    graph = sp.csr_matrix((vals, (rows, cols)), shape=(F + 1, F + 1))
    _, pred = csgraph.breadth_first_order(graph, F, directed=True, return_predecessors=True)
    pred = pred[:F]
    tree_parity = (np.asarray(graph[pred, np.arange(F)]).ravel() >= 1.5).astype(np.int8)
    # flip[f] = XOR of the parities on the path to the root (pointer jumping)
    flip, anc = tree_parity.copy(), pred.copy()
    for _ in range(int(np.ceil(np.log2(F + 2))) + 1):
        inner = anc < F
        if not inner.any():
            break
        flip[inner] ^= flip[anc[inner]]
        anc[inner] = anc[anc[inner]]
    flip = flip.astype(bool)
    if not flip.any():
        return []
    area = s.areas()
    flipped_area = np.bincount(labels, area * flip, n_comp)
    total = np.bincount(labels, area, n_comp)
    flip ^= (flipped_area > 0.5 * total)[labels]  # keep each component's majority winding
    if not flip.any():
        return []
    s.flip(flip)
    return [
        Note(
            "repair", f"winding made consistent: {int(flip.sum())} of {F} faces reversed to agree with their neighbours"
        )
    ]


def decimate(s: Surface, max_faces: int) -> list[Note]:
    """Simplify to at most ``max_faces`` faces with quadric edge collapse (fast-simplification).

    Each new face takes the material, part label and texture chart of the original face nearest its centroid;
    its corners' texture coordinates come from that face's (affinely extended) parametrisation, so a new face
    never straddles a texture seam (seams may move by up to a face).
    """
    if s.n_faces <= max_faces:
        return []
    import fast_simplification
    from scipy.spatial import cKDTree

    n0 = s.n_faces
    points, faces = fast_simplification.simplify(s.vertices, s.faces.astype(np.int64), target_count=max_faces)
    points = np.asarray(points, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if not len(faces):
        return [Note("warning", f"decimation left no faces; all {n0} faces kept")]
    old_tri = s.vertices[s.faces]  # [F0, 3, 3]
    _, nearest = cKDTree(old_tri.mean(1)).query(points[faces].mean(1))
    new = Surface(points, faces, s.face_material[nearest])
    if s.face_part is not None:
        new.face_part = s.face_part[nearest]
    if s.corner_uv is not None:
        tri = old_tri[nearest]  # [N, 3, 3]
        bary = _barycentric(points[faces], tri)  # [N, 3 corners, 3]
        new.corner_uv = np.einsum("nck,nkd->ncd", bary, s.corner_uv[nearest].astype(np.float64)).astype(np.float32)
    s.vertices, s.faces, s.face_material = new.vertices, new.faces, new.face_material
    s.face_part, s.corner_uv = new.face_part, new.corner_uv
    return [Note("repair", f"decimated from {n0} to {s.n_faces} faces (--max-faces {max_faces})")]


def _barycentric(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """float64 [N, C, 3] barycentric coordinates of points [N, C, 3] in the planes of triangles [N, 3, 3]."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1 = b - a, c - a
    d00 = np.einsum("nd,nd->n", v0, v0)
    d01 = np.einsum("nd,nd->n", v0, v1)
    d11 = np.einsum("nd,nd->n", v1, v1)
    denom = np.where(np.abs(d00 * d11 - d01**2) > 0, d00 * d11 - d01**2, 1.0)
    v2 = points - a[:, None]
    d20 = np.einsum("ncd,nd->nc", v2, v0)
    d21 = np.einsum("ncd,nd->nc", v2, v1)
    w1 = (d11[:, None] * d20 - d01[:, None] * d21) / denom[:, None]
    w2 = (d00[:, None] * d21 - d01[:, None] * d20) / denom[:, None]
    return np.stack([1.0 - w1 - w2, w1, w2], axis=2)


def orient(s: Surface) -> tuple[bool, list[Note]]:
    """Face closed components outward and find open ones: (two_sided, notes).

    A component is closed when each of its edges is shared by an even number of faces (two; four where two
    sheets touch along an edge, as decimation can leave them), so it bounds a volume. A closed component with
    negative signed volume is wound inward and is flipped. A naive mirror (x -> -x) of a mesh also turns its
    winding inward, and flipping does not undo the mirror: the note says so, for the orientation check.
    """
    notes: list[Note] = []
    n_comp, labels = face_components(s.faces)
    edge, counts, _ = _edges(s.faces)
    face_open = (counts[edge] % 2 == 1).any(1)
    comp_open = np.bincount(labels, face_open, n_comp) > 0
    tri = s.vertices[s.faces]
    centre = s.vertices.mean(0)
    t = tri - centre
    vol6 = np.einsum("nd,nd->n", t[:, 0], np.cross(t[:, 1], t[:, 2]))
    comp_vol = np.bincount(labels, vol6, n_comp) / 6.0
    inward = ~comp_open & (comp_vol < 0)
    if inward.any():
        s.flip(inward[labels])
        which = "the mesh" if n_comp == 1 else f"{int(inward.sum())} of {n_comp} closed components"
        notes.append(
            Note(
                "repair",
                f"{which} wound inward (negative signed volume): faces reversed; inward winding is also what a "
                "naive mirror (x -> -x) of a model produces, which reversing faces does not undo",
            )
        )
    if n_comp > 1:
        notes.append(Note("info", f"multi-body: {n_comp} connected components (kept)"))
    n_nonmanifold = int((counts > 2).sum())
    if n_nonmanifold:
        notes.append(Note("info", f"{n_nonmanifold} non-manifold edges (shared by more than two faces) kept"))
    two_sided = bool(comp_open.any())
    if two_sided:
        n_boundary = int((counts % 2 == 1).sum())
        scope = "" if n_comp == 1 else f" in {int(comp_open.sum())} of {n_comp} components"
        notes.append(
            Note("info", f"open surface (not watertight: {n_boundary} boundary edges{scope}): kept, rendered two-sided")
        )
    return two_sided, notes
