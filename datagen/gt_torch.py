"""The dense correspondence field of :mod:`datagen.gt` as torch code, for a CUDA device (issue 15).

The same arithmetic as the numpy reference, in float64 on any torch device: a view's face-id raster becomes exact
surface points (:func:`view_surface_torch`: the pixel-centre ray meets the reported triangle, giving
barycentrics, z-depth and the world point); Φ moves them onto the other instance (:func:`counterparts_torch`: a
table look-up for procedural instances, done on the device; a user's registered mesh needs a closest-point search,
which runs on the CPU through :func:`datagen.canonical.counterparts`); :func:`visibility_torch` projects them into
the other view and classifies them against that view's own surface, and :func:`correspondence_torch` writes the
``status`` / ``corr`` maps.

Only one step leaves the device: where the raster cannot decide a point's visibility (its 2×2 pixel block does not
see its own triangle only: silhouettes, part seams, occluder edges, typically a few percent of the points), the
exact ray cast runs on the CPU with embree (:class:`datagen.gt.MeshRaycaster`) for those points alone, as in the
numpy path; without a ray caster the raster plane tests run on the device.

This is not the default path: the numpy code stays the reference. ``tests/datagen/test_gt_torch.py`` checks that both
give the same statuses and projections on the same views (CPU torch in the normal suite, CUDA under the ``gpu`` marker).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from datagen.camera import View
from datagen.canonical import CanonicalSurface, ProceduralSurface, counterparts
from datagen.gt import _CORR_LIMIT_PX, MASK_RADIUS_PX, NEAREST_PIXEL_TOL, REL_DEPTH_TOL, MeshRaycaster, ViewSurface
from loaders.schema import Status

__all__ = [
    "TorchViewSurface",
    "view_surface_torch",
    "to_torch_surface",
    "counterparts_torch",
    "visibility_torch",
    "correspondence_torch",
]

F64 = torch.float64


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


@dataclass
class TorchViewSurface:
    """:class:`datagen.gt.ViewSurface` with its arrays as tensors on one device (float64 geometry, int64 indices).

    Attributes are those of ``ViewSurface``; ``K``, ``T``, ``K_inv`` are the camera as float64 tensors and
    ``raycaster`` (CPU, embree) is used for the points the raster cannot decide.
    """

    view: View
    face_id: torch.Tensor  # int64 [H, W]
    pix: torch.Tensor  # int64 [N]
    face: torch.Tensor  # int64 [N]
    bary: torch.Tensor  # float64 [N, 3]
    points_world: torch.Tensor  # float64 [N, 3]
    depth: torch.Tensor  # float32 [H, W]
    plane_n: torch.Tensor  # float64 [F, 3]
    plane_d: torch.Tensor  # float64 [F]
    K: torch.Tensor
    K_inv: torch.Tensor
    T: torch.Tensor
    raycaster: MeshRaycaster | None = field(default=None, repr=False)
    two_sided: bool = False
    n_object_faces: int | None = None

    @property
    def device(self) -> torch.device:
        return self.face_id.device

    @property
    def object_mask(self) -> torch.Tensor:
        if self.n_object_faces is None:
            return self.face_id >= 0
        return (self.face_id >= 0) & (self.face_id < self.n_object_faces)

    def plane_depth(self, face: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """As :meth:`datagen.gt.ViewSurface.plane_depth`."""
        r = _pixel_rays(xy, self.K_inv)
        den = _dot(self.plane_n[face], r)
        z = self.plane_d[face] / den
        return torch.where(den.abs() > 1e-300, z, torch.full_like(z, float("inf")))

    def to_numpy(self) -> ViewSurface:
        """The numpy :class:`ViewSurface` (for the CPU parts of the pipeline: keypoints, statistics)."""
        return ViewSurface(
            self.view, self.face_id.cpu().numpy().astype(np.int32), self.pix.cpu().numpy(), self.face.cpu().numpy(),
            self.bary.cpu().numpy(), self.points_world.cpu().numpy(), self.depth.cpu().numpy(),
            self.plane_n.cpu().numpy(), self.plane_d.cpu().numpy(), self.raycaster, self.two_sided,
            self.n_object_faces,
        )  # fmt: skip


def _camera(view: View, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    K = np.asarray(view.K, np.float64)
    return (
        torch.as_tensor(K, dtype=F64, device=device),
        torch.as_tensor(np.linalg.inv(K), dtype=F64, device=device),  # the numpy path's inverse, bit for bit
        torch.as_tensor(np.asarray(view.T_cam_from_world, np.float64), dtype=F64, device=device),
    )


def _pixel_rays(xy: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Camera-frame rays with unit z through pixels ``xy`` [N, 2] (:func:`datagen.camera.pixel_rays_cam`)."""
    h = torch.cat([xy, torch.ones_like(xy[:, :1])], dim=1)
    return h @ K_inv.T


