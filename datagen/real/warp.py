"""Warp pairs: one image and a copy of it under a random homography or thin-plate-spline warp, with exact dense GT.

A warp is a map ``F`` from view-0 pixels to view-1 pixels with inverse ``B = F⁻¹``. View 1 is rendered by
sampling view 0 at ``B(q)`` for every pixel ``q``, so every pixel of either view has a counterpart:

* ``corr_0to1[p] = F(p)``; status MATCHED when ``F(p)`` lies inside view 1, OUTSIDE otherwise;
* ``corr_1to0[q] = B(q)``; status MATCHED when ``B(q)`` lies inside view 0, OUTSIDE otherwise (those pixels of
  view 1 show the black fill);
* keypoints follow ``F`` (visible while inside the frame).

A homography is exact both ways. A TPS is defined backwards (``B`` analytic, so the image is one remap) and ``F``
is its Newton inverse, converged to well below 1e-3 px; draws that fold (a non-positive Jacobian anywhere in
the frame) are rejected and redrawn. "Inside" is ``-0.5 <= x < W - 0.5`` (and the same for y), as in
:func:`loaders.warp.inside_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from loaders.schema import SCHEMA_VERSION, Status
from loaders.warp import inside_frame

__all__ = ["Warp", "HomographyWarp", "TPSWarp", "random_homography", "random_tps", "random_warp", "make_warp_sample"]

WARP_KINDS = ("homography", "tps")
_BLOCK = 16384  # points per block in TPS evaluation


class Warp:
    """A bijective map between the pixel frames of view 0 and view 1 (``forward``: 0 -> 1, ``inverse``: 1 -> 0)."""

    kind = "warp"

    def forward(self, xy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class HomographyWarp(Warp):
    """``F(p) ~ H p`` in homogeneous pixel coordinates."""

    H: np.ndarray  # float64 [3, 3], view-0 px -> view-1 px
    kind = "homography"

    @staticmethod
    def _apply(M: np.ndarray, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64)
        p = xy @ M[:2, :2].T + M[:2, 2]
        w = xy @ M[2, :2] + M[2, 2]
        return p / w[..., None]

    def forward(self, xy: np.ndarray) -> np.ndarray:
        return self._apply(self.H, xy)

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        return self._apply(np.linalg.inv(self.H), xy)

    def params(self) -> dict[str, Any]:
        return {"H": np.round(self.H, 12).tolist()}


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r² log r² (0 at r = 0)."""
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-300)), 0.0)


