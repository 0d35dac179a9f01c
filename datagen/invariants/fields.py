"""Checks of the dense fields against each other and against the keypoints, with no gain scaling.

* :func:`cycle`: following ``corr_0to1`` then ``corr_1to0`` returns to the start. The reverse field is read
  bilinearly where the four pixel centres around the landing point are all valid (the *raw* figure); the
  *smooth* figure leaves out landing blocks that straddle a depth step in the other view (an occlusion edge, where a
  bilinear read mixes two unrelated surfaces whatever the ground truth). Neither is divided by the field's gain:
  a map that collapses part of a surface onto a line fails both.
* :func:`keypoints_vs_dense`: the dense field at a keypoint lands within 0.05 of the other view's object size of
  the same keypoint.
* :func:`left_right`: a sided keypoint never maps nearer its mirror twin than itself.
* :func:`target_on_mask`: a matched pixel's target lies within a pixel of the other view's object mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datagen.invariants.common import DIRECTIONS, object_extent_px
from loaders.schema import META_FLIP_PERM, STORED_STATUSES, Status

__all__ = [
    "sample_field",
    "bilinear_reads",
    "cycle",
    "keypoints_vs_dense",
    "left_right",
    "target_on_mask",
    "KP_TOLERANCE",
    "DEPTH_STEP_REL",
    "MASK_TOLERANCE_PX",
]

KP_TOLERANCE = 0.05  # keypoint transfer tolerance, fraction of the longer side of the target object's bounding box
DEPTH_STEP_REL = 0.03  # a 2x2 block whose depths spread more than this fraction straddles an occlusion edge
# a matched target may lie this far from the nearest object pixel centre of the other view (1 px, the generator's
# rule, plus the 1/16 px storage step of the field)
MASK_TOLERANCE_PX = 1.0 + 1.0 / 16.0


def sample_field(
    corr: np.ndarray, valid: np.ndarray, xy: np.ndarray, with_gain: bool = False
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a correspondence field at sub-pixel points, also near the edge of its valid region.

    Bilinear where the four pixels around a point are all valid. Elsewhere the nearest valid one of the four is
    extended to first order, ``corr[q] + J (xy - q)``, with the Jacobian ``J`` from finite differences of its valid
    4-neighbours (a term dropped where no neighbour along an axis is valid); with none of the four valid, the
    nearest pixel's value is returned and ``ok`` is False.

    Args:
        corr: float32 [H, W, 2]; valid: bool [H, W]; xy: float64 [N, 2].
        with_gain: also return the field's local gain (px out per px in: the largest singular value of its
            Jacobian; 1 where unknown, inf on a one-pixel sliver where only one axis has a derivative).

    Returns:
        values float64 [N, 2], ok bool [N] and, with ``with_gain``, gain float64 [N].
    """
    H, W = valid.shape
    c = corr.astype(np.float64)
    x0 = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, W - 2)
    y0 = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, H - 2)
    fx = np.clip(xy[:, 0] - x0, 0.0, 1.0)[:, None]
    fy = np.clip(xy[:, 1] - y0, 0.0, 1.0)[:, None]
    c00, c01, c10, c11 = c[y0, x0], c[y0, x0 + 1], c[y0 + 1, x0], c[y0 + 1, x0 + 1]
    v00, v01, v10, v11 = valid[y0, x0], valid[y0, x0 + 1], valid[y0 + 1, x0], valid[y0 + 1, x0 + 1]
    all4 = v00 & v01 & v10 & v11
    out = (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy
    gain = np.ones(len(xy))
    jac = np.full((len(xy), 2, 2), np.nan)  # [N, 2 (out), 2 (in: x, y)]
    jac[:, :, 0] = np.where((v00 & v01)[:, None], c01 - c00, c11 - c10)
    jac[:, :, 1] = np.where((v00 & v10)[:, None], c10 - c00, c11 - c01)
    ok = all4.copy()
    edge = np.flatnonzero(~all4)
    if edge.size:
        cx = np.stack([x0[edge], x0[edge] + 1, x0[edge], x0[edge] + 1], axis=1)
        cy = np.stack([y0[edge], y0[edge], y0[edge] + 1, y0[edge] + 1], axis=1)
        dist = np.hypot(cx - xy[edge, :1], cy - xy[edge, 1:])
        dist[~valid[cy, cx]] = np.inf
        k = np.argmin(dist, axis=1)
        has = np.isfinite(dist[np.arange(edge.size), k])
        qx, qy = cx[np.arange(edge.size), k], cy[np.arange(edge.size), k]
        nx = np.clip(np.rint(xy[edge, 0]).astype(np.int64), 0, W - 1)
        ny = np.clip(np.rint(xy[edge, 1]).astype(np.int64), 0, H - 1)
        qx, qy = np.where(has, qx, nx), np.where(has, qy, ny)
        j = np.stack([_axis_derivative(c, valid, qx, qy, 1, 0), _axis_derivative(c, valid, qx, qy, 0, 1)], axis=2)
        step = xy[edge] - np.stack([qx, qy], axis=1)
        out[edge] = c[qy, qx] + np.einsum("nij,nj->ni", np.nan_to_num(j), step) * has[:, None]
        jac[edge] = j
        ok[edge] = has
    if not with_gain:
        return out, ok
    known = np.isfinite(jac).all(axis=(1, 2))
    if known.any():
        gain[known] = np.linalg.svd(jac[known], compute_uv=False)[:, 0]
    gain[~known & np.isfinite(jac).any(axis=(1, 2))] = np.inf
    return out, ok, gain


def _axis_derivative(c: np.ndarray, valid: np.ndarray, qx: np.ndarray, qy: np.ndarray, ax: int, ay: int) -> np.ndarray:
    """Finite difference [N, 2] of field ``c`` at pixels (qx, qy) along (ax, ay) from valid neighbours: central
    where both are valid, one-sided where one is, NaN where none is."""
    H, W = valid.shape
    px, py = np.clip(qx + ax, 0, W - 1), np.clip(qy + ay, 0, H - 1)
    mx, my = np.clip(qx - ax, 0, W - 1), np.clip(qy - ay, 0, H - 1)
    vp = valid[py, px] & ((px != qx) | (py != qy))
    vm = valid[my, mx] & ((mx != qx) | (my != qy))
    fwd, bwd = c[py, px] - c[qy, qx], c[qy, qx] - c[my, mx]
    d = np.where((vp & vm)[:, None], (fwd + bwd) / 2, np.where(vp[:, None], fwd, bwd))
    d[~(vp | vm)] = np.nan
    return d


def bilinear_reads(
    corr: np.ndarray, valid: np.ndarray, xy: np.ndarray, depth: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain bilinear reads of a field at sub-pixel points ``xy`` [N, 2].

    Returns:
        values float64 [N, 2]; ``all4`` bool [N]: the four pixel centres around the point exist and are valid (the
        read is meaningful only there); ``smooth`` bool [N]: ``all4`` and, with ``depth`` [H, W], their depths
        spread by at most :data:`DEPTH_STEP_REL` (the block sees one continuous surface).
    """
    H, W = valid.shape
    x0f, y0f = np.floor(xy[:, 0]), np.floor(xy[:, 1])
    inside = (x0f >= 0) & (y0f >= 0) & (x0f <= W - 2) & (y0f <= H - 2)
    x0 = np.clip(x0f, 0, W - 2).astype(np.int64)
    y0 = np.clip(y0f, 0, H - 2).astype(np.int64)
    c = corr.astype(np.float64)
    fx, fy = (xy[:, 0] - x0)[:, None], (xy[:, 1] - y0)[:, None]
    top = c[y0, x0] * (1 - fx) + c[y0, x0 + 1] * fx
    out = top * (1 - fy) + (c[y0 + 1, x0] * (1 - fx) + c[y0 + 1, x0 + 1] * fx) * fy
    all4 = inside & valid[y0, x0] & valid[y0, x0 + 1] & valid[y0 + 1, x0] & valid[y0 + 1, x0 + 1]
    smooth = all4.copy()
    if depth is not None:
        blk = np.stack([depth[y0, x0], depth[y0, x0 + 1], depth[y0 + 1, x0], depth[y0 + 1, x0 + 1]], 1)
        smooth &= (blk.max(1) - blk.min(1)) <= DEPTH_STEP_REL * blk.max(1)
    return out, all4, smooth


def cycle(sample: Mapping[str, Any], threshold_px: float = 1.5, labels=None) -> dict[str, Any]:
    """Cycle 0->1->0 and 1->0->1: ``corr_0to1[p]`` is followed into view 1 and the reverse field read there
    (:func:`bilinear_reads`), which must return to ``p``.

    Args:
        labels: optional (labels0, labels1), int [H, W] part index per pixel of each view (-1 unknown), to split
            the figures by the part the start pixel sees.

    Returns:
        ``cycle_frac_within_1.5px`` (raw: every start pixel whose landing block is all valid), ``n_cycle``,
        ``cycle_median_px``; ``cycle_frac_within_1.5px_smooth`` and ``n_cycle_smooth`` (landing blocks on one
        continuous surface); with labels, ``parts``: {part index: [n raw, ok raw, n smooth, ok smooth]}.
    """
    errs, smooth_all, starts = [], [], []
    for a, b, d in DIRECTIONS:
        back = "1to0" if d == "0to1" else "0to1"
        valid = sample[f"valid_{d}"]
        W = valid.shape[1]
        p = np.flatnonzero(valid.ravel())
        c = sample[f"corr_{d}"].reshape(-1, 2)[p].astype(np.float64)
        depth_b = sample.get(f"depth{b}")
        ret, all4, smooth = bilinear_reads(sample[f"corr_{back}"], sample[f"valid_{back}"], c, depth_b)
        start = np.stack([p % W, p // W], axis=1)
        errs.append(np.linalg.norm(ret - start, axis=1)[all4])
        smooth_all.append(smooth[all4])
        starts.append((a, p[all4]))
    e, sm = np.concatenate(errs), np.concatenate(smooth_all)
    if e.size == 0:
        return {"n_cycle": 0}
    key = f"cycle_frac_within_{threshold_px:g}px"
    out: dict[str, Any] = {
        key: float((e <= threshold_px).mean()),
        "cycle_median_px": float(np.median(e)),
        "n_cycle": int(e.size),
        "n_cycle_smooth": int(sm.sum()),
    }
    if sm.any():
        out[f"{key}_smooth"] = float((e[sm] <= threshold_px).mean())
    if labels is not None:
        lab = np.concatenate([labels[a].ravel()[pix] for a, pix in starts])
        ok = e <= threshold_px
        out["parts"] = {
            int(k): [
                int((lab == k).sum()),
                int((ok & (lab == k)).sum()),
                int((sm & (lab == k)).sum()),
                int((ok & sm & (lab == k)).sum()),
            ]  # fmt: skip
            for k in np.unique(lab)
            if k >= 0
        }
    return out


def _nearest_reads(
    sample: Mapping[str, Any], d: str, xy: np.ndarray, targets: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Read field ``d`` at keypoints ``xy`` [M, 2] against candidate targets (each [M, 2]) in the other view.

    A keypoint sits on a part's corner or edge, often on a silhouette, where the 2×2 pixel block around it sees
    two unrelated surfaces and a bilinear read mixes them. Each target is therefore judged by the pixel of the
    block whose value lands nearest to it (the keypoint's own surface is seen by at least one of them), among the
    pixels with a stored correspondence (matched, occluded or outside: all exact projections of the counterpart).
    Near the other image's border or an occluder's edge the keypoint's neighbours may land just outside or be
    hidden there; where the field's gain is high their reads are the only close ones.

    Returns:
        distances float64 [len(targets), M] (inf where no pixel of the block stores a correspondence) and ok bool [M].
    """
    corr = sample[f"corr_{d}"]
    valid = np.isin(sample[f"status_{d}"], np.array(STORED_STATUSES, np.uint8))
    H, W = valid.shape
    x0 = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, W - 2)
    y0 = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, H - 2)
    dist = np.full((len(targets), len(xy)), np.inf)
    for dx in (0, 1):
        for dy in (0, 1):
            v = valid[y0 + dy, x0 + dx]
            c = corr[y0 + dy, x0 + dx].astype(np.float64)
            for k, t in enumerate(targets):
                dist[k] = np.where(v, np.minimum(dist[k], np.linalg.norm(c - t, axis=1)), dist[k])
    return dist, np.isfinite(dist[0])


