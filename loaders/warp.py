"""The one geometric primitive of the pair transforms: an affine warp of one view that keeps the pair exact.

Every geometric transform (resize, crop, pad, flip, rotation, VGGT preprocessing) is an affine map ``A`` of one
view's pixel coordinates (docs/design.md §3: the centre of pixel ``(row r, col c)`` is ``(x, y) = (c, r)``), new
``(x', y', 1) = A (x, y, 1)``. :func:`warp_view` applies it to view ``v`` of a schema sample dict:

* view ``v``'s image is resampled (bilinear/bicubic, area-averaged first when shrinking); pixels with no source
  content get ``fill``;
* view ``v``'s own dense fields (``status``, ``corr``, ``depth``, ``mask`` of pixels *of* view ``v``) are
  resampled: statuses and masks by nearest neighbour; correspondences and depth bilinearly inside 2x2 blocks that
  lie on one continuous piece of the field (all four carry a value, no jump, no seam: see
  :func:`_continuous_blocks`) and by nearest neighbour elsewhere, so nothing is ever interpolated across a
  silhouette or a part seam. Pixels with no source content become BACKGROUND;
* the *other* direction's correspondence values, which point into view ``v``, are mapped exactly through ``A``;
  a MATCHED or OCCLUDED counterpart that leaves the new frame becomes OUTSIDE;
* keypoints are mapped through ``A`` (visible only while inside the frame), ``K``/``T_cam_from_world`` are updated
  so that projecting the world still lands on the warped pixels, and ``meta.image_size{v}`` is set.

On a planned sample (:mod:`loaders.decode`) the warp records its raster operations instead of resampling (and
updates keypoints, cameras and ``meta`` as usual); a resampling warp of a dense view raises ``NotPlannable``.

A point is inside an ``H x W`` frame when ``-0.5 <= x < W - 0.5`` and ``-0.5 <= y < H - 0.5``. Integer crops,
pads and flips take an exact slicing path with no resampling at all.

Accuracy of the resampled fields: OpenCV quantises sub-pixel sample positions to 1/32 px, so an interpolated
correspondence is off by at most 1/64 px times the field's local gradient; a nearest-neighbour one (at
discontinuities only) by up to half a source pixel times the gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from loaders.raster import NotPlannable, Raster, affine_hflip, affine_resize, affine_translate, integer_path, is_pending
from loaders.schema import DIRECTIONS, Status

__all__ = [
    "warp_view",
    "affine_resize",
    "affine_translate",
    "affine_hflip",
    "apply_affine",
    "inside_frame",
    "update_camera",
    "DIRECTIONS",
    "MAX_CORR_JUMP_PX",
    "MAX_CORR_BEND_PX",
    "MAX_DEPTH_JUMP_REL",
]

MAX_CORR_JUMP_PX = 16.0  # neighbouring correspondences further apart than this are a discontinuity
MAX_CORR_BEND_PX = 0.5  # a second difference above this is a seam (smooth maps bend far less per pixel)
MAX_DEPTH_JUMP_REL = 0.05  # neighbouring depths differing by more than 5 % are a discontinuity
_WORLD_MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])  # x -> -x in the instance's canonical frame (object left <-> right)
_EYE3 = np.eye(3)
_ONE_WHERE_STORED = np.full(256, np.nan, np.float32)  # status -> 1 where corr is stored, NaN elsewhere
_ONE_WHERE_STORED[[Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE]] = 1.0


# --------------------------------------------------------------------------------------------------------------
# affine helpers (float64 [3, 3], pixel-centre coordinates)


def apply_affine(A: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Map points ``xy`` [..., 2] through ``A`` [3, 3]; float32 out, NaN stays NaN (rasters go through
    ``cv2.transform``, which computes in double precision)."""
    xy = np.asarray(xy)
    if xy.ndim == 3 and xy.dtype == np.float32 and xy.shape[0] * xy.shape[1] > 0:
        return cv2.transform(np.ascontiguousarray(xy), np.ascontiguousarray(A[:2], np.float64))
    out = xy.astype(np.float64) @ A[:2, :2].T + A[:2, 2]
    return out.astype(np.float32)


