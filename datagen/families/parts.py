"""Fixed-topology part templates: closed, outward-facing triangle meshes whose vertex count, face count and face
order depend only on resolution arguments, never on shape parameters.

Every template here is a *sweep*: a sequence of rings (cross-sections) of equal point count joined by quads and,
optionally, closed at both ends by triangle fans (caps). Boxes with bevels, tapered tubes along a curve, lathe
profiles, ellipsoids, lofted shells and airfoil wings are all sweeps with different rings; a hexahedron (thin slabs
for windows, plates, lights) is the one exception. Shape parameters move ring points; they never change counts.

Orientation convention (outward counter-clockwise faces): a ring's points run counter-clockwise about the sweep
direction T (right-hand rule), i.e. a profile ``(u, v)`` that is counter-clockwise in its plane is placed at
``P + u N + v B`` with ``B = T x N``. Caps close the start (normal -T) and the end (normal +T).

Each patch (sweep side, each cap, each hexahedron face) has its own vertices so that UVs are per-patch and edges
between patches are sharp; the mesh is watertight after merging coincident vertices (``weld``).

Mirror rule: ``PartMesh.mirrored_x()`` negates x and swaps the 2nd and 3rd vertex of every face, so vertex ``i``
of the mirror is the mirror image of vertex ``i`` and face ``f`` stays face ``f``; the surface point
``(f, (b0, b1, b2))`` of a part maps to ``(f, (b0, b2, b1))`` of its mirror.

One module, over ~400 lines: every template shares the patch layout and the mirror rule above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PartMesh",
    "concat",
    "sweep",
    "sweep_n_faces",
    "spine_frames",
    "place_rings",
    "circle_profile",
    "rounded_rect_profile",
    "rounded_rect_point",
    "airfoil_profile",
    "tube",
    "lathe",
    "rounded_box",
    "ellipsoid",
    "hexahedron",
    "slab_on_quad",
    "nearest_surface_point",
    "nearest_vertex_point",
    "weld",
    "signed_volume",
    "rotation_x",
    "rotation_y",
    "rotation_z",
]


@dataclass
class PartMesh:
    """A closed triangle mesh of one part.

    Attributes:
        vertices: float64 [V, 3], metres.
        faces: int32 [F, 3], counter-clockwise seen from outside.
        uv: float32 [V, 2], per-patch texture coordinates (metres along the surface, roughly).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    def mirrored_x(self) -> PartMesh:
        """The mirror image through the plane x = 0, with the same vertex and face order (winding swapped)."""
        v = self.vertices * np.array([-1.0, 1.0, 1.0])
        return PartMesh(v, np.ascontiguousarray(self.faces[:, [0, 2, 1]]), self.uv.copy())

    def transformed(self, R: np.ndarray | None = None, t: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0)) -> PartMesh:
        """``R @ v + t`` for every vertex; ``R`` must be a proper rotation (det +1) to keep faces outward."""
        v = self.vertices if R is None else self.vertices @ np.asarray(R, np.float64).T
        return PartMesh(v + np.asarray(t, np.float64), self.faces, self.uv)


def concat(parts: Sequence[PartMesh]) -> PartMesh:
    """One mesh holding ``parts`` in order (vertex and face blocks concatenated)."""
    offsets = np.cumsum([0] + [p.vertices.shape[0] for p in parts[:-1]])
    return PartMesh(
        np.concatenate([p.vertices for p in parts]),
        np.concatenate([p.faces + o for p, o in zip(parts, offsets)]).astype(np.int32),
        np.concatenate([p.uv for p in parts]).astype(np.float32),
    )


# ---- sweeps ------------------------------------------------------------------------------------------------------
def sweep_n_faces(n_rings: int, n_seg: int, caps: int = 2) -> int:
    """Faces of a sweep of ``n_rings`` rings of ``n_seg`` points with ``caps`` (0, 1 or 2) end caps."""
    return 2 * (n_rings - 1) * n_seg + caps * n_seg


