"""The semantic matcher and the zero-shot baseline: output contract, freezing, symmetry, save/load, compile."""

import dataclasses

import pytest
import torch

from training.geometry import pixel_grid, px_to_norm
from training.model import (
    MatcherConfig,
    NearestNeighbourMatcher,
    NNBaselineConfig,
    SemanticMatcher,
    VGGTConfig,
    load_matcher,
    save_matcher,
)


def _randomise_head_output(model: SemanticMatcher) -> None:
    """Give the zero-initialised last conv random weights so outputs depend on the input."""
    last = model.semantic_head.scratch.output_conv2[2]
    torch.nn.init.normal_(last.weight, std=0.1)
    torch.nn.init.normal_(last.bias, std=0.1)


def _matcher(**kw) -> SemanticMatcher:
    torch.manual_seed(0)
    cfg = MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2, **kw)
    m = SemanticMatcher(cfg)
    with torch.no_grad():
        _randomise_head_output(m)
        m.vggt.aggregator.camera_token.normal_()  # pretrained tokens differ per frame role; init is ~1e-6
        m.vggt.aggregator.register_token.normal_()
        for name, p in m.named_parameters():
            if name.endswith("gamma"):  # LayerScale init 0.01 makes blocks nearly the identity
                p.fill_(0.5)
    return m.eval()


def _check_contract(out: dict, b: int, h: int, w: int) -> None:
    assert out["grid"].shape == (b, 2, h, w, 2) and out["grid"].dtype == torch.float32
    assert out["grid_norm"].shape == (b, 2, h, w, 2)
    assert out["conf"].shape == out["conf_logit"].shape == (b, 2, h, w)
    assert ((out["conf"] > 0) & (out["conf"] < 1)).all()
    assert torch.allclose(out["conf"], torch.sigmoid(out["conf_logit"]))
    assert torch.allclose(px_to_norm(out["grid"], h, w), out["grid_norm"], atol=1e-5)


def test_untrained_offset_head_is_identity_warp_with_half_confidence():
    torch.manual_seed(0)
    m = SemanticMatcher(MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2)).eval()
    out = m(torch.rand(1, 2, 3, 56, 42))
    _check_contract(out, 1, 56, 42)
    assert torch.allclose(out["grid"], pixel_grid(56, 42).expand(1, 2, 56, 42, 2), atol=1e-4)
    assert torch.equal(out["conf"], torch.full_like(out["conf"], 0.5))