def _kp_unit(sample: Mapping[str, Any], v: int, tolerance: float) -> float:
    """The length the keypoint tolerance is a fraction of: the longer side of view ``v``'s object box, but at least
    ``1 / tolerance`` pixels (so the tolerance never drops below the pixel a read is snapped to)."""
    return max(object_extent_px(sample, v), 1.0 / tolerance)


def keypoints_vs_dense(sample: Mapping[str, Any], tolerance: float = KP_TOLERANCE) -> dict[str, float]:
    """Keypoint transfer by the dense field, over keypoints visible in both views whose pixel block has a stored
    correspondence (:func:`_nearest_reads`): the share landing within ``tolerance`` of the longer side of the
    other view's object bounding box (at least 1 px) from the same keypoint.

    Returns:
        ``kp_frac_within_0.05``, ``kp_dense_median_px``, ``kp_dense_max_px``, ``n_kp``.
    """
    errs, rel = [], []
    for a, b, d in DIRECTIONS:
        both = sample[f"kps{a}_vis"] & sample[f"kps{b}_vis"]
        if not both.any():
            continue
        xy = np.asarray(sample[f"kps{a}"], np.float64)[both]
        target = np.asarray(sample[f"kps{b}"], np.float64)[both]
        dist, ok = _nearest_reads(sample, d, xy, [target])
        errs.append(dist[0][ok])
        rel.append(dist[0][ok] / _kp_unit(sample, b, tolerance))
    e = np.concatenate(errs) if errs else np.zeros(0)
    if e.size == 0:
        return {"n_kp": 0}
    r = np.concatenate(rel)
    return {
        f"kp_frac_within_{tolerance:g}": float((r <= tolerance).mean()),
        "kp_dense_median_px": float(np.median(e)),
        "kp_dense_max_px": float(e.max()),
        "n_kp": int(e.size),
    }


