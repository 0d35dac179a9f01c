"""Where occluders go: between the camera and the object, sized to hide a drawn share of its silhouette.

For one view (:func:`place_occluders`):

1. the number of occluders ``k`` and the share ``c`` of the silhouette they should hide together are drawn;
2. the silhouette is sampled by casting a coarse grid of pixel rays (:data:`GRID` per side) at the instance;
3. occluder ``i`` gets a kind, a shape and an orientation, and an *anchor*: a random point of the object's
   surface (area-weighted, projecting inside the image). Its centre goes on the camera ray through the anchor at
   depth ``u * z_front`` (``u`` drawn from ``cfg.depth``; ``z_front`` the depth of the near side of the object's
   bounding sphere), and its bounding radius is bisected so that occluders ``0..i`` together hide a share
   ``c (i + 1) / k`` of the grid's object rays. The radius is capped so that the occluder's bounding sphere stays
   in front of the camera (``<= 0.8`` of its centre's depth) and clear of the object's bounding sphere (occluders
   never touch the object, so every object pixel they cover is one they hide), and so that its image is at most
   ``cfg.max_size`` times the object's (radius over depth).

Anchors are drawn without ray casting (so the layout does not hinge on a ray grazing an edge); only the sizes come
from the grid. The share actually hidden is measured on the rendered view (:func:`datagen.occluders.scene`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datagen.camera import View, camera_center, project
from datagen.config import OccluderConfig
from datagen.gt import MeshRaycaster
from datagen.occluders.shapes import LocalMeshes, OccluderSpec, draw_rotation, local_mesh

__all__ = ["Placement", "place_occluders", "silhouette_rays", "GRID"]

GRID = 48  # silhouette grid: GRID x GRID pixel rays per view
_BISECTIONS = 10  # of the occluder's radius: to 0.1 % of its cap
_ANCHOR_TRIES = 16


@dataclass
class Placement:
    """The occluders of one view.

    Attributes:
        specs: the occluders (possibly fewer than drawn: an occluder with no room in front of the object is left out).
        target_cover: the share of the silhouette they were sized to hide together.
        grid_cover: the share they hide on the silhouette grid.
    """

    specs: list[OccluderSpec] = field(default_factory=list)
    target_cover: float = 0.0
    grid_cover: float = 0.0


def silhouette_rays(view: View, caster: MeshRaycaster, grid: int = GRID) -> np.ndarray:
    """World directions float64 [M, 3] (unit) of the grid's pixel rays that hit the object.

    The grid's rays pass through pixel positions ``((i + 0.5) W / grid - 0.5, (j + 0.5) H / grid - 0.5)``.
    """
    H, W = view.height, view.width
    xs = (np.arange(grid) + 0.5) * W / grid - 0.5
    ys = (np.arange(grid) + 0.5) * H / grid - 0.5
    xx, yy = np.meshgrid(xs, ys)
    h = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)], axis=1)
    d = np.linalg.solve(view.K, h.T).T @ view.T_cam_from_world[:3, :3]  # camera -> world
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    C = camera_center(view.T_cam_from_world)
    return d[caster.first_face(C, C + d) >= 0]


def _surface_anchor(
    rng: np.random.Generator, view: View, vertices: np.ndarray, faces: np.ndarray, cum_area: np.ndarray
) -> np.ndarray | None:
    """A random surface point (area-weighted) that projects inside the image, or None after a few tries."""
    f = np.searchsorted(cum_area, rng.random(_ANCHOR_TRIES) * cum_area[-1], side="right")
    f = np.minimum(f, len(faces) - 1)
    r1, r2 = rng.random(_ANCHOR_TRIES), rng.random(_ANCHOR_TRIES)
    s = np.sqrt(r1)
    bary = np.stack([1.0 - s, s * (1.0 - r2), s * r2], axis=1)
    pts = np.einsum("nk,nkd->nd", bary, vertices[faces[f]])
    xy, z = project(pts, view.K, view.T_cam_from_world)
    ok = (z > 0) & (xy[:, 0] >= 0) & (xy[:, 0] <= view.width - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= view.height - 1)
    hits = np.flatnonzero(ok)
    return pts[hits[0]] if hits.size else None


def _hits(caster: MeshRaycaster, eye: np.ndarray, dirs: np.ndarray, R: np.ndarray, A: np.ndarray, s: float):
    """bool [M]: rays from ``eye`` along ``dirs`` hit the local mesh of ``caster`` placed by ``x -> s R x + A``
    (cast in the local frame: origin ``R^T (eye - A) / s``, directions ``R^T d``)."""
    o = R.T @ (eye - A) / s
    d = dirs @ R
    return caster.first_face(o, o + d) >= 0


@dataclass
class _Placed:
    """An occluder's local mesh (``caster``) at a fixed orientation and centre, cast at from ``eye`` along ``dirs``."""

    caster: MeshRaycaster
    eye: np.ndarray
    dirs: np.ndarray
    rotation: np.ndarray
    center: np.ndarray

    def hits(self, scale: float) -> np.ndarray:
        """bool [M]: the rays that hit it at bounding radius ``scale``."""
        return _hits(self.caster, self.eye, self.dirs, self.rotation, self.center, scale)


