"""Articulated tubes for posed families (bird, person): a turtle-built centre line with joint arcs of fixed length.

A limb is a chain of *pieces* walked by a turtle that carries an orthonormal frame ``(T, N, B)`` (tangent, normal,
binormal = T x N, stored as the columns of a 3x3 matrix): a :class:`Line` moves straight along ``T``; a
:class:`Bend` walks a circular arc of fixed length while the frame turns by ``angle`` about an axis given in the
turtle's local ``(T, N, B)`` coordinates (a hinge joint: an elbow or a knee turns about the limb's own ``B``).

Ring ``k`` of a piece with ``n`` rings sits at the fraction ``k / n`` of that piece (the start ring of the chain at
fraction 0 of the first piece), so every ring has a fixed *station* ``piece index + fraction`` that does not
depend on lengths or angles: a joint's middle ring is the joint whatever the pose, a ring a third of the way down
the shin is a third of the way down the shin on every instance. Radii are interpolated in that station, so they
are shape-parametrised but canonical too.

Why arcs of fixed length: a joint bent by ``angle`` with an arc of length ``s`` has its inner side compressed by
``1 - r angle / s`` for a tube of radius ``r`` (r > s / angle would fold the surface through itself and collapse
the map, docs/design.md §5). Families choose ``s`` as a multiple of the joint radius large enough for their largest
bend; at a straight pose the arc is a straight stretch of the same length, so the topology and ring spacing are those
of every other pose.

Rings are placed in the turtle's frames (not parallel-transported ``up`` vectors), so a ring point keeps its side
of the limb in every pose: point ``j`` of an ``n``-point circle profile is at ``cos(2 pi j / n) N + sin(2 pi j /
n) B``, counter-clockwise about ``T`` (``parts`` orientation convention), and the swept tube faces outward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datagen.families.parts import PartMesh, circle_profile, sweep

__all__ = [
    "Line",
    "Bend",
    "Chain",
    "axis_angle",
    "frame",
    "slerp",
    "walk",
    "loft",
    "ring_surface_point",
]


@dataclass(frozen=True)
class Line:
    """A straight stretch of ``length`` metres carrying ``rings`` rings (at fractions 1/rings .. 1)."""

    length: float
    rings: int


@dataclass(frozen=True)
class Bend:
    """A circular arc of ``length`` metres turning the frame by ``angle`` radians about ``axis`` (local (T, N, B)
    coordinates; its T component is ignored), carrying ``rings`` rings. ``axis = (0, 0, 1)`` (+B) turns T towards
    +N, ``(0, 1, 0)`` (+N) turns T towards -B."""

    length: float
    angle: float
    axis: tuple[float, float, float]
    rings: int


@dataclass
class Chain:
    """The rings' centre points and frames of a walked chain.

    Attributes:
        points: float64 [R, 3], ring centres (metres).
        frames: float64 [R, 3, 3], columns (T, N, B) per ring.
        station: float64 [R], ``piece index + fraction`` of each ring (the first ring is 0.0).
    """

    points: np.ndarray
    frames: np.ndarray
    station: np.ndarray

    @property
    def end(self) -> np.ndarray:
        return self.points[-1]


def axis_angle(axis: Sequence[float] | np.ndarray, angle: float) -> np.ndarray:
    """The 3x3 rotation by ``angle`` radians about ``axis`` (Rodrigues; right-hand rule)."""
    a = np.asarray(axis, np.float64)
    n = np.linalg.norm(a)
    if n < 1e-15 or abs(angle) < 1e-15:
        return np.eye(3)
    a = a / n
    K = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)


def frame(T: Sequence[float] | np.ndarray, N: Sequence[float] | np.ndarray) -> np.ndarray:
    """The orthonormal frame [3, 3] with columns (T, N', B): T normalised, N' the part of ``N`` normal to T,
    B = T x N'."""
    t = np.asarray(T, np.float64)
    t = t / np.linalg.norm(t)
    n = np.asarray(N, np.float64)
    n = n - (n @ t) * t
    n = n / np.linalg.norm(n)
    return np.stack([t, n, np.cross(t, n)], axis=1)


def slerp(Ra: np.ndarray, Rb: np.ndarray, f: float) -> np.ndarray:
    """The rotation a fraction ``f`` of the way from ``Ra`` to ``Rb`` [3, 3] (geodesic; f = 0 gives Ra)."""
    D = Ra.T @ Rb
    c = np.clip(0.5 * (np.trace(D) - 1.0), -1.0, 1.0)
    ang = float(np.arccos(c))
    if ang < 1e-12:
        return Ra.copy()
    if np.pi - ang < 1e-6:  # half turn: the axis from the symmetric part
        w, v = np.linalg.eigh(0.5 * (D + D.T))
        axis = v[:, int(np.argmax(w))]
    else:
        axis = np.array([D[2, 1] - D[1, 2], D[0, 2] - D[2, 0], D[1, 0] - D[0, 1]]) / (2.0 * np.sin(ang))
    return Ra @ axis_angle(axis, f * ang)


def walk(origin: Sequence[float] | np.ndarray, frame0: np.ndarray, pieces: Sequence[Line | Bend]) -> Chain:
    """Walk ``pieces`` from ``origin`` [3] with the starting frame ``frame0`` [3, 3] (columns T, N, B)."""
    p = np.asarray(origin, np.float64).copy()
    F = np.asarray(frame0, np.float64).copy()
    pts, frs, st = [p.copy()], [F.copy()], [0.0]
    for i, piece in enumerate(pieces):
        fr = np.arange(1, piece.rings + 1) / piece.rings
        T = F[:, 0]
        if isinstance(piece, Line):
            for f in fr:
                pts.append(p + f * piece.length * T)
                frs.append(F.copy())
                st.append(i + f)
            p = p + piece.length * T
            continue
        loc = np.asarray(piece.axis, np.float64) * np.array([0.0, 1.0, 1.0])
        a = F @ (loc / np.linalg.norm(loc))
        d = np.cross(a, T)
        th = float(piece.angle)
        for f in fr:
            phi = th * f
            if abs(th) < 1e-9:
                q = p + f * piece.length * T
            else:
                q = p + (piece.length / th) * (np.sin(phi) * T + (1.0 - np.cos(phi)) * d)
            pts.append(q)
            frs.append(axis_angle(a, phi) @ F)
            st.append(i + f)
        p = pts[-1].copy()
        F = frs[-1].copy()
    return Chain(np.array(pts), np.array(frs), np.array(st))


def loft(
    chain: Chain,
    radii: np.ndarray,
    n_seg: int,
    offsets: np.ndarray | None = None,
    start_ext: float | None = None,
    end_ext: float | None = None,
) -> PartMesh:
    """A closed tube through ``chain``'s rings: ring k is the ellipse ``P_k + o_k + ru cos(t) N_k + rv sin(t) B_k``.

    Args:
        chain: the walked centre line (R rings).
        radii: [R, 2] (ru along N, rv along B) or [R] (circular), metres.
        n_seg: points per ring (even, so rings are symmetric about their N axis).
        offsets: optional [R, 2] shift of each ring centre along (N, B), metres.
        start_ext, end_ext: when given, the end caps are fans to an apex that far beyond the first / last ring
            along its tangent (rounded ends); else flat fans to the ring centroid.

    Faces: ``parts.sweep_n_faces(R, n_seg, 2)``; outward (rings counter-clockwise about T).
    """
    P, F = chain.points, chain.frames
    R = P.shape[0]
    r = np.asarray(radii, np.float64)
    if r.ndim == 1:
        r = np.stack([r, r], 1)
    prof = circle_profile(n_seg)
    N, B = F[:, :, 1], F[:, :, 2]
    C = P.copy()
    if offsets is not None:
        o = np.asarray(offsets, np.float64)
        C = C + o[:, :1] * N + o[:, 1:] * B
    rings = (
        C[:, None, :]
        + (prof[None, :, :1] * r[:, None, :1]) * N[:, None, :]
        + (prof[None, :, 1:] * r[:, None, 1:]) * B[:, None, :]
    )
    sa = None if start_ext is None else C[0] - start_ext * F[0, :, 0]
    ea = None if end_ext is None else C[R - 1] + end_ext * F[R - 1, :, 0]
    return sweep(rings, True, True, sa, ea)


def ring_surface_point(
    chain: Chain, radii: np.ndarray, station: float, direction: Sequence[float], offsets: np.ndarray | None = None
) -> np.ndarray:
    """The point [3] on the tube's surface at ``station`` (interpolated between rings) in the local direction
    ``direction`` = (n, b) (unit-normalised; e.g. (0, -1) is the -B side), for keypoint targets."""
    s = chain.station
    r = np.asarray(radii, np.float64)
    if r.ndim == 1:
        r = np.stack([r, r], 1)
    k = int(np.clip(np.searchsorted(s, station) - 1, 0, len(s) - 2))
    w = float(np.clip((station - s[k]) / max(s[k + 1] - s[k], 1e-12), 0.0, 1.0))
    P = (1 - w) * chain.points[k] + w * chain.points[k + 1]
    F = (1 - w) * chain.frames[k] + w * chain.frames[k + 1]
    rr = (1 - w) * r[k] + w * r[k + 1]
    if offsets is not None:
        o = (1 - w) * np.asarray(offsets)[k] + w * np.asarray(offsets)[k + 1]
        P = P + o[0] * F[:, 1] + o[1] * F[:, 2]
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    return P + d[0] * rr[0] * F[:, 1] + d[1] * rr[1] * F[:, 2]
