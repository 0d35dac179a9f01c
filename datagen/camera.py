"""Pinhole cameras in the OpenCV convention, view sampling around an object, and pair selection.

Conventions (docs/design.md §3): camera x right, y down, z forward; ``T_cam_from_world`` is a 4×4 world -> camera
transform; ``K`` is 3×3; depth is z-depth. The centre of the pixel in row ``r``, column ``c`` is ``(x, y) = (c, r)``,
so an image of width ``W`` spans ``x`` in ``[-0.5, W - 0.5]``.

The world frame of a view is the canonical frame of the instance it shows (y up, front towards +z). Azimuth 0
puts the camera on the +z side, looking at the object's front; positive azimuth moves it towards +x (the
object's own left); positive elevation puts it above, looking down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from datagen.config import CameraConfig

__all__ = [
    "View",
    "look_at",
    "intrinsics_from_fov",
    "project",
    "unproject",
    "pixel_rays_cam",
    "camera_center",
    "inside_image",
    "framing_distance",
    "sample_views",
    "truncate_view",
    "cut_share",
    "is_truncated",
    "projected_box",
    "rotation_between",
    "azimuth_gap_deg",
    "admissible_pair",
]


@dataclass(frozen=True)
class View:
    """One camera looking at one instance.

    Attributes:
        K: float64 [3, 3] intrinsics (pixel-centre convention above).
        T_cam_from_world: float64 [4, 4] world (instance canonical frame) -> camera.
        height, width: image size in pixels.
        azimuth_deg, elevation_deg, distance_m, fov_deg, roll_deg: the parameters that built it (for meta).
    """

    K: np.ndarray
    T_cam_from_world: np.ndarray
    height: int
    width: int
    azimuth_deg: float = 0.0
    elevation_deg: float = 0.0
    distance_m: float = 0.0
    fov_deg: float = 0.0
    roll_deg: float = 0.0

    def meta(self) -> dict[str, float]:
        """JSON-friendly view parameters."""
        return {
            "azimuth_deg": round(float(self.azimuth_deg), 6),
            "elevation_deg": round(float(self.elevation_deg), 6),
            "distance_m": round(float(self.distance_m), 6),
            "fov_deg": round(float(self.fov_deg), 6),
            "roll_deg": round(float(self.roll_deg), 6),
        }


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 1.0, 0.0), roll_deg: float = 0.0) -> np.ndarray:
    """World -> camera transform of a camera at ``eye`` looking at ``target`` (OpenCV axes).

    Args:
        eye, target: [3] world points (metres).
        up: [3] world direction that appears upwards (towards -y) in the image before roll.
        roll_deg: rotation of the image about the optical axis, positive = clockwise in the image.

    Returns:
        float64 [4, 4] ``T_cam_from_world``.
    """
    eye = np.asarray(eye, np.float64)
    z = np.asarray(target, np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, np.float64))
    n = np.linalg.norm(x)
    if n < 1e-9:  # looking straight along `up`: any perpendicular works
        x = np.cross(z, np.array([0.0, 0.0, 1.0]))
        n = np.linalg.norm(x)
    x /= n
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    a = math.radians(roll_deg)
    c, s = math.cos(a), math.sin(a)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ eye
    return T


def intrinsics_from_fov(fov_y_deg: float, width: int, height: int) -> np.ndarray:
    """float64 [3, 3] K with square pixels, the given vertical field of view and the principal point at the
    image centre ``((W - 1) / 2, (H - 1) / 2)``."""
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def project(points_world: np.ndarray, K: np.ndarray, T_cam_from_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points.

    Args:
        points_world: [N, 3].
        K: [3, 3]; T_cam_from_world: [4, 4].

    Returns:
        ``xy`` float64 [N, 2] pixels and ``z`` float64 [N] camera z-depth (metres; <= 0 behind the camera, where
        ``xy`` is not meaningful).
    """
    p = np.asarray(points_world, np.float64)
    cam = p @ T_cam_from_world[:3, :3].T + T_cam_from_world[:3, 3]
    z = cam[:, 2]
    zs = np.where(np.abs(z) < 1e-12, 1e-12, z)
    x = K[0, 0] * cam[:, 0] / zs + K[0, 1] * cam[:, 1] / zs + K[0, 2]
    y = K[1, 1] * cam[:, 1] / zs + K[1, 2]
    return np.stack([x, y], axis=1), z


def unproject(xy: np.ndarray, depth_z: np.ndarray, K: np.ndarray, T_cam_from_world: np.ndarray) -> np.ndarray:
    """World points [N, 3] at pixels ``xy`` [N, 2] with z-depths ``depth_z`` [N] (inverse of :func:`project`)."""
    xy = np.asarray(xy, np.float64)
    rays = pixel_rays_cam(xy, K)
    cam = rays * np.asarray(depth_z, np.float64)[:, None]
    R, t = T_cam_from_world[:3, :3], T_cam_from_world[:3, 3]
    return (cam - t) @ R  # R^T (cam - t)