def _fit_scale(placed: _Placed, s_max: float, need: float) -> tuple[float, np.ndarray]:
    """The bounding radius (at most ``s_max``) at which the occluder hits just over ``need`` of its rays, by
    bisection (the hits grow with the radius: the scaled shapes are nested about their centre for star-shaped
    meshes, nearly so for the rest); ``s_max`` when even that hits fewer. Returns the radius and its hits."""
    hit = placed.hits(s_max)
    if hit.sum() <= need:
        return s_max, hit
    lo, hi = 0.0, s_max
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if placed.hits(mid).sum() > need:
            hi = mid
        else:
            lo = mid
    return hi, placed.hits(hi)


def place_occluders(
    rng: np.random.Generator,
    cfg: OccluderConfig,
    view: View,
    vertices: np.ndarray,
    faces: np.ndarray,
    caster: MeshRaycaster,
    draw_shape: Callable[[np.random.Generator, str], dict[str, Any]],
    cache: LocalMeshes | None = None,
) -> Placement:
    """Draw and place one view's occluders.

    Args:
        rng: the view's scene generator (every draw comes from it, in a fixed order).
        cfg: the occluder settings.
        view: the camera.
        vertices: float64 [V, 3], faces: int [F, 3]: the instance (world frame).
        caster: a ray caster over the instance alone.
        draw_shape: ``(rng, kind) -> shape`` (:func:`datagen.occluders.shapes.draw_shape` bound to the group).
        cache: local meshes by shape key (filled as shapes are built).

    Returns:
        The :class:`Placement`.
    """
    k = int(rng.integers(cfg.count[0], cfg.count[1] + 1))
    target = float(rng.uniform(*cfg.cover))
    out = Placement(target_cover=target)
    V = np.asarray(vertices, np.float64)
    F = np.asarray(faces, np.int64)
    lo, hi = V.min(0), V.max(0)
    c_obj, r_obj = (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0)
    T = view.T_cam_from_world
    eye = camera_center(T)
    z_center = float(T[2, :3] @ c_obj + T[2, 3])
    z_front = z_center - r_obj
    tri = V[F]
    cum_area = np.cumsum(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1))
    dirs = silhouette_rays(view, caster)
    covered = np.zeros(len(dirs), bool)
    for i in range(k):
        kind = str(cfg.kinds[int(rng.integers(len(cfg.kinds)))])
        shape = draw_shape(rng, kind)
        rotation = draw_rotation(rng, kind)
        anchor = _surface_anchor(rng, view, V, F, cum_area)
        depth_share = float(rng.uniform(*cfg.depth))
        seed = int(rng.integers(2**63))
        if anchor is None or len(dirs) == 0 or z_front <= 0:
            continue
        z_anchor = float(T[2, :3] @ anchor + T[2, 3])
        z_o = depth_share * z_front
        A = eye + (anchor - eye) * (z_o / z_anchor)
        s_max = min(float(np.linalg.norm(A - c_obj)) - r_obj, 0.8 * z_o, cfg.max_size * r_obj * z_o / z_center)
        if s_max <= 0:
            continue
        local = local_mesh(kind, shape, cache)
        rest = np.flatnonzero(~covered)
        need = target * (i + 1) / k * len(dirs) - covered.sum()  # rays this one should add to the union
        cast = _Placed(MeshRaycaster(local.vertices, local.faces), eye, dirs[rest], rotation, A)
        s_hi, hit = _fit_scale(cast, s_max, need)
        covered[rest[hit]] = True
        out.specs.append(OccluderSpec(kind, shape, rotation, s_hi, A, seed))
    out.grid_cover = float(covered.mean()) if len(dirs) else 0.0
    return out
