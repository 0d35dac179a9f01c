"""Visibility checks of same-instance pairs: the stored field against unprojected depth, and ``valid`` against an
independent visibility test (a ray cast of the rebuilt mesh, or the other view's depth map alone)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.invariants.common import DIRECTIONS, cams, project, unproject_pixels
from datagen.invariants.parts import join_meshes
from loaders.schema import DEPTH_STEP_M, STORED_STATUSES, Status

__all__ = ["independent_visibility", "raycast_visibility", "reprojection", "GRAZING_COS"]


def independent_visibility(
    xy: np.ndarray, z: np.ndarray, depth: np.ndarray, rel_tol: float = 1e-3, rel_jump: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Visibility of projected surface points judged from the other view's depth map alone (no face ids, no mesh).

    The four pixel centres around each point (its bilinear cell) are read. With ``lo``/``hi`` the nearest and
    farthest surface depth among them and ``tol = rel_tol * z``:

    * hidden: ``z > hi + tol`` (every surface seen around the point is in front of it), and at a silhouette
      (background in the cell) by more than ``jump = rel_jump * z``;
    * undecided: behind by less than ``jump`` at a silhouette (the point may lie on a grazing surface just beyond
      the last samples), or the cell straddles a depth discontinuity (``hi - lo > jump``) and the point is not
      on its near side (``z > lo + tol``): whether it is hidden then depends on where the edge runs inside the
      pixel, which a depth map sampled at pixel centres cannot say;
    * visible: otherwise (including points at a silhouette, with background around). Outside the image: not visible.

    Args:
        xy: float64 [N, 2] projections; z: float64 [N] their depths (metres).
        depth: float32 [H, W] this view's z-depth (0 = background).

    Returns:
        ``visible`` bool [N] and ``decided`` bool [N].
    """
    H, W = depth.shape
    inside = (z > 0) & (xy[:, 0] >= -0.5) & (xy[:, 0] < W - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < H - 0.5)
    x0 = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, W - 1)
    y0 = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, H - 1)
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    cell = np.stack([depth[y0, x0], depth[y0, x1], depth[y1, x0], depth[y1, x1]], axis=1).astype(np.float64)
    on = cell > 0
    hi = np.where(on, cell, -np.inf).max(axis=1)
    lo = np.where(on, cell, np.inf).min(axis=1)
    tol = rel_tol * z + 2e-5  # + the 10 µm depth storage step
    jump = rel_jump * z
    some, silhouette = on.any(axis=1), ~on.all(axis=1)
    behind = some & (z > hi + tol)
    # at a silhouette a point slightly behind the last samples may lie on the grazing surface just beyond them
    hidden = behind & (~silhouette | (z > hi + jump))
    undecided = (behind & ~hidden) | (~behind & some & (hi - lo > jump) & (z > lo + tol))
    return inside & ~hidden, ~inside | ~undecided


def raycast_visibility(
    points_world: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    T_cam_from_world: np.ndarray,
    rel_tol: float = 1e-4,
    abs_tol: np.ndarray | float = 5e-5,
) -> np.ndarray:
    """Exact visibility of points on a mesh from a camera centre: the first embree hit along the ray towards
    each point is not nearer than the point (within ``rel_tol`` of the distance plus ``abs_tol`` metres, a scalar
    or one per point).

    Independent of the generator's rasteriser and face ids: it needs only the mesh, the camera and the points.

    Args:
        points_world: float64 [N, 3]; vertices: [V, 3]; faces: [F, 3]; T_cam_from_world: [4, 4].

    Returns:
        bool [N] (does not check the image bounds).
    """
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    R, t = T_cam_from_world[:3, :3], T_cam_from_world[:3, 3]
    center = -R.T @ t
    d = points_world - center
    dist = np.linalg.norm(d, axis=1)
    d /= np.maximum(dist, 1e-12)[:, None]
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces), process=False, validate=False)
    origins = np.ascontiguousarray(np.broadcast_to(center, d.shape))
    _, ray, loc = RayMeshIntersector(mesh).intersects_id(origins, d, multiple_hits=False, return_locations=True)
    hit = np.full(len(d), np.inf)
    hit[ray] = np.linalg.norm(loc - center, axis=1)
    return hit >= dist * (1 - rel_tol) - abs_tol


GRAZING_COS = 0.02  # |cos| of the angle between a surface and a viewing ray below which visibility is undecidable


