"""Wheel parts shared by the bicycle and motorbike families: tyre and rim rings, hubs and spoke sets.

Every wheel turns about an axis parallel to x through ``centre`` (y, z) at x = 0 (the family's symmetry plane), so
tyre, rim and hub are centre slots whose vertex sets are mirror symmetric; a spoke set is a left slot (spokes from
the hub's +x flange to the rim) whose right twin is its mirror image.

Fixed topology and canonical sampling: a ring (tyre, rim) is a closed sweep of ``n_theta`` sections at the angles
``2 pi k / n_theta`` about the axis, each section a profile sampled at canonical angles (``circle_profile``,
``rounded_rect_profile``), so a face covers the same (angle around the wheel, angle around the section) patch on
every instance whatever the radii. Spokes are thin tubes of fixed ring count; spoke ``i`` of a set of ``n``
always leaves the hub at the same canonical angle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datagen.families.parts import PartMesh, concat, lathe, sweep, tube

__all__ = ["ring_sweep", "tyre", "rim", "hub", "spokes", "ROT_Y_TO_X"]

ROT_Y_TO_X = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +y -> +x, det +1


def ring_sweep(centre: Sequence[float], radius: float, profile: np.ndarray, n_theta: int) -> PartMesh:
    """A closed ring about the axis through ``centre`` = (y, z) parallel to x, at x = 0.

    ``profile`` [S, 2] is the section in (u, v) = (radially outwards, +x), counter-clockwise; the section's origin
    sits at ``radius`` from the axis. Faces: ``2 n_theta S`` (no caps), section ``k`` at the angle
    ``-2 pi k / n_theta`` (from +y, the sweep runs against the angle so that faces point outwards).
    """
    yc, zc = float(centre[0]), float(centre[1])
    prof = np.asarray(profile, np.float64)
    th = -2.0 * np.pi * np.arange(n_theta) / n_theta
    d = np.stack([np.zeros_like(th), np.cos(th), np.sin(th)], 1)  # radial directions [K, 3]
    ex = np.array([1.0, 0.0, 0.0])
    c = np.array([0.0, yc, zc])
    rings = c + (radius + prof[None, :, 0:1]) * d[:, None, :] + prof[None, :, 1:2] * ex
    rings = np.concatenate([rings, rings[:1]])  # closed: the last section repeats the first
    return sweep(rings, cap_start=False, cap_end=False)


def tyre(centre: Sequence[float], r_outer: float, height: float, width: float, n_theta: int, n_sec: int) -> PartMesh:
    """A tyre: an elliptic section ``height`` (radial) by ``width`` (x) whose outer edge is at ``r_outer``."""
    t = 2.0 * np.pi * np.arange(n_sec) / n_sec
    prof = np.stack([0.5 * height * np.cos(t), 0.5 * width * np.sin(t)], 1)
    return ring_sweep(centre, r_outer - 0.5 * height, prof, n_theta)


def rim(centre: Sequence[float], r_mid: float, depth: float, width: float, n_theta: int) -> PartMesh:
    """A rim: a rounded-rectangle section ``depth`` (radial) by ``width`` (x) centred at ``r_mid``."""
    from datagen.families.parts import rounded_rect_profile

    prof = rounded_rect_profile(0.5 * depth, 0.5 * width, 0.25 * min(depth, width), 2)
    return ring_sweep(centre, r_mid, prof, n_theta)


def hub(centre: Sequence[float], r_body: float, r_flange: float, r_axle: float, half_w: float, n_seg: int) -> PartMesh:
    """A hub along x from -``half_w`` to +``half_w``: axle stubs, flanges at ±0.7 ``half_w``, a waisted body.

    Lathe about x with fixed rings; the end caps' fan apexes are the axle ends (x = ±``half_w``, on the axis)."""
    hs = np.array([-1.0, -0.82, -0.8, -0.62, -0.55, 0.0, 0.55, 0.62, 0.8, 0.82, 1.0]) * half_w
    radii = np.array(
        [r_axle, r_axle, r_flange, r_flange, r_body, 0.9 * r_body, r_body, r_flange, r_flange, r_axle, r_axle]
    )
    return lathe(radii, hs, n_seg).transformed(ROT_Y_TO_X, [0.0, centre[0], centre[1]])


def spoke_ends(
    centre: Sequence[float], n: int, r_hub: float, x_hub: float, r_rim: float, cross: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hub ends [n, 3] and rim ends [n, 3] of the ``n`` spokes of the +x side: spoke ``i`` meets the rim at the
    angle ``2 pi (i + 0.25) / n`` and leaves the hub ``cross`` radians ahead or behind (alternating)."""
    yc, zc = float(centre[0]), float(centre[1])
    i = np.arange(n)
    a_rim = 2.0 * np.pi * (i + 0.25) / n
    a_hub = a_rim + cross * np.where(i % 2 == 0, 1.0, -1.0)
    hub_pts = np.stack([np.full(n, x_hub), yc + r_hub * np.cos(a_hub), zc + r_hub * np.sin(a_hub)], 1)
    rim_pts = np.stack([np.zeros(n), yc + r_rim * np.cos(a_rim), zc + r_rim * np.sin(a_rim)], 1)
    return hub_pts, rim_pts


def spokes(
    centre: Sequence[float],
    n: int,
    r_hub: float,
    x_hub: float,
    r_rim: float,
    radius: float | Sequence[float],
    cross: float = 0.0,
    n_seg: int = 4,
) -> PartMesh:
    """``n`` straight spokes of the +x side (hub flange at x = ``x_hub`` to the rim at x = 0), each a tube of
    ``n_seg`` sides and 2 rings: ``n * sweep_n_faces(2, n_seg)`` faces. ``radius`` is scalar (round) or
    (in-plane, across) semi-axes for flat cast spokes."""
    a, b = spoke_ends(centre, n, r_hub, x_hub, r_rim, cross)
    rad = np.asarray(radius, np.float64)
    rad = np.array([[float(rad), float(rad)]]) if rad.ndim == 0 else rad.reshape(1, 2)
    # spokes i and i + 2 are the same spoke turned by 4 pi / n about the axle (the frames use N = +x, which the
    # turn keeps): build the first two, turn copies of them
    first = [tube(np.stack([p, 0.5 * (p + q), q]), rad, n_seg, up=(1.0, 0.0, 0.0)) for p, q in zip(a[:2], b[:2])]
    c = np.array([0.0, float(centre[0]), float(centre[1])])
    parts = []
    for i in range(n):
        m = first[i % 2]
        if i < 2:
            parts.append(m)
            continue
        t = 2.0 * np.pi * (i - i % 2) / n
        R = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(t), -np.sin(t)], [0.0, np.sin(t), np.cos(t)]])
        # angles run from +y towards +z here: (y, z) = (cos a, sin a) turned by t is the point at a + t
        parts.append(PartMesh((m.vertices - c) @ R.T + c, m.faces, m.uv))
    return concat(parts)
