"""The full-size VGGT has exactly the official checkpoint's state-dict layout (built on the meta device)."""

from pathlib import Path

import pytest
import torch

from training.model import VGGT, MatcherConfig, SemanticMatcher, VGGTConfig

TSV = Path(__file__).parents[1] / "assets" / "vggt1b_state_dict.tsv"


def _reference() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in TSV.read_text().splitlines():
        name, shape = line.split("\t")
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def test_vggt_1b_state_dict_matches_upstream_names_order_and_shapes():
    with torch.device("meta"):
        model = VGGT(VGGTConfig.vggt_1b())
    mine = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    ref = _reference()
    assert len(mine) == len(ref) == 1797
    assert mine == ref  # names, order and shapes
    assert sum(v.numel() for v in model.state_dict().values()) == 1_256_537_516
    assert sum(p.numel() for p in model.aggregator.parameters()) == 909_112_320
    assert not list(model.buffers(recurse=True)) or all(
        name.startswith("aggregator._resnet") for name, _ in model.named_buffers()
    )  # only non-persistent buffers


def test_vggt_1b_quirks_present():
    names = {name for name, _ in _reference()}
    with torch.device("meta"):
        keys = set(VGGT().state_dict())
    assert keys == names
    assert "depth_head.resize_layers.2.weight" not in keys  # Identity
    assert "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight" not in keys
    assert "depth_head.scratch.layer1_rn.bias" not in keys
    assert "track_head.tracker.updateformer.virual_tracks" in keys
    assert "track_head.tracker.updateformer.time_blocks.0.attn.in_proj_weight" in keys


@pytest.mark.slow
@pytest.mark.parametrize("disabled", ["enable_track", "enable_camera"])
def test_disabling_a_head_removes_exactly_its_keys(disabled):
    with torch.device("meta"):
        full = set(VGGT(VGGTConfig.vggt_1b()).state_dict())
        part = set(VGGT(VGGTConfig.vggt_1b(**{disabled: False})).state_dict())
    prefix = {"enable_track": "track_head.", "enable_camera": "camera_head."}[disabled]
    assert full - part == {k for k in full if k.startswith(prefix)}


def test_full_size_matcher_builds_on_meta_with_upstream_backbone_names():
    with torch.device("meta"):
        m = SemanticMatcher(MatcherConfig(vggt=VGGTConfig.vggt_1b(), split_index=12))
    keys = set(m.state_dict())
    ref = {name for name, _ in _reference() if not name.startswith("track_head.")}
    assert {k[len("vggt.") :] for k in keys if k.startswith("vggt.")} == ref
    assert "semantic_branch.frame_blocks.12.attn.qkv.weight" in keys
    assert "semantic_branch.global_blocks.23.ls2.gamma" in keys
    assert "semantic_branch.frame_blocks.11.attn.qkv.weight" not in keys
    trainable = sum(p.numel() for p in m.trainable_parameters())
    per_layer = 2 * 12_598_528  # frame + global block
    assert trainable == 12 * per_layer + sum(p.numel() for p in m.semantic_head.parameters())


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="multiple of 4"):
        VGGTConfig.tiny(embed_dim=24, num_heads=4)
    with pytest.raises(ValueError, match="dpt_layers"):
        VGGTConfig.tiny(dpt_layers=(0, 1, 2, 9))
    with pytest.raises(ValueError, match="split_index"):
        MatcherConfig(vggt=VGGTConfig.tiny(), split_index=4)
    assert VGGTConfig.from_dict(VGGTConfig.tiny().to_dict()) == VGGTConfig.tiny()