def _to_cam(points: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    return points @ T[:3, :3].T + T[:3, 3]


def view_surface_torch(
    vertices: np.ndarray | torch.Tensor,
    faces: np.ndarray | torch.Tensor,
    view: View,
    face_id: np.ndarray | torch.Tensor,
    raycaster: MeshRaycaster | None = None,
    two_sided: bool = False,
    n_object_faces: int | None = None,
    device: str | torch.device = "cpu",
) -> TorchViewSurface:
    """:func:`datagen.gt.view_surface` on ``device``: exact surface points of a view from its face-id raster
    (``face_id`` may already be a device tensor, e.g. read back from a GL pass into CUDA memory)."""
    device = torch.device(device)
    H, W = view.height, view.width
    face_id = torch.as_tensor(face_id, device=device).to(torch.int64)
    if tuple(face_id.shape) != (H, W):
        raise ValueError(f"face-id raster is {tuple(face_id.shape)}, the view is {(H, W)}")
    K, K_inv, T = _camera(view, device)
    V = torch.as_tensor(vertices, dtype=F64, device=device)
    Fi = torch.as_tensor(faces, device=device).to(torch.int64)
    tri = _to_cam(V, T)[Fi]  # [F, 3, 3] camera frame
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    plane_n = torch.linalg.cross(e1, e2)
    plane_d = _dot(plane_n, tri[:, 0])

    flat = face_id.reshape(-1)
    pix = torch.nonzero(flat >= 0).squeeze(1)
    face = flat[pix]
    xy = torch.stack([pix % W, torch.div(pix, W, rounding_mode="floor")], dim=1).to(F64)
    r = _pixel_rays(xy, K_inv)
    a, b1, b2 = tri[face, 0], e1[face], e2[face]
    p = torch.linalg.cross(r, b2)  # Möller–Trumbore with the ray origin at the camera centre
    det = _dot(b1, p)
    ok = det.abs() > 1e-12 * torch.linalg.norm(b1, dim=1) * torch.linalg.norm(b2, dim=1)
    inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
    s = -a
    u = _dot(s, p) * inv
    q = torch.linalg.cross(s, b1)
    v = _dot(r, q) * inv
    t = _dot(b2, q) * inv
    ok &= t > 0
    if not bool(ok.all()):
        flat = flat.clone()
        flat[pix[~ok]] = -1
        pix, face, u, v, t = pix[ok], face[ok], u[ok], v[ok], t[ok]
        face_id = flat.reshape(H, W)
    depth = torch.zeros(H * W, dtype=torch.float32, device=device)
    depth[pix] = t.to(torch.float32)
    if n_object_faces is not None:  # surface points of the object only; occluder pixels keep their depth
        obj = face < n_object_faces
        pix, face, u, v = pix[obj], face[obj], u[obj], v[obj]
    bary = torch.stack([1.0 - u - v, u, v], dim=1)
    points_world = (bary[:, :, None] * V[Fi[face]]).sum(1)
    return TorchViewSurface(view, face_id, pix, face, bary, points_world, depth.reshape(H, W), plane_n, plane_d, K,
                            K_inv, T, raycaster, two_sided, n_object_faces)  # fmt: skip


def to_torch_surface(surface: ViewSurface, device: str | torch.device = "cpu") -> TorchViewSurface:
    """A numpy :class:`ViewSurface` moved to ``device`` as it is (no recomputation)."""
    device = torch.device(device)
    K, K_inv, T = _camera(surface.view, device)

    def t(a, dtype=None):
        return torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dtype)

    return TorchViewSurface(
        surface.view, t(surface.face_id, torch.int64), t(surface.pix, torch.int64), t(surface.face, torch.int64),
        t(surface.bary, F64), t(surface.points_world, F64), t(surface.depth, torch.float32), t(surface.plane_n, F64),
        t(surface.plane_d, F64), K, K_inv, T, surface.raycaster, surface.two_sided, surface.n_object_faces,
    )  # fmt: skip


