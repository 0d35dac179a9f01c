"""How much the cross-instance map Φ stretches each part: the exact, mesh-level distortion check.

Φ maps a face of instance A affinely onto the face with the same slot and local index of instance B. The
singular values ``σ1 >= σ2`` of that affine map (between the two triangles' planes) say how a small disc of A's
surface becomes an ellipse on B. A part that is only bigger or smaller on B has σ1 = σ2 = its scale; what the two
shapes *allow* is the part's overall scale ``s`` (the square root of the ratio of the part's total areas), and
proportion changes around it. A map that collapses (a fan triangle of a rectangle squeezed onto a sliver of a
disc, a 3 mm bevel stretched onto a 15 mm one) shows up as ``σ2 / s`` near 0 or ``σ1 / s`` far above 1.

:func:`slot_distortion` reports, per slot, the share of A's surface area where the map stretches or squeezes by
more than a factor ``alpha`` relative to the slot's scale; :func:`family_distortion` runs it over random
instance pairs of a family. The same quantity is measured on rendered pairs from the dense field and the depth
maps by :func:`datagen.invariants.distortion`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datagen.families.base import Family, Instance, face_map

__all__ = ["affine_singular_values", "SlotDistortion", "slot_distortion", "family_distortion", "STRETCH_LIMIT"]

# A map is collapsing where it squeezes (σ2 / s) or stretches (σ1 / s) a part's surface by more than this factor
# relative to the part's own scale. The families' own proportion changes stay below it (a stubby bottle neck against
# a long one is ~5, a car's rear overhang band ~8); the collapses it exists to catch are far beyond it (a table top's
# fan sector squeezed onto a sliver of a disc: > 1000; a square leg's side face onto a round leg's facet: ~24).
STRETCH_LIMIT = 10.0


def affine_singular_values(tri_a: np.ndarray, tri_b: np.ndarray) -> np.ndarray:
    """Singular values [N, 2] (descending) of the affine maps taking triangles ``tri_a`` [N, 3, 3] onto
    ``tri_b`` [N, 3, 3] (vertex k onto vertex k); NaN for degenerate source triangles.

    With edge matrices E (of A) and F (of B), ``σ²`` are the generalised eigenvalues of ``FᵀF`` against ``EᵀE``:
    frame-free, so the two triangles may lie in any planes.
    """
    E = np.stack([tri_a[:, 1] - tri_a[:, 0], tri_a[:, 2] - tri_a[:, 0]], axis=2)  # [N, 3, 2]
    F = np.stack([tri_b[:, 1] - tri_b[:, 0], tri_b[:, 2] - tri_b[:, 0]], axis=2)
    return gram_singular_values(np.einsum("nki,nkj->nij", E, E), np.einsum("nki,nkj->nij", F, F))


def gram_singular_values(G_a: np.ndarray, G_b: np.ndarray) -> np.ndarray:
    """``sqrt`` of the generalised eigenvalues of 2×2 Gram matrices ``G_b`` [N, 2, 2] against ``G_a`` [N, 2, 2]
    (descending, [N, 2]); NaN where ``G_a`` is singular."""
    det_a = G_a[:, 0, 0] * G_a[:, 1, 1] - G_a[:, 0, 1] * G_a[:, 1, 0]
    ok = det_a > 1e-30 * np.maximum(G_a[:, 0, 0] * G_a[:, 1, 1], 1e-300)
    inv = np.empty_like(G_a)
    d = np.where(ok, det_a, 1.0)
    inv[:, 0, 0], inv[:, 1, 1] = G_a[:, 1, 1] / d, G_a[:, 0, 0] / d
    inv[:, 0, 1], inv[:, 1, 0] = -G_a[:, 0, 1] / d, -G_a[:, 1, 0] / d
    M = inv @ G_b  # eigenvalues of G_a^-1 G_b are real and >= 0 (similar to a symmetric PSD matrix)
    tr = M[:, 0, 0] + M[:, 1, 1]
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    disc = np.sqrt(np.maximum(tr**2 / 4 - det, 0.0))
    lam = np.stack([tr / 2 + disc, np.maximum(tr / 2 - disc, 0.0)], axis=1)
    out = np.sqrt(np.maximum(lam, 0.0))
    out[~ok] = np.nan
    return out


@dataclass
class SlotDistortion:
    """Φ on one slot of one instance pair.

    Attributes:
        slot: slot name.
        scale: the slot's scale on B relative to A (square root of the area ratio).
        area_frac_outside: share of A's slot area where ``σ2 / scale < 1 / limit`` or ``σ1 / scale > limit``.
        worst: the largest ``max(σ1 / scale, scale / σ2)`` over the slot's faces.
    """

    slot: str
    scale: float
    area_frac_outside: float
    worst: float


def slot_distortion(family: Family, a: Instance, b: Instance, limit: float = STRETCH_LIMIT) -> list[SlotDistortion]:
    """Per slot present on both instances, how far Φ from ``a`` to ``b`` departs from the slot's own scale."""
    fmap = face_map(family, a, b)
    has = np.flatnonzero(fmap >= 0)
    tri_a = a.vertices[a.faces[has]]
    tri_b = b.vertices[b.faces[fmap[has]]]
    area_a = 0.5 * np.linalg.norm(np.cross(tri_a[:, 1] - tri_a[:, 0], tri_a[:, 2] - tri_a[:, 0]), axis=1)
    area_b = 0.5 * np.linalg.norm(np.cross(tri_b[:, 1] - tri_b[:, 0], tri_b[:, 2] - tri_b[:, 0]), axis=1)
    sv = affine_singular_values(tri_a, tri_b)
    slot = a.face_slot[has]
    out = []
    for s in np.unique(slot):
        m = (slot == s) & np.isfinite(sv[:, 0]) & (area_a > 0)
        if not m.any():
            continue
        scale = float(np.sqrt(area_b[m].sum() / area_a[m].sum()))
        ratio = np.maximum(sv[m, 0] / scale, scale / np.maximum(sv[m, 1], 1e-300))
        bad = ratio > limit
        out.append(
            SlotDistortion(
                family.slots[int(s)].name, scale, float(area_a[m][bad].sum() / area_a[m].sum()), float(ratio.max())
            )
        )
    return out


def family_distortion(
    family: Family, n_pairs: int = 40, seed: int = 0, limit: float = STRETCH_LIMIT
) -> dict[str, dict[str, float]]:
    """:func:`slot_distortion` over ``n_pairs`` random instance pairs of ``family``: per slot, the mean share of
    area beyond ``limit``, the share of pairs with any, and the worst ratio seen."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[SlotDistortion]] = {}
    for i in range(n_pairs):
        a = family.build(family.sample_params(rng), f"a{i}")
        b = family.build(family.sample_params(rng), f"b{i}")
        for d in slot_distortion(family, a, b, limit):
            rows.setdefault(d.slot, []).append(d)
    return {
        name: {
            "pairs": len(ds),
            "area_frac_outside": float(np.mean([d.area_frac_outside for d in ds])),
            "pairs_with_any": float(np.mean([d.area_frac_outside > 0 for d in ds])),
            "worst": float(max(d.worst for d in ds)),
        }
        for name, ds in rows.items()
    }