def pixel_rays_cam(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame ray directions [N, 3] through pixels ``xy`` [N, 2], scaled to unit z (so ``t`` = z-depth)."""
    Kinv = np.linalg.inv(np.asarray(K, np.float64))
    h = np.concatenate([np.asarray(xy, np.float64), np.ones((len(xy), 1))], axis=1)
    return h @ Kinv.T


def camera_center(T_cam_from_world: np.ndarray) -> np.ndarray:
    """[3] camera centre in world coordinates."""
    R, t = T_cam_from_world[:3, :3], T_cam_from_world[:3, 3]
    return -R.T @ t


def inside_image(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [N]: the point lies in the image area, i.e. its nearest pixel centre exists."""
    x, y = xy[:, 0], xy[:, 1]
    return (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)


def framing_distance(radius_m: float, fov_y_deg: float, fill: float) -> float:
    """Distance at which a sphere of ``radius_m`` spans ``fill`` of the image height (centred, vertical fov)."""
    half = math.radians(fov_y_deg) / 2.0
    tan_alpha = fill * math.tan(half)  # angular radius of the sphere's image: tan(alpha) = fill * tan(fov / 2)
    return radius_m / math.sin(math.atan(tan_alpha))


def _wrap_deg(a: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def azimuth_gap_deg(a: float, b: float) -> float:
    """Smallest absolute angle between two azimuths, degrees in [0, 180]."""
    return float(abs(_wrap_deg(a - b)))


def sample_views(
    rng: np.random.Generator,
    cfg: CameraConfig,
    center: np.ndarray,
    radius_m: float,
    height: int,
    width: int,
    n: int,
    anchor_azimuth_deg: float | None = None,
) -> list[View]:
    """Draw ``n`` views of an object with bounding sphere (``center``, ``radius_m``).

    The focal length follows from a random vertical fov, the distance from a random fill fraction (the share of
    the image's shorter side the bounding sphere spans), the look-at target is jittered by up to
    ``cfg.center_jitter`` of the radius and the image is rolled by up to ``cfg.roll_deg``. When
    ``anchor_azimuth_deg`` is given, azimuths are drawn within half the pair gap of it (so that views of one
    group can pair up); otherwise uniformly over ``cfg.azimuth_deg``.
    """
    views = []
    center = np.asarray(center, np.float64)
    for _ in range(n):
        if anchor_azimuth_deg is None:
            az = float(rng.uniform(*cfg.azimuth_deg))
        else:
            half = cfg.max_pair_azimuth_gap_deg / 2.0
            az = float(_wrap_deg(anchor_azimuth_deg + rng.uniform(-half, half)))
            lo, hi = cfg.azimuth_deg
            if hi - lo < 360.0:
                az = float(np.clip(az, lo, hi))
        el = float(rng.uniform(*cfg.elevation_deg))
        fov = float(rng.uniform(*cfg.fov_deg))
        fill = float(rng.uniform(*cfg.fill))
        roll = float(rng.uniform(-cfg.roll_deg, cfg.roll_deg))
        jitter = rng.uniform(-1.0, 1.0, 3) * cfg.center_jitter * radius_m
        # the fov is vertical; for a non-square image the shorter side sets the framing
        fov_short = (
            fov if height <= width else math.degrees(2 * math.atan(math.tan(math.radians(fov) / 2) * width / height))
        )
        dist = framing_distance(radius_m, fov_short, fill)
        a, e = math.radians(az), math.radians(el)
        direction = np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
        target = center + jitter
        T = look_at(target + dist * direction, target, roll_deg=roll)
        K = intrinsics_from_fov(fov, width, height)
        views.append(View(K, T, height, width, az, el, dist, fov, roll))
    return views


_TRUNCATION_BISECTIONS = 16  # of the shift along u: to 2 (W + H) / 2**16 px (0.03 px at 518)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [3, 3]: the smallest rotation taking direction ``a`` [3] to direction ``b`` [3] (any lengths)."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a)
    b = np.asarray(b, np.float64) / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1.0 + 1e-12:  # opposite: half a turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def is_truncated(view: View, vertices: np.ndarray) -> bool:
    """Part of a mesh leaves the image: some vertex projects outside the image area or lies behind the camera.

    Exact for a triangle mesh: the image area is convex, so a mesh whose vertices all project inside it lies
    inside it, and a vertex outside means the surface around it is outside.
    """
    xy, z = project(vertices, view.K, view.T_cam_from_world)
    return bool(((z <= 1e-9) | ~inside_image(xy, view.height, view.width)).any())


def projected_box(view: View, vertices: np.ndarray) -> tuple[float, float, float, float]:
    """``(x_min, y_min, x_max, y_max)`` pixels of a mesh's whole projection (beyond the image where it is cut off;
    vertices behind the camera are left out)."""
    xy, z = project(vertices, view.K, view.T_cam_from_world)
    xy = xy[z > 1e-9]
    if len(xy) == 0:
        return 0.0, 0.0, 0.0, 0.0
    lo, hi = xy.min(0), xy.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def truncate_view(
    rng: np.random.Generator, cfg: CameraConfig, view: View, vertices: np.ndarray, faces: np.ndarray
) -> tuple[View, dict[str, float]]:
    """Re-aim a view so that part of the object leaves the image (the OUTSIDE status then occurs).

    The camera first moves towards its look-at point by a zoom factor drawn from ``cfg.truncation_zoom`` (never
    nearer than 1.2 times the farthest vertex from that point), then turns about its centre so that the image
    content moves along a random direction ``u`` until a share ``c`` (``cfg.truncation_cut``) of the object's
    surface area lies outside the image (faces counted by their centroids' projections; :func:`cut_share`): the
    ray through the principal point is turned onto the pixel ``c0 + δ u``, ``δ`` found by bisection (a turn is
    nearly a shift of the image, and the share outside grows with it). The viewpoint (the direction from the
    look-at point to the camera: azimuth and elevation, what the pair gap limits bound), roll and intrinsics are
    kept; the optical axis turns off the object.

    Args:
        rng: the view's generator.
        cfg: the camera settings.
        view: a view from :func:`sample_views`.
        vertices: float64 [V, 3], faces: int [F, 3]: the object (world frame).

    Returns:
        The new view and what was drawn: ``zoom``, ``cut`` (the share aimed at), ``cut_share`` (the share met),
        ``direction_deg`` (of ``u`` in the image, 0 = +x, 90 = +y, i.e. down).
    """
    zoom = float(rng.uniform(*cfg.truncation_zoom))
    cut = float(rng.uniform(*cfg.truncation_cut))
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    V = np.asarray(vertices, np.float64)
    tri = V[np.asarray(faces, np.int64)]
    centroids = tri.mean(axis=1)
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    R, t = view.T_cam_from_world[:3, :3], view.T_cam_from_world[:3, 3]
    eye = -R.T @ t
    target = eye + view.distance_m * R[2]  # the look-at point on the optical axis
    reach = float(np.linalg.norm(V - target, axis=1).max())
    dist = max(view.distance_m / zoom, 1.2 * reach)
    eye = target + (eye - target) * (dist / view.distance_m)
    c0 = view.K[:2, 2]
    u = np.array([math.cos(angle), math.sin(angle)])
    ray_from = np.linalg.solve(view.K, np.array([c0[0], c0[1], 1.0]))

    def turned(delta: float) -> View:
        # with R' = Q R a fixed world direction seen along camera ray d is seen along Q d: the content at the
        # principal point moves to c0 + δu, and the rest of the image (nearly) with it
        ray_to = np.linalg.solve(view.K, np.array([c0[0] + delta * u[0], c0[1] + delta * u[1], 1.0]))
        T = np.eye(4)
        T[:3, :3] = rotation_between(ray_from, ray_to) @ R
        T[:3, 3] = -T[:3, :3] @ eye
        return View(view.K, T, view.height, view.width, view.azimuth_deg, view.elevation_deg, dist, view.fov_deg,
                    view.roll_deg)  # fmt: skip

    lo, hi = 0.0, 2.0 * float(view.width + view.height)  # shares 0 (zoomed only: may cut already) and 1
    out = turned(lo)
    if cut_share(out, centroids, area) < cut:
        for _ in range(_TRUNCATION_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if cut_share(turned(mid), centroids, area) < cut:
                lo = mid
            else:
                hi = mid
        out = turned(hi)
    return out, {"zoom": zoom, "cut": cut, "cut_share": cut_share(out, centroids, area),
                 "direction_deg": math.degrees(angle)}  # fmt: skip


def cut_share(view: View, centroids: np.ndarray, area: np.ndarray) -> float:
    """Share of a mesh's surface area outside the image: faces (``centroids`` [F, 3], ``area`` [F]) whose centroid
    projects outside the image area or lies behind the camera."""
    xy, z = project(centroids, view.K, view.T_cam_from_world)
    out = (z <= 1e-9) | ~inside_image(xy, view.height, view.width)
    return float(area[out].sum() / max(area.sum(), 1e-300))


def admissible_pair(a: View, b: View, cfg: CameraConfig) -> bool:
    """The viewpoint gap between two views is within the configured limits."""
    return (
        azimuth_gap_deg(a.azimuth_deg, b.azimuth_deg) <= cfg.max_pair_azimuth_gap_deg
        and abs(a.elevation_deg - b.elevation_deg) <= cfg.max_pair_elevation_gap_deg
    )