def _cap(ring: np.ndarray, apex: np.ndarray, at_start: bool) -> PartMesh:
    """Triangle fan closing ``ring`` [S, 3] at ``apex`` [3]; outward = -T at the start, +T at the end."""
    S = ring.shape[0]
    verts = np.concatenate([ring, apex[None]])
    c = S
    j = np.arange(S)
    jn = (j + 1) % S
    faces = np.stack([np.full(S, c), jn, j], 1) if at_start else np.stack([np.full(S, c), j, jn], 1)
    # planar UV in the ring's own plane (metres), axes from the centroid to the first ring point
    centre = ring.mean(0)
    a = ring[0] - centre
    a /= max(np.linalg.norm(a), 1e-12)
    n = np.cross(ring[S // 4] - centre, a) if S >= 4 else np.array([0.0, 0.0, 1.0])
    b = np.cross(n, a)
    b /= max(np.linalg.norm(b), 1e-12)
    d = verts - centre
    uv = np.stack([d @ a, d @ b], 1)
    return PartMesh(verts, faces.astype(np.int32), uv.astype(np.float32))


def sweep(
    rings: np.ndarray,
    cap_start: bool = True,
    cap_end: bool = True,
    start_apex: np.ndarray | None = None,
    end_apex: np.ndarray | None = None,
) -> PartMesh:
    """A closed swept surface through ``rings`` [R, S, 3] (each ring counter-clockwise about the sweep direction).

    Caps are fans to the ring centroid, or to ``start_apex`` / ``end_apex`` when given (rounded ends).
    Faces: ``sweep_n_faces(R, S, caps)``, sides first (ring by ring, segment by segment), then start cap, end cap.
    """
    rings = np.asarray(rings, np.float64)
    R, S, _ = rings.shape
    # side patch with a duplicated seam column so UVs wrap cleanly
    side = np.concatenate([rings, rings[:, :1]], axis=1)  # [R, S+1, 3]
    verts = side.reshape(-1, 3)
    i, j = np.meshgrid(np.arange(R - 1), np.arange(S), indexing="ij")
    a = (i * (S + 1) + j).ravel()
    b = a + 1
    c = a + (S + 1)
    d = c + 1
    faces = np.stack([np.stack([a, b, c], 1), np.stack([b, d, c], 1)], 1).reshape(-1, 3)
    # uv: u = arc length around the mean ring, v = arc length along the sweep (metres)
    ring_len = np.linalg.norm(np.diff(side, axis=1), axis=2).mean(0)  # [S]
    u = np.concatenate([[0.0], np.cumsum(ring_len)])
    step = np.linalg.norm(np.diff(rings.mean(1), axis=0), axis=1)
    v = np.concatenate([[0.0], np.cumsum(step)])
    uv = np.stack(np.broadcast_arrays(u[None, :], v[:, None]), -1).reshape(-1, 2)
    patches = [PartMesh(verts, faces.astype(np.int32), uv.astype(np.float32))]
    if cap_start:
        apex = rings[0].mean(0) if start_apex is None else np.asarray(start_apex, np.float64)
        patches.append(_cap(rings[0], apex, at_start=True))
    if cap_end:
        apex = rings[-1].mean(0) if end_apex is None else np.asarray(end_apex, np.float64)
        patches.append(_cap(rings[-1], apex, at_start=False))
    return concat(patches)


def spine_frames(points: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, ...]:
    """Frames (T, N, B) [R, 3] along a polyline [R, 3]: T the tangent, N the part of ``up`` normal to T
    (parallel-transported where T turns towards ``up``), B = T x N."""
    P = np.asarray(points, np.float64)
    T = np.gradient(P, axis=0)
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    N = np.empty_like(T)
    B = np.empty_like(T)
    up = np.asarray(up, np.float64)
    for k in range(P.shape[0]):
        ref = up if k == 0 else N[k - 1]
        n = ref - (ref @ T[k]) * T[k]
        if np.linalg.norm(n) < 1e-6:  # tangent parallel to the reference: any normal
            n = np.cross(T[k], [1.0, 0.0, 0.0])
            if np.linalg.norm(n) < 1e-6:
                n = np.cross(T[k], [0.0, 1.0, 0.0])
        N[k] = n / np.linalg.norm(n)
        B[k] = np.cross(T[k], N[k])
    return T, N, B


def place_rings(points: np.ndarray, profiles: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Rings [R, S, 3] = ``P + u N + v B`` for profiles [R, S, 2] (or [S, 2], shared) along ``points`` [R, 3]."""
    P = np.asarray(points, np.float64)
    _, N, B = spine_frames(P, up)
    prof = np.broadcast_to(np.asarray(profiles, np.float64), (P.shape[0],) + np.shape(profiles)[-2:])
    return P[:, None, :] + prof[..., :1] * N[:, None, :] + prof[..., 1:] * B[:, None, :]


# ---- profiles (counter-clockwise, [S, 2]) -------------------------------------------------------------------------
def circle_profile(n_seg: int, ru: float = 1.0, rv: float | None = None) -> np.ndarray:
    """Ellipse with semi-axes ``ru``, ``rv``; point 0 on +u, point n/4 on +v."""
    t = 2.0 * np.pi * np.arange(n_seg) / n_seg
    return np.stack([ru * np.cos(t), (ru if rv is None else rv) * np.sin(t)], 1)


def rounded_rect_point(half_u: float, half_v: float, radius: float, phi: np.ndarray) -> np.ndarray:
    """Points [N, 2] of the rounded rectangle's outline at normalised polar angles ``phi`` [N] (radians).

    The normalised angle of a point ``(u, v)`` is ``atan2(v / half_v, u / half_u)``: the angle in the frame where
    the bounding box is the square [-1, 1]². The point returned is where the ray from the centre in direction
    ``(half_u cos phi, half_v sin phi)`` leaves the outline, so ``phi = pi / 4`` is the (+u, +v) corner of any
    rounded rectangle, whatever its radius and aspect ratio, and ``phi = 0`` the middle of its +u side.
    ``radius`` is clipped to [1e-3 min(half), 0.999 min(half)].
    """
    a, b = float(half_u), float(half_v)
    m = min(a, b)
    r = float(np.clip(radius, 1e-3 * m, 0.999 * m))
    phi = np.asarray(phi, np.float64)
    d = np.stack([a * np.cos(phi), b * np.sin(phi)], -1)  # ray directions (not unit)
    ad = np.abs(d)
    with np.errstate(divide="ignore"):
        t = np.minimum(np.where(ad[:, 0] > 0, a / ad[:, 0], np.inf), np.where(ad[:, 1] > 0, b / ad[:, 1], np.inf))
    hit = ad * t[:, None]  # where the ray leaves the sharp rectangle, folded into the first quadrant
    corner = (hit[:, 0] > a - r) & (hit[:, 1] > b - r)
    if corner.any():  # leaves through a corner arc: the outer root of |t d - c| = r, c the arc's centre
        c = np.array([a - r, b - r])
        dc = ad[corner] @ c
        dd = (ad[corner] ** 2).sum(1)
        t[corner] = (dc + np.sqrt(np.maximum(dc**2 - dd * (c @ c - r * r), 0.0))) / dd
    return d * t[:, None]


def rounded_rect_profile(half_u: float, half_v: float, radius: float, n_quadrant: int = 4) -> np.ndarray:
    """Rectangle with rounded corners, sampled at canonical angles: [4 n_quadrant, 2], counter-clockwise.

    Point ``j`` sits at the normalised polar angle ``2 pi j / (4 n_quadrant)`` (:func:`rounded_rect_point`): point
    0 is the middle of the +u side and point ``n_quadrant / 2`` (``n_quadrant`` even) the (+u, +v) corner, for
    every radius and aspect ratio. A point keeps its place on the outline when the shape changes, so a sharp
    rectangle, a rounded one, an oval and a circle correspond point by point and so do the sweep quads and cap
    fans built on them (a rectangle's side is then several collinear points, not one segment that would become
    a sliver of a round outline). With ``half_u == half_v`` and the largest radius this is ``circle_profile``.
    """
    n = 4 * int(n_quadrant)
    if n < 4:
        raise ValueError(f"n_quadrant must be at least 1, got {n_quadrant}")
    return rounded_rect_point(half_u, half_v, radius, 2.0 * np.pi * np.arange(n) / n)


def airfoil_profile(n_seg: int, chord: float, thickness: float) -> np.ndarray:
    """Symmetric NACA-00xx-like section [n_seg, 2] (u along the chord, leading edge at u = +chord/2).

    ``thickness`` is the maximum thickness as a fraction of the chord. Point 0 is the leading edge, point
    n_seg/2 the trailing edge, both on the chord line; point j and n_seg - j are mirror images. The trailing edge
    keeps a small finite thickness so no triangle degenerates. ``n_seg`` even.
    """
    h = n_seg // 2
    x = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, h + 1)[:-1]))  # 0 (leading edge) -> <1, cosine spacing
    yt = 5 * thickness * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1015 * x**4)
    yt = np.maximum(yt, 0.004 * thickness)
    yt[0] = 0.0  # the leading edge point lies on the chord line (mirror-symmetric section)
    # upper surface leading -> trailing edge, the trailing edge point (on the chord line, between the upper and
    # lower surfaces' last points, which keep a small thickness), lower surface back towards the leading edge
    xs = np.concatenate([x, [1.0], x[::-1][:-1]])
    ys = np.concatenate([yt, [0.0], -yt[::-1][:-1]])
    return np.stack([chord * (0.5 - xs), chord * ys], 1)  # counter-clockwise in (u, v)


# ---- solids --------------------------------------------------------------------------------------------------------
def tube(
    points: np.ndarray,
    radii: np.ndarray | float,
    n_seg: int,
    up: Sequence[float] = (0.0, 0.0, 1.0),
    caps: bool = True,
    start_apex: np.ndarray | None = None,
    end_apex: np.ndarray | None = None,
    profile: np.ndarray | None = None,
) -> PartMesh:
    """A tube of circular (or ``profile`` [S, 2] unit-scaled) section along ``points`` [R, 3].

    ``radii``: scalar, [R] (circular per ring) or [R, 2] / [1, 2] (u, v semi-axes); the profile is scaled by it.
    """
    P = np.asarray(points, np.float64)
    R = P.shape[0]
    rad = np.asarray(radii, np.float64)
    if rad.ndim == 0:
        rad = np.full((R, 2), float(rad))
    elif rad.ndim == 1:
        rad = np.stack([rad, rad], 1)
    rad = np.broadcast_to(rad, (R, 2))
    base = circle_profile(n_seg) if profile is None else np.asarray(profile, np.float64)
    prof = base[None] * rad[:, None, :]
    return sweep(place_rings(P, prof, up), caps, caps, start_apex, end_apex)


def lathe(radii: np.ndarray, heights: np.ndarray, n_seg: int, caps: tuple[bool, bool] = (True, True)) -> PartMesh:
    """Surface of revolution about +y: ring k has radius ``radii[k]`` at height ``heights[k]`` (increasing).

    Ring point j sits at angle 2 pi j / n_seg from +z towards +x (point n_seg/4 is on +x, 3 n_seg/4 on -x).
    """
    r = np.asarray(radii, np.float64)
    h = np.asarray(heights, np.float64)
    t = 2.0 * np.pi * np.arange(n_seg) / n_seg
    # CCW about +y: from +z towards +x
    rings = np.stack(
        [r[:, None] * np.sin(t)[None], np.broadcast_to(h[:, None], (r.size, n_seg)), r[:, None] * np.cos(t)[None]], -1
    )
    return sweep(rings, caps[0], caps[1])


def rounded_box(
    center: Sequence[float],
    size: Sequence[float],
    radius: float = 0.0,
    bevel: float = 0.0,
    n_quadrant: int = 3,
) -> PartMesh:
    """An axis-aligned box ``size`` (x, y, z) with vertical edges rounded by ``radius`` and a ``bevel`` (chamfer)
    around the top and bottom faces. Sweep along +y with 4 rings; faces ``sweep_n_faces(4, 4 n_quadrant)``.

    Sections are :func:`rounded_rect_profile` in (u, v) = (z, x): point 0 is the middle of the front (+z) face.
    """
    cx, cy, cz = center
    sx, sy, sz = (max(float(s), 1e-4) for s in size)
    b = float(np.clip(bevel, 1e-4, 0.45 * min(sx, sy, sz)))
    outer = rounded_rect_profile(sz / 2, sx / 2, radius, n_quadrant)  # (u, v) = (z, x); N = +z, B = y x z = +x
    inner = rounded_rect_profile(sz / 2 - b, sx / 2 - b, max(radius - b, 0.0), n_quadrant)
    ys = np.array([cy - sy / 2, cy - sy / 2 + b, cy + sy / 2 - b, cy + sy / 2])
    profs = np.stack([inner, outer, outer, inner])
    rings = np.stack([np.stack([cx + p[:, 1], np.full(p.shape[0], y), cz + p[:, 0]], 1) for p, y in zip(profs, ys)])
    return sweep(rings)


def ellipsoid(
    center: Sequence[float],
    radii: Sequence[float],
    n_rings: int,
    n_seg: int,
    axis_points: np.ndarray | None = None,
) -> PartMesh:
    """An ellipsoid swept along z (radii (rx, ry, rz)), ``n_rings`` interior rings plus apex caps at the poles.

    Faces: ``sweep_n_faces(n_rings, n_seg, 2)``. Ring point 0 is on +x, point n_seg/4 on +y (CCW about +z).
    """
    cx, cy, cz = center
    rx, ry, rz = radii
    t = np.cos(np.pi * (np.arange(n_rings) + 1) / (n_rings + 1))[::-1]  # -1 < t < 1 increasing
    s = np.sqrt(1.0 - t**2)
    a = 2.0 * np.pi * np.arange(n_seg) / n_seg
    rings = np.stack(
        [
            cx + rx * s[:, None] * np.cos(a)[None],
            cy + ry * s[:, None] * np.sin(a)[None],
            np.broadcast_to((cz + rz * t)[:, None], (n_rings, n_seg)),
        ],
        -1,
    )
    return sweep(rings, True, True, np.array([cx, cy, cz - rz]), np.array([cx, cy, cz + rz]))


# ---- hexahedra ------------------------------------------------------------------------------------------------------
# faces of the unit cube as corner-index quads (corner = x + 2 y + 4 z), counter-clockwise from outside
_CUBE_QUADS = np.array(
    [
        [0, 4, 6, 2],  # -x
        [1, 3, 7, 5],  # +x
        [0, 1, 5, 4],  # -y
        [2, 6, 7, 3],  # +y
        [0, 2, 3, 1],  # -z
        [4, 5, 7, 6],  # +z
    ]
)


def hexahedron(corners: np.ndarray) -> PartMesh:
    """A six-sided solid from 8 corners [8, 3] indexed like the unit cube (corner = x + 2 y + 4 z), the map from
    the unit cube orientation-preserving. 24 vertices (4 per face, planar UVs), 12 faces."""
    C = np.asarray(corners, np.float64)
    verts = C[_CUBE_QUADS.ravel()]
    q = np.arange(6)[:, None] * 4
    faces = np.concatenate([q + np.array([[0, 1, 2]]), q + np.array([[0, 2, 3]])], 1).reshape(-1, 3)
    quad = verts.reshape(6, 4, 3)
    e1 = np.linalg.norm(quad[:, 1] - quad[:, 0], axis=1)
    e2 = np.linalg.norm(quad[:, 3] - quad[:, 0], axis=1)
    uv = np.zeros((6, 4, 2))
    uv[:, 1, 0] = e1
    uv[:, 2] = np.stack([e1, e2], 1)
    uv[:, 3, 1] = e2
    return PartMesh(verts, faces.astype(np.int32), uv.reshape(-1, 2).astype(np.float32))


def slab_on_quad(quad: np.ndarray, offset: float, thickness: float) -> PartMesh:
    """A thin slab whose inner face is the planar quad [4, 3] (counter-clockwise seen from outside) moved
    ``offset`` along its outward normal and whose outer face is ``thickness`` further out. Faces: 12.

    The outer face is the unit cube's +z face; its corner ``i`` of ``quad`` is hexahedron corner ``[4, 5, 7, 6][i]``.
    """
    Q = np.asarray(quad, np.float64)
    n = np.cross(Q[1] - Q[0], Q[3] - Q[0]) + np.cross(Q[2] - Q[1], Q[0] - Q[1])
    n /= np.linalg.norm(n)
    inner = Q + offset * n
    outer = inner + thickness * n
    C = np.empty((8, 3))
    C[[0, 1, 3, 2]] = inner
    C[[4, 5, 7, 6]] = outer
    return hexahedron(C)


# ---- queries -------------------------------------------------------------------------------------------------------
def nearest_surface_point(part: PartMesh, target: Sequence[float]) -> tuple[int, tuple[float, float, float]]:
    """The (face, barycentric) of the point of ``part`` nearest to ``target`` [3] (exact, brute force over faces)."""
    p = np.asarray(target, np.float64)
    tri = part.vertices[part.faces]  # [F, 3, 3]
    F = tri.shape[0]
    cands = []  # (bary [F, 3]) candidates: the plane projection when inside, and the closest point of each edge
    a, ab, ac = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    ap = p - a
    d00, d01, d11 = (ab * ab).sum(1), (ab * ac).sum(1), (ac * ac).sum(1)
    d20, d21 = (ap * ab).sum(1), (ap * ac).sum(1)
    den = np.maximum(d00 * d11 - d01**2, 1e-300)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    inside = np.stack([1 - v - w, v, w], 1)
    inside[~(inside >= 0).all(1)] = np.nan
    cands.append(inside)
    for i0, i1 in ((0, 1), (1, 2), (2, 0)):
        e = tri[:, i1] - tri[:, i0]
        s = np.clip(((p - tri[:, i0]) * e).sum(1) / np.maximum((e * e).sum(1), 1e-300), 0.0, 1.0)
        bb = np.zeros((F, 3))
        bb[:, i0], bb[:, i1] = 1 - s, s
        cands.append(bb)
    B = np.stack(cands)  # [4, F, 3]
    pts = np.einsum("cfk,fkd->cfd", B, tri)
    d = np.linalg.norm(pts - p, axis=-1)
    d = np.where(np.isnan(d), np.inf, d)
    c, f = np.unravel_index(int(np.argmin(d)), d.shape)
    bary = np.where(np.abs(B[c, f]) < 1e-9, 0.0, B[c, f])
    bary = np.round(bary / bary.sum(), 12)
    return int(f), tuple(float(x) for x in bary)


def nearest_vertex_point(
    part: PartMesh, target: Sequence[float], on_plane_x0: bool = False
) -> tuple[int, tuple[float, float, float]]:
    """(face, one-hot barycentric) of the vertex of ``part`` nearest to ``target`` (first face using it);
    with ``on_plane_x0`` only vertices on the plane x = 0 are candidates."""
    d = np.linalg.norm(part.vertices - np.asarray(target, np.float64), axis=1)
    if on_plane_x0:
        off = np.abs(part.vertices[:, 0]) > 1e-9 * max(np.ptp(part.vertices), 1e-9)
        if off.all():
            raise ValueError("no vertex on the plane x = 0")
        d[off] = np.inf
    v = int(np.argmin(d))
    f, c = np.argwhere(part.faces == v)[0]
    bary = [0.0, 0.0, 0.0]
    bary[int(c)] = 1.0
    return int(f), (bary[0], bary[1], bary[2])


def weld(vertices: np.ndarray, faces: np.ndarray, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``tol`` (by rounding); returns (vertices, faces) with shared vertices."""
    key = np.round(np.asarray(vertices) / tol).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return np.asarray(vertices)[first], inverse.reshape(-1)[faces]


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed mesh (positive when faces point outward)."""
    tri = np.asarray(vertices, np.float64)[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def rotation_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
