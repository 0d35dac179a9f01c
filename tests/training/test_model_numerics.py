"""Numerics of the VGGT building blocks against direct (written-out) computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from training.model.camera_head import CameraHead, activate_pose
from training.model.dinov2 import interpolate_pos_embed
from training.model.dpt import FeatureFusionBlock, ResidualConvUnit, activate_head, uv_sincos_embedding
from training.model.layers import Attention, Block, LayerScale, apply_rope_2d, rope_2d_tables
from training.model.pose import (
    extri_intri_to_pose_encoding,
    mat_to_quat,
    pose_encoding_to_extri_intri,
    quat_to_mat,
)


def _rope_explicit(x: torch.Tensor, pos_yx: torch.Tensor, base: float) -> torch.Tensor:
    """Apply 2D RoPE with explicit 2x2 rotation matrices: for each half (y, then x) of size h, channel pairs
    (k, k + h/2) are rotated by angle pos * base**(-2k/h)."""
    n, d = x.shape
    h = d // 2
    out = torch.empty_like(x)
    for t in range(n):
        for half, pos in ((0, pos_yx[t, 0]), (1, pos_yx[t, 1])):
            for k in range(h // 2):
                theta = float(pos) * base ** (-2 * k / h)
                c, s = math.cos(theta), math.sin(theta)
                rot = torch.tensor([[c, -s], [s, c]], dtype=x.dtype)
                i, j = half * h + k, half * h + k + h // 2
                out[t, [i, j]] = rot @ x[t, [i, j]]
    return out


def test_rope_matches_rotation_matrices_and_preserves_dot_product_of_relative_positions():
    torch.manual_seed(0)
    pos = torch.tensor([[0, 0], [1, 1], [1, 3], [4, 2], [7, 5]])
    x = torch.randn(5, 16, dtype=torch.float64)
    got = apply_rope_2d(x, rope_2d_tables(pos, 16, 100.0).double())
    assert torch.allclose(got, _rope_explicit(x, pos, 100.0), atol=1e-6)
    assert torch.equal(got[0], x[0])  # special tokens at (0, 0) are not rotated
    # <R(p) q, R(p') k> depends on p - p' only
    q, k = torch.randn(1, 16, dtype=torch.float64), torch.randn(1, 16, dtype=torch.float64)
    a = torch.tensor([[2, 3], [5, 1]])
    b = a + torch.tensor([[4, 7]])
    dot_a = (
        apply_rope_2d(q, rope_2d_tables(a[:1], 16, 100.0).double())
        * apply_rope_2d(k, rope_2d_tables(a[1:], 16, 100.0).double())
    ).sum()
    dot_b = (
        apply_rope_2d(q, rope_2d_tables(b[:1], 16, 100.0).double())
        * apply_rope_2d(k, rope_2d_tables(b[1:], 16, 100.0).double())
    ).sum()
    assert torch.allclose(dot_a, dot_b)


def test_attention_matches_written_out_softmax_with_qk_norm_and_rope():
    torch.manual_seed(0)
    attn = Attention(32, num_heads=2, qk_norm=True).double()
    with torch.no_grad():
        for p in attn.q_norm.parameters():
            p.uniform_(0.5, 1.5)
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    pos = torch.randint(0, 5, (7, 2))
    rope = rope_2d_tables(pos, 16, 100.0).double()
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv.view(2, 7, 3, 2, 16).permute(2, 0, 3, 1, 4)
    q = F.layer_norm(q, (16,), attn.q_norm.weight, attn.q_norm.bias, 1e-5)
    k = F.layer_norm(k, (16,), attn.k_norm.weight, attn.k_norm.bias, 1e-5)
    q = _rope_explicit(q.reshape(-1, 16), pos.repeat(4, 1), 100.0).view_as(q)
    k = _rope_explicit(k.reshape(-1, 16), pos.repeat(4, 1), 100.0).view_as(k)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(16), dim=-1)
    expected = (weights @ v).transpose(1, 2).reshape(2, 7, 32) @ attn.proj.weight.T + attn.proj.bias
    assert torch.allclose(attn(x, rope), expected, atol=1e-10)


def test_block_is_prenorm_residual_with_layerscale():
    torch.manual_seed(0)
    blk = Block(16, 2, init_values=0.3).double()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    y = x + 0.3 * blk.attn(F.layer_norm(x, (16,), blk.norm1.weight, blk.norm1.bias, 1e-5))
    h = F.layer_norm(y, (16,), blk.norm2.weight, blk.norm2.bias, 1e-5)
    mlp = F.gelu(h @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias) @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias
    assert torch.allclose(blk(x), y + 0.3 * mlp, atol=1e-12)


def test_layerscale_promotes_bf16_to_fp32_under_autocast():
    blk = Block(32, 2, init_values=0.01)
    x = torch.randn(1, 9, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert blk.attn.qkv(x).dtype == torch.bfloat16  # matmuls in bf16
        assert LayerScale(32, 0.01)(torch.ones(2, 32, dtype=torch.bfloat16)).dtype == torch.float32
        assert blk(x).dtype == torch.float32  # residual stream stays fp32


def test_residual_conv_unit_adds_relu_of_its_input():
    torch.manual_seed(0)
    rcu = ResidualConvUnit(4).double()
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64)
    r = x.clamp_min(0)
    inner = F.conv2d(
        F.relu(F.conv2d(r, rcu.conv1.weight, rcu.conv1.bias, padding=1)), rcu.conv2.weight, rcu.conv2.bias, padding=1
    )
    assert torch.allclose(rcu(x), inner + r)


def test_fusion_block_direct_computation():
    torch.manual_seed(0)
    ff = FeatureFusionBlock(4).double()
    x, skip = torch.randn(1, 4, 3, 5, dtype=torch.float64), torch.randn(1, 4, 3, 5, dtype=torch.float64)
    y = ff.resConfUnit2(x + ff.resConfUnit1(skip))
    y = F.interpolate(y, size=(6, 10), mode="bilinear", align_corners=True)
    expected = F.conv2d(y, ff.out_conv.weight, ff.out_conv.bias)
    assert torch.allclose(ff(x, skip), expected)
    assert ff(x, skip, size=(4, 7)).shape[-2:] == (4, 7)


def test_uv_embedding_values():
    emb = uv_sincos_embedding(3, 4, 8, aspect_ratio=2.0, dtype=torch.float32, device="cpu")
    assert emb.shape == (8, 3, 4)
    d = math.sqrt(5)
    u = torch.linspace(-(2 / d) * 3 / 4, (2 / d) * 3 / 4, 4)
    v = torch.linspace(-(1 / d) * 2 / 3, (1 / d) * 2 / 3, 3)
    omega = torch.tensor([1.0, 0.1])  # 100 ** -(k / 2)
    assert torch.allclose(emb[0:2, 1, :], torch.sin(u[None] * omega[:, None]), atol=1e-6)
    assert torch.allclose(emb[2:4, 1, :], torch.cos(u[None] * omega[:, None]), atol=1e-6)
    assert torch.allclose(emb[4:6, :, 2], torch.sin(v[None] * omega[:, None]), atol=1e-6)
    assert torch.allclose(emb[6:8, :, 0], torch.cos(v[None] * omega[:, None]), atol=1e-6)


def test_pos_embed_interpolation():
    torch.manual_seed(0)
    pe = torch.randn(1, 1 + 37 * 37, 8)
    assert interpolate_pos_embed(pe, (37, 37), torch.float32) is pe  # identity at 518 x 518
    out = interpolate_pos_embed(pe, (24, 37), torch.float32)  # 336 x 518
    assert out.shape == (1, 1 + 24 * 37, 8)
    assert torch.equal(out[:, 0], pe[:, 0])  # cls position untouched
    grid = pe[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(24, 37), mode="bicubic", antialias=True)
    assert torch.allclose(out[:, 1:], ref.permute(0, 2, 3, 1).reshape(1, -1, 8))
    # a constant embedding stays constant; a larger grid is upsampled without antialias effects
    const = torch.full((1, 1 + 16, 3), 2.5)
    assert torch.allclose(interpolate_pos_embed(const, (6, 3), torch.float32), torch.full((1, 19, 3), 2.5))
    assert interpolate_pos_embed(pe, (40, 40), torch.bfloat16).dtype == torch.bfloat16


def test_head_activations():
    out = torch.tensor([-1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    values, conf = activate_head(out, "inv_log", "expp1")
    assert torch.allclose(values.flatten(), torch.tensor([-(math.e - 1), math.exp(0.5) - 1]))
    assert torch.allclose(conf, torch.tensor(1 + math.exp(2.0)))
    values, _ = activate_head(out, "exp", "expp1")
    assert torch.allclose(values.flatten(), torch.exp(torch.tensor([-1.0, 0.5])))
    pose = torch.tensor([1.0, -2.0, 3.0, 0.1, -0.2, 0.3, -0.9, -0.5, 0.7])
    assert torch.equal(activate_pose(pose), torch.cat((pose[:7], torch.tensor([0.0, 0.7]))))


def test_camera_head_iterations_refine_with_detached_previous():
    torch.manual_seed(0)
    head = CameraHead(dim_in=16, trunk_depth=1, num_heads=2, num_iterations=3)
    tokens = torch.randn(2, 3, 7, 16, requires_grad=True)
    preds = head(tokens)
    assert len(preds) == 3 and preds[-1].shape == (2, 3, 9)
    assert (preds[-1][..., 7:] >= 0).all()
    # only the camera token (index 0) is read
    tokens2 = tokens.detach().clone()
    tokens2[:, :, 1:] = 0
    assert torch.allclose(head(tokens2)[-1], preds[-1].detach())


def _random_rotation(n: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    return q * torch.det(q)[:, None, None]


def test_quaternion_conversions():
    torch.manual_seed(0)
    rot = _random_rotation(64)
    quat = mat_to_quat(rot)
    assert (quat[..., 3] >= 0).all()
    assert torch.allclose(quat.norm(dim=-1), torch.ones(64, dtype=torch.float64))
    assert torch.allclose(quat_to_mat(quat), rot, atol=1e-10)
    # 90 degrees about z: x -> y; quaternion XYZW = (0, 0, sin 45, cos 45)
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    s = math.sqrt(0.5)
    assert torch.allclose(mat_to_quat(rz), torch.tensor([0.0, 0.0, s, s]))
    assert torch.allclose(quat_to_mat(torch.tensor([0.0, 0.0, 2 * s, 2 * s])), rz, atol=1e-6)  # scale-free
    assert torch.allclose(
        mat_to_quat(-torch.eye(3).diag_embed()[0] * 0 + torch.diag(torch.tensor([1.0, -1.0, -1.0]))),
        torch.tensor([1.0, 0.0, 0.0, 0.0]),
    )


@pytest.mark.parametrize("hw", [(518, 518), (336, 518)])
def test_pose_encoding_intrinsics_extrinsics(hw):
    height, width = hw
    fov_h, fov_w = 2 * math.atan(0.5), 2 * math.atan(0.75)
    t = torch.tensor([0.1, -0.2, 1.5])
    enc = torch.cat((t, torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([fov_h, fov_w])))[None, None]
    extr, intr = pose_encoding_to_extri_intri(enc, (height, width))
    assert torch.allclose(extr[0, 0], torch.cat((torch.eye(3), t[:, None]), dim=1))
    expected_k = torch.tensor([[width / 2 / 0.75, 0, width / 2], [0, height / 2 / 0.5, height / 2], [0, 0, 1]])
    assert torch.allclose(intr[0, 0], expected_k, atol=1e-4)
    torch.manual_seed(1)
    rot = _random_rotation(6).float().view(2, 3, 3, 3)
    extr = torch.cat((rot, torch.randn(2, 3, 3, 1)), dim=-1)
    intr = torch.zeros(2, 3, 3, 3)
    intr[..., 0, 0], intr[..., 1, 1] = 400.0, 300.0
    intr[..., 0, 2], intr[..., 1, 2], intr[..., 2, 2] = width / 2, height / 2, 1.0
    enc = extri_intri_to_pose_encoding(extr, intr, (height, width))
    extr2, intr2 = pose_encoding_to_extri_intri(enc, (height, width))
    assert torch.allclose(extr2, extr, atol=1e-5) and torch.allclose(intr2, intr, atol=1e-3)
