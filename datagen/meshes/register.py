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
import scipy.sparse.csgraph  # noqa: F401 (sp.csgraph)
from scipy.spatial import cKDTree

from datagen.families import Family, Instance, get_family
from datagen.families.distortion import STRETCH_LIMIT, affine_singular_values
from datagen.meshes.deform import JOIN_SMALL_PARTS, deform, small_part_joins
from datagen.meshes.fit import Fitted, parametric_fit
from datagen.meshes.library import atomic_write_bytes, load_mesh
from datagen.meshes.sampling import rest_shift, sample_surface
from datagen.meshes.search import (
    axis_scale,
    candidate_pool,
    chamfer,
    continuous_refine,
    discrete_refine,
    fit_distance,
    layer_slots,
    make_target,
)

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

FINALISTS = 10  # candidates (and the best few as given) compared on all samples
REFINE_STARTS = 3  # finalists refined (the best by the plain chamfer, then by the balanced distance), the best kept
NO_COUNTERPART_REL = 0.03  # farther than this (x bbox diagonal) from the other surface: no counterpart
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
        surface_fit: the parametric fit's surface distance (:mod:`datagen.meshes.fit`) of the kept template.
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
    surface_fit: float = 0.0

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
        p = pts @ R.T + rest_shift(v @ R.T)  # the frame the mesh's vertices take turned by R
        placed[name] = (p, cKDTree(p), p.min(0), p.max(0))
        few, few_tree = p[:500], cKDTree(p[:500])
        for i, c in enumerate(pool):
            sc, o = axis_scale(c, placed[name][2], placed[name][3])
            coarse.append((chamfer(few, few_tree, c.samples[:400] * sc + o), name, i))
    scores: dict[str, tuple[float, int]] = dict.fromkeys(ORIENTATIONS, (np.inf, -1))
    finalists = sorted(coarse)[:FINALISTS] + sorted(x for x in coarse if x[1] == "as given")[:FINALISTS]
    fine: dict[str, set[tuple[float, int]]] = {name: set() for name in ORIENTATIONS}
    for _, name, i in finalists:
        p, tree, lo, hi = placed[name]
        sc, o = axis_scale(pool[i], lo, hi)
        fine[name].add((chamfer(p, tree, pool[i].samples * sc + o), i))
        scores[name] = min(scores[name], min(fine[name]))
    given = scores["as given"][0]
    orientation = "as given"
    alt = min((k for k in scores if k != "as given"), key=lambda k: scores[k][0])  # inf where none was a finalist
    if scores[alt][0] < ORIENTATION_MARGIN * given:
        orientation = alt
    R = ORIENTATIONS[orientation]
    target = make_target(placed[orientation], v, faces, R, rest_shift(v @ R.T), seed, sample_face)
    v = v @ R.T
    v = v + rest_shift(v)  # the target's frame
    pts, nrm, _ = sample_surface(v, faces, 20000, rng)
    if np.linalg.det(R) < 0:  # never: ORIENTATIONS are proper rotations
        raise AssertionError("improper orientation fix")
    from datagen.meshes.proximity import SurfaceIndex

    mesh_index = SurfaceIndex(v, faces)
    # the refinement's starts (the descent stops in local minima): the best finalist by the plain chamfer above,
    # dominated by the largest surfaces (a table's top outline), and the best by the refinement's own distance,
    # parts balanced and layers included (a tv-monitor's chin and feet), REFINE_STARTS in all; each is then fitted
    # to the mesh's surface (:mod:`datagen.meshes.fit`), and the one that fits it best is kept
    by_chamfer = [i for _, i in sorted(fine[orientation])]
    by_balanced = [i for _, i in sorted((fit_distance(category, target, pool[i]), i) for i in by_chamfer)]
    starts = list(dict.fromkeys(by_chamfer[:1] + by_balanced))[:REFINE_STARTS]
    best: Fitted | None = None
    for i in starts:
        cand = discrete_refine(family, pool[i], target)
        cand = continuous_refine(family, cand, target)
        if len(target.layer) or layer_slots(category).any():  # then the layers' outlines and counts
            if len(target.layer):
                cand = continuous_refine(family, cand, target, layers=True)
            cand = discrete_refine(family, cand, target, sweeps=1)
        fitted = parametric_fit(family, cand, target, mesh_index, *axis_scale(cand, v.min(0), v.max(0)), seed=seed)
        if best is None or fitted.distance < best.distance:
            best = fitted
    cand = best.candidate
    inst = cand.instance
    start = inst.vertices * best.scale + best.offset
    welded, inverse = _weld_index(start)
    wf = inverse[inst.faces]
    deformed = deform(welded, wf, pts, nrm, diagonal, two_sided, mesh_index)
    joins = small_part_joins(welded, wf, diagonal) if JOIN_SMALL_PARTS else np.zeros((0, 2), np.int64)
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
    quality.surface_fit = best.distance / diagonal
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
        t = rest_shift(v)
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
