"""The parametric fit (step 1b of :mod:`datagen.meshes.register`): Levenberg-Marquardt over a template instance's
continuous parameters and its per-axis placement, against the mesh's *surface*.

The template search (:mod:`datagen.meshes.search`) compares point samples: a mesh sample's distance to the nearest
of 1500 template samples is about half their spacing (a centimetre on a person) wherever the parts lie, so a
forearm bent 30 degrees too far, or a foot 6 cm short, moves that distance less than the samples' own spread, and
coordinate descent stops there. Here both directions are measured to the other's surface (exact closest points,
:class:`~datagen.meshes.proximity.SurfaceIndex`): the fixed-sample distance of a procedural instance's export to
its own parameters is then zero, not a centimetre, and every parameter that moves a part shows.

Each iteration (an ICP step on a parametric model):

1. closest points both ways: ``S`` template points (fixed faces and barycentric coordinates, so they move with
   the parameters) to the mesh's surface, and ``M`` mesh samples to the template's surface;
2. the Jacobian of those template points with respect to every continuous parameter (forward differences of the
   family's ``build``: one build per parameter, renewed every third iteration: it is the instance's own
   derivative, which the correspondences do not change) and, analytically, to the per-axis scale and offset that
   place the template (free here, not the bounding box's: a limb that reaches the box's edge then no longer
   rescales the whole shape);
3. point-to-plane residuals (plus a small point-to-point share), each side balanced per part as in the search's
   distance (:func:`~datagen.meshes.search.balanced_mean`) and robust (Cauchy weights at three times the median
   distance), solved damped; a step is kept only where the surface distance (plus the search's thin-layer term)
   falls, else the damping grows.

Parameters stay inside the range the family's pool shows. Discrete parameters (counts, optional parts) are the
search's; an instance whose topology changes with a continuous parameter keeps that parameter fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datagen.families import Family
from datagen.meshes.proximity import SurfaceIndex
from datagen.meshes.sampling import sample_surface
from datagen.meshes.search import (
    Candidate,
    Target,
    balanced_mean,
    build_candidate,
    candidate_pool,
    float_paths,
    get_param,
    has_float,
    layer_distance,
    with_param,
)

__all__ = ["Fitted", "parametric_fit", "FIT_ITERATIONS"]

FIT_ITERATIONS = 20  # Levenberg-Marquardt iterations at most
FIT_TEMPLATE_POINTS = 1500  # template points (moving with the parameters) measured to the mesh
FIT_MESH_POINTS = 3000  # mesh samples measured to the template
FIT_STEP = 0.01  # forward-difference step, as a fraction of each parameter's range in the pool
FIT_POINT_SHARE = 0.05  # the point-to-point share of the residuals (keeps tangential sliding determined)
FIT_ROBUST = 3.0  # Cauchy weights' scale: this many times the median distance (plus 0.1 % of the diagonal)
FIT_JACOBIAN_EVERY = 3  # the parameters' Jacobian is renewed every this many iterations
FIT_MIN_GAIN = 1e-3  # an iteration gaining less than this fraction ends the fit
_SCALE_UNIT = 0.1  # the placement's unknowns in units of 10 % scale and 10 % of the diagonal (conditioning)


@dataclass
class Fitted:
    """A candidate placed by the parametric fit.

    Attributes:
        candidate: the instance with its fitted parameters.
        scale, offset: float64 [3] its placement (``instance.vertices * scale + offset``, the target's frame).
        distance: the surface distance (plus the thin-layer term) the fit minimised, in the target's units.
        start_distance: the same for the start.
        iterations: iterations that kept a step.
    """

    candidate: Candidate
    scale: np.ndarray
    offset: np.ndarray
    distance: float
    start_distance: float
    iterations: int


def parametric_fit(
    family: Family,
    cand: Candidate,
    target: Target,
    mesh_index: SurfaceIndex,
    scale: np.ndarray,
    offset: np.ndarray,
    iterations: int = FIT_ITERATIONS,
    seed: int = 0,
) -> Fitted:
    """Fit ``cand``'s continuous parameters and placement to the mesh (see the module docstring).

    Args:
        family: the candidate's family.
        cand: the start (the template search's result).
        target: the mesh as the search sees it (its samples, pieces and thin layers), in the frame of
            ``mesh_index``.
        mesh_index: closest points on the mesh's surface.
        scale, offset: float64 [3] the start's placement.
        iterations: at most this many iterations.
    """
    pool = candidate_pool(family.name)
    paths = [q for q in float_paths(cand.params) if all(has_float(c.params, q) for c in pool)]
    lo = np.array([min(get_param(c.params, q) for c in pool) for q in paths])
    hi = np.array([max(get_param(c.params, q) for c in pool) for q in paths])
    span = np.where(hi > lo, hi - lo, 1.0)
    start = cand.params

    def params_of(u: np.ndarray) -> dict:
        p = start
        for q, x in zip(paths, lo + u * span):
            p = with_param(p, q, float(x))
        return p

    n_mesh = min(FIT_MESH_POINTS, len(target.samples))
    mesh_pts = target.samples[:n_mesh]
    piece = None if target.sample_piece is None else target.sample_piece[:n_mesh]
    rng = np.random.default_rng([seed, 7])
    inst = cand.instance
    n_faces, n_vertices = len(inst.faces), len(inst.vertices)
    _, _, t_face = sample_surface(inst.vertices, inst.faces, FIT_TEMPLATE_POINTS, rng)
    r = np.sqrt(rng.random(len(t_face)))
    r2 = rng.random(len(t_face))
    t_bary = np.stack([1 - r, r * (1 - r2), r * r2], 1)
    t_slot = inst.face_slot[t_face]
    w_t = _balanced_weights(t_slot)
    w_m = _balanced_weights(piece) if piece is not None else np.full(n_mesh, 1.0 / n_mesh)
    diagonal = target.diagonal

    def distance(c: Candidate, sc: np.ndarray, o: np.ndarray) -> float:
        placed = c.instance.vertices * sc + o
        x = np.einsum("nk,nkd->nd", t_bary, placed[c.instance.faces[t_face]])
        d_t = mesh_index.closest(x)[3]
        d_m = SurfaceIndex(placed, c.instance.faces).closest(mesh_pts)[3]
        d = (balanced_mean(d_t, t_slot) + balanced_mean(d_m, piece)) / 2
        return d + layer_distance(family.name, target, c, sc, o)

    u = np.clip(np.array([(get_param(start, q) - a) / s for q, a, s in zip(paths, lo, span)]), 0.0, 1.0)
    sc, o = np.asarray(scale, np.float64).copy(), np.asarray(offset, np.float64).copy()
    best = cand
    best_d = start_d = distance(cand, sc, o)
    n_p = len(paths)
    damping = 1e-2
    kept = 0
    for it in range(iterations):
        verts = best.instance.vertices
        faces = best.instance.faces
        placed = verts * sc + o
        x = np.einsum("nk,nkd->nd", t_bary, placed[faces[t_face]])
        f_a, _, y_a, d_a = mesh_index.closest(x)
        t_index = SurfaceIndex(placed, faces)
        f_b, b_b, y_b, d_b = t_index.closest(mesh_pts)
        sigma = FIT_ROBUST * float(np.median(np.concatenate([d_a, d_b]))) + 1e-3 * diagonal
        c_a = w_t / (1 + (d_a / sigma) ** 2)
        c_b = w_m / (1 + (d_b / sigma) ** 2)
        # d(placed vertices)/d(unknowns) [V, 3, P + 6]: the parameters by forward differences (the instance's own
        # derivative, independent of the correspondences: renewed every FIT_JACOBIAN_EVERY iterations), the
        # placement exactly
        if it % FIT_JACOBIAN_EVERY == 0:
            d_vertices = _parameter_jacobian(family, params_of, u, verts, n_faces)
        jac = np.zeros((n_vertices, 3, n_p + 6))
        jac[:, :, :n_p] = d_vertices * sc[None, :, None]
        for a in range(3):
            jac[:, a, n_p + a] = verts[:, a] * _SCALE_UNIT * sc[a]
            jac[:, a, n_p + 3 + a] = _SCALE_UNIT * diagonal
        j_x = np.einsum("nk,nkdp->ndp", t_bary, jac[faces[t_face]])  # template points [S, 3, P + 6]
        j_z = np.einsum("nk,nkdp->ndp", b_b, jac[faces[f_b]])  # the mesh samples' feet on the template
        n_a, n_b = mesh_index.face_normals[f_a], t_index.face_normals[f_b]
        rows_a, res_a = np.einsum("nd,ndp->np", n_a, j_x), np.einsum("nd,nd->n", n_a, x - y_a)
        rows_b, res_b = np.einsum("nd,ndp->np", n_b, j_z), np.einsum("nd,nd->n", n_b, y_b - mesh_pts)
        flat = j_x.reshape(-1, n_p + 6)
        c_flat = np.repeat(c_a, 3)
        hess = rows_a.T @ (c_a[:, None] * rows_a) + rows_b.T @ (c_b[:, None] * rows_b)
        hess += FIT_POINT_SHARE * (flat.T @ (c_flat[:, None] * flat))
        grad = rows_a.T @ (c_a * res_a) + rows_b.T @ (c_b * res_b)
        grad += FIT_POINT_SHARE * (flat.T @ (c_flat * (x - y_a).ravel()))
        diag = np.diag(np.diag(hess)) + 1e-12 * np.eye(n_p + 6)
        gained = False
        for _try in range(8):
            delta = -np.linalg.solve(hess + damping * diag, grad)
            u_new = np.clip(u + delta[:n_p], 0.0, 1.0)
            sc_new = sc * (1 + _SCALE_UNIT * delta[n_p : n_p + 3])
            o_new = o + _SCALE_UNIT * diagonal * delta[n_p + 3 :]
            c_new = build_candidate(family, params_of(u_new))
            if c_new is None or len(c_new.instance.faces) != n_faces or np.any(sc_new <= 0):
                damping *= 4
                continue
            d_new = distance(c_new, sc_new, o_new)
            if d_new < best_d:
                gain = (best_d - d_new) / best_d
                u, sc, o, best, best_d = u_new, sc_new, o_new, c_new, d_new
                damping = max(damping / 3, 1e-5)
                gained = gain >= FIT_MIN_GAIN
                kept += 1
                break
            damping *= 4
        if not gained:
            break
    return Fitted(best, sc, o, best_d, start_d, kept)


def _parameter_jacobian(family: Family, params_of, u: np.ndarray, verts: np.ndarray, n_faces: int) -> np.ndarray:
    """float64 [V, 3, P]: d(instance vertices)/d(u) by forward differences of ``FIT_STEP`` (backwards at the
    range's top); zero for a parameter whose change fails to build or changes the topology (kept fixed)."""
    out = np.zeros((*verts.shape, len(u)))
    for p in range(len(u)):
        step = FIT_STEP if u[p] + FIT_STEP <= 1.0 else -FIT_STEP
        moved = u.copy()
        moved[p] += step
        try:
            other = family.build(params_of(moved), "fit")
        except (ValueError, KeyError, IndexError, RuntimeError, FloatingPointError):
            continue
        if len(other.faces) != n_faces or len(other.vertices) != len(verts):
            continue
        out[:, :, p] = (other.vertices - verts) / step
    return out


def _balanced_weights(group: np.ndarray) -> np.ndarray:
    """Per-point weights whose weighted sum is :func:`~datagen.meshes.search.balanced_mean`'s: half per point,
    half per group."""
    from datagen.meshes.search import SLOT_BALANCE

    _, inv, counts = np.unique(group, return_inverse=True, return_counts=True)
    return (1 - SLOT_BALANCE) / len(group) + SLOT_BALANCE / (len(counts) * counts[inv])