def counterparts_torch(
    src: CanonicalSurface, dst: CanonicalSurface, surface: TorchViewSurface
) -> tuple[torch.Tensor, torch.Tensor]:
    """Φ of ``surface``'s points (on ``src``'s instance) onto ``dst``: faces int64 [N] (-1: no counterpart) and
    points float64 [N, 3] (NaN there), on the surface's device. Procedural instances are a look-up on the device;
    other surfaces (a registered mesh: a closest-point search) run :func:`datagen.canonical.counterparts` on
    the CPU."""
    device = surface.device
    if not (isinstance(src, ProceduralSurface) and isinstance(dst, ProceduralSurface)):
        f, pts = counterparts(
            src, dst, surface.face.cpu().numpy(), surface.bary.cpu().numpy(), surface.points_world.cpu().numpy()
        )
        return torch.as_tensor(f, device=device), torch.as_tensor(pts, dtype=F64, device=device)
    canon = torch.as_tensor(src.canonical_face, device=device).to(torch.int64)[surface.face]
    lut = torch.as_tensor(dst._lut, device=device)
    f = torch.where(canon >= 0, lut[canon.clamp(min=0)], torch.full_like(canon, -1))
    V = torch.as_tensor(dst.vertices, dtype=F64, device=device)
    Fi = torch.as_tensor(dst.faces, device=device).to(torch.int64)
    pts = torch.full((len(f), 3), float("nan"), dtype=F64, device=device)
    has = f >= 0
    pts[has] = (surface.bary[has][:, :, None] * V[Fi[f[has]]]).sum(1)
    return f, pts


