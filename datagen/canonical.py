"""The shared canonical surface of a category: where a point of an instance lies on it, and back (docs/design.md §5).

A canonical surface point is ``(canonical face, barycentric)``: the face's id in the family's canonical face index
space (``Family.slot_offsets[slot] + local face``) and a barycentric position in it. Every family instance carries
these coordinates exactly (its faces are the template's faces moved); Φ between two instances is "the point with the
same canonical coordinates", or none when the other instance lacks the part (docs/design.md §5).

* :class:`ProceduralSurface`: a procedural instance; both directions are exact table look-ups.
* :class:`RegisteredSurface`: a user's mesh with its fitted template ``T`` (:mod:`datagen.meshes.register`). Every
  face of the mesh takes the slot of the template part nearest to it. A point of the mesh takes the canonical
  coordinates of its closest point on ``T`` among that slot's faces; a canonical point is placed on ``T`` and then
  on the closest point of the mesh's faces of the same slot. A point farther than ``NO_COUNTERPART_REL`` of the
  mesh's size from the other surface (geometry the template does not explain, or a template part the mesh lacks)
  has no counterpart.

:func:`counterparts` composes the two: Φ from one surface's points onto another surface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from datagen.families import Family, Instance
from datagen.meshes.layers import welded_components
from datagen.meshes.proximity import SurfaceIndex
from datagen.meshes.register import NO_COUNTERPART_REL, Registration
from datagen.meshes.sampling import sample_surface

__all__ = ["CanonicalSurface", "ProceduralSurface", "RegisteredSurface", "counterparts"]

PIECE_MATCH_REL = 0.01  # a slot is a whole piece of the mesh within this (x bbox diagonal) both ways ...
PIECE_SPLIT_SHARE = 0.05  # ... judged where this share of the piece's faces voted for each of two slots or more
PIECE_AREA = 1.3  # ... and the piece's area within this factor of the slot's (not a tyre and its rim welded)
PIECE_SAMPLES = 400  # surface samples of a piece and of a slot for that test
PIECE_MAX = 4096  # a mesh of more connected pieces than this (a triangle soup) keeps its faces' votes
# barycentric points at which a mesh face votes for its template slot: the centroid and six around it
_FACE_VOTE_POINTS = np.array(
    [
        [1 / 3, 1 / 3, 1 / 3],
        [2 / 3, 1 / 6, 1 / 6],
        [1 / 6, 2 / 3, 1 / 6],
        [1 / 6, 1 / 6, 2 / 3],
        [1 / 6, 5 / 12, 5 / 12],
        [5 / 12, 1 / 6, 5 / 12],
        [5 / 12, 5 / 12, 1 / 6],
    ]  # fmt: skip
)


class CanonicalSurface(ABC):
    """One instance's rendered surface with its canonical coordinates.

    Attributes:
        family: the category family.
        vertices: float64 [V, 3] the rendered mesh (the instance's canonical frame, metres); faces: int [F, 3].
    """

    family: Family
    vertices: np.ndarray
    faces: np.ndarray

    @abstractmethod
    def to_canonical(self, face: np.ndarray, bary: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical coordinates of surface points ``points`` [N, 3] on rendered faces ``face`` [N] with
        barycentrics ``bary`` [N, 3]: (canonical face int64 [N], -1 where the point has none; bary [N, 3])."""

    @abstractmethod
    def from_canonical(self, canonical_face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rendered surface's points at canonical coordinates: (face int64 [N], -1 where this instance has no
        such point; points float64 [N, 3], NaN there)."""

    def keypoints(self) -> tuple[np.ndarray, np.ndarray]:
        """The family's keypoints on this surface: world positions [K, 3] (NaN where absent) and faces [K] (-1)."""
        fam = self.family
        k = len(fam.keypoints)
        if k == 0:
            return np.zeros((0, 3)), np.zeros(0, np.int64)
        offs = fam.slot_offsets
        canon = np.array([offs[fam.slot_index(kp.slot)] + kp.local_face for kp in fam.keypoints], np.int64)
        bary = np.array([kp.bary for kp in fam.keypoints], np.float64)
        face, pts = self.from_canonical(canon, bary)
        return pts, face


class ProceduralSurface(CanonicalSurface):
    """A procedural instance: its faces are canonical faces (exact)."""

    def __init__(self, family: Family, inst: Instance):
        self.family, self.instance = family, inst
        self.vertices = np.asarray(inst.vertices, np.float64)
        self.faces = np.asarray(inst.faces, np.int64)
        self.canonical_face = family.canonical_face(inst)
        self._lut = np.full(int(family.slot_offsets[-1]), -1, np.int64)
        self._lut[self.canonical_face] = np.arange(inst.n_faces)

    def to_canonical(self, face, bary, points):
        return self.canonical_face[face], np.asarray(bary, np.float64)

    def from_canonical(self, canonical_face, bary):
        cf = np.asarray(canonical_face, np.int64)
        f = np.where(cf >= 0, self._lut[np.maximum(cf, 0)], -1)
        pts = np.full((len(f), 3), np.nan)
        has = f >= 0
        pts[has] = np.einsum("nk,nkd->nd", np.asarray(bary, np.float64)[has], self.vertices[self.faces[f[has]]])
        return f, pts


class RegisteredSurface(CanonicalSurface):
    """A user's mesh placed on the canonical surface by its fitted template.

    Args:
        family: the category family.
        vertices, faces: the user's mesh (as rendered).
        registration: its :class:`~datagen.meshes.register.Registration` (template vertices in the same frame).
        two_sided: the mesh is open; otherwise closest points keep to faces facing the same way as the query's.
    """

    def __init__(
        self,
        family: Family,
        vertices: np.ndarray,
        faces: np.ndarray,
        registration: Registration,
        two_sided: bool = False,
    ):
        self.family = family
        self.two_sided = two_sided  # an open mesh: face orientation says nothing, closest points ignore it
        self.vertices = np.asarray(vertices, np.float64)
        self.faces = np.asarray(faces, np.int64)
        self.registration = registration
        self.template = registration.instance()
        self.template_vertices = np.asarray(registration.template_vertices, np.float64)
        self.diagonal = float(np.linalg.norm(np.ptp(self.vertices, axis=0)))
        self.max_distance = NO_COUNTERPART_REL * self.diagonal
        present = registration.slot_present[self.template.face_slot]
        self._canonical_face = np.where(present, family.canonical_face(self.template), -1)
        self._lut = np.full(int(family.slot_offsets[-1]), -1, np.int64)
        self._lut[family.canonical_face(self.template)[present]] = np.flatnonzero(present)
        self._template_index: SurfaceIndex | None = None
        self._mesh_index: SurfaceIndex | None = None
        cached = registration.mesh_face_slot
        self._mesh_face_slot = cached if cached is not None and len(cached) == len(self.faces) else None
        self._slot_indices: dict[tuple[str, int], SurfaceIndex | None] = {}

    @property
    def template_index(self) -> SurfaceIndex:
        if self._template_index is None:
            self._template_index = SurfaceIndex(self.template_vertices, self.template.faces)
        return self._template_index

    @property
    def mesh_index(self) -> SurfaceIndex:
        if self._mesh_index is None:
            self._mesh_index = SurfaceIndex(self.vertices, self.faces)
        return self._mesh_index

    @property
    def mesh_face_slot(self) -> np.ndarray:
        """int64 [F]: the template slot of every face of the mesh: the slot most of seven points of the face
        (centroid and around) find nearest on the template, among its faces facing the same way.

        Thin layers (:mod:`datagen.meshes.layers`: glass on a cabin, a label on a bottle, a hub cap on a tyre) lie
        closer to the part under them than the fit's error, so layers and the rest are told apart on both
        surfaces by the same geometric test and a point votes among the template's faces of its own kind; where
        those lie more than ``NO_COUNTERPART_REL`` farther than the nearest face of any kind (the template has
        no such layer there), it takes the nearest of all."""
        if self._mesh_face_slot is None:
            from datagen.meshes.layers import layer_faces

            tri = self.vertices[self.faces]
            normals = None if self.two_sided else self.mesh_index.face_normals
            n_slots = len(self.family.slots)
            votes = np.zeros((len(tri), n_slots), np.int64)
            mesh_layer = layer_faces(self.vertices, self.faces)
            template_layer = layer_faces(self.template.vertices, self.template.faces)
            kinds = []  # (mesh faces of one kind, the template's faces of that kind) where both have some
            for is_layer in (False, True):
                m, t = np.flatnonzero(mesh_layer == is_layer), template_layer == is_layer
                if m.size and t.any() and not t.all():
                    kinds.append((m, SurfaceIndex(self.template_vertices, self.template.faces, face_mask=t)))
            for w in _FACE_VOTE_POINTS:  # a big face is judged at several points, not at its centroid alone
                p = np.einsum("k,nkd->nd", w, tri)
                f_t, _, _, d_all = self.template_index.closest(p, normals=normals)
                for m, index in kinds:
                    f_k, _, _, d_k = index.closest(p[m], normals=None if normals is None else normals[m])
                    own = d_k <= d_all[m] + self.max_distance
                    f_t[m[own]] = f_k[own]
                np.add.at(votes, (np.arange(len(tri)), self.template.face_slot[f_t]), 1)
            self._mesh_face_slot = self._whole_pieces(votes.argmax(axis=1).astype(np.int64))
        return self._mesh_face_slot

    def _whole_pieces(self, label: np.ndarray) -> np.ndarray:
        """``label`` (int64 [F], each face's voted slot) with every connected piece of the mesh whose faces split
        between slots relabelled as one slot where one slot *is* that piece: both surfaces' mean distance to the
        other (piece to the slot's faces on the template, the slot's faces to the piece) within
        ``PIECE_MATCH_REL`` of the bbox diagonal and under half of the next split slot's. A face votes by
        nearness alone, and parts nested closer than the fit's error split between them: a wheel's rim sits in
        its tyre's inner edge, a few millimetres from it, and half the rim's faces voted tyre. As a whole the rim
        is far from a tyre (whose tread is a tyre's height away) and near the template's rim. A piece that merges
        parts (a frame in one piece, a tyre welded to its rim: the tyre lies on all of it, but the piece has twice
        its area) or holds a part of a slot (one spoke) matches no slot this way and keeps its faces' votes."""
        piece = welded_components(self.vertices, self.faces, 1e-6 * self.diagonal)
        n_pieces = int(piece.max()) + 1 if len(piece) else 0
        if n_pieces < 2 or n_pieces > PIECE_MAX:
            return label
        order = np.argsort(piece, kind="stable")
        bounds = np.searchsorted(piece[order], np.arange(n_pieces + 1))
        out = label.copy()
        rng = np.random.default_rng(0)
        for k in range(n_pieces):
            faces = order[bounds[k] : bounds[k + 1]]
            slots, counts = np.unique(label[faces], return_counts=True)
            split = slots[counts >= PIECE_SPLIT_SHARE * len(faces)]
            if len(split) < 2:
                continue
            piece_pts = sample_surface(self.vertices, self.faces[faces], PIECE_SAMPLES, rng)[0]
            piece_index = SurfaceIndex(self.vertices, self.faces, face_mask=np.isin(np.arange(len(self.faces)), faces))
            piece_area = _area(self.vertices, self.faces[faces])
            fits = []
            for slot in split:
                t_faces = self.template.faces[self.template.face_slot == slot]
                t_pts = sample_surface(self.template_vertices, t_faces, PIECE_SAMPLES, rng)[0]
                there = float(self._slot_index("template", int(slot)).closest(piece_pts)[3].mean())
                back = float(piece_index.closest(t_pts)[3].mean())
                ratio = piece_area / max(_area(self.template_vertices, t_faces), 1e-300)
                fits.append((max(there, back), ratio, int(slot)))
            fits.sort()
            (d, ratio, slot), d_next = fits[0], fits[1][0]
            if d <= PIECE_MATCH_REL * self.diagonal and d < 0.5 * d_next and 1 / PIECE_AREA <= ratio <= PIECE_AREA:
                out[faces] = slot
        return out

    def _slot_index(self, which: str, slot: int) -> SurfaceIndex | None:
        """The closest-point index of one slot's faces on the template (``which="template"``) or on the mesh."""
        key = (which, slot)
        if key not in self._slot_indices:
            if which == "template":
                mask, v, f = self.template.face_slot == slot, self.template_vertices, self.template.faces
            else:
                mask, v, f = self.mesh_face_slot == slot, self.vertices, self.faces
            self._slot_indices[key] = SurfaceIndex(v, f, face_mask=mask) if mask.any() else None
        return self._slot_indices[key]

    def _closest_by_slot(
        self, which: str, slots: np.ndarray, points: np.ndarray, normals: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Closest points on the template or the mesh, each query among the faces of its own slot (where that
        slot has faces there): parts that touch, interpenetrate or lie in layers (a leg's top inside a seat, a
        label on a bottle, glass on a cabin) keep their own points."""
        n = len(points)
        face, bary = np.zeros(n, np.int64), np.zeros((n, 3))
        pts, dist = np.zeros((n, 3)), np.full(n, np.inf)
        for slot in np.unique(slots):
            sel = np.flatnonzero(slots == slot)
            index = self._slot_index(which, int(slot))
            if index is None:
                index = self.template_index if which == "template" else self.mesh_index
            face[sel], bary[sel], pts[sel], dist[sel] = index.closest(
                points[sel], normals=None if normals is None else normals[sel]
            )
        return face, bary, pts, dist

    def to_canonical(self, face, bary, points):
        face = np.asarray(face, np.int64)
        normals = None if self.two_sided else self.mesh_index.face_normals[face]
        slots = self.mesh_face_slot[face]
        f_t, b_t, _, dist = self._closest_by_slot("template", slots, np.asarray(points, np.float64), normals)
        cf = self._canonical_face[f_t]
        cf = np.where(dist <= self.max_distance, cf, -1)
        return cf, b_t

    def from_canonical(self, canonical_face, bary):
        cf = np.asarray(canonical_face, np.int64)
        f_t = np.where(cf >= 0, self._lut[np.maximum(cf, 0)], -1)
        face = np.full(len(cf), -1, np.int64)
        pts = np.full((len(cf), 3), np.nan)
        has = np.flatnonzero(f_t >= 0)
        if has.size:
            on_t = np.einsum("nk,nkd->nd", np.asarray(bary, np.float64)[has],
                             self.template_vertices[self.template.faces[f_t[has]]])  # fmt: skip
            normals = None if self.two_sided else self.template_index.face_normals[f_t[has]]
            slots = self.template.face_slot[f_t[has]].astype(np.int64)
            f_m, _, p_m, dist = self._closest_by_slot("mesh", slots, on_t, normals)
            near = dist <= self.max_distance
            face[has[near]], pts[has[near]] = f_m[near], p_m[near]
        return face, pts


def _area(vertices: np.ndarray, faces: np.ndarray) -> float:
    tri = vertices[faces]
    return 0.5 * float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())


def counterparts(
    src: CanonicalSurface,
    dst: CanonicalSurface,
    face: np.ndarray,
    bary: np.ndarray,
    points: np.ndarray,
    canonical: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Φ of ``src``'s surface points onto ``dst``: faces of ``dst`` int64 [N] (-1 = no counterpart) and points
    float64 [N, 3] (NaN there). ``canonical`` passes ``src.to_canonical`` of the points when already computed."""
    if isinstance(src, ProceduralSurface) and isinstance(dst, ProceduralSurface) and canonical is None:
        return dst.from_canonical(src.canonical_face[face], bary)
    cf, cb = canonical if canonical is not None else src.to_canonical(face, bary, points)
    out_face = np.full(len(cf), -1, np.int64)
    out_pts = np.full((len(cf), 3), np.nan)
    has = np.flatnonzero(cf >= 0)
    if has.size:
        out_face[has], out_pts[has] = dst.from_canonical(cf[has], cb[has])
    return out_face, out_pts
