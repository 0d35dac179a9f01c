"""The DESIGN.md §5 checks on one decoded pair sample, as numbers (numpy only, no renderer).

* :func:`reprojection` (same-instance pairs): ``corr_0to1`` against unprojecting ``depth0`` through ``K0``/``T0``
  and projecting with ``K1``/``T1``; and agreement of ``valid`` with an independent depth test.
* :func:`cycle`: following ``corr_0to1`` then ``corr_1to0`` returns to the start, on mutually valid pixels.
* :func:`keypoints_vs_dense`: the dense field at a keypoint's pixel lands on the other view's keypoint.
* :func:`left_right`: a left keypoint of A never maps closer to the mirrored (right) keypoint of B than to its own.

:func:`evaluate` runs all that apply; :func:`failures` compares the numbers with :data:`THRESHOLDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from loaders.schema import STORED_STATUSES, Status

__all__ = [
    "THRESHOLDS",
    "independent_visibility",
    "reprojection",
    "cycle",
    "sample_field",
    "depth_normals",
    "keypoints_vs_dense",
    "left_right",
    "evaluate",
    "failures",
]

THRESHOLDS = {
    "reproj_median_px": 0.05,  # <=
    "reproj_p99_px": 0.5,  # <=
    "valid_agreement": 0.995,  # >=
    "cycle_frac_within_1.5px": 0.95,  # >=
    "kp_dense_median_px": 2.0,  # <=
    "lr_violations": 0,  # <=
}
_DIRECTIONS = ((0, 1, "0to1"), (1, 0, "1to0"))


def _project(points: np.ndarray, K: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = points @ T[:3, :3].T + T[:3, 3]
    z = cam[:, 2]
    zs = np.where(np.abs(z) < 1e-12, 1e-12, z)
    return (cam[:, :2] / zs[:, None]) @ K[:2, :2].T + K[:2, 2], z


def _unproject(pix: np.ndarray, width: int, depth: np.ndarray, K: np.ndarray, T: np.ndarray) -> np.ndarray:
    xy = np.stack([pix % width, pix // width], axis=1).astype(np.float64)
    h = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.linalg.inv(K).T
    cam = h * depth[:, None]
    return (cam - T[:3, 3]) @ T[:3, :3]


def _cams(sample: Mapping[str, Any], v: int) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(sample[f"K{v}"], np.float64), np.asarray(sample[f"T_cam{v}_from_world"], np.float64)


def _rays(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    return np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.linalg.inv(K).T


def depth_normals(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame surface normals [H, W, 3] (unnormalised) estimated from a z-depth map alone.

    Each tangent is the one-sided difference (forward or backward) with the smaller depth step, so a normal
    does not straddle a depth discontinuity; (0, 0, 1) where a pixel has no neighbour on the surface.
    """
    H, W = depth.shape
    yy, xx = np.mgrid[0:H, 0:W]
    rays = _rays(np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64), K).reshape(H, W, 3)
    d = depth.astype(np.float64)
    X = rays * d[..., None]
    on = d > 0

    def tangent(axis: int) -> np.ndarray:
        fwd = np.zeros_like(X)
        ok_f = np.zeros((H, W), bool)
        sl_a, sl_b = [slice(None)] * 2, [slice(None)] * 2
        sl_a[axis], sl_b[axis] = slice(0, -1), slice(1, None)
        fwd[tuple(sl_a)] = X[tuple(sl_b)] - X[tuple(sl_a)]
        ok_f[tuple(sl_a)] = on[tuple(sl_a)] & on[tuple(sl_b)]
        bwd = np.zeros_like(X)
        ok_b = np.zeros((H, W), bool)
        bwd[tuple(sl_b)] = fwd[tuple(sl_a)]
        ok_b[tuple(sl_b)] = ok_f[tuple(sl_a)]
        step_f = np.where(ok_f, np.abs(fwd[..., 2]), np.inf)
        step_b = np.where(ok_b, np.abs(bwd[..., 2]), np.inf)
        t = np.where((step_f <= step_b)[..., None], fwd, bwd)
        return np.where((ok_f | ok_b)[..., None], t, np.nan)

    n = np.cross(tangent(1), tangent(0))
    bad = ~np.isfinite(n).all(axis=2) | (np.linalg.norm(np.nan_to_num(n), axis=2) == 0)
    n[bad] = (0.0, 0.0, 1.0)
    return n