def left_right(sample: Mapping[str, Any], tolerance: float = KP_TOLERANCE) -> dict[str, int]:
    """Left/right consistency: for every sided keypoint of one view whose pixel maps validly, the field there must
    not land nearer the other view's mirror twin (``meta.flip_perm``) than the same-named keypoint, counting only
    where both are visible, the twin is a different point and the map missed the keypoint by more than the
    keypoint tolerance (``tolerance`` of the target object's longer side).

    Returns:
        ``lr_violations`` and ``n_lr`` (checks made).
    """
    perm = np.asarray(sample["meta"].get(META_FLIP_PERM) or [], np.int64)
    if perm.size == 0:
        return {"lr_violations": 0, "n_lr": 0}
    idx = np.flatnonzero(perm != np.arange(perm.size))  # sided keypoints
    violations = checks = 0
    for a, b, d in DIRECTIONS:
        vis_a, vis_b = sample[f"kps{a}_vis"], sample[f"kps{b}_vis"]
        sel = idx[vis_a[idx] & vis_b[idx] & vis_b[perm[idx]]]
        if sel.size == 0:
            continue
        kb = np.asarray(sample[f"kps{b}"], np.float64)
        xy = np.asarray(sample[f"kps{a}"], np.float64)[sel]
        (d_same, d_twin), ok = _nearest_reads(sample, d, xy, [kb[sel], kb[perm[sel]]])
        checks += int(ok.sum())
        far = d_same > tolerance * _kp_unit(sample, b, tolerance)
        violations += int((ok & (d_twin < d_same) & far).sum())
    return {"lr_violations": violations, "n_lr": checks}


