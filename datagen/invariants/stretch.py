"""The local stretch of the map between the two instances, measured from a rendered pair alone.

The field ``corr_{a->b}``, view a's depth and view b's depth give, for a small stencil of pixels of view a, both
the surface points on instance A (unprojected from ``depth{a}``) and their counterparts on instance B (unprojected
from ``depth{b}`` at the field's targets). The affine map between the two stencil triangles has singular values
``σ1 >= σ2`` (:func:`datagen.families.distortion.gram_singular_values`): how a small disc of A's surface becomes an
ellipse on B, in metres per metre, independent of both cameras.

The scale ``s`` a pixel is judged against is the median areal scale ``sqrt(σ1 σ2)`` of its part (where the parts
are known and measured on enough pixels; else of the whole pair); a pixel's map *collapses* where
``σ2 / s < 1 / limit`` or ``σ1 / s > limit`` (:data:`~datagen.families.distortion.STRETCH_LIMIT`): a region of A
squeezed onto a line of B or a line of A torn across B. A correct map between proportion-changed parts stays
well inside it; the old fan-triangulated table tops left ~40 % of their area beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.families.distortion import STRETCH_LIMIT, gram_singular_values
from datagen.invariants.common import DIRECTIONS, cams, unproject_points
from datagen.invariants.fields import bilinear_reads

__all__ = ["distortion", "STENCIL_PX"]

STENCIL_PX = 2  # stencil step: long enough that the field's 1/16 px storage step costs ~3 % of a difference
# a stencil whose far corner misses the parallelogram of the other three by more than this fraction of its size
# spans an occlusion edge (or a fold sharper than the surfaces' own creases): two surfaces, not one
PLANAR_TOL = 0.3
PART_MIN_STENCILS = 20  # a part measured on fewer stencils is judged against the pair's scale


def _depth_at(depth: np.ndarray, depth2: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear depth [N] at sub-pixel points, and whether the 2×2 block is all object on one surface.
    ``depth2`` is ``depth`` as float64 [H, W, 2] (:func:`bilinear_reads` reads 2-vectors), made once per view."""
    val, _, smooth = bilinear_reads(depth2, depth > 0, xy, depth)
    return val[:, 0], smooth


