"""VGGT's camera head: iterative refinement of the ``absT_quaR_FoV`` encoding from each frame's camera token.

Each of ``num_iterations`` steps embeds the previous (detached) encoding — a learned ``empty_pose_tokens`` on the
first step — into adaLN shift/scale/gate (``poseLN_modulation`` = SiLU + Linear), modulates the normed camera
tokens ``gate * (LN(x) * (1 + scale) + shift) + x``, runs the ``trunk`` (plain blocks attending across frames,
no qk-norm/RoPE) and adds ``pose_branch(trunk_norm(.))`` as a delta. FoV goes through ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.model.layers import Block, Mlp

__all__ = ["CameraHead", "activate_pose"]

POSE_ENCODING_DIM = 9


def activate_pose(pose_enc: Tensor) -> Tensor:
    """Translation and quaternion linear, field of view ReLU (upstream's defaults)."""
    return torch.cat((pose_enc[..., :7], F.relu(pose_enc[..., 7:])), dim=-1)


class CameraHead(nn.Module):
    """Upstream ``CameraHead`` (names ``empty_pose_tokens``, ``trunk``, ``token_norm``, ``trunk_norm``,
    ``embed_pose``, ``poseLN_modulation``, ``pose_branch``)."""

    def __init__(
        self,
        dim_in: int = 2048,
        trunk_depth: int = 4,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        init_values: float = 0.01,
        num_iterations: int = 4,
    ) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.trunk = nn.Sequential(*(Block(dim_in, num_heads, mlp_ratio, init_values) for _ in range(trunk_depth)))
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_ENCODING_DIM)

    def forward(self, last_layer_tokens: Tensor, num_iterations: int | None = None) -> list[Tensor]:
        """last_layer_tokens: [B, S, P, 2C] (last aggregator layer) -> list of activated encodings [B, S, 9]."""
        tokens = self.token_norm(last_layer_tokens[:, :, 0])
        b, s, _ = tokens.shape
        pred: Tensor | None = None
        preds = []
        for _ in range(num_iterations or self.num_iterations):
            if pred is None:
                cond = self.embed_pose(self.empty_pose_tokens.expand(b, s, -1))
            else:
                pred = pred.detach()  # no backprop through earlier iterations (upstream)
                cond = self.embed_pose(pred)
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            x = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            for blk in self.trunk:
                x = blk(x)
            delta = self.pose_branch(self.trunk_norm(x))
            pred = delta if pred is None else pred + delta
            preds.append(activate_pose(pred))
        return preds
