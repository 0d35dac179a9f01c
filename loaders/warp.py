"""The one geometric primitive of the pair transforms: an affine warp of one view that keeps the pair exact.

Every geometric transform (resize, crop, pad, flip, rotation, VGGT preprocessing) is an affine map ``A`` of one
view's pixel coordinates (DESIGN.md §3: the centre of pixel ``(row r, col c)`` is ``(x, y) = (c, r)``), new
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

(Just over 400 lines: the warp of the arrays and its planned twin stay in one module, so the two cannot drift.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from loaders.decode import NotPlannable, is_pending
from loaders.schema import Status

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

DIRECTIONS = ("0to1", "1to0")  # DIRECTIONS[v]: the direction whose pixels belong to view v
MAX_CORR_JUMP_PX = 16.0  # neighbouring correspondences further apart than this are a discontinuity
MAX_CORR_BEND_PX = 0.5  # a second difference above this is a seam (smooth maps bend far less per pixel)
MAX_DEPTH_JUMP_REL = 0.05  # neighbouring depths differing by more than 5 % are a discontinuity
_WORLD_MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])  # x -> -x in the instance's canonical frame (object left <-> right)
_EYE3 = np.eye(3)
_ONE_WHERE_STORED = np.full(256, np.nan, np.float32)  # status -> 1 where corr is stored, NaN elsewhere
_ONE_WHERE_STORED[[Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE]] = 1.0


# --------------------------------------------------------------------------------------------------------------
# affine helpers (float64 [3, 3], pixel-centre coordinates)


def affine_resize(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The map of a resize from ``in_hw`` to ``out_hw``: pixel edges map to pixel edges, ``x' = (x + .5) s - .5``."""
    sy, sx = out_hw[0] / in_hw[0], out_hw[1] / in_hw[1]
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def affine_translate(dx: float, dy: float) -> np.ndarray:
    """``x' = x + dx``, ``y' = y + dy`` (a crop at ``(x0, y0)`` is ``affine_translate(-x0, -y0)``)."""
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def affine_hflip(width: int) -> np.ndarray:
    """Horizontal mirror of a ``width``-pixel-wide view: ``x' = W - 1 - x``."""
    return np.array([[-1, 0, width - 1], [0, 1, 0], [0, 0, 1]], np.float64)


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


def _integer_path(A: np.ndarray) -> bool:
    """True when ``A`` is an integer translation, optionally with a horizontal mirror (exact by slicing)."""
    return (
        abs(A[0, 1]) < 1e-12
        and abs(A[1, 0]) < 1e-12
        and abs(abs(A[0, 0]) - 1) < 1e-12
        and abs(A[1, 1] - 1) < 1e-12
        and abs(A[0, 2] - round(A[0, 2])) <= 1e-9
        and abs(A[1, 2] - round(A[1, 2])) <= 1e-9
    )


# --------------------------------------------------------------------------------------------------------------
# resampling one view's rasters