def inside_frame(xy: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """bool [...]: points ``xy`` [..., 2] inside an ``H x W`` frame (NaN is outside)."""
    xy = np.asarray(xy)
    if xy.ndim == 3 and xy.dtype == np.float32 and xy.shape[0] * xy.shape[1] > 0:
        hi = (np.nextafter(np.float32(hw[1] - 0.5), -np.inf), np.nextafter(np.float32(hw[0] - 0.5), -np.inf))
        return cv2.inRange(np.ascontiguousarray(xy), (-0.5, -0.5), tuple(float(h) for h in hi)).view(bool)
    x, y = xy[..., 0], xy[..., 1]
    with np.errstate(invalid="ignore"):
        return (x >= -0.5) & (x < hw[1] - 0.5) & (y >= -0.5) & (y < hw[0] - 0.5)


def update_camera(K: np.ndarray, T_cam_from_world: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New ``(K, T_cam_from_world)`` of a view whose pixels moved by ``A``.

    ``A K`` is split (RQ) into an upper-triangular ``K'`` with a positive diagonal and an in-plane rotation or
    reflection ``Q`` about the optical axis, which moves into the pose: ``T' = Q T``. A reflection (a mirrored view)
    is an improper ``Q``; it is paired with the mirror ``x -> -x`` of the canonical frame, ``T' = Q T M``, so
    ``T'`` stays a rotation and the world becomes the mirrored instance, whose left is the original's right (the
    keypoint flip permutation says the same). Depth (camera z) never changes.
    """
    M = A @ np.asarray(K, np.float64)
    c, d = M[1, 0], M[1, 1]
    k3 = np.hypot(c, d)
    q2 = np.array([c, d]) / k3
    k2 = M[0, :2] @ q2
    r = M[0, :2] - k2 * q2
    k1 = np.linalg.norm(r)
    q1 = r / k1
    K_new = np.array([[k1, k2, M[0, 2]], [0, k3, M[1, 2]], [0, 0, 1]])
    Q = np.eye(4)
    Q[:2, :2] = np.stack([q1, q2])
    T_new = Q @ np.asarray(T_cam_from_world, np.float64)
    if q1[0] * q2[1] - q1[1] * q2[0] < 0:  # det Q < 0: a reflection
        T_new = T_new @ _WORLD_MIRROR
    return K_new.astype(np.float32), T_new.astype(np.float32)


# --------------------------------------------------------------------------------------------------------------
# resampling one view's rasters


def _continuous_blocks(
    have: np.ndarray, values: np.ndarray, max_jump: float, max_bend: float | None, relative: bool = False
) -> np.ndarray:
    """bool [h, w]: the 2x2 block with this top-left pixel lies on one continuous piece of the field.

    All four pixels must carry a value (``have``), neighbours may differ by at most ``max_jump`` (times ``|value|``
    when ``relative``), and, when ``max_bend`` is given, the second difference along x and y at each of the four
    pixels (where its three pixels carry values) is at most ``max_bend``: a seam between two parts shows as a
    second difference as large as its jump, even where the jump is smaller than a steep field's gradient.

    Args:
        have: bool [h, w].
        values: float32 [h, w] or [h, w, 2] (both channels must pass), finite everywhere.
    """
    h, w = have.shape
    ok = np.zeros((h, w), bool)
    rows, cols = np.flatnonzero(have.any(axis=1)), np.flatnonzero(have.any(axis=0))
    if rows.size == 0 or rows[-1] - rows[0] < 1 or cols[-1] - cols[0] < 1:
        return ok
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # work where values are
    hv, v = have[box], values[box]
    bh, bw = hv.shape
    blk = hv[:-1, :-1] & hv[:-1, 1:] & hv[1:, :-1] & hv[1:, 1:]
    lim = max_jump * np.abs(v) if relative else max_jump
    ok_x = _all_channels(cv2.absdiff(v[:, 1:], v[:, :-1]) <= (lim[:, :-1] if relative else lim))  # [bh, bw-1]
    ok_y = _all_channels(cv2.absdiff(v[1:], v[:-1]) <= (lim[:-1] if relative else lim))  # [bh-1, bw]
    blk &= ok_x[:-1] & ok_x[1:] & ok_y[:, :-1] & ok_y[:, 1:]
    if max_bend is not None:
        bent = np.zeros((bh, bw), bool)
        if bw >= 3:
            d2 = cv2.absdiff(cv2.add(v[:, 2:], v[:, :-2]), cv2.multiply(v[:, 1:-1], 2.0))
            bent[:, 1:-1] |= ~_all_channels(d2 <= max_bend) & hv[:, 2:] & hv[:, :-2]
        if bh >= 3:
            d2 = cv2.absdiff(cv2.add(v[2:], v[:-2]), cv2.multiply(v[1:-1], 2.0))
            bent[1:-1] |= ~_all_channels(d2 <= max_bend) & hv[2:] & hv[:-2]
        blk &= ~(bent[:-1, :-1] | bent[:-1, 1:] | bent[1:, :-1] | bent[1:, 1:])
    ok[box][:-1, :-1] = blk
    return ok


def _all_channels(mask: np.ndarray) -> np.ndarray:
    """bool [h, w] from bool [h, w] or [h, w, 2]: true where every channel is (two bytes read as one uint16)."""
    if mask.ndim == 2:
        return mask
    return np.ascontiguousarray(mask).view(np.uint16)[..., 0] == 0x0101


# --------------------------------------------------------------------------------------------------------------
# the warp


def warp_view(
    sample: Mapping[str, Any],
    view: int,
    A: np.ndarray,
    out_hw: tuple[int, int],
    fill: int | tuple[int, int, int] = 0,
    interp: str = "linear",
) -> dict[str, Any]:
    """Warp view ``view`` of a schema sample by the affine ``A`` onto an ``out_hw`` raster (see the module doc).

    Args:
        sample: schema sample dict (numpy fields, see :mod:`loaders.schema`); not modified.
        view: 0 or 1.
        A: float [3, 3] (or [2, 3]) map from old to new pixel coordinates of this view.
        out_hw: ``(H, W)`` of the new raster.
        fill: image value where there is no source content (0 black, 255 white).
        interp: ``"linear"`` or ``"cubic"`` image interpolation.

    Returns:
        A new sample dict (arrays that did not change are shared with ``sample``).
    """
    A = np.asarray(A, np.float64)
    if A.shape == (2, 3):
        A = np.vstack([A, [0, 0, 1]])
    out_hw = (int(out_hw[0]), int(out_hw[1]))
    out = dict(sample)
    v, u = view, 1 - view
    d_own, d_other = DIRECTIONS[v], DIRECTIONS[u]
    in_hw = tuple(sample[f"image{v}"].shape[:2])
    if in_hw == out_hw and float(np.abs(A - _EYE3).max()) <= 1e-12:
        return out  # the identity (e.g. VGGT "crop" of a 518-wide square view)
    if is_pending(sample[f"image{v}"]):
        _plan_warp(sample, out, v, A, in_hw, out_hw, fill, interp)
        _warp_small_fields(sample, out, v, A, out_hw)
        return out
    ras = Raster(A, in_hw, out_hw)
    out[f"image{v}"] = ras.image(sample[f"image{v}"], fill, interp)

    status_key = f"status_{d_own}"
    if status_key in sample:
        status = sample[status_key]
        new_status = ras.nearest(status, int(Status.BACKGROUND))
        if ras.exact:
            new_corr = ras.nearest(sample[f"corr_{d_own}"], np.nan)  # NaN where not stored, kept by slicing
        else:
            stored = (status - np.uint8(1)) < np.uint8(3)
            corr_f = sample[f"corr_{d_own}"].copy()
            cv2.patchNaNs(corr_f.reshape(corr_f.shape[0], -1), 0)  # finite everywhere, to interpolate
            blocks = _continuous_blocks(stored, corr_f, MAX_CORR_JUMP_PX, MAX_CORR_BEND_PX)
            new_corr = ras.smooth(corr_f, blocks, (new_status - np.uint8(1)) < np.uint8(3))
            # interpolation may carry a counterpart just past the other frame's edge: it is OUTSIDE then
            seen = (new_status - np.uint8(1)) < np.uint8(2)  # MATCHED or OCCLUDED
            new_status[seen & ~inside_frame(new_corr, sample[f"image{u}"].shape[:2])] = Status.OUTSIDE
            blank = cv2.LUT(cv2.merge([new_status, new_status]), _ONE_WHERE_STORED)  # 1 stored, NaN elsewhere
            cv2.multiply(new_corr, blank, dst=new_corr)
        out[status_key], out[f"corr_{d_own}"] = new_status, new_corr
        out[f"valid_{d_own}"] = new_status == Status.MATCHED
        if f"depth{v}" in sample:
            depth = np.ascontiguousarray(sample[f"depth{v}"], np.float32)
            if ras.exact:
                new_depth = ras.nearest(depth, 0)
            else:
                surface = status != Status.BACKGROUND
                blocks = _continuous_blocks(surface, depth, MAX_DEPTH_JUMP_REL, None, True)
                new_depth = ras.smooth(depth, blocks, new_status != Status.BACKGROUND)
                new_depth[new_status == Status.BACKGROUND] = 0
            out[f"depth{v}"] = new_depth
    if f"mask{v}" in sample:
        out[f"mask{v}"] = ras.nearest(np.ascontiguousarray(sample[f"mask{v}"]), False)

    # the other direction points into this view: move its values, mark counterparts that left the frame
    other_status_key = f"status_{d_other}"
    if other_status_key in sample:
        st = sample[other_status_key].copy()
        corr = apply_affine(A, sample[f"corr_{d_other}"])
        seen = (st - np.uint8(1)) < np.uint8(2)  # MATCHED or OCCLUDED
        st[seen & ~inside_frame(corr, out_hw)] = Status.OUTSIDE
        out[other_status_key], out[f"corr_{d_other}"] = st, corr
        out[f"valid_{d_other}"] = st == Status.MATCHED

    _warp_small_fields(sample, out, v, A, out_hw)
    return out


def _warp_small_fields(
    sample: Mapping[str, Any], out: dict[str, Any], v: int, A: np.ndarray, out_hw: tuple[int, int]
) -> None:
    """Keypoints, cameras and ``meta.image_size`` of view ``v`` after the warp ``A`` (into ``out``)."""
    if f"kps{v}" in sample:
        kps = apply_affine(A, sample[f"kps{v}"])
        out[f"kps{v}"] = kps
        out[f"kps{v}_vis"] = sample[f"kps{v}_vis"] & inside_frame(kps, out_hw)
    if f"K{v}" in sample:
        out[f"K{v}"], out[f"T_cam{v}_from_world"] = update_camera(sample[f"K{v}"], sample[f"T_cam{v}_from_world"], A)
    meta = dict(sample["meta"])
    meta[f"image_size{v}"] = [out_hw[0], out_hw[1]]
    out["meta"] = meta


def _plan_warp(
    sample: Mapping[str, Any],
    out: dict[str, Any],
    v: int,
    A: np.ndarray,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    fill: Any,
    interp: str,
) -> None:
    """:func:`warp_view` on a planned sample (:mod:`loaders.decode`): record the raster operations.

    Raises:
        NotPlannable: a resampling (non-integer) warp of a view with dense fields.
    """
    u = 1 - v
    d_own, d_other = DIRECTIONS[v], DIRECTIONS[u]
    own = [f"status_{d_own}", f"corr_{d_own}", f"valid_{d_own}", f"depth{v}"]
    if any(k in sample for k in own + [f"status_{d_other}"]) and not integer_path(A):
        raise NotPlannable("a resampling warp of a dense view")
    warp = ("warp", A, in_hw, out_hw, fill, interp)
    img = sample[f"image{v}"]
    out[f"image{v}"] = img.then(warp, (*out_hw, *img.shape[2:]))
    for k in [*own, f"mask{v}"]:
        if k in sample:
            out[k] = sample[k].then(warp, (*out_hw, *sample[k].shape[2:]))
    for k in (f"status_{d_other}", f"corr_{d_other}", f"valid_{d_other}"):
        if k in sample:
            out[k] = sample[k].then(("values", A, out_hw))