def distortion(sample: Mapping[str, Any], limit: float = STRETCH_LIMIT, labels=None) -> dict[str, Any]:
    """Stretch of the map A -> B at every measurable pixel of both views.

    A pixel ``p`` of view a is measured on the stencil ``p``, ``p + (s, 0)``, ``p + (0, s)``, ``p + (s, s)``
    (s = :data:`STENCIL_PX`) when all four have a valid match whose target lands on smooth depth in view b, and
    both the four surface points on A and their four counterparts on B form a near-parallelogram (the far corner
    within :data:`PLANAR_TOL` of the stencil's size from where the other three put it): a stencil across an
    occlusion edge, in either view, measures two unrelated surfaces and is left out. With ``labels``, a stencil
    must also see one part of A: Φ keeps (part, u, v) (design §5), so two parts' maps are independent and meet in
    a seam, not a stretch — at a concave junction (a deckhouse's wall on a deck placed anywhere along the hull)
    the depth is continuous and the four points on each side form a parallelogram, yet the two rows of the
    stencil land metres apart on B. The map's singular values come from the two edges at ``p``.

    Args:
        labels: optional (labels0, labels1), int [H, W] part index per pixel of each view (-1 unknown).

    Returns:
        ``collapse_frac`` (share of measured pixels beyond ``limit``), ``n_stretch``, ``stretch_scale`` (the
        median areal scale ``s``, metres of B per metre of A, view 0's direction), ``stretch_p99`` (99th
        percentile of ``max(σ1 / s, s / σ2)``); with labels, ``parts``: {part index: [n measured, n collapsed]}.
        Empty for pairs without depth (real images).
    """
    if sample.get("depth0") is None or sample.get("depth1") is None:
        return {}
    n = bad = 0
    ratios, parts, scale0 = [], {}, None
    s = STENCIL_PX
    offsets = ((0, 0), (s, 0), (0, s), (s, s))
    for a, b, d in DIRECTIONS:
        valid = sample[f"valid_{d}"]
        H, W = valid.shape
        depth_a, depth_b = sample[f"depth{a}"], sample[f"depth{b}"]
        depth_b2 = np.repeat(depth_b.astype(np.float64)[..., None], 2, axis=2)
        corr = sample[f"corr_{d}"]
        ok = np.ones((H - s, W - s), bool)
        for dx, dy in offsets:
            ok &= valid[dy : H - s + dy, dx : W - s + dx]
        if labels is not None:  # one part: Φ keeps (part, u, v), so it is continuous within a part only
            lab_a = labels[a]
            for dx, dy in offsets[1:]:
                ok &= lab_a[dy : H - s + dy, dx : W - s + dx] == lab_a[: H - s, : W - s]
        ys, xs = np.nonzero(ok)
        if ys.size == 0:
            continue
        Ka, Ta = cams(sample, a)
        Kb, Tb = cams(sample, b)
        pts_a, pts_b, ok = [], [], np.ones(len(ys), bool)
        for dx, dy in offsets:
            px = np.stack([xs + dx, ys + dy], axis=1).astype(np.float64)
            pts_a.append(unproject_points(px, depth_a[ys + dy, xs + dx], Ka, Ta))
            q = corr[ys + dy, xs + dx].astype(np.float64)
            zb, smooth = _depth_at(depth_b, depth_b2, q)
            ok &= smooth
            pts_b.append(unproject_points(q, zb, Kb, Tb))
        ok &= _parallelogram(pts_a) & _parallelogram(pts_b)
        if not ok.any():
            continue
        E = np.stack([pts_a[1] - pts_a[0], pts_a[2] - pts_a[0]], axis=2)[ok]  # [M, 3, 2]
        F = np.stack([pts_b[1] - pts_b[0], pts_b[2] - pts_b[0]], axis=2)[ok]
        sv = gram_singular_values(np.einsum("mki,mkj->mij", E, E), np.einsum("mki,mkj->mij", F, F))
        fine = np.isfinite(sv).all(axis=1)
        sv = sv[fine]
        if not len(sv):
            continue
        areal = np.sqrt(sv[:, 0] * sv[:, 1])
        scale = float(np.median(areal))
        if a == 0:
            scale0 = scale
        # what the shapes allow: each part's own scale where the parts are known (a stubby neck against a long
        # one is a legitimate 4x stretch of that part, not of the bottle), else the pair's
        local = np.full(len(sv), scale)
        lab = labels[a][ys[ok][fine], xs[ok][fine]] if labels is not None else None
        if lab is not None:
            for k in np.unique(lab):
                m = lab == k
                if k >= 0 and m.sum() >= PART_MIN_STENCILS:
                    local[m] = np.median(areal[m])
        ratio = np.maximum(sv[:, 0] / local, local / np.maximum(sv[:, 1], 1e-12))
        collapsed = ratio > limit
        n += len(ratio)
        bad += int(collapsed.sum())
        ratios.append(ratio)
        if lab is not None:
            for k in np.unique(lab):
                if k < 0:
                    continue
                row = parts.setdefault(int(k), [0, 0])
                row[0] += int((lab == k).sum())
                row[1] += int((collapsed & (lab == k)).sum())
    if n == 0:
        return {"n_stretch": 0}
    out: dict[str, Any] = {
        "collapse_frac": bad / n,
        "n_stretch": n,
        "stretch_p99": float(np.percentile(np.concatenate(ratios), 99)),
    }
    if scale0 is not None:
        out["stretch_scale"] = scale0
    if labels is not None:
        out["parts"] = parts
    return out


def _parallelogram(p: list[np.ndarray]) -> np.ndarray:
    """bool [M]: the stencil points (p00, p10, p01, p11, each [M, 3]) lie on one smooth surface: p11 within
    :data:`PLANAR_TOL` of the longer stencil edge from ``p10 + p01 - p00``. A collapsed stencil (all four on a
    line or a point) passes: its edges are compared with the longest of all six distances."""
    p00, p10, p01, p11 = p
    size = np.max([np.linalg.norm(x - y, axis=1) for x, y in ((p10, p00), (p01, p00), (p11, p00), (p11, p10),
                                                                 (p11, p01), (p10, p01))], axis=0)  # fmt: skip
    return np.linalg.norm(p11 - p10 - p01 + p00, axis=1) <= PLANAR_TOL * np.maximum(size, 1e-12)
