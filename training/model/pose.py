"""VGGT's camera encoding ``absT_quaR_FoV`` and its conversions (OpenCV camera-from-world extrinsics).

Encoding [..., 9]: translation t (3), rotation quaternion in XYZW order (4, scalar last), fov_h, fov_w (radians).
Intrinsics from FoV put the principal point at the image centre (W/2, H/2): ``fy = (H/2) / tan(fov_h/2)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["quat_to_mat", "mat_to_quat", "pose_encoding_to_extri_intri", "extri_intri_to_pose_encoding"]


def quat_to_mat(quat_xyzw: Tensor) -> Tensor:
    """[..., 4] quaternions (XYZW, need not be unit) -> [..., 3, 3] rotation matrices."""
    x, y, z, w = quat_xyzw.unbind(-1)
    two_s = 2.0 / (quat_xyzw * quat_xyzw).sum(-1)
    rows = (
        1 - two_s * (y * y + z * z),
        two_s * (x * y - z * w),
        two_s * (x * z + y * w),
        two_s * (x * y + z * w),
        1 - two_s * (x * x + z * z),
        two_s * (y * z - x * w),
        two_s * (x * z - y * w),
        two_s * (y * z + x * w),
        1 - two_s * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).reshape(*quat_xyzw.shape[:-1], 3, 3)


def mat_to_quat(rot: Tensor) -> Tensor:
    """[..., 3, 3] rotation matrices -> [..., 4] unit quaternions XYZW with w >= 0.

    Uses the best-conditioned of the four candidate formulas (largest of |w|, |x|, |y|, |z|).
    """
    m = rot.reshape(*rot.shape[:-2], 9)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    # 4 q_i^2 for i in (w, x, y, z)
    four_sq = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1
    ).clamp_min(0.0)
    # candidate i holds 4 q_i * (w, x, y, z)
    cand = torch.stack(
        (
            torch.stack((four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01), dim=-1),
            torch.stack((m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20), dim=-1),
            torch.stack((m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21), dim=-1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]), dim=-1),
        ),
        dim=-2,
    )
    q_abs = four_sq.sqrt()
    cand = cand / (2.0 * q_abs.clamp_min(0.1))[..., None]
    best = q_abs.argmax(dim=-1)
    wxyz = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    xyzw = wxyz[..., [1, 2, 3, 0]]
    return torch.where(xyzw[..., 3:4] < 0, -xyzw, xyzw)


def pose_encoding_to_extri_intri(pose_enc: Tensor, image_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """[B, S, 9] encoding -> (extrinsics [B, S, 3, 4] camera-from-world, intrinsics [B, S, 3, 3] px)."""
    t, quat, fov_h, fov_w = pose_enc[..., :3], pose_enc[..., 3:7], pose_enc[..., 7], pose_enc[..., 8]
    extrinsics = torch.cat((quat_to_mat(quat), t[..., None]), dim=-1)
    height, width = image_hw
    fy = (height / 2.0) / torch.tan(fov_h / 2.0)
    fx = (width / 2.0) / torch.tan(fov_w / 2.0)
    zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
    intrinsics = torch.stack(
        (fx, zeros, zeros + width / 2.0, zeros, fy, zeros + height / 2.0, zeros, zeros, ones), dim=-1
    ).reshape(*fx.shape, 3, 3)
    return extrinsics, intrinsics


def extri_intri_to_pose_encoding(extrinsics: Tensor, intrinsics: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """(extrinsics [..., 3, 4] camera-from-world, intrinsics [..., 3, 3] px) -> [..., 9] encoding (float32)."""
    height, width = image_hw
    quat = mat_to_quat(extrinsics[..., :3, :3])
    fov_h = 2 * torch.atan((height / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((width / 2) / intrinsics[..., 0, 0])
    return torch.cat((extrinsics[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]), dim=-1).float()
