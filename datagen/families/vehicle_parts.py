"""Primitives shared by the bus, train and boat families: lofted rounded-rectangle bodies, glass and lamp panels
on their planar faces, and road wheels.

Fixed topology and canonical sampling: a body is a sweep along +z of sections sampled by ``rounded_rect_profile``
at canonical normalised polar angles (``K`` points per quadrant, point ``K / 2`` the (+x, +y) corner), so a ring
point keeps its place on the outline (side middle, corner, roof middle) whatever the section's size, aspect and
corner radius. Panels (windows, lights, plates) are thin slabs (``slab_on_quad``) on planar sub-quads of a body's
flat faces, placed by fractions of those faces, so they scale with what they sit on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datagen.families.parts import (
    PartMesh,
    hexahedron,
    lathe,
    rounded_rect_point,
    rounded_rect_profile,
    slab_on_quad,
    sweep,
    tube,
)

__all__ = [
    "K",
    "ROT_Y_TO_X",
    "Station",
    "section_ring",
    "section_point",
    "loft",
    "oriented_quad",
    "bilinear_quad",
    "panel",
    "road_wheel",
    "wheel_hub",
    "box",
    "arch",
]

K = 6  # points per quadrant of a body section (24-point rings)
ROT_Y_TO_X = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +y -> +x, det +1

# (z, half width, y bottom, y top, corner radius), metres
Station = tuple[float, float, float, float, float]


def section_ring(st: Station) -> np.ndarray:
    """The rounded-rectangle section [4 K, 3] of a station, counter-clockwise about +z (point 0 on +x)."""
    z, hw, y0, y1, r = st
    hv = max((y1 - y0) / 2, 1e-3)
    prof = rounded_rect_profile(hw, hv, r, K)
    return np.concatenate([prof[:, :1], prof[:, 1:] + (y0 + y1) / 2, np.full((prof.shape[0], 1), z)], 1)


def section_point(st: Station, phi: float) -> np.ndarray:
    """The point [3] of a station's outline at the normalised polar angle ``phi`` (pi/4: the (+x, top) corner)."""
    z, hw, y0, y1, r = st
    hv = max((y1 - y0) / 2, 1e-3)
    p = rounded_rect_point(hw, hv, r, np.array([phi]))[0]
    return np.array([p[0], p[1] + (y0 + y1) / 2, z])


def loft(stations: Sequence[Station]) -> PartMesh:
    """A closed body through ``stations`` (rear to front, z increasing), end caps fanned to the ring centroids.

    Faces: ``sweep_n_faces(len(stations), 4 K)``.
    """
    return sweep(np.stack([section_ring(s) for s in stations]))


def oriented_quad(quad: np.ndarray, outward: Sequence[float]) -> np.ndarray:
    """``quad`` [4, 3] in the corner order that is counter-clockwise seen from ``outward`` (reversed if needed)."""
    q = np.asarray(quad, np.float64)
    n = np.cross(q[1] - q[0], q[3] - q[0])
    return q if n @ np.asarray(outward, np.float64) > 0 else q[[0, 3, 2, 1]]


def bilinear_quad(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray, s: Sequence[float],
                  t: Sequence[float]) -> np.ndarray:  # fmt: skip
    """Sub-quad [4, 3] of the quad with edges a0->a1 and b0->b1 at fractions ``s`` = (s0, s1) along a and
    ``t`` = (t0, t1) from a to b: corners (s0, t0), (s1, t0), (s1, t1), (s0, t1)."""

    def at(u: float, v: float) -> np.ndarray:
        return (1 - v) * ((1 - u) * a0 + u * a1) + v * ((1 - u) * b0 + u * b1)

    return np.stack([at(s[0], t[0]), at(s[1], t[0]), at(s[1], t[1]), at(s[0], t[1])])


def panel(quad: np.ndarray, outward: Sequence[float], offset: float = 0.004, thickness: float = 0.008) -> PartMesh:
    """A thin slab (12 faces) on the planar ``quad`` [4, 3], ``offset`` off it towards ``outward``."""
    return slab_on_quad(oriented_quad(quad, outward), offset, thickness)


def road_wheel(centre: Sequence[float], r: float, w: float, n_seg: int = 32) -> PartMesh:
    """A tyre about an axis parallel to x through ``centre`` [3] (radius ``r``, width ``w``, metres)."""
    radii = np.array([0.6, 0.9, 0.98, 1.0, 1.0, 0.98, 0.9, 0.6]) * r
    xs = np.array([-0.5, -0.47, -0.4, -0.25, 0.25, 0.4, 0.47, 0.5]) * w
    return lathe(radii, xs, n_seg).transformed(ROT_Y_TO_X, centre)


def wheel_hub(centre: Sequence[float], r: float, w: float, frac: float, n_seg: int = 32) -> PartMesh:
    """A hub cap on the +x face of a tyre of radius ``r`` and width ``w`` centred at ``centre`` [3]."""
    hr = frac * r
    xs = np.array([0.5 * w - 0.3 * w, 0.5 * w + 0.004, 0.5 * w + 0.012])
    return lathe([hr, hr, 0.5 * hr], xs, n_seg).transformed(ROT_Y_TO_X, centre)


def box(center: Sequence[float], size: Sequence[float]) -> PartMesh:
    """An axis-aligned box (12 faces) with ``center`` [3] and ``size`` (x, y, z), metres."""
    c, s = np.asarray(center, np.float64), np.asarray(size, np.float64) / 2
    corners = np.array([[(i & 1) * 2 - 1, ((i >> 1) & 1) * 2 - 1, ((i >> 2) & 1) * 2 - 1] for i in range(8)])
    return hexahedron(c + corners * s)


def arch(centre: Sequence[float], radius: float, x: float, depth: float, width: float, n: int = 13) -> PartMesh:
    """A wheel-arch trim on the +x side: a tube of ``n`` rings along the upper half circle of ``radius`` about
    ``centre`` [3] (y, z used) at x = ``x``, from the front (+z, ring 0) over the top to the back (ring n-1);
    section semi-axes ``width`` (x) and ``depth`` (radial), metres."""
    th = np.linspace(0.0, np.pi, n)
    pts = np.stack([np.full(n, x), centre[1] + radius * np.sin(th), centre[2] + radius * np.cos(th)], 1)
    return tube(pts, np.array([[width, depth]]), 8, up=(1.0, 0.0, 0.0))
