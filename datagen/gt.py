"""Dense cross-instance ground truth (docs/design.md §5).

Per rendered view, :func:`view_surface` turns the face-id raster into exact surface points: for every pixel
centre, the ray through it is intersected in float64 with the triangle the rasteriser (or embree) reported,
giving barycentrics, z-depth and the world point. This is done once per view and reused by every pair that uses
the view. A view's scene is its instance (faces ``[0, F)``) and any occluders in front of it (faces ``[F, F +
F_occ)``): object pixels are those that see the instance; the depth map covers every surface of the scene; the
visibility tests below run against the whole scene, so a point hidden by an occluder is OCCLUDED like one hidden
by another part of the instance.

For a pair, :func:`correspondence` takes each surface point of view 0 mapped through Φ (the point with the same
canonical coordinates on the other instance; :mod:`datagen.canonical`), projects it into view 1 and classifies
it with :func:`visibility` against view 1's own surface:

* ``OUTSIDE``: the projection is behind the camera or outside the image area ``[-0.5, W - 0.5) × [-0.5, H - 0.5)``;
* ``MATCHED``: the point's own triangle faces the camera and is the first surface on the ray through it: decided
  from the raster where the 2×2 pixel block around the projection sees only that triangle, else by an exact ray
  cast (embree) against the view's scene (:class:`MeshRaycaster`), or, without one, by the raster's plane tests
  (see :func:`visibility`);
* ``OCCLUDED``: another surface is in front on that ray, the triangle faces away, no pixel centre within
  ``MASK_RADIUS_PX`` of the projection sees the object (a part thinner than the pixel grid, which the view shows
  as background there), or the pixel nearest to the projection sees a surface in front of the point's own
  triangle (the last half pixel beside an occluding edge: the view's own depth there says hidden);
* ``NO_COUNTERPART``: the other instance lacks the part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from datagen.camera import View, inside_image, pixel_rays_cam, project
from loaders.schema import Status

__all__ = [
    "MeshRaycaster",
    "ViewSurface",
    "view_surface",
    "visibility",
    "correspondence",
    "project_keypoints",
    "REL_DEPTH_TOL",
    "MASK_RADIUS_PX",
]

# Relative depth tolerance of the occlusion test (0.1 mm at 1 m): far below any gap between distinct surfaces,
# far above float64 round-off of coplanar faces.
REL_DEPTH_TOL = 1e-4
_CORR_LIMIT_PX = 1e5  # projections are clipped to this range so the stored integers stay bounded
MASK_RADIUS_PX = 1.0  # a matched point's projection lies within this distance of a pixel centre that sees the object
# the nearest pixel's depth may sit this much (relative) in front of the point's own plane before it hides the point:
# above the float32 depth map's rounding and the 10 µm storage step, far below any gap between two surfaces
NEAREST_PIXEL_TOL = 1e-3


class MeshRaycaster:
    """First-hit ray casting against one mesh (an instance, or a view's whole scene) with embree (through trimesh's
    ``ray_pyembree``).

    Args:
        vertices: float64 [V, 3] world frame; faces: int [F, 3].
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        import trimesh
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces), process=False, validate=False)
        self._intersector = RayMeshIntersector(mesh)

    def first_face(self, origin: np.ndarray, points: np.ndarray) -> np.ndarray:
        """int64 [M]: the first triangle hit by the ray from ``origin`` [3] towards each of ``points`` [M, 3]
        (-1 where the ray misses: a numerical miss at a silhouette)."""
        d = points - origin
        d /= np.maximum(np.linalg.norm(d, axis=1), 1e-300)[:, None]
        o = np.ascontiguousarray(np.broadcast_to(origin, d.shape))
        return np.asarray(self._intersector.intersects_first(o, d), np.int64)


