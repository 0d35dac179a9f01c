"""Canonical-surface registration: fit the category's template to a user's mesh, so that every point of the mesh
gets a place on the family's shared canonical surface (docs/design.md §5, "a user's category-aligned meshes").

The family's template surface is not one fixed mesh but the family itself: every procedural instance carries the
same canonical coordinates ``(slot, local face, barycentric)``. Registration therefore

1. draws a fixed pool of instances (:func:`candidate_pool`) and picks the one whose surface, scaled per axis to
   the mesh's bounding box, is nearest to the mesh (symmetric mean closest-point distance), trying the mesh as
   given and turned front/back, upside down and both: an orientation that fits clearly better than the file's is
   reported and applied, a mirror cannot be told from a symmetric family's shapes and is never assumed;
2. deforms that instance onto the mesh (:func:`deform`): bidirectional closest points (template vertex -> mesh
   surface, mesh sample -> template vertex, with normal agreement) against a graph-Laplacian smoothness of the
   displacement, whose weight falls from near-rigid (a translation per part) to local;
3. scores the result (:class:`Quality`): surface distance both ways, normal agreement, the share of the mesh the
   template covers, the template's own stretch, and which slots found no counterpart on the mesh.

The fitted template ``T`` has the instance's topology, so a point of the mesh maps to canonical coordinates by its
closest point on ``T`` and back through :mod:`datagen.canonical`. Keypoints come from the template.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401 (sp.csgraph)
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

from datagen.families import Family, Instance, get_family
from datagen.families.distortion import STRETCH_LIMIT, affine_singular_values
from datagen.meshes.library import atomic_write_bytes, load_mesh

__all__ = [
    "Quality",
    "Registration",
    "ORIENTATIONS",
    "candidate_pool",
    "sample_surface",
    "fit_template",
    "deform",
    "register_stage",
    "registration_path",
    "save_registration",
    "load_registration",
    "QUALITY_LIMITS",
]

POOL_SIZE = 400  # template instances tried per mesh
FINALISTS = 10  # candidates (and the best few as given) compared on all samples
REFINE_STARTS = 1  # the best few finalists refined, the best result kept
CONTINUOUS_SWEEPS = 5  # continuous refinement: steps of 1/5, 1/10, ... 1/80 of each parameter's range in the pool
SLOT_BALANCE = 0.5  # the share of each side of the refinement's distance averaged per part (_chamfer)
MAX_BALANCED_PIECES = 64  # a mesh of more connected pieces than this is not balanced by piece
MAX_STEPS_PER_DIRECTION = 3  # ... each repeated while it pays, up to this many times
POOL_SEED = 20261204
NO_COUNTERPART_REL = 0.03  # farther than this (x bbox diagonal) from the other surface: no counterpart
JOIN_SMALL_PARTS = True  # small parts follow the part they are set in (see _joins)
JOIN_EXTENT_REL = 0.1
JOIN_REL = 0.02
LAYER_REL = 0.005  # a template part this close (x bbox diagonal) to another part is a layer on it ...
LAYER_OWN_REL = 0.03  # ... if also this close relative to its own extent (glass, labels: not engines, gear)
# proper rotations tried on the mesh (names are what a file oriented that way got wrong)
ORIENTATIONS: dict[str, np.ndarray] = {
    "as given": np.eye(3),
    "front/back flipped": np.diag([-1.0, 1.0, -1.0]),  # 180 degrees about y
    "upside down": np.diag([1.0, -1.0, -1.0]),  # 180 degrees about x
    "upside down and front/back flipped": np.diag([-1.0, -1.0, 1.0]),  # 180 degrees about z
}
ORIENTATION_MARGIN = 0.75  # another orientation must fit within this fraction of the given one's distance
# a registration below any of these is rejected (distances relative to the bounding-box diagonal)
QUALITY_LIMITS = {
    "mesh_to_template_p90": 0.05,
    "coverage": 0.8,
    "normal_agreement": 0.6,
}


@dataclass
class Quality:
    """How well the fitted template explains the mesh (distances as fractions of the mesh's bbox diagonal).

    Attributes:
        mesh_to_template_mean, mesh_to_template_p90: mesh surface samples to the template surface.
        template_to_mesh_mean, template_to_mesh_p90: template samples (present slots) to the mesh surface.
        coverage: share of the mesh's surface within ``NO_COUNTERPART_REL`` of the template.
        normal_agreement: mean |cos| between the mesh's and the template's normals at matched points.
        stretch_frac: share of the template's area deformed beyond ``STRETCH_LIMIT`` of the instance's shape.
        absent_slots: slots of the instance that found no counterpart on the mesh (mapped as absent).
        chamfer_as_given, chamfer_best: the search's symmetric distance for the file's orientation and the best.
    """

    mesh_to_template_mean: float = 0.0
    mesh_to_template_p90: float = 0.0
    template_to_mesh_mean: float = 0.0
    template_to_mesh_p90: float = 0.0
    coverage: float = 0.0
    normal_agreement: float = 0.0
    stretch_frac: float = 0.0
    absent_slots: list[str] = field(default_factory=list)
    chamfer_as_given: float = 0.0
    chamfer_best: float = 0.0

    def problems(self) -> list[str]:
        """The :data:`QUALITY_LIMITS` this registration breaks, as sentences."""
        out = []
        if self.mesh_to_template_p90 > QUALITY_LIMITS["mesh_to_template_p90"]:
            out.append(
                f"90 % of the mesh lies within {self.mesh_to_template_p90:.1%} of the bbox diagonal from the fitted "
                f"template (limit {QUALITY_LIMITS['mesh_to_template_p90']:.0%})"
            )
        if self.coverage < QUALITY_LIMITS["coverage"]:
            out.append(f"the template covers {self.coverage:.0%} of the mesh (limit {QUALITY_LIMITS['coverage']:.0%})")
        if self.normal_agreement < QUALITY_LIMITS["normal_agreement"]:
            out.append(f"normals agree to {self.normal_agreement:.2f} (limit {QUALITY_LIMITS['normal_agreement']:.2f})")
        return out


@dataclass
class Registration:
    """A mesh's place on the canonical surface.

    Attributes:
        mesh_id, category: which mesh of which family.
        params: the template instance's shape parameters (``family.build(params)`` rebuilds its topology).
        template_vertices: float64 [V, 3] the fitted template ``T``, the instance's vertices moved onto the mesh
            (the mesh's canonical frame, after ``rotation``).
        slot_present: bool [n_slots] slots of the instance that have a counterpart on the mesh.
        rotation: float64 [3, 3] the orientation fix applied to the mesh's vertices (identity when none).
        orientation: name of that fix (a key of :data:`ORIENTATIONS`).
        quality: :class:`Quality`.
        seconds: time the fit took.
    """

    mesh_id: str
    category: str
    params: dict[str, Any]
    template_vertices: np.ndarray
    slot_present: np.ndarray
    rotation: np.ndarray
    orientation: str
    quality: Quality
    seconds: float = 0.0
    mesh_face_slot: np.ndarray | None = None  # int64 [F] template slot of each face of the mesh (cached labels)

    def instance(self) -> Instance:
        """The template instance (undeformed)."""
        return _build(self.category, json.dumps(self.params, sort_keys=True), f"template-{self.mesh_id}")


@functools.lru_cache(maxsize=16)
def _build(category: str, params_json: str, instance_id: str) -> Instance:
    return get_family(category).build(json.loads(params_json), instance_id)


# ---- sampling ----------------------------------------------------------------------------------------------------
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


def _rest(points: np.ndarray) -> np.ndarray:
    """The translation putting points on y = 0 with their bbox centred in x and z (the intake's placement)."""
    lo, hi = points.min(0), points.max(0)
    return -np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])


# ---- the candidate pool ------------------------------------------------------------------------------------------
@dataclass
class _Candidate:
    params: dict[str, Any]
    instance: Instance
    samples: np.ndarray  # [S, 3] surface samples, instance frame
    lo: np.ndarray
    hi: np.ndarray
    sample_slot: np.ndarray  # [S] the slot of each sample
    layer_faces: np.ndarray | None = None  # [F', 3] its faces in thin-layer slots (:func:`layer_slots`), lazy
    layer_samples: np.ndarray | None = None  # [S', 3] samples of them, lazy
    layer_face_slot: np.ndarray | None = None  # [F'] and [S'] their slots, lazy
    layer_sample_slot: np.ndarray | None = None


@dataclass
class _Target:
    """The mesh as the search sees it in one orientation: surface samples with their tree and bounding box, and
    samples of its thin layers (:mod:`datagen.meshes.layers`; glass, labels) with theirs, or none."""

    samples: np.ndarray
    tree: cKDTree
    lo: np.ndarray
    hi: np.ndarray
    layer: np.ndarray
    layer_part: np.ndarray  # [S'] the connected component (a glass pane, a label) of each layer sample
    layer_index: Any  # a SurfaceIndex of the layer faces (placed the same way), or None
    layer_face_part: np.ndarray  # [F'] the component of each of those faces
    diagonal: float
    sample_piece: np.ndarray | None = None  # [S] the connected piece of the mesh of each sample (None: not used)


@functools.lru_cache(maxsize=8)
def candidate_pool(category: str, size: int = POOL_SIZE, seed: int = POOL_SEED) -> tuple[_Candidate, ...]:
    """A fixed pool of ``size`` instances of the family (the same in every process), with surface samples."""
    family = get_family(category)
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(size):
        params = family.sample_params(rng)
        inst = family.build(params, f"pool-{i}")
        pts, _, f = sample_surface(inst.vertices, inst.faces, 1500, np.random.default_rng([seed, i]))
        pool.append(_Candidate(params, inst, pts, inst.vertices.min(0), inst.vertices.max(0), inst.face_slot[f]))
    return tuple(pool)


@functools.lru_cache(maxsize=32)
def layer_slots(category: str, n: int = 12) -> np.ndarray:
    """bool [n_slots]: the family's slots that are thin layers on another part (:mod:`datagen.meshes.layers`) in
    at least half of the first ``n`` pool instances that have them."""
    from datagen.meshes.layers import layer_faces

    family = get_family(category)
    hits = np.zeros(len(family.slots))
    seen = np.zeros(len(family.slots))
    for c in candidate_pool(category)[:n]:
        slot = c.instance.face_slot
        layer = layer_faces(c.instance.vertices, c.instance.faces)
        np.add.at(seen, np.unique(slot), 1)
        count = np.maximum(np.bincount(slot, minlength=len(seen)), 1)
        hits += np.bincount(slot, weights=layer, minlength=len(seen)) / count > 0.5
    return (seen > 0) & (hits >= 0.5 * np.maximum(seen, 1))


def _candidate_layers(category: str, c: _Candidate) -> tuple[np.ndarray, np.ndarray]:
    """A candidate's faces [F, 3] in thin-layer slots and samples [S, 3] of them (instance frame; none where it has
    no such slot); their slots are kept in ``c.layer_face_slot``, ``c.layer_sample_slot``."""
    if c.layer_samples is None:
        keep = np.flatnonzero(layer_slots(category)[c.instance.face_slot])
        c.layer_faces, c.layer_face_slot = c.instance.faces[keep], c.instance.face_slot[keep]
        c.layer_samples, c.layer_sample_slot = np.zeros((0, 3)), np.zeros(0, np.int64)
        if len(keep):
            c.layer_samples, _, f = sample_surface(c.instance.vertices, c.layer_faces, 1000, np.random.default_rng(0))
            c.layer_sample_slot = c.layer_face_slot[f]
    return c.layer_faces, c.layer_samples


def _purity(a: np.ndarray, b: np.ndarray) -> float:
    """The share of items whose label ``b`` is the most common one among the items of their group ``a`` (1 when
    every group falls in one label)."""
    if len(a) == 0:
        return 1.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    counts = np.zeros((ai.max() + 1, bi.max() + 1), np.int64)
    np.add.at(counts, (ai, bi), 1)
    return float(counts.max(axis=1).sum() / len(a))


LAYER_MISMATCH_REL = 0.02  # the search's penalty (x bbox diagonal) when only one of mesh and template has layers
LAYER_SPLIT_REL = 0.02  # ... and (x bbox diagonal) for layer parts split between several of the other's
LAYER_REFINE_SLACK = 0.01  # fitting the layers may worsen the surfaces' distance by this fraction, no more


def _score(
    category: str, target: _Target, c: _Candidate, samples: np.ndarray | None = None, tree=None, layers: bool = True
) -> float:
    """How far candidate ``c``, scaled per axis to the mesh's box, is from the mesh: the symmetric mean
    closest-point distance of the surfaces (over ``samples`` with ``tree`` when given, else all of the target's)
    plus that of their thin layers. Layers lie within millimetres of the parts under them, so the surfaces' distance
    cannot tell how many windows a car has or how tall a bottle's label is; the layers' own distance can, measured
    exactly (samples to the other's faces both ways), and how well their parts pair up: the share of each mesh
    layer part (a connected component: a glass pane, a label) whose closest template points fall in other than its
    main slot, and of each template layer slot falling on other than its main mesh part, both ways. Three windows
    a side against one are a few pillars' width apart in distance but split each other's panes. When only one
    side has layers, a fixed penalty. ``layers=False``: the surfaces' distance alone."""
    from datagen.meshes.proximity import SurfaceIndex

    sc, o = _axis_scale(c, target.lo, target.hi)
    p, t = (target.samples, target.tree) if samples is None else (samples, tree)
    pieces = None if target.sample_piece is None else target.sample_piece[: len(p)]  # ``samples`` is a prefix
    d = _chamfer(p, t, c.samples * sc + o, c.sample_slot, pieces)
    if not layers:
        return d
    faces, mine = _candidate_layers(category, c)
    if len(target.layer) and len(mine):
        f_tc, _, _, d_tc = SurfaceIndex(c.instance.vertices * sc + o, faces).closest(target.layer)
        f_ct, _, _, d_ct = target.layer_index.closest(mine * sc + o)
        d += float(d_tc.mean() + d_ct.mean()) / 2
        split = (
            2
            - _purity(target.layer_part, c.layer_face_slot[f_tc])
            - _purity(c.layer_sample_slot, target.layer_face_part[f_ct])
        )
        d += LAYER_SPLIT_REL * target.diagonal * split / 2
    elif len(target.layer) or len(mine):
        d += LAYER_MISMATCH_REL * target.diagonal
    return d


def _chamfer(
    a: np.ndarray,
    tree_a: cKDTree,
    b: np.ndarray,
    b_group: np.ndarray | None = None,
    a_group: np.ndarray | None = None,
) -> float:
    """Symmetric mean closest-point distance between point sets ``a`` (with its tree) and ``b``. With groups (the
    template's slot of each of ``b``'s points, the mesh's connected piece of each of ``a``'s), that side's mean is
    half over points, half over groups of each group's mean: a part of 1 % of the area (an ear, a tail tip) then
    weighs as much as a body in half the term, so its proportions and pose are fitted too, where area-weighted
    means hardly see them. Both ways matter: a template's ear lying on the mesh's head is close to the mesh; only
    the mesh's ear, far from any template point, says it is misplaced."""
    d_ba, _ = tree_a.query(b)
    d_ab, _ = cKDTree(b).query(a)
    return (_balanced_mean(d_ab, a_group) + _balanced_mean(d_ba, b_group)) / 2


def _balanced_mean(d: np.ndarray, group: np.ndarray | None) -> float:
    """(1 - SLOT_BALANCE) x the mean of ``d`` + SLOT_BALANCE x the mean over groups of each group's mean."""
    if group is None or SLOT_BALANCE <= 0:
        return float(d.mean())
    _, inv, counts = np.unique(group, return_inverse=True, return_counts=True)
    per_group = np.bincount(inv, weights=d) / counts
    return (1 - SLOT_BALANCE) * float(d.mean()) + SLOT_BALANCE * float(per_group.mean())


def _axis_scale(c: _Candidate, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis scale and offset taking the candidate's bbox onto ``lo, hi``."""
    s = (hi - lo) / np.maximum(c.hi - c.lo, 1e-9)
    return s, lo - c.lo * s


# ---- deformation -------------------------------------------------------------------------------------------------
def _joins(v: np.ndarray, faces: np.ndarray, diagonal: float) -> np.ndarray:
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
    if joins is not None and len(joins):  # small parts carried by what they are set in (see _joins)
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


# ---- the fit -----------------------------------------------------------------------------------------------------
def fit_template(
    mesh_id: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    category: str,
    two_sided: bool = False,
    seed: int = 0,
) -> Registration:
    """Fit the family's template to a mesh (see the module docstring).

    Args:
        vertices: float64 [V, 3] the mesh in the canonical frame (the intake's output); faces: int [F, 3].
        category: family name.
        two_sided: the mesh is open (its normals' signs carry no meaning).
    """
    t0 = time.perf_counter()
    family = get_family(category)
    rng = np.random.default_rng(seed)
    v = np.asarray(vertices, np.float64)
    diagonal = float(np.linalg.norm(np.ptp(v, axis=0)))
    pts, nrm, sample_face = sample_surface(v, faces, 4000, rng)
    pool = candidate_pool(category)
    # coarse: every orientation x every candidate on a few hundred points; fine: the best few on all of them
    coarse: list[tuple[float, str, int]] = []
    placed: dict[str, tuple[np.ndarray, cKDTree, np.ndarray, np.ndarray]] = {}
    for name, R in ORIENTATIONS.items():
        p = pts @ R.T
        p = p + _rest(p)
        placed[name] = (p, cKDTree(p), p.min(0), p.max(0))
        few, few_tree = p[:500], cKDTree(p[:500])
        for i, c in enumerate(pool):
            sc, o = _axis_scale(c, placed[name][2], placed[name][3])
            coarse.append((_chamfer(few, few_tree, c.samples[:400] * sc + o), name, i))
    scores: dict[str, tuple[float, int]] = dict.fromkeys(ORIENTATIONS, (np.inf, -1))
    finalists = sorted(coarse)[:FINALISTS] + sorted(x for x in coarse if x[1] == "as given")[:FINALISTS]
    fine: dict[str, set[tuple[float, int]]] = {name: set() for name in ORIENTATIONS}
    for _, name, i in finalists:
        p, tree, lo, hi = placed[name]
        sc, o = _axis_scale(pool[i], lo, hi)
        fine[name].add((_chamfer(p, tree, pool[i].samples * sc + o), i))
        scores[name] = min(scores[name], min(fine[name]))
    given = scores["as given"][0]
    orientation = "as given"
    alt = min((k for k in scores if k != "as given"), key=lambda k: scores[k][0])  # inf where none was a finalist
    if scores[alt][0] < ORIENTATION_MARGIN * given:
        orientation = alt
    R = ORIENTATIONS[orientation]
    target = _target(placed[orientation], v, faces, R, _rest(pts @ R.T), seed, sample_face)
    v = v @ R.T
    v = v + _rest(v)
    pts, nrm, _ = sample_surface(v, faces, 20000, rng)
    if np.linalg.det(R) < 0:  # never: ORIENTATIONS are proper rotations
        raise AssertionError("improper orientation fix")
    best: tuple[float, _Candidate] | None = None
    for _, i in sorted(fine[orientation])[:REFINE_STARTS]:  # a few starts: the descent stops in local minima
        cand = _discrete_refine(family, pool[i], target)
        cand = _continuous_refine(family, cand, target)
        if len(target.layer) or layer_slots(category).any():  # then the layers' outlines and counts
            if len(target.layer):
                cand = _continuous_refine(family, cand, target, layers=True)
            cand = _discrete_refine(family, cand, target, sweeps=1)
        d = _score(category, target, cand)
        if best is None or d < best[0]:
            best = (d, cand)
    cand = best[1]
    s, o = _axis_scale(cand, v.min(0), v.max(0))
    inst = cand.instance
    start = inst.vertices * s + o
    welded, inverse = _weld_index(start)
    wf = inverse[inst.faces]
    from datagen.meshes.proximity import SurfaceIndex

    mesh_index = SurfaceIndex(v, faces)
    deformed = deform(welded, wf, pts, nrm, diagonal, two_sided, mesh_index)
    joins = _joins(welded, wf, diagonal) if JOIN_SMALL_PARTS else np.zeros((0, 2), np.int64)
    if len(joins):  # the template's small parts joined to what they are set in: kept where it explains the mesh better
        joined = deform(welded, wf, pts, nrm, diagonal, two_sided, mesh_index, joins=joins)
        few = pts[np.random.default_rng([seed, 2]).choice(len(pts), 5000, replace=False)]

        def fit(x: np.ndarray) -> float:  # symmetric mean distance between the deformed template and the mesh
            t_pts = sample_surface(x, wf, 5000, np.random.default_rng([seed, 3]))[0]
            return float(SurfaceIndex(x, wf).closest(few)[3].mean() + mesh_index.closest(t_pts)[3].mean())

        if fit(joined) < fit(deformed):
            deformed = joined
    template_vertices = deformed[inverse]
    quality, slot_present = _quality(family, inst, start, template_vertices, v, faces, pts, nrm, diagonal, two_sided)
    quality.chamfer_as_given = given / diagonal
    quality.chamfer_best = scores[orientation][0] / diagonal
    return Registration(
        mesh_id=mesh_id,
        category=category,
        params=cand.params,
        template_vertices=template_vertices,
        slot_present=slot_present,
        rotation=R,
        orientation=orientation,
        quality=quality,
        seconds=time.perf_counter() - t0,
    )


def _target(
    placed: tuple[np.ndarray, cKDTree, np.ndarray, np.ndarray],
    vertices: np.ndarray,
    faces: np.ndarray,
    R: np.ndarray,
    shift: np.ndarray,
    seed: int,
    sample_face: np.ndarray | None = None,
) -> _Target:
    """The search's view of the mesh in orientation ``R``: ``placed`` (samples, tree, box: the samples turned by
    ``R`` and moved by ``shift``; ``sample_face`` the mesh face of each sample) and samples of its thin layers,
    placed the same way (none when it has none)."""
    from datagen.meshes.layers import layer_components, welded_components
    from datagen.meshes.proximity import SurfaceIndex

    p, tree, lo, hi = placed
    v = np.asarray(vertices, np.float64)
    part = layer_components(v, faces)
    f, face_part = np.asarray(faces)[part >= 0], part[part >= 0]
    layer, sample_part, index = np.zeros((0, 3)), np.zeros(0, np.int64), None
    if len(f):
        pts, _, owner = sample_surface(v, f, 2000, np.random.default_rng([seed, 1]))
        layer, sample_part = pts @ R.T + shift, face_part[owner]
        index = SurfaceIndex(v @ R.T + shift, f)
    diagonal = float(np.linalg.norm(hi - lo))
    piece = None
    if sample_face is not None:
        face_piece = welded_components(v, faces, 1e-6 * diagonal)
        piece = face_piece[sample_face]
        if len(np.unique(piece)) > MAX_BALANCED_PIECES:  # a triangle soup: its pieces are not parts
            piece = None
    return _Target(p, tree, lo, hi, layer, sample_part, index, face_part, diagonal, piece)


def _discrete_refine(family: Family, cand: _Candidate, target: _Target, sweeps: int = 2) -> _Candidate:
    """Coordinate descent over the candidate's discrete parameters (booleans, integers, strings: which optional
    parts it has, how many slats or windows), each tried at every value the pool shows, the rest kept, by
    :func:`_score` against the mesh. The pool's shapes decide proportions well; counts of small repeated parts
    (slats, windows) it leaves to chance, and they decide which slots correspond."""
    pool = candidate_pool(family.name)
    keys = [k for k, v in cand.params.items() if isinstance(v, bool | int | str) and not isinstance(v, float)]
    values = {k: sorted({c.params[k] for c in pool}, key=repr) for k in keys}
    best = (_score(family.name, target, cand), cand)
    for _ in range(sweeps):
        improved = False
        for k in keys:
            for value in values[k]:
                if value == best[1].params[k]:
                    continue
                c = _candidate(family, {**best[1].params, k: value})
                if c is None:
                    continue
                d = _score(family.name, target, c)
                if d < best[0] * (1 - 1e-3):
                    best, improved = (d, c), True
        if not improved:
            break
    return best[1]


def _candidate(family: Family, params: dict[str, Any]) -> _Candidate | None:
    """A candidate built from ``params`` with its surface samples, or None where the parameters build nothing."""
    try:
        inst = family.build(params, "refine")
    except (ValueError, KeyError, IndexError, RuntimeError, FloatingPointError):
        return None
    samples, _, f = sample_surface(inst.vertices, inst.faces, 1500, np.random.default_rng(0))
    return _Candidate(params, inst, samples, inst.vertices.min(0), inst.vertices.max(0), inst.face_slot[f])


ParamPath = tuple[Any, ...]  # a key into nested parameters: ("head_len",), ("pose", "front_left", 1)


def _float_paths(params: Any, prefix: ParamPath = ()) -> list[ParamPath]:
    """Paths to every float in ``params``, nested dicts and lists included (a quadruped's per-leg pose angles, a
    person's joint angles): the proportions and the pose decide where canonical coordinates land alike."""
    if isinstance(params, float):
        return [prefix]
    if isinstance(params, dict):
        return [q for k in params for q in _float_paths(params[k], (*prefix, k))]
    if isinstance(params, list | tuple):
        return [q for i, x in enumerate(params) for q in _float_paths(x, (*prefix, i))]
    return []


def _get(params: Any, path: ParamPath) -> Any:
    for k in path:
        params = params[k]
    return params


def _with(params: Any, path: ParamPath, value: float) -> Any:
    """A copy of ``params`` with the float at ``path`` set to ``value`` (only the containers on the path copied)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(params, dict):
        return {**params, head: _with(params[head], rest, value)}
    out = list(params)
    out[head] = _with(out[head], rest, value)
    return out if isinstance(params, list) else tuple(out)


def _continuous_refine(
    family: Family,
    cand: _Candidate,
    target: _Target,
    sweeps: int = CONTINUOUS_SWEEPS,
    layers: bool = False,
) -> _Candidate:
    """Coordinate descent over the candidate's continuous parameters (every float, nested ones such as per-leg
    pose angles included; each moved by a fifth of its range in the pool, then a tenth, ..., and on in the same
    direction while that pays), by the symmetric distance to the mesh: the part proportions and poses a pool of
    random shapes only approximates (where the wheels sit along a car, how tall a backrest is, how long a muzzle,
    how far a knee is flexed) decide where canonical coordinates land, which a smooth deformation towards closest
    points cannot slide into place. Scored by the surfaces' distance on 2000 of the mesh's samples; with
    ``layers``, by :func:`_score` with its layer term (glass outlines the cabin under it), among shapes whose
    surfaces' distance stays within ``LAYER_REFINE_SLACK`` of the start's: a layer's exact distance would otherwise
    outweigh the sampled one of the whole and trade a body's proportions for a label's edge."""
    pool = candidate_pool(family.name)
    paths = [q for q in _float_paths(cand.params) if all(_has(c.params, q) for c in pool)]
    lo = {q: min(_get(c.params, q) for c in pool) for q in paths}
    hi = {q: max(_get(c.params, q) for c in pool) for q in paths}
    few = target.samples[:2000]
    few_tree = cKDTree(few)

    def surface(c: _Candidate) -> float:
        return _score(family.name, target, c, few, few_tree, layers=False)

    def score(c: _Candidate) -> float:
        return _score(family.name, target, c, few, few_tree, layers=layers)

    limit = surface(cand) * (1 + LAYER_REFINE_SLACK) if layers else np.inf
    best, best_d = cand, score(cand)
    frac = 0.2
    for _ in range(sweeps):
        for q in paths:
            span = hi[q] - lo[q]
            if span <= 0:
                continue
            for sign in (1.0, -1.0):
                moved = False
                for _step in range(MAX_STEPS_PER_DIRECTION):  # on in a direction while it pays
                    value = float(np.clip(_get(best.params, q) + sign * frac * span, lo[q], hi[q]))
                    if value == _get(best.params, q):
                        break
                    c = _candidate(family, _with(best.params, q, value))
                    if c is None:
                        break
                    d = score(c)
                    if not (d < best_d * (1 - 1e-3) and (not layers or surface(c) <= limit)):
                        break
                    best, best_d, moved = c, d, True
                if moved:
                    break
        frac /= 2
    return best


def _has(params: Any, path: ParamPath) -> bool:
    try:
        return isinstance(_get(params, path), float)
    except (KeyError, IndexError, TypeError):
        return False


def _weld_index(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welded vertices and, per original vertex, its welded index (coincident vertices merged)."""
    key = np.round(v / 1e-7).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return v[first], inverse.reshape(-1)


def _quality(
    family: Family,
    inst: Instance,
    start: np.ndarray,
    template_v: np.ndarray,
    mesh_v: np.ndarray,
    mesh_f: np.ndarray,
    pts: np.ndarray,
    nrm: np.ndarray,
    diagonal: float,
    two_sided: bool,
) -> tuple[Quality, np.ndarray]:
    from datagen.meshes.proximity import SurfaceIndex

    rng = np.random.default_rng(1)
    cut = NO_COUNTERPART_REL * diagonal
    t_index = SurfaceIndex(template_v, inst.faces)
    f_t, _, _, d_mt = t_index.closest(pts)
    tn = np.cross(*(template_v[inst.faces[f_t]][:, k] - template_v[inst.faces[f_t]][:, 0] for k in (1, 2)))
    tn /= np.maximum(np.linalg.norm(tn, axis=1), 1e-300)[:, None]
    cos = np.abs(np.einsum("nd,nd->n", tn, nrm))
    near = d_mt < cut
    # which template slots reach the mesh: their own samples' distance to the mesh
    t_pts, _, t_face = sample_surface(template_v, inst.faces, 20000, rng)
    m_index = SurfaceIndex(mesh_v, mesh_f)
    _, _, _, d_tm = m_index.closest(t_pts)
    slot_of_sample = inst.face_slot[t_face]
    slot_present = np.zeros(len(family.slots), bool)
    for s in np.unique(inst.face_slot):
        m = slot_of_sample == s
        slot_present[s] = m.sum() == 0 or np.mean(d_tm[m] < cut) >= 0.5
    kept = slot_present[slot_of_sample]
    sv = affine_singular_values(start[inst.faces], template_v[inst.faces])
    area = 0.5 * np.linalg.norm(np.cross(start[inst.faces][:, 1] - start[inst.faces][:, 0],
                                         start[inst.faces][:, 2] - start[inst.faces][:, 0]), axis=1)  # fmt: skip
    ratio = np.nan_to_num(np.maximum(sv[:, 0], 1.0 / np.maximum(sv[:, 1], 1e-12)), nan=1.0)
    q = Quality(
        mesh_to_template_mean=float(d_mt.mean() / diagonal),
        mesh_to_template_p90=float(np.percentile(d_mt, 90) / diagonal),
        template_to_mesh_mean=float(d_tm[kept].mean() / diagonal) if kept.any() else 1.0,
        template_to_mesh_p90=float(np.percentile(d_tm[kept], 90) / diagonal) if kept.any() else 1.0,
        coverage=float(near.mean()),
        normal_agreement=float(cos[near].mean()) if near.any() else 0.0,
        stretch_frac=float(area[ratio > STRETCH_LIMIT].sum() / max(area.sum(), 1e-300)),
        absent_slots=[family.slots[s].name for s in np.unique(inst.face_slot) if not slot_present[s]],
    )
    return q, slot_present


# ---- on disk -----------------------------------------------------------------------------------------------------
def registration_path(lib_dir: Path, mesh_id: str) -> Path:
    return Path(lib_dir) / "registration" / f"{mesh_id}.npz"


def save_registration(lib_dir: Path, reg: Registration) -> Path:
    """Write ``registration/<mesh_id>.npz`` atomically."""
    import io

    buf = io.BytesIO()
    arrays = ("template_vertices", "slot_present", "rotation", "mesh_face_slot")
    meta = {k: v for k, v in asdict(reg).items() if k not in arrays}
    extra = {} if reg.mesh_face_slot is None else {"mesh_face_slot": np.asarray(reg.mesh_face_slot, np.int32)}
    np.savez_compressed(
        buf,
        template_vertices=reg.template_vertices.astype(np.float64),
        slot_present=reg.slot_present,
        rotation=reg.rotation,
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
        **extra,
    )
    path = registration_path(lib_dir, reg.mesh_id)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_registration(lib_dir: Path, mesh_id: str) -> Registration:
    """The saved registration of ``mesh_id``."""
    with np.load(registration_path(lib_dir, mesh_id)) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        quality = Quality(**meta.pop("quality"))
        return Registration(
            template_vertices=z["template_vertices"],
            slot_present=z["slot_present"].astype(bool),
            rotation=z["rotation"],
            quality=quality,
            mesh_face_slot=z["mesh_face_slot"].astype(np.int64) if "mesh_face_slot" in z.files else None,
            **meta,
        )


def register_stage(lib_dir: Path, mesh_id: str, category: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``register`` stage of ``datagen meshes ingest``: fit, score, save; reject below :data:`QUALITY_LIMITS`.

    An orientation fix is applied to the library's mesh file itself (so every reader sees the corrected mesh) and
    reported as a repair."""
    from datagen.meshes.library import save_mesh

    mesh = load_mesh(lib_dir, mesh_id)
    reg = fit_template(mesh_id, mesh.vertices, mesh.faces, category, two_sided=mesh.two_sided)
    record: dict[str, Any] = {
        "status": "accepted",
        "reason": None,
        "notes": [],
        "template_params": reg.params,
        "orientation": reg.orientation,
        "quality": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(reg.quality).items()},
        "register_seconds": round(reg.seconds, 3),
    }
    if reg.orientation != "as given":
        R = reg.rotation
        v = mesh.vertices @ R.T
        t = _rest(v)
        mesh.vertices = v + t
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = R, t
        mesh.transform = M @ mesh.transform
        mesh.notes = [*mesh.notes, f"orientation: {reg.orientation} against the {category} template; turned"]
        save_mesh(lib_dir, mesh)
        reg.rotation = np.eye(3)  # the saved mesh is now the turned one
        record["status"] = "repaired"
        record["notes"].append(
            f"orientation: {reg.orientation} against the {category} template (its fit {reg.quality.chamfer_best:.3f} "
            f"vs {reg.quality.chamfer_as_given:.3f} of the bbox diagonal as given); turned"
        )
    problems = reg.quality.problems()
    if problems:
        record["status"] = "rejected"
        record["reason"] = "quality: " + "; ".join(problems)
        return record
    if reg.quality.absent_slots:
        record["notes"].append(
            f"template parts without a counterpart on the mesh: {', '.join(reg.quality.absent_slots)}"
        )
    from datagen.canonical import RegisteredSurface

    fitted = mesh.vertices @ np.asarray(reg.rotation).T
    reg.mesh_face_slot = RegisteredSurface(get_family(category), fitted, mesh.faces, reg, mesh.two_sided).mesh_face_slot
    save_registration(lib_dir, reg)
    return record
