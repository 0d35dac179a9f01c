"""The VGGT re-implementation (loads the official checkpoint strictly), the semantic matcher and the zero-shot
nearest-neighbour baseline.

Typical use::

    from training.model import MatcherConfig, SemanticMatcher, VGGTConfig, save_matcher, load_matcher
    cfg = MatcherConfig(vggt=VGGTConfig.vggt_1b(), split_index=12)
    model = SemanticMatcher.from_vggt_checkpoint(cfg, "/path/to/VGGT-1B/model.pt", device="cuda")
    opt = torch.optim.AdamW(model.param_groups(weight_decay=0.05), lr=5e-5)   # trainable parameters only
    out = model(batch["images"])            # grid [B,2,H,W,2] px, grid_norm, conf [B,2,H,W] in (0,1), conf_logit
    save_matcher(model, "runs/x/ckpt", include_frozen=False)                  # trainable part + backbone path
    model = load_matcher("runs/x/ckpt", map_location="cuda")
"""

from training.model.baseline import NearestNeighbourMatcher, NNBaselineConfig
from training.model.checkpoint import CheckpointMismatchError, LoadReport, load_vggt, read_state_dict
from training.model.config import VGGTConfig
from training.model.io import build_matcher, load_matcher, save_matcher
from training.model.matcher import MatcherConfig, SemanticMatcher, param_groups
from training.model.pose import extri_intri_to_pose_encoding, pose_encoding_to_extri_intri
from training.model.vggt import VGGT

__all__ = [
    "VGGT",
    "VGGTConfig",
    "load_vggt",
    "read_state_dict",
    "CheckpointMismatchError",
    "LoadReport",
    "MatcherConfig",
    "SemanticMatcher",
    "param_groups",
    "NNBaselineConfig",
    "NearestNeighbourMatcher",
    "build_matcher",
    "save_matcher",
    "load_matcher",
    "pose_encoding_to_extri_intri",
    "extri_intri_to_pose_encoding",
]