def independent_visibility(
    xy: np.ndarray,
    z: np.ndarray,
    src_normal_cam: np.ndarray,
    depth: np.ndarray,
    normals: np.ndarray,
    K: np.ndarray,
    rel_tol: float = 2e-3,
) -> np.ndarray:
    """Visibility of projected surface points from the other view's depth map alone (no face ids, no mesh).

    The same two-sided test as the generator's, with planes estimated from depth maps (:func:`depth_normals`):
    a point is hidden when the nearest pixel ``q`` (of the 2×2 block around it) that sees the object shows a
    surface whose local plane, met by the point's ray, is in front of the point, *and* the depth seen at ``q`` is
    in front of the point's own local plane met by ``q``'s ray. Outside the image counts as not visible.

    Args:
        xy: float64 [N, 2] projections; z: float64 [N] their depths.
        src_normal_cam: float64 [N, 3] the points' surface normals in this view's camera frame.
        depth: float32 [H, W] this view's z-depth (0 = none); normals: its :func:`depth_normals`.
        K: [3, 3] this view's intrinsics.

    Returns:
        bool [N].
    """
    H, W = depth.shape
    inside = (z > 0) & (xy[:, 0] >= -0.5) & (xy[:, 0] < W - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < H - 0.5)
    x0, y0 = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    best = np.full(len(z), np.inf)
    qx, qy = np.zeros(len(z), np.int64), np.zeros(len(z), np.int64)
    for dx in (0, 1):
        for dy in (0, 1):
            cx, cy = np.clip(x0 + dx, 0, W - 1), np.clip(y0 + dy, 0, H - 1)
            dist = (cx - xy[:, 0]) ** 2 + (cy - xy[:, 1]) ** 2
            better = (depth[cy, cx] > 0) & (dist < best)
            best[better], qx[better], qy[better] = dist[better], cx[better], cy[better]
    seen = np.isfinite(best)
    dq = depth[qy, qx].astype(np.float64)
    Xq = _rays(np.stack([qx, qy], 1).astype(np.float64), K) * dq[:, None]
    nq = normals[qy, qx]
    r = _rays(xy, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_q = np.einsum("nd,nd->n", nq, Xq) / np.einsum("nd,nd->n", nq, r)  # q's plane along the point's ray
        X = r * z[:, None]
        rq = _rays(np.stack([qx, qy], 1).astype(np.float64), K)
        z_s = np.einsum("nd,nd->n", src_normal_cam, X) / np.einsum("nd,nd->n", src_normal_cam, rq)
    tol = rel_tol * z
    front1 = np.isfinite(z_q) & (z_q > 0) & (z_q < z - tol)
    front2 = ~np.isfinite(z_s) | (z_s <= 0) | (dq < z_s - tol)
    return inside & ~(seen & front1 & front2)


def reprojection(sample: Mapping[str, Any]) -> dict[str, float]:
    """Same-instance pairs: reprojection error of the stored field and agreement of ``valid`` with
    :func:`independent_visibility`, over both directions.

    Returns:
        ``reproj_median_px``, ``reproj_p99_px``, ``reproj_max_px`` over pixels with a stored correspondence;
        ``valid_agreement`` over object pixels; ``n_reproj`` and ``n_object`` counts.
    """
    errs, agree, n_obj = [], 0, 0
    for a, b, d in _DIRECTIONS:
        status = sample[f"status_{d}"].ravel()
        obj = np.flatnonzero(status != Status.BACKGROUND)
        Ka, Ta = _cams(sample, a)
        Kb, Tb = _cams(sample, b)
        W = status.size // sample[f"depth{a}"].shape[0]
        pts = _unproject(obj, W, sample[f"depth{a}"].ravel()[obj].astype(np.float64), Ka, Ta)
        xy, z = _project(pts, Kb, Tb)
        stored = np.isin(status[obj], np.array(STORED_STATUSES, np.uint8))
        corr = sample[f"corr_{d}"].reshape(-1, 2)[obj[stored]].astype(np.float64)
        errs.append(np.linalg.norm(corr - xy[stored], axis=1))
        n_a = depth_normals(sample[f"depth{a}"], Ka).reshape(-1, 3)[obj]
        n_b_cam = n_a @ (Tb[:3, :3] @ Ta[:3, :3].T).T  # camera a -> world -> camera b (rotation only)
        vis = independent_visibility(xy, z, n_b_cam, sample[f"depth{b}"], depth_normals(sample[f"depth{b}"], Kb), Kb)
        agree += int((vis == (status[obj] == Status.MATCHED)).sum())
        n_obj += len(obj)
    e = np.concatenate(errs)
    if e.size == 0:
        return {"n_reproj": 0, "n_object": n_obj}
    return {
        "reproj_median_px": float(np.median(e)),
        "reproj_p99_px": float(np.percentile(e, 99)),
        "reproj_max_px": float(e.max()),
        "valid_agreement": agree / max(n_obj, 1),
        "n_reproj": int(e.size),
        "n_object": int(n_obj),
    }


def sample_field(corr: np.ndarray, valid: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read a correspondence field at sub-pixel points.

    Bilinear where the four surrounding pixels are all valid, else the nearest pixel (valid or not).

    Args:
        corr: float32 [H, W, 2]; valid: bool [H, W]; xy: float64 [N, 2].

    Returns:
        values float64 [N, 2] and ok bool [N] (the value comes from valid pixels).
    """
    H, W = valid.shape
    x0 = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, W - 2)
    y0 = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, H - 2)
    fx = np.clip(xy[:, 0] - x0, 0.0, 1.0)[:, None]
    fy = np.clip(xy[:, 1] - y0, 0.0, 1.0)[:, None]
    c = corr.astype(np.float64)
    c00, c01, c10, c11 = c[y0, x0], c[y0, x0 + 1], c[y0 + 1, x0], c[y0 + 1, x0 + 1]
    all4 = valid[y0, x0] & valid[y0, x0 + 1] & valid[y0 + 1, x0] & valid[y0 + 1, x0 + 1]
    bil = (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy
    qx = np.clip(np.rint(xy[:, 0]).astype(np.int64), 0, W - 1)
    qy = np.clip(np.rint(xy[:, 1]).astype(np.int64), 0, H - 1)
    out = np.where(all4[:, None], bil, c[qy, qx])
    return out, all4 | valid[qy, qx]


def cycle(sample: Mapping[str, Any], threshold_px: float = 1.5) -> dict[str, float]:
    """Cycle 0->1->0 and 1->0->1 on mutually valid pixels: ``corr_0to1[p]`` is followed into view 1 and the
    reverse field is read there (:func:`sample_field`), which must return to ``p``.

    Returns:
        ``cycle_frac_within_1.5px``, ``cycle_median_px``, ``n_cycle`` (mutually valid pixels).
    """
    errs = []
    for _, _, d in _DIRECTIONS:
        back = "1to0" if d == "0to1" else "0to1"
        valid = sample[f"valid_{d}"].ravel()
        W = sample[f"valid_{d}"].shape[1]
        p = np.flatnonzero(valid)
        c = sample[f"corr_{d}"].reshape(-1, 2)[p].astype(np.float64)
        ret, mutual = sample_field(sample[f"corr_{back}"], sample[f"valid_{back}"], c)
        start = np.stack([p % W, p // W], axis=1)
        errs.append(np.linalg.norm(ret[mutual] - start[mutual], axis=1))
    e = np.concatenate(errs)
    if e.size == 0:
        return {"n_cycle": 0}
    key = f"cycle_frac_within_{threshold_px:g}px"
    return {key: float((e <= threshold_px).mean()), "cycle_median_px": float(np.median(e)), "n_cycle": int(e.size)}


def _dense_at(sample: Mapping[str, Any], d: str, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return sample_field(sample[f"corr_{d}"], sample[f"valid_{d}"], xy)


def keypoints_vs_dense(sample: Mapping[str, Any]) -> dict[str, float]:
    """Distance between the dense field read at a keypoint (:func:`sample_field`) and the same keypoint in the
    other view, over keypoints visible in both views whose pixel has a valid correspondence.

    Returns:
        ``kp_dense_median_px``, ``kp_dense_max_px``, ``n_kp``.
    """
    errs = []
    for a, b, d in _DIRECTIONS:
        both = sample[f"kps{a}_vis"] & sample[f"kps{b}_vis"]
        if not both.any():
            continue
        corr, ok = _dense_at(sample, d, np.asarray(sample[f"kps{a}"], np.float64)[both])
        target = np.asarray(sample[f"kps{b}"], np.float64)[both]
        errs.append(np.linalg.norm(corr[ok] - target[ok], axis=1))
    e = np.concatenate(errs) if errs else np.zeros(0)
    if e.size == 0:
        return {"n_kp": 0}
    return {"kp_dense_median_px": float(np.median(e)), "kp_dense_max_px": float(e.max()), "n_kp": int(e.size)}


def left_right(sample: Mapping[str, Any]) -> dict[str, int]:
    """Left/right consistency: for every sided keypoint of one view whose pixel maps validly, the mapped point
    must not be nearer the other view's mirror twin (``meta.flip_permutation``) than the same-named keypoint,
    counting only where both are visible, the twin is a different point and the map missed the keypoint by > 2 px.

    Returns:
        ``lr_violations`` and ``n_lr`` (checks made).
    """
    meta = sample["meta"]
    perm = np.asarray(meta.get("flip_permutation", []), np.int64)
    if perm.size == 0:
        return {"lr_violations": 0, "n_lr": 0}
    idx = np.flatnonzero(perm != np.arange(perm.size))  # sided keypoints
    violations = checks = 0
    for a, b, d in _DIRECTIONS:
        vis_a, vis_b = sample[f"kps{a}_vis"], sample[f"kps{b}_vis"]
        sel = idx[vis_a[idx] & vis_b[idx] & vis_b[perm[idx]]]
        if sel.size == 0:
            continue
        corr, ok = _dense_at(sample, d, np.asarray(sample[f"kps{a}"], np.float64)[sel])
        kb = np.asarray(sample[f"kps{b}"], np.float64)
        d_same = np.linalg.norm(corr - kb[sel], axis=1)
        d_twin = np.linalg.norm(corr - kb[perm[sel]], axis=1)
        checks += int(ok.sum())
        violations += int((ok & (d_twin < d_same) & (d_same > 2.0)).sum())
    return {"lr_violations": violations, "n_lr": checks}


def evaluate(sample: Mapping[str, Any]) -> dict[str, float]:
    """All checks that apply to the sample (reprojection only for same-instance pairs)."""
    out: dict[str, float] = {}
    if sample["meta"].get("same_instance"):
        out.update(reprojection(sample))
    out.update(cycle(sample))
    out.update(keypoints_vs_dense(sample))
    out.update(left_right(sample))
    return out


def failures(metrics: Mapping[str, float]) -> list[str]:
    """Human-readable list of the :data:`THRESHOLDS` a metrics dict breaks (empty = all good)."""
    bad = []
    for key, limit in THRESHOLDS.items():
        if key not in metrics:
            continue
        value = metrics[key]
        upper = key.endswith("_px") or key == "lr_violations"
        if (upper and value > limit) or (not upper and value < limit):
            bad.append(f"{key} = {value:.4g} (limit {'<=' if upper else '>='} {limit})")
    return bad