@dataclass
class TPSWarp(Warp):
    """``B(q) = a + A q + Σ_i w_i U(|q − c_i|)`` (view-1 px -> view-0 px); ``F = B⁻¹`` by Newton's method.

    Attributes:
        centres: float64 [K, 2] control points in view 1.
        weights: float64 [K, 2] kernel weights.
        affine: float64 [3, 2] rows ``(1, x, y)`` -> ``(x', y')``.
        scale: length normalising distances (the frame's larger side), for conditioning.
    """

    centres: np.ndarray
    weights: np.ndarray
    affine: np.ndarray
    scale: float
    kind = "tps"

    @classmethod
    def fit(cls, src_q: np.ndarray, dst_p: np.ndarray, scale: float) -> TPSWarp:
        """The TPS with ``B(src_q[i]) = dst_p[i]`` exactly (interpolating, no smoothing)."""
        c = np.asarray(src_q, np.float64) / scale
        k = len(c)
        K = _tps_kernel(((c[:, None] - c[None]) ** 2).sum(-1))
        P = np.hstack([np.ones((k, 1)), c])
        L = np.zeros((k + 3, k + 3))
        L[:k, :k], L[:k, k:], L[k:, :k] = K, P, P.T
        rhs = np.zeros((k + 3, 2))
        rhs[:k] = np.asarray(dst_p, np.float64) / scale
        sol = np.linalg.solve(L, rhs)
        return cls(centres=c, weights=sol[:k], affine=sol[k:], scale=float(scale))

    def backward_and_jacobian(self, xy: np.ndarray, jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """``B(q)`` [N, 2] and its Jacobian [N, 2, 2] (d out / d in) at view-1 points ``q`` [N, 2].

        With ``U(r) = r² log r²``: ``dU/dq = 2 (log r² + 1) (q − c)``, so the kernel part of the Jacobian is
        ``J[:, j, i] = q_i (dU @ w)[:, j] − (dU @ (c_i w))[:, j]``: matrix products, no [N, K, 2] temporaries.
        Points go through in blocks of :data:`_BLOCK`, which bounds the [block, K] temporaries' memory whatever
        the image size.
        """
        q = np.asarray(xy, np.float64).reshape(-1, 2) / self.scale
        out = np.empty_like(q)
        J = np.empty((len(q), 2, 2)) if jacobian else None
        c, w = self.centres, self.weights
        cw = [c[:, i : i + 1] * w for i in range(2)]
        c2 = (c**2).sum(1)[None]
        for s in range(0, len(q), _BLOCK):
            qb = q[s : s + _BLOCK]
            r2 = np.maximum((qb**2).sum(1, keepdims=True) - 2.0 * qb @ c.T + c2, 0.0)  # [n, K]
            pos = r2 > 1e-300
            log_r2 = np.log(np.where(pos, r2, 1.0))
            out[s : s + _BLOCK] = self.affine[0] + qb @ self.affine[1:] + (r2 * log_r2) @ w
            if jacobian:
                dU = np.where(pos, 2.0 * (log_r2 + 1.0), 0.0)
                dUw = dU @ w
                for i in range(2):
                    J[s : s + _BLOCK, :, i] = self.affine[1 + i][None] + qb[:, i : i + 1] * dUw - dU @ cw[i]
        return out * self.scale, J

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        shape = np.shape(xy)
        out, _ = self.backward_and_jacobian(np.asarray(xy).reshape(-1, 2), jacobian=False)
        return out.reshape(shape)

    def forward(self, xy: np.ndarray, iters: int = 30, tol: float = 1e-6) -> np.ndarray:
        """``F(p) = B⁻¹(p)`` by Newton's method; points whose step fell below ``tol`` px drop out.

        Many points (a whole image) start from ``F`` solved on a coarse lattice over their extent and interpolated,
        which is within a small fraction of a pixel, so two or three iterations finish them; few points start
        from the inverse of the affine part.
        """
        shape = np.shape(xy)
        p = np.asarray(xy, np.float64).reshape(-1, 2)
        q = self._initial_guess(p, iters, tol)
        active = np.arange(len(p))
        for _ in range(iters):
            if active.size == 0:
                break
            b, J = self.backward_and_jacobian(q[active])
            step = np.linalg.solve(J, (b - p[active])[..., None])[..., 0]
            q[active] -= step
            active = active[np.abs(step).max(axis=1) >= tol]
        return q.reshape(shape)

    def _initial_guess(self, p: np.ndarray, iters: int, tol: float, lattice_px: float = 8.0) -> np.ndarray:
        A = self.affine[1:].T  # [2, 2] on normalised coordinates
        if len(p) < 4096:
            return (np.linalg.solve(A, (p / self.scale - self.affine[0]).T).T) * self.scale
        lo, hi = p.min(0), p.max(0)
        lattice_px = max(lattice_px, float(np.sqrt(np.prod(hi - lo + 1) / 2048)))  # the lattice stays < 4096 points
        nx, ny = (np.ceil((hi - lo) / lattice_px).astype(int) + 1).clip(2)
        gx, gy = np.linspace(lo[0], hi[0], nx), np.linspace(lo[1], hi[1], ny)
        coarse = self.forward(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2), iters, tol).reshape(ny, nx, 2)
        fx = np.clip((p[:, 0] - lo[0]) / max(hi[0] - lo[0], 1e-12) * (nx - 1), 0, nx - 1)
        fy = np.clip((p[:, 1] - lo[1]) / max(hi[1] - lo[1], 1e-12) * (ny - 1), 0, ny - 1)
        x0, y0 = np.minimum(fx.astype(int), nx - 2), np.minimum(fy.astype(int), ny - 2)
        tx, ty = (fx - x0)[:, None], (fy - y0)[:, None]
        top = coarse[y0, x0] * (1 - tx) + coarse[y0, x0 + 1] * tx
        bottom = coarse[y0 + 1, x0] * (1 - tx) + coarse[y0 + 1, x0 + 1] * tx
        return top * (1 - ty) + bottom * ty

    def min_jacobian_det(self, hw: tuple[int, int], n: int = 24) -> float:
        """Smallest Jacobian determinant of ``B`` on an ``n x n`` lattice over an ``H x W`` view-1 frame."""
        ys, xs = np.linspace(-0.5, hw[0] - 0.5, n), np.linspace(-0.5, hw[1] - 0.5, n)
        q = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        return float(np.linalg.det(self.backward_and_jacobian(q)[1]).min())

    def params(self) -> dict[str, Any]:
        return {
            "centres": np.round(self.centres * self.scale, 9).tolist(),
            "weights": self.weights.tolist(),
            "affine": self.affine.tolist(),
            "scale": self.scale,
        }


def _random_similarity(rng: np.random.Generator, hw: tuple[int, int], strength: float) -> np.ndarray:
    """A random rotation / zoom / shift about the frame centre (float64 [3, 3], view-0 px -> view-1 px)."""
    h, w = hw
    theta = np.deg2rad(rng.uniform(-30.0, 30.0) * strength / 0.2)
    s = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(1.0 + strength)))
    t = rng.uniform(-0.5, 0.5, 2) * strength * np.array([w, h])
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    R = s * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    M = np.eye(3)
    M[:2, :2], M[:2, 2] = R, c + t - R @ c
    return M