def _grazing_cos(
    points_world: np.ndarray, vertices: np.ndarray, faces: np.ndarray, T_a: np.ndarray, T_b: np.ndarray
) -> np.ndarray:
    """float64 [N]: |cos| between the surface normal at points seen from camera ``a`` (the triangle an embree ray
    from ``a``'s centre hits) and the direction from the point to camera ``b``'s centre; 1 where the ray misses."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    centre_a = -T_a[:3, :3].T @ T_a[:3, 3]
    centre_b = -T_b[:3, :3].T @ T_b[:3, 3]
    d = points_world - centre_a
    d /= np.maximum(np.linalg.norm(d, axis=1), 1e-12)[:, None]
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces), process=False, validate=False)
    origins = np.ascontiguousarray(np.broadcast_to(centre_a, d.shape))
    tri, ray = RayMeshIntersector(mesh).intersects_id(origins, d, multiple_hits=False)
    out = np.ones(len(d))
    to_b = centre_b - points_world[ray]
    to_b /= np.maximum(np.linalg.norm(to_b, axis=1), 1e-12)[:, None]
    out[ray] = np.abs(np.einsum("nd,nd->n", mesh.face_normals[tri], to_b))
    return out


def reprojection(
    sample: Mapping[str, Any],
    mesh: tuple[np.ndarray, np.ndarray] | None = None,
    occluders: tuple[tuple[np.ndarray, np.ndarray] | None, tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> dict[str, float]:
    """Same-instance pairs: reprojection error of the stored field and agreement of ``valid`` with an independent
    visibility test, over both directions.

    The points are ``depth0`` unprojected through ``K0``/``T0``. The other view shows the instance and that view's
    ``occluders`` (per view: (vertices, faces) rebuilt from the meta, :func:`datagen.invariants.parts.occluder_mesh`,
    or None). With the instance ``mesh`` (vertices, faces) the test is :func:`raycast_visibility` (exact) against
    the instance and the other view's occluders; without, :func:`independent_visibility` on the other view's
    stored depth (the object's only: it cannot see occluders), and a point is also hidden where a ray cast meets
    one of that view's occluders first.

    Returns:
        ``reproj_median_px``, ``reproj_p99_px``, ``reproj_max_px`` over pixels with a stored correspondence;
        ``valid_agreement`` over object pixels (where the depth test is undecided it cannot contradict ``valid``
        and counts as agreeing), ``valid_agreement_decided`` over the decided ones, ``valid_undecided_frac``;
        ``n_reproj`` and ``n_object`` counts.
    """
    errs, agree_decided, undecided, n_obj = [], 0, 0, 0
    for a, b, d in DIRECTIONS:
        status = sample[f"status_{d}"].ravel()
        obj = np.flatnonzero(status != Status.BACKGROUND)
        Ka, Ta = cams(sample, a)
        Kb, Tb = cams(sample, b)
        W = status.size // sample[f"depth{a}"].shape[0]
        pts = unproject_pixels(obj, W, sample[f"depth{a}"].ravel()[obj].astype(np.float64), Ka, Ta)
        xy, z = project(pts, Kb, Tb)
        stored = np.isin(status[obj], np.array(STORED_STATUSES, np.uint8))
        corr = sample[f"corr_{d}"].reshape(-1, 2)[obj[stored]].astype(np.float64)
        errs.append(np.linalg.norm(corr - xy[stored], axis=1))
        if mesh is not None:
            H, W = sample[f"depth{b}"].shape
            inside = (z > 0) & (xy[:, 0] >= -0.5) & (xy[:, 0] < W - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < H - 0.5)
            # The points come from depth stored in 10 µm steps: up to half a step off the surface along the view-a
            # ray, which the ray from camera b meets up to that / |cos| earlier, |cos| between the surface normal and
            # the direction to b. A surface seen edge-on from b (|cos| < GRAZING_COS) has no visible extent there:
            # neither the generator nor a ray cast can decide its visibility, so such points are left undecided.
            cos_b = _grazing_cos(pts, mesh[0], mesh[1], Ta, Tb)
            slack = 5e-5 + 0.5 * DEPTH_STEP_M / np.maximum(cos_b, GRAZING_COS)
            seen_b = join_meshes(mesh, None if occluders is None else occluders[b])
            vis = inside & raycast_visibility(pts, seen_b[0], seen_b[1], Tb, abs_tol=slack)
            decided = ~(inside & (cos_b < GRAZING_COS))
        else:
            vis, decided = independent_visibility(xy, z, sample[f"depth{b}"])
            occ_b = None if occluders is None else occluders[b]
            if occ_b is not None:  # anything an occluder covers is hidden (they never touch the object)
                vis &= raycast_visibility(pts, occ_b[0], occ_b[1], Tb)
        undecided += int((~decided).sum())
        agree_decided += int(((vis == (status[obj] == Status.MATCHED)) & decided).sum())
        n_obj += len(obj)
    e = np.concatenate(errs)
    if e.size == 0:
        return {"n_reproj": 0, "n_object": n_obj}
    return {
        "reproj_median_px": float(np.median(e)),
        "reproj_p99_px": float(np.percentile(e, 99)),
        "reproj_max_px": float(e.max()),
        "valid_agreement": (agree_decided + undecided) / max(n_obj, 1),
        "valid_agreement_decided": agree_decided / max(n_obj - undecided, 1),
        "valid_undecided_frac": undecided / max(n_obj, 1),
        "n_reproj": int(e.size),
        "n_object": int(n_obj),
    }