def test_semantic_branch_and_head_are_initialised_from_pretrained():
    m = _matcher()
    agg = m.vggt.aggregator
    for i in (2, 3):
        for name, p in m.semantic_branch.frame_blocks[str(i)].state_dict().items():
            assert torch.equal(p, agg.frame_blocks[i].state_dict()[name])
    assert "0" not in m.semantic_branch.frame_blocks and "1" not in m.semantic_branch.global_blocks
    depth_state = m.vggt.depth_head.state_dict()
    for name, p in m.semantic_head.state_dict().items():
        if not name.startswith("scratch.output_conv2.2"):
            assert torch.equal(p, depth_state[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("size", [(224, 224), (518, 518)])
def test_forward_backward_trains_only_the_semantic_part(size):
    m = _matcher()
    m.train()
    opt = torch.optim.AdamW(m.param_groups(weight_decay=0.05), lr=1e-3)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in m.trainable_parameters()}
    assert all(id(p) not in in_opt for p in m.vggt.parameters())
    assert not any(p.requires_grad for p in m.vggt.parameters())
    before = {k: v.clone() for k, v in m.vggt.state_dict().items()}
    out = m(torch.rand(1, 2, 3, *size))
    _check_contract(out, 1, *size)
    loss = out["grid_norm"].square().mean() + out["conf_logit"].square().mean()
    loss.backward()
    assert all(p.grad is None for p in m.vggt.parameters())
    grads = [p.grad for p in m.trainable_parameters()]
    assert all(g is not None for g in grads)
    assert m.semantic_branch.frame_blocks["2"].attn.qkv.weight.grad.abs().sum() > 0
    opt.step()
    assert all(torch.equal(v, m.vggt.state_dict()[k]) for k, v in before.items())


def test_symmetric_mode_reads_frame0_of_both_orders():
    m = _matcher(symmetric=True)
    asym = SemanticMatcher(dataclasses.replace(m.cfg, symmetric=False)).eval()
    asym.load_state_dict(m.state_dict())
    images = torch.rand(2, 2, 3, 42, 56)
    with torch.no_grad():
        sym = m(images)
        ab, ba = asym(images), asym(images.flip(1))
    assert torch.allclose(sym["grid"][:, 0], ab["grid"][:, 0], atol=1e-5)
    assert torch.allclose(sym["grid"][:, 1], ba["grid"][:, 0], atol=1e-5)
    assert torch.allclose(sym["conf_logit"][:, 1], ba["conf_logit"][:, 0], atol=1e-5)
    # order matters in VGGT: the non-symmetric frame-1 prediction differs from the swapped frame-0 one
    assert (ab["grid"][:, 1] - ba["grid"][:, 0]).abs().max() > 1e-3


def test_absolute_grid_mode_stays_inside_the_image():
    m = _matcher(grid_mode="absolute")
    out = m(torch.rand(1, 2, 3, 42, 42))
    _check_contract(out, 1, 42, 42)
    assert (out["grid_norm"].abs() < 1).all()


def test_geometry_heads_stay_available_and_match_plain_vggt():
    m = _matcher()
    images = torch.rand(1, 2, 3, 42, 56)
    with torch.no_grad():
        out = m(images, return_geometry=True)
        ref = m.vggt(images)
    for k in ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"):
        assert torch.allclose(out["geometry"][k], ref[k], atol=1e-6), k


def test_save_load_round_trip_is_exact(tmp_path):
    m = _matcher(grid_mode="absolute")
    images = torch.rand(2, 2, 3, 56, 56)
    with torch.no_grad():
        ref = m(images)
    save_matcher(m, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").is_file() and (tmp_path / "ckpt" / "model_config.json").is_file()
    loaded = load_matcher(tmp_path / "ckpt" / "model.safetensors")
    assert loaded.cfg == m.cfg
    with torch.no_grad():
        got = loaded(images)
    for k in ("grid", "grid_norm", "conf", "conf_logit"):
        assert torch.equal(ref[k], got[k]), k
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == {
        n for n, p in m.named_parameters() if p.requires_grad
    }


def test_load_matcher_rejects_a_wrong_state_dict(tmp_path):
    from safetensors.torch import load_file, save_file

    save_matcher(_matcher(), tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["semantic_head.norm.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"semantic_head\.norm\.weight checkpoint \(3,\)"):
        load_matcher(tmp_path)


def test_bad_input_is_a_clear_error():
    m = _matcher()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        m(torch.rand(1, 2, 3, 50, 56))
    with pytest.raises(ValueError, match=r"\[B, 2, 3, H, W\]"):
        m(torch.rand(2, 3, 56, 56))


@pytest.mark.slow
@pytest.mark.parametrize("part", ["both", "frame", "global", "dino"])
def test_nn_baseline_contract_and_save_load(tmp_path, part):
    torch.manual_seed(0)
    b = NearestNeighbourMatcher(NNBaselineConfig(vggt=VGGTConfig.tiny(), feature_part=part))
    images = torch.rand(1, 2, 3, 42, 56)
    out = b(images)
    _check_contract(out, 1, 42, 56)
    assert b.trainable_parameters() == []
    save_matcher(b, tmp_path)
    got = load_matcher(tmp_path)(images)
    assert torch.equal(got["grid"], out["grid"])


def test_nn_baseline_exact_on_identical_images():
    """With frame-independent (DINOv2) features, identical images match every patch to itself, and the in-patch
    offset makes the per-pixel grid the identity."""
    torch.manual_seed(0)
    b = NearestNeighbourMatcher(NNBaselineConfig(vggt=VGGTConfig.tiny(), feature_part="dino", mutual=True))
    img = torch.rand(1, 1, 3, 56, 70).expand(1, 2, 3, 56, 70)
    out = b(img)
    assert torch.equal(out["grid"], pixel_grid(56, 70).expand(1, 2, 56, 70, 2))
    assert torch.allclose(out["conf"], torch.full_like(out["conf"], 1 - 1e-4))


@pytest.mark.slow
def test_torch_compile_full_graph():
    """No graph breaks (dynamo, fullgraph) in the matcher's forward; aot_eager keeps it fast on CPU."""
    m = _matcher()
    images = torch.rand(1, 2, 3, 42, 42)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        ref, got = m(images), compiled(images)
    assert torch.allclose(ref["grid"], got["grid"], atol=1e-5)


@pytest.mark.parametrize("geometry_heads", [True, False])
def test_matcher_from_official_checkpoint(tmp_path, geometry_heads):
    """Both ways of starting from a VGGT checkpoint give the same model; the head starts from the depth head."""
    from training.model import VGGT

    torch.manual_seed(0)
    vggt = VGGT(VGGTConfig.tiny())
    with torch.no_grad():
        for p in vggt.parameters():
            p.normal_(0, 0.2)
    torch.save({f"module.{k}": v for k, v in vggt.state_dict().items()}, tmp_path / "model.pt")
    cfg = MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2, geometry_heads=geometry_heads)
    a = SemanticMatcher(cfg)
    report = a.load_vggt_weights(tmp_path / "model.pt")
    assert report.ok and all(k.startswith(("track_head.", "camera_", "depth_", "point_")) for k in report.skipped)
    b = SemanticMatcher.from_vggt_checkpoint(cfg, tmp_path / "model.pt")
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(b.semantic_head.projects[0].weight, vggt.depth_head.projects[0].weight)
    assert torch.equal(
        b.semantic_branch.global_blocks["3"].mlp.fc1.weight, vggt.aggregator.global_blocks[3].mlp.fc1.weight
    )
    assert {n for n, p in b.named_parameters() if p.requires_grad} == {
        n for n, p in a.named_parameters() if p.requires_grad
    }
    images = torch.rand(1, 2, 3, 42, 42)
    with torch.no_grad():
        assert torch.equal(a.eval()(images)["grid"], b.eval()(images)["grid"])


def test_small_patch_size_configs_are_valid():
    cfg = VGGTConfig.tiny(patch_size=8, img_size=32)
    images = torch.rand(1, 2, 3, 48, 40)  # 6 x 5 patches, pos-embed interpolated from 4 x 4
    out = SemanticMatcher(MatcherConfig(vggt=cfg, split_index=2))(images, return_geometry=True)
    _check_contract(out, 1, 48, 40)
    assert out["geometry"]["depth"].shape == (1, 2, 48, 40, 1)
    _check_contract(NearestNeighbourMatcher(NNBaselineConfig(vggt=cfg))(images), 1, 48, 40)


@pytest.mark.slow
def test_save_without_frozen_backbone_rebuilds_it_from_the_vggt_checkpoint(tmp_path):
    from safetensors import safe_open

    from training.model import VGGT

    torch.manual_seed(0)
    torch.save(VGGT(VGGTConfig.tiny()).state_dict(), tmp_path / "vggt.pt")
    cfg = MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2)
    m = SemanticMatcher.from_vggt_checkpoint(cfg, tmp_path / "vggt.pt")
    with torch.no_grad():
        _randomise_head_output(m)  # a "trained" state that differs from the checkpoint's init
        m.semantic_branch.frame_blocks["3"].ls1.gamma.fill_(0.7)
    with pytest.raises(ValueError, match="vggt_source"):
        save_matcher(SemanticMatcher(cfg), tmp_path / "nope", include_frozen=False)
    save_matcher(m, tmp_path / "ckpt", include_frozen=False)
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == {n for n, p in m.named_parameters() if p.requires_grad}
    images = torch.rand(1, 2, 3, 42, 56)
    loaded = load_matcher(tmp_path / "ckpt")
    with torch.no_grad():
        assert torch.equal(m.eval()(images)["grid"], loaded(images)["grid"])
    with pytest.raises(FileNotFoundError):
        load_matcher(tmp_path / "ckpt", vggt_checkpoint=tmp_path / "missing.pt")