def random_homography(rng: np.random.Generator, hw: tuple[int, int], strength: float = 0.2) -> HomographyWarp:
    """A random similarity, then each image corner moved by up to ``strength / 2`` of the frame size."""
    h, w = hw
    M = _random_similarity(rng, hw, strength)
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    moved = HomographyWarp(M).forward(corners) + rng.uniform(-0.5, 0.5, (4, 2)) * strength * np.array([w, h])
    H = cv2.getPerspectiveTransform(corners.astype(np.float32), moved.astype(np.float32)).astype(np.float64)
    return HomographyWarp(H / H[2, 2])


def random_tps(
    rng: np.random.Generator, hw: tuple[int, int], strength: float = 0.2, grid: int = 4, max_tries: int = 20
) -> TPSWarp:
    """A random similarity plus smooth local deformation: a ``grid x grid`` lattice of control points jittered
    by up to ``strength / 2`` of the lattice spacing; folding draws are redrawn."""
    h, w = hw
    ys, xs = np.linspace(0, h - 1, grid), np.linspace(0, w - 1, grid)
    q = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)  # control points in view 1
    spacing = np.array([w / (grid - 1), h / (grid - 1)])
    for _ in range(max_tries):
        back = np.linalg.inv(_random_similarity(rng, hw, strength))  # view 1 -> view 0
        p = HomographyWarp(back).forward(q) + rng.uniform(-0.5, 0.5, q.shape) * strength * spacing
        tps = TPSWarp.fit(q, p, float(max(h, w)))
        if tps.min_jacobian_det(hw) > 0.2 * abs(np.linalg.det(back[:2, :2])):
            return tps
    raise RuntimeError(f"no non-folding TPS in {max_tries} draws at strength {strength}; lower it")


def random_warp(rng: np.random.Generator, hw: tuple[int, int], kind: str, strength: float) -> Warp:
    """``kind``: ``"homography"``, ``"tps"`` or ``"mixed"`` (either, with equal odds)."""
    if kind == "mixed":
        kind = WARP_KINDS[int(rng.integers(2))]
    if kind == "homography":
        return random_homography(rng, hw, strength)
    if kind == "tps":
        return random_tps(rng, hw, strength)
    raise ValueError(f"unknown warp kind {kind!r}; expected homography, tps or mixed")


def make_warp_sample(
    image: np.ndarray,
    warp: Warp,
    meta: dict[str, Any],
    kps: np.ndarray | None = None,
    kps_vis: np.ndarray | None = None,
    key: str = "",
) -> dict[str, Any]:
    """A schema sample (source ``warp``) from one image and a warp, with dense GT in both directions.

    Args:
        image: uint8 [H, W, 3], view 0 (view 1 has the same size).
        warp: the map from view 0 to view 1.
        meta: meta fields to carry (category, keypoint names, flip_perm, sym_groups, origin, ...).
        kps, kps_vis: float [N, 2] / bool [N] keypoints of the image (optional).
    """
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    pix = np.stack([xx, yy], -1).astype(np.float64)
    corr_0to1 = warp.forward(pix)
    corr_1to0 = warp.inverse(pix)
    maps = corr_1to0.astype(np.float32)
    image1 = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    status_0to1 = np.where(inside_frame(corr_0to1, (h, w)), Status.MATCHED, Status.OUTSIDE).astype(np.uint8)
    status_1to0 = np.where(inside_frame(corr_1to0, (h, w)), Status.MATCHED, Status.OUTSIDE).astype(np.uint8)
    out_meta = {
        **meta,
        "schema_version": SCHEMA_VERSION,
        "source": "warp",
        "image_size0": [h, w],
        "image_size1": [h, w],
        "warp": {"kind": warp.kind, **warp.params()},
    }
    out_meta.setdefault("keypoint_names", [])
    sample: dict[str, Any] = {
        "__key__": key,
        "image0": image,
        "image1": image1,
        "corr_0to1": corr_0to1.astype(np.float32),
        "corr_1to0": corr_1to0.astype(np.float32),
        "status_0to1": status_0to1,
        "status_1to0": status_1to0,
        "valid_0to1": status_0to1 == Status.MATCHED,
        "valid_1to0": status_1to0 == Status.MATCHED,
        "meta": out_meta,
    }
    if kps is not None:
        kps1 = warp.forward(np.asarray(kps, np.float64))
        sample["kps0"] = np.asarray(kps, np.float32)
        sample["kps1"] = kps1.astype(np.float32)
        sample["kps0_vis"] = np.asarray(kps_vis, bool)
        sample["kps1_vis"] = np.asarray(kps_vis, bool) & inside_frame(kps1, (h, w))
    return sample