@dataclass
class ViewSurface:
    """What one view sees, in float64.

    Attributes:
        view: the camera.
        face_id: int32 [H, W] scene triangle index per pixel centre, -1 on background; ``[0, n_object_faces)`` are
            the instance's triangles, higher ones the occluders'.
        pix: int64 [N] row-major indices of the pixels that see the object (the instance, not an occluder).
        face: int64 [N] their triangles.
        bary: float64 [N, 3] barycentrics of the pixel-centre ray's hit in that triangle.
        points_world: float64 [N, 3] the hit points (world = the instance's canonical frame).
        depth: float32 [H, W] z-depth in metres of the first surface of the scene (object or occluder), 0 on
            background.
        plane_n, plane_d: float64 [F_scene, 3], [F_scene]: every scene triangle's plane in camera coordinates,
            ``n · X = d``.
        raycaster: a :class:`MeshRaycaster` over the whole scene, used by :func:`visibility` where the raster cannot
            decide; None falls back to plane tests on the raster.
        n_object_faces: the instance's face count F (None: every face is the instance's).
    """

    view: View
    face_id: np.ndarray
    pix: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    points_world: np.ndarray
    depth: np.ndarray
    plane_n: np.ndarray
    plane_d: np.ndarray
    raycaster: MeshRaycaster | None = field(default=None, repr=False)
    two_sided: bool = False  # an open surface: seen from both sides, a triangle's facing hides nothing
    n_object_faces: int | None = None

    @cached_property
    def object_mask(self) -> np.ndarray:
        """bool [H, W]: the pixel centre sees the instance (not background, not an occluder); computed once."""
        if self.n_object_faces is None:
            return self.face_id >= 0
        return (self.face_id >= 0) & (self.face_id < self.n_object_faces)

    @cached_property
    def object_depth(self) -> np.ndarray:
        """float32 [H, W]: :attr:`depth` on the object pixels, 0 elsewhere (occluders included): the depth a sample
        stores (the schema keeps depth where the status is not background)."""
        if self.n_object_faces is None:
            return self.depth
        return np.where(self.object_mask, self.depth, np.float32(0.0))

    @property
    def depth64(self) -> np.ndarray:
        """float64 [N] z-depths of the object pixels."""
        return self.points_cam[:, 2]

    @property
    def points_cam(self) -> np.ndarray:
        T = self.view.T_cam_from_world
        return self.points_world @ T[:3, :3].T + T[:3, 3]

    def plane_depth(self, face: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """float64 [M]: z-depth where the ray through pixels ``xy`` [M, 2] meets the planes of triangles ``face``
        [M]; +inf where the ray is parallel to the plane, and <= 0 where the plane is met behind the camera."""
        r = pixel_rays_cam(xy, self.view.K)
        den = np.einsum("md,md->m", self.plane_n[face], r)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.plane_d[face] / den
        return np.where(np.abs(den) > 1e-300, z, np.inf)


def view_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    view: View,
    face_id: np.ndarray,
    raycaster: MeshRaycaster | None = None,
    two_sided: bool = False,
    n_object_faces: int | None = None,
) -> ViewSurface:
    """Exact surface points of a view from its face-id raster.

    Args:
        vertices: float64 [V, 3] the scene's vertices (world frame): the instance's, then any occluders'.
        faces: int [F_scene, 3], the instance's first.
        view: the camera that produced ``face_id``.
        face_id: int32 [H, W], -1 on background.
        raycaster: a ray caster over the same scene, kept on the surface for :func:`visibility`.
        two_sided: the mesh is open (a user's mesh that is not watertight): back faces are visible surface.
        n_object_faces: how many of ``faces`` are the instance's (None: all).

    Returns:
        The :class:`ViewSurface`: depth over the whole scene, surface points over the object pixels only. Pixels
        whose ray is (numerically) parallel to the reported triangle or meets it behind the camera are treated as
        background.
    """
    H, W = view.height, view.width
    if face_id.shape != (H, W):
        raise ValueError(f"face-id raster is {face_id.shape}, the view is {(H, W)}")
    T = view.T_cam_from_world
    Vc = np.asarray(vertices, np.float64) @ T[:3, :3].T + T[:3, 3]
    tri = Vc[faces]  # [F, 3, 3] camera frame
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    plane_n = np.cross(e1, e2)
    plane_d = np.einsum("fd,fd->f", plane_n, tri[:, 0])

    flat = face_id.ravel()
    pix = np.flatnonzero(flat >= 0)
    face = flat[pix].astype(np.int64)
    xy = np.stack([pix % W, pix // W], axis=1).astype(np.float64)
    r = pixel_rays_cam(xy, view.K)  # [N, 3], z = 1
    a, b1, b2 = tri[face, 0], e1[face], e2[face]
    # Möller–Trumbore with the ray origin at the camera centre
    p = np.cross(r, b2)
    det = np.einsum("nd,nd->n", b1, p)
    ok = np.abs(det) > 1e-12 * np.linalg.norm(b1, axis=1) * np.linalg.norm(b2, axis=1)
    inv = 1.0 / np.where(ok, det, 1.0)
    s = -a
    u = np.einsum("nd,nd->n", s, p) * inv
    q = np.cross(s, b1)
    v = np.einsum("nd,nd->n", r, q) * inv
    t = np.einsum("nd,nd->n", b2, q) * inv
    ok &= t > 0
    if not ok.all():
        flat = flat.copy()
        flat[pix[~ok]] = -1
        pix, face, u, v, t = pix[ok], face[ok], u[ok], v[ok], t[ok]
        face_id = flat.reshape(H, W)
    depth = np.zeros(H * W, np.float32)
    depth[pix] = t
    if n_object_faces is not None:  # surface points of the object only; occluder pixels keep their depth
        obj = face < n_object_faces
        pix, face, u, v = pix[obj], face[obj], u[obj], v[obj]
    bary = np.stack([1.0 - u - v, u, v], axis=1)
    points_world = np.einsum("nk,nkd->nd", bary, np.asarray(vertices, np.float64)[faces[face]])
    return ViewSurface(view, face_id, pix, face, bary, points_world, depth.reshape(H, W), plane_n, plane_d, raycaster,
                       two_sided, n_object_faces)  # fmt: skip


def visibility(dst: ViewSurface, face: np.ndarray, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project surface points of ``dst``'s instance into ``dst``'s view and classify them.

    A point ``s`` on triangle ``f`` projecting inside the image is visible (MATCHED) when ``f`` faces the camera
    (closed meshes, outward normals) and ``s`` is the first surface of the view's scene (the instance and its
    occluders) on the ray through it:

    * where every pixel centre of the 2×2 block around the projection sees ``f`` itself, the raster decides:
      visible (an occluder thinner than a pixel that covers none of those four centres is missed: the one case
      the raster cannot flag); within half a pixel of the image border, where the block is cut by the frame, the
      ray cast below always decides;
    * elsewhere (near silhouettes, part seams and occluders, which can cover ``s`` without covering a pixel centre)
      the ray from the camera towards ``s`` is cast against the scene (``dst.raycaster``, embree): visible when
      the first triangle hit is ``f`` or meets the ray no nearer than ``s`` (an edge tie with a neighbour);
    * without a ray caster, the nearest pixel ``q`` (at a silhouette: the nearest of the block that sees the
      object) sees a triangle ``g``, and ``s`` is OCCLUDED only when ``g`` is in front on both counts: ``g``'s
      plane met by the ray through ``s`` is nearer than ``s``, and the depth seen at ``q`` is nearer than ``f``'s
      plane met by the ray through ``q`` (either test alone misfires at a convex or a concave edge).

    Args:
        dst: the view's surface.
        face: int64 [M] triangles of the points on ``dst``'s instance.
        points_world: float64 [M, 3].

    Returns:
        ``xy`` float64 [M, 2] projections (clipped to a finite range) and ``status`` uint8 [M] (MATCHED, OCCLUDED
        or OUTSIDE).
    """
    view = dst.view
    xy, z = project(points_world, view.K, view.T_cam_from_world)
    status = np.full(len(z), Status.OUTSIDE, np.uint8)
    inside = (z > 1e-9) & inside_image(xy, view.height, view.width)
    idx = np.flatnonzero(inside)
    xi, zi, fi = xy[idx], z[idx], face[idx]
    T = view.T_cam_from_world
    p_cam = points_world[idx] @ T[:3, :3].T + T[:3, 3]
    occluded = np.einsum("md,md->m", dst.plane_n[fi], p_cam) > 0  # faces away from the camera (closed meshes)
    if dst.two_sided:
        occluded[:] = False
    if dst.raycaster is not None:
        H, W = dst.face_id.shape
        x0, y0 = np.floor(xi[:, 0]).astype(np.int64), np.floor(xi[:, 1]).astype(np.int64)
        # within half a pixel of the border the block is cut by the frame: what covers the point beyond the outer
        # pixel centres (an occluder's edge, another part) no centre can show, so the ray cast decides there
        unsure = (xi[:, 0] < 0) | (xi[:, 0] > W - 1) | (xi[:, 1] < 0) | (xi[:, 1] > H - 1)
        for dx in (0, 1):
            for dy in (0, 1):
                unsure |= dst.face_id[np.clip(y0 + dy, 0, H - 1), np.clip(x0 + dx, 0, W - 1)] != fi
        u = np.flatnonzero(unsure & ~occluded)
        if u.size:
            centre = -T[:3, :3].T @ T[:3, 3]
            g = dst.raycaster.first_face(centre, points_world[idx[u]])
            other = (g >= 0) & (g != fi[u])
            o = u[other]
            z_g = dst.plane_depth(g[other], xi[o])
            occluded[o] = (z_g > 0) & (z_g < zi[o] * (1 - REL_DEPTH_TOL))
    else:
        occluded |= _raster_occlusion(dst, xi, zi, fi)
    occluded |= ~_near_object_pixel(dst.object_mask, xi)
    occluded |= _nearest_pixel_in_front(dst, xi, fi)
    status[idx] = np.where(occluded, Status.OCCLUDED, Status.MATCHED)
    return np.clip(xy, -_CORR_LIMIT_PX, _CORR_LIMIT_PX), status


def _nearest_pixel_in_front(dst: ViewSurface, xy: np.ndarray, face: np.ndarray) -> np.ndarray:
    """bool [M]: the pixel centre nearest to each projection ``xy`` [M, 2] sees a surface in front of the point's
    own triangle ``face`` [M] (its depth there nearer than that triangle's plane met by the same pixel ray).

    A point visible only in the last half pixel beside an occluding edge is exactly visible, yet the view's pixel
    nearest to it shows the occluder: the depth test against the view's own depth (docs/design.md §5) calls it hidden,
    and so does the ground truth, which then never matches a pixel to a place whose nearest sample shows another
    surface in front.
    """
    H, W = dst.depth.shape
    qx = np.clip(np.rint(xy[:, 0]).astype(np.int64), 0, W - 1)
    qy = np.clip(np.rint(xy[:, 1]).astype(np.int64), 0, H - 1)
    seen = dst.depth[qy, qx].astype(np.float64)
    z_own = dst.plane_depth(face, np.stack([qx, qy], axis=1).astype(np.float64))
    return (seen > 0) & (z_own > 0) & np.isfinite(z_own) & (seen < z_own * (1 - NEAREST_PIXEL_TOL))


def _near_object_pixel(object_mask: np.ndarray, xy: np.ndarray, radius_px: float = MASK_RADIUS_PX) -> np.ndarray:
    """bool [M]: some pixel centre within ``radius_px`` of each point ``xy`` [M, 2] sees the object
    (``object_mask`` bool [H, W]).

    A part thinner than the pixel grid (a fin tip seen edge-on) can be the first surface along the ray through a
    point and still cover no pixel centre near it: the view shows background there, so the point is not seen.
    """
    H, W = object_mask.shape
    cx, cy = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
    near = np.zeros(len(xy), bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            qx, qy = cx + dx, cy + dy
            inside = (qx >= 0) & (qx < W) & (qy >= 0) & (qy < H)
            seen = inside & object_mask[np.clip(qy, 0, H - 1), np.clip(qx, 0, W - 1)]
            near |= seen & ((qx - xy[:, 0]) ** 2 + (qy - xy[:, 1]) ** 2 <= radius_px**2)
    return near


def _raster_occlusion(dst: ViewSurface, xi: np.ndarray, zi: np.ndarray, fi: np.ndarray) -> np.ndarray:
    """bool [M]: the plane tests of :func:`visibility` without a ray caster."""
    view = dst.view
    qx = np.clip(np.rint(xi[:, 0]).astype(np.int64), 0, view.width - 1)
    qy = np.clip(np.rint(xi[:, 1]).astype(np.int64), 0, view.height - 1)
    fq = dst.face_id[qy, qx].astype(np.int64)
    bg = np.flatnonzero(fq < 0)
    if bg.size:  # at a silhouette: judge by the nearest pixel of the surrounding 2×2 block that sees something
        qx[bg], qy[bg], fq[bg] = _nearest_surface_pixel(dst.face_id, xi[bg])
    other = (fq >= 0) & (fq != fi)
    occluded = np.zeros(len(xi), bool)
    if other.any():
        o = np.flatnonzero(other)
        tol = REL_DEPTH_TOL * zi[o]
        z_g = dst.plane_depth(fq[o], xi[o])
        front1 = (z_g > 0) & (z_g < zi[o] - tol)
        qxy = np.stack([qx[o], qy[o]], axis=1).astype(np.float64)
        z_f = dst.plane_depth(fi[o], qxy)
        z_seen = dst.depth[qy[o], qx[o]].astype(np.float64)
        front2 = (z_f <= 0) | (z_seen < z_f - tol)
        occluded[o] = front1 & front2
    return occluded


def _nearest_surface_pixel(face_id: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Among the four pixel centres around each ``xy`` [M, 2], the nearest one that sees a triangle.

    Returns ``qx``, ``qy``, ``face`` int64 [M]; face -1 (and the rounded pixel) where all four are background.
    """
    H, W = face_id.shape
    x0, y0 = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    best_d = np.full(len(xy), np.inf)
    qx = np.clip(np.rint(xy[:, 0]).astype(np.int64), 0, W - 1)
    qy = np.clip(np.rint(xy[:, 1]).astype(np.int64), 0, H - 1)
    face = np.full(len(xy), -1, np.int64)
    for dx in (0, 1):
        for dy in (0, 1):
            cx, cy = np.clip(x0 + dx, 0, W - 1), np.clip(y0 + dy, 0, H - 1)
            f = face_id[cy, cx].astype(np.int64)
            dist = (cx - xy[:, 0]) ** 2 + (cy - xy[:, 1]) ** 2
            better = (f >= 0) & (dist < best_d)
            best_d[better], qx[better], qy[better], face[better] = dist[better], cx[better], cy[better], f[better]
    return qx, qy, face


def correspondence(src: ViewSurface, dst: ViewSurface, face: np.ndarray, points_world: np.ndarray):
    """Dense correspondence field of ``src``'s view into ``dst``'s view.

    Args:
        src, dst: the two views' surfaces.
        face, points_world: Φ of ``src``'s points on ``dst``'s instance (:func:`datagen.canonical.counterparts`).

    Returns:
        ``status`` uint8 [H0, W0] (``Status`` codes) and ``corr`` float32 [H0, W0, 2] ((x, y) in ``dst``'s
        pixels; NaN where there is no counterpart or no surface).
    """
    H, W = src.view.height, src.view.width
    status = np.full(H * W, Status.BACKGROUND, np.uint8)
    corr = np.full((H * W, 2), np.nan, np.float32)
    has = face >= 0
    status[src.pix[~has]] = Status.NO_COUNTERPART
    xy, st = visibility(dst, face[has], points_world[has])
    status[src.pix[has]] = st
    corr[src.pix[has]] = xy
    return status.reshape(H, W), corr.reshape(H, W, 2)


def project_keypoints(surf: ViewSurface, points_world: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints in a view: ``xy`` float32 [N, 2] (0 for absent parts) and ``visible`` bool [N] (present, inside
    the image and not occluded, by the same test as the dense field)."""
    xy = np.zeros((len(face), 2), np.float32)
    vis = np.zeros(len(face), bool)
    present = face >= 0
    if present.any():
        p_xy, st = visibility(surf, face[present], points_world[present])
        xy[present] = p_xy
        vis[present] = (st == Status.MATCHED) & _seen_nearby(surf, p_xy, points_world[present])
    return xy, vis


def _seen_nearby(surf: ViewSurface, xy: np.ndarray, points_world: np.ndarray, footprints: float = 3.0) -> np.ndarray:
    """bool [M]: some pixel centre of the 2×2 block around each projection ``xy`` [M, 2] sees a surface point within
    ``footprints`` pixel footprints (``z / f`` metres each) of ``points_world`` [M, 3].

    Keypoints sit on part corners and seams, where the triangle test of :func:`visibility` can be fooled by a
    corner buried in another part (the pixel then sees that part's face at about the same depth); the surface
    actually seen around the projection must pass through the keypoint itself.
    """
    if surf.pix.size == 0:  # the view shows none of the object (cut off, or hidden by occluders)
        return np.zeros(len(xy), bool)
    H, W = surf.face_id.shape
    f = float(np.sqrt(surf.view.K[0, 0] * surf.view.K[1, 1]))
    T = surf.view.T_cam_from_world
    z = points_world @ T[2, :3] + T[2, 3]
    tol = footprints * np.abs(z) / f
    best = np.full(len(xy), np.inf)
    x0, y0 = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    for dx in (0, 1):
        for dy in (0, 1):
            cx, cy = np.clip(x0 + dx, 0, W - 1), np.clip(y0 + dy, 0, H - 1)
            flat = cy * W + cx
            row = np.searchsorted(surf.pix, flat)
            hit = (row < surf.pix.size) & (surf.pix[np.minimum(row, surf.pix.size - 1)] == flat)
            d = np.full(len(xy), np.inf)
            d[hit] = np.linalg.norm(surf.points_world[row[hit]] - points_world[hit], axis=1)
            best = np.minimum(best, d)
    return best <= tol