class _Raster:
    """Resamples rasters of one view through ``A`` onto ``out_hw`` (slicing when ``A`` is integer)."""

    def __init__(self, A: np.ndarray, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        self.A, self.in_hw, self.out_hw = A, in_hw, out_hw
        self.exact = _integer_path(A)
        self.M = np.ascontiguousarray(A[:2], np.float64)
        self.A_inv = np.linalg.inv(A)
        if self.exact:
            h, w = in_hw
            H, W = out_hw
            tx, ty = int(round(A[0, 2])), int(round(A[1, 2]))
            self.flip = A[0, 0] < 0
            # output column X takes source column x = X - tx (or tx - X when mirrored); keep the overlap
            xs = np.arange(W) - tx if not self.flip else tx - np.arange(W)
            ys = np.arange(H) - ty
            okx, oky = np.flatnonzero((xs >= 0) & (xs < w)), np.flatnonzero((ys >= 0) & (ys < h))
            self.dst = (slice(oky[0], oky[-1] + 1), slice(okx[0], okx[-1] + 1)) if okx.size and oky.size else None
            if self.dst is not None:
                y_src = slice(ys[oky[0]], ys[oky[-1]] + 1)
                x0, x1 = xs[okx[0]], xs[okx[-1]]
                # source columns in increasing order; a mirror flips the block afterwards (cv2.flip)
                self.src = (y_src, slice(x0, x1 + 1) if not self.flip else slice(x1, x0 + 1))

    def nearest(self, a: np.ndarray, fill: Any) -> np.ndarray:
        """Nearest-neighbour resampling; pixels without source get ``fill``."""
        H, W = self.out_hw
        if a.dtype == bool:
            return self.nearest(a.view(np.uint8), int(bool(fill))).view(bool)
        if self.exact:
            full = self.dst is not None and self.dst[0] == slice(0, H) and self.dst[1] == slice(0, W)
            if full:  # a pure mirror or a crop: one pass
                block = a[self.src]
                return cv2.flip(block, 1) if self.flip else block.copy()
            out = np.empty((H, W) + a.shape[2:], a.dtype)
            out[...] = fill
            if self.dst is not None:
                block = a[self.src]
                out[self.dst] = cv2.flip(block, 1) if self.flip else block
            return out
        return cv2.warpAffine(
            a, self.M, (W, H), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=_scalar(fill)
        )

    def image(self, img: np.ndarray, fill: int | tuple[int, int, int], interp: str) -> np.ndarray:
        """Resample an image (area-averaged first when shrinking by more than 1.25x, to avoid aliasing)."""
        if self.exact:
            return self.nearest(img, fill)
        A, (h, w) = self.A, self.in_hw
        sx, sy = np.hypot(A[0, 0], A[1, 0]), np.hypot(A[0, 1], A[1, 1])  # how far the x and y axes stretch
        if min(sx, sy) < 0.8:
            w2, h2 = max(1, round(w * min(sx, 1.0))), max(1, round(h * min(sy, 1.0)))
            img = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_AREA)
            return _Raster(A @ np.linalg.inv(affine_resize((h, w), (h2, w2))), (h2, w2), self.out_hw).image(
                img, fill, interp
            )
        flags = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[interp]
        H, W = self.out_hw
        return cv2.warpAffine(
            img, self.M, (W, H), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=_scalar(fill)
        )

    def smooth(self, values: np.ndarray, block_ok: np.ndarray, need: np.ndarray) -> np.ndarray:
        """Bilinear where the source 2x2 block is continuous (``block_ok`` [h, w], for the block whose top-left
        pixel it indexes), nearest elsewhere; only output pixels in ``need`` [H, W] get a meaningful value.
        ``values`` must be finite everywhere."""
        if self.exact:
            return self.nearest(values, 0)
        H, W = self.out_hw
        out = cv2.warpAffine(values, self.M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # the block used at output pixel q has top-left floor(A^-1 q) = round(A^-1 q - 0.5): shift by half a pixel
        M_tl = (self.A @ affine_translate(0.5, 0.5))[:2]
        ok = cv2.warpAffine(block_ok.view(np.uint8), M_tl, (W, H), flags=cv2.INTER_NEAREST, borderValue=0)
        fix = np.flatnonzero(need.ravel() & ~ok.view(bool).ravel())  # silhouettes and seams: a few % of pixels
        if fix.size:
            q = np.stack([fix % W, fix // W], -1).astype(np.float64)
            src = np.rint(q @ self.A_inv[:2, :2].T + self.A_inv[:2, 2]).astype(np.intp)
            h, w = self.in_hw
            np.clip(src, 0, [w - 1, h - 1], out=src)
            out.reshape(H * W, -1)[fix] = values.reshape(h * w, -1)[src[:, 1] * w + src[:, 0]]
        return out


def _scalar(fill: Any) -> Any:
    if isinstance(fill, (tuple, list)):
        return tuple(float(f) for f in fill)
    return float(fill)


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
    ras = _Raster(A, in_hw, out_hw)
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
    if any(k in sample for k in own + [f"status_{d_other}"]) and not _integer_path(A):
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