def _clip_index(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.clamp(0, n - 1)


def visibility_torch(
    dst: TorchViewSurface, face: torch.Tensor, points_world: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`datagen.gt.visibility` on the surface's device: ``xy`` float64 [M, 2] (clipped) and ``status``
    uint8 [M]."""
    H, W = dst.face_id.shape
    T = dst.T
    cam = _to_cam(points_world, T)
    z = cam[:, 2]
    zs = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    K = dst.K
    x = K[0, 0] * cam[:, 0] / zs + K[0, 1] * cam[:, 1] / zs + K[0, 2]
    y = K[1, 1] * cam[:, 1] / zs + K[1, 2]
    xy = torch.stack([x, y], dim=1)
    status = torch.full((len(z),), int(Status.OUTSIDE), dtype=torch.uint8, device=z.device)
    inside = (z > 1e-9) & (x >= -0.5) & (x < W - 0.5) & (y >= -0.5) & (y < H - 0.5)
    idx = torch.nonzero(inside).squeeze(1)
    xi, zi, fi = xy[idx], z[idx], face[idx]
    p_cam = cam[idx]
    occluded = _dot(dst.plane_n[fi], p_cam) > 0  # faces away from the camera (closed meshes)
    if dst.two_sided:
        occluded = torch.zeros_like(occluded)
    if dst.raycaster is not None:
        x0, y0 = torch.floor(xi[:, 0]).to(torch.int64), torch.floor(xi[:, 1]).to(torch.int64)
        unsure = (xi[:, 0] < 0) | (xi[:, 0] > W - 1) | (xi[:, 1] < 0) | (xi[:, 1] > H - 1)
        for dx in (0, 1):
            for dy in (0, 1):
                unsure |= dst.face_id[_clip_index(y0 + dy, H), _clip_index(x0 + dx, W)] != fi
        u = torch.nonzero(unsure & ~occluded).squeeze(1)
        if u.numel():  # the exact ray cast, on the CPU for these points alone
            Tn = np.asarray(dst.view.T_cam_from_world, np.float64)
            centre = -Tn[:3, :3].T @ Tn[:3, 3]
            g = dst.raycaster.first_face(centre, points_world[idx[u]].cpu().numpy())
            g = torch.as_tensor(g, device=z.device)
            other = (g >= 0) & (g != fi[u])
            o = u[other]
            z_g = dst.plane_depth(g[other], xi[o])
            occluded[o] = (z_g > 0) & (z_g < zi[o] * (1 - REL_DEPTH_TOL))
    else:
        occluded |= _raster_occlusion(dst, xi, zi, fi)
    occluded |= ~_near_object_pixel(dst.object_mask, xi)
    occluded |= _nearest_pixel_in_front(dst, xi, fi)
    status[idx] = torch.where(occluded, int(Status.OCCLUDED), int(Status.MATCHED)).to(torch.uint8)
    return xy.clamp(-_CORR_LIMIT_PX, _CORR_LIMIT_PX), status


def _nearest_pixel_in_front(dst: TorchViewSurface, xy: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    H, W = dst.depth.shape
    qx = _clip_index(torch.round(xy[:, 0]).to(torch.int64), W)
    qy = _clip_index(torch.round(xy[:, 1]).to(torch.int64), H)
    seen = dst.depth[qy, qx].to(F64)
    z_own = dst.plane_depth(face, torch.stack([qx, qy], dim=1).to(F64))
    return (seen > 0) & (z_own > 0) & torch.isfinite(z_own) & (seen < z_own * (1 - NEAREST_PIXEL_TOL))


def _near_object_pixel(object_mask: torch.Tensor, xy: torch.Tensor, radius_px: float = MASK_RADIUS_PX) -> torch.Tensor:
    H, W = object_mask.shape
    cx, cy = torch.round(xy[:, 0]).to(torch.int64), torch.round(xy[:, 1]).to(torch.int64)
    near = torch.zeros(len(xy), dtype=torch.bool, device=xy.device)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            qx, qy = cx + dx, cy + dy
            inside = (qx >= 0) & (qx < W) & (qy >= 0) & (qy < H)
            seen = inside & object_mask[_clip_index(qy, H), _clip_index(qx, W)]
            near |= seen & ((qx - xy[:, 0]) ** 2 + (qy - xy[:, 1]) ** 2 <= radius_px**2)
    return near


def _raster_occlusion(dst: TorchViewSurface, xi: torch.Tensor, zi: torch.Tensor, fi: torch.Tensor) -> torch.Tensor:
    H, W = dst.face_id.shape
    qx = _clip_index(torch.round(xi[:, 0]).to(torch.int64), W)
    qy = _clip_index(torch.round(xi[:, 1]).to(torch.int64), H)
    fq = dst.face_id[qy, qx]
    bg = fq < 0
    if bool(bg.any()):  # at a silhouette: judge by the nearest pixel of the surrounding 2×2 block that sees something
        bx, by, bf = _nearest_surface_pixel(dst.face_id, xi[bg])
        qx, qy, fq = qx.clone(), qy.clone(), fq.clone()
        qx[bg], qy[bg], fq[bg] = bx, by, bf
    other = (fq >= 0) & (fq != fi)
    occluded = torch.zeros(len(xi), dtype=torch.bool, device=xi.device)
    if bool(other.any()):
        o = torch.nonzero(other).squeeze(1)
        tol = REL_DEPTH_TOL * zi[o]
        z_g = dst.plane_depth(fq[o], xi[o])
        front1 = (z_g > 0) & (z_g < zi[o] - tol)
        z_f = dst.plane_depth(fi[o], torch.stack([qx[o], qy[o]], dim=1).to(F64))
        z_seen = dst.depth[qy[o], qx[o]].to(F64)
        front2 = (z_f <= 0) | (z_seen < z_f - tol)
        occluded[o] = front1 & front2
    return occluded


def _nearest_surface_pixel(face_id: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    H, W = face_id.shape
    x0, y0 = torch.floor(xy[:, 0]).to(torch.int64), torch.floor(xy[:, 1]).to(torch.int64)
    best_d = torch.full((len(xy),), float("inf"), dtype=F64, device=xy.device)
    qx = _clip_index(torch.round(xy[:, 0]).to(torch.int64), W)
    qy = _clip_index(torch.round(xy[:, 1]).to(torch.int64), H)
    face = torch.full((len(xy),), -1, dtype=torch.int64, device=xy.device)
    for dx in (0, 1):
        for dy in (0, 1):
            cx, cy = _clip_index(x0 + dx, W), _clip_index(y0 + dy, H)
            f = face_id[cy, cx]
            dist = (cx - xy[:, 0]) ** 2 + (cy - xy[:, 1]) ** 2
            better = (f >= 0) & (dist < best_d)
            best_d = torch.where(better, dist, best_d)
            qx, qy, face = torch.where(better, cx, qx), torch.where(better, cy, qy), torch.where(better, f, face)
    return qx, qy, face


def correspondence_torch(
    src: TorchViewSurface, dst: TorchViewSurface, face: torch.Tensor, points_world: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`datagen.gt.correspondence` on the device: ``status`` uint8 [H0, W0] and ``corr`` float32
    [H0, W0, 2] (NaN where there is no counterpart or no surface)."""
    H, W = src.view.height, src.view.width
    device = src.device
    status = torch.full((H * W,), int(Status.BACKGROUND), dtype=torch.uint8, device=device)
    corr = torch.full((H * W, 2), float("nan"), dtype=torch.float32, device=device)
    has = face >= 0
    status[src.pix[~has]] = int(Status.NO_COUNTERPART)
    xy, st = visibility_torch(dst, face[has], points_world[has])
    status[src.pix[has]] = st
    corr[src.pix[has]] = xy.to(torch.float32)
    return status.reshape(H, W), corr.reshape(H, W, 2)