def target_on_mask(sample: Mapping[str, Any], tolerance_px: float = MASK_TOLERANCE_PX) -> dict[str, float]:
    """Matched pixels whose target lies farther than ``tolerance_px`` from every object pixel centre of the other
    view (a thin part the other view's raster never covers).

    Returns:
        ``off_mask_frac`` (of matched pixels), ``off_mask_max_px`` and ``n_matched``; empty without masks.
    """
    import cv2

    n = bad = 0
    worst = 0.0
    for _, b, d in DIRECTIONS:
        mask = sample.get(f"mask{b}")
        if mask is None:
            return {}
        matched = np.flatnonzero(sample[f"status_{d}"].ravel() == Status.MATCHED)
        if matched.size == 0:
            continue
        H, W = mask.shape
        xy = sample[f"corr_{d}"].reshape(-1, 2)[matched].astype(np.float64)
        # distance of every pixel centre to the nearest object pixel centre, then the 3x3 block around each target
        far = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        cx, cy = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
        best = np.full(len(xy), np.inf)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                qx, qy = np.clip(cx + dx, 0, W - 1), np.clip(cy + dy, 0, H - 1)
                on = mask[qy, qx]
                best = np.where(on, np.minimum(best, np.hypot(qx - xy[:, 0], qy - xy[:, 1])), best)
        rest = ~np.isfinite(best)  # no object pixel in the 3x3 block: the distance transform bounds it
        best[rest] = far[np.clip(cy[rest], 0, H - 1), np.clip(cx[rest], 0, W - 1)] + 0.5
        n += len(xy)
        off = best > tolerance_px
        bad += int(off.sum())
        worst = max(worst, float(best.max()))
    if n == 0:
        return {"n_matched": 0}
    return {"off_mask_frac": bad / n, "off_mask_max_px": worst, "n_matched": n}
