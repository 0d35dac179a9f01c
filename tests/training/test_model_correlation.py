"""The correlation (coarse-to-fine) matching head: soft-argmax on analytic cases, untrained fine stage = coarse,
gradients, direction consistency, output contract, save/load, compile, and the offset mode left as it was."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from training.geometry import pixel_grid, px_to_norm
from training.model import MatcherConfig, SemanticMatcher, VGGTConfig, load_matcher, save_matcher
from training.model.correlation import (
    coarse_from_logits,
    patch_centres_px,
    soft_argmax,
    upsample_coarse_grid,
)

P = 14


def _matcher(size: int = 56, **kw) -> SemanticMatcher:
    torch.manual_seed(0)
    cfg = MatcherConfig(vggt=VGGTConfig.tiny(img_size=size), split_index=2, grid_mode="correlation", **kw)
    m = SemanticMatcher(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("gamma"):  # LayerScale init 0.01 makes blocks nearly the identity
                p.fill_(0.5)
    return m.eval()


def _randomise_fine(m: SemanticMatcher) -> None:
    """A 'trained' fine stage: random last convs of the DPT head and the refiner."""
    with torch.no_grad():
        for last in (m.semantic_head.scratch.output_conv2[2], m.semantic_head.match.refine[-1]):
            last.weight.normal_(0, 0.1)
            last.bias.normal_(0, 0.1)


def _one_hot_logits(match_0to1: torch.Tensor, n: int, temperature: float) -> torch.Tensor:
    """Correlation logits of one-hot position codes: frame-0 position i carries code i, frame-1 position
    match_0to1[i] carries code i too (others carry no code), so similarity is 1 on the match and 0 elsewhere."""
    desc0 = torch.eye(n)
    desc1 = torch.zeros(n, n)
    desc1[match_0to1] = torch.eye(n)
    return (desc0 @ desc1.T)[None] / temperature


def test_soft_argmax_recovers_a_permutation_in_both_directions_at_low_temperature():
    h, w = 5, 6
    n = h * w
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    centres = patch_centres_px(h, w, P).reshape(n, 2)
    coarse, peak = coarse_from_logits(_one_hot_logits(perm, n, 0.01), (h, w), P)
    assert coarse.shape == (1, 2, h, w, 2) and peak.shape == (1, 2, h, w)
    inverse = torch.argsort(perm)
    assert (coarse[0, 0].reshape(n, 2) - centres[perm]).norm(dim=-1).max() < 1.0
    assert (coarse[0, 1].reshape(n, 2) - centres[inverse]).norm(dim=-1).max() < 1.0
    assert (peak > 0.999).all()
    # at a high temperature the softmax leaks to every patch and the estimate is pulled towards the image centre
    blurred, _ = coarse_from_logits(_one_hot_logits(perm, n, 1.0), (h, w), P)
    assert (blurred[0, 0].reshape(n, 2) - centres[perm]).norm(dim=-1).max() > 10.0


def test_patch_centres_are_the_centres_of_the_patches():
    c = patch_centres_px(2, 3, P)
    assert torch.equal(c[0, 0], torch.tensor([6.5, 6.5]))
    assert torch.equal(c[1, 2], torch.tensor([2 * 14 + 6.5, 14 + 6.5]))


def test_reverse_direction_is_the_transposed_matrix():
    torch.manual_seed(0)
    h, w = 3, 4
    logits = torch.randn(2, h * w, h * w) * 3
    fwd, fwd_peak = coarse_from_logits(logits, (h, w), P)
    rev, rev_peak = coarse_from_logits(logits.transpose(1, 2), (h, w), P)
    assert torch.equal(fwd[:, 0], rev[:, 1]) and torch.equal(fwd[:, 1], rev[:, 0])
    assert torch.equal(fwd_peak.flip(1), rev_peak)
    centres = patch_centres_px(h, w, P).reshape(-1, 2)
    direct = logits.transpose(1, 2).softmax(-1) @ centres  # frame 1 -> 0 written out
    assert torch.allclose(fwd[:, 1].reshape(2, -1, 2), direct, atol=1e-5)


def test_windowed_soft_argmax_ignores_a_distant_second_mode():
    h, w = 4, 8
    coords = patch_centres_px(h, w, P).reshape(-1, 2)
    prob = torch.zeros(1, 1, h * w)
    prob[0, 0, 1 * w + 1] = 0.6  # patch (1, 1)
    prob[0, 0, 2 * w + 6] = 0.4  # patch (2, 6), far away
    mean = soft_argmax(prob, coords)
    assert torch.allclose(mean[0, 0], 0.6 * coords[1 * w + 1] + 0.4 * coords[2 * w + 6])
    assert torch.equal(soft_argmax(prob, coords, window=2, grid_w=w)[0, 0], coords[1 * w + 1])
    with pytest.raises(ValueError, match="grid_w"):
        soft_argmax(prob, coords, window=2)


def test_upsampling_keeps_patch_centres_and_translations():
    torch.manual_seed(0)
    p, h, w = 7, 3, 4  # odd patch: its centre is a pixel
    coarse = torch.randn(2, 2, h, w, 2) * 10 + patch_centres_px(h, w, p)
    dense = upsample_coarse_grid(coarse, (h * p, w * p), p)
    assert dense.shape == (2, 2, h * p, w * p, 2)
    centre = (p - 1) // 2
    assert torch.allclose(dense[:, :, centre::p, centre::p], coarse, atol=1e-5)
    shift = torch.tensor([5.0, -3.0])
    translated = upsample_coarse_grid((patch_centres_px(h, w, p) + shift)[None, None], (h * p, w * p), p)
    assert torch.allclose(translated, pixel_grid(h * p, w * p) + shift, atol=1e-5)  # borders included


def test_untrained_fine_stage_is_exactly_the_coarse_grid():
    m = _matcher()
    images = torch.rand(2, 2, 3, 56, 42)
    with torch.no_grad():
        out = m(images)
    coarse_up = upsample_coarse_grid(out["coarse_grid"], (56, 42), P)
    assert torch.allclose(out["grid"], coarse_up, atol=1e-4)
    assert torch.equal(out["conf"], torch.full_like(out["conf"], 0.5))
    _randomise_fine(m)
    with torch.no_grad():
        trained = m(images)
    assert (trained["grid"] - coarse_up).abs().max() > 0.1  # the residual is live once trained


def test_one_hot_descriptors_recover_a_translation_through_the_whole_model(monkeypatch):
    """Descriptors replaced by position codes of a known patch translation: the dense grid is that translation
    wherever the patch and its neighbours have a counterpart (the fine stage is untrained)."""
    m = _matcher()
    h, w, t = 4, 5, (1, -1)  # frame-1 patch (i + 1, j - 1) shows frame-0 patch (i, j)
    n = h * w
    codes0 = torch.eye(n)
    codes1 = torch.zeros(n, n)
    for i in range(h):
        for j in range(w):
            if 0 <= i + t[0] < h and 0 <= j + t[1] < w:
                codes1[(i + t[0]) * w + j + t[1], i * w + j] = 1.0
    codes = torch.stack((codes0, codes1))  # frames in order; describe() is called on [B * 2, N, C] tokens

    def describe(tokens):
        return codes.repeat(tokens.shape[0] // 2, 1, 1)

    monkeypatch.setattr(m.semantic_head.match, "describe", describe)
    with torch.no_grad():
        m.semantic_head.match.log_scale.fill_(math.log(100.0))
        out = m(torch.rand(1, 2, 3, h * P, w * P))
    shift = torch.tensor([t[1] * P, t[0] * P], dtype=torch.float32)
    expected = pixel_grid(h * P, w * P) + shift
    # frame-0 patches (i, j) with i + 1 < h and j - 1 >= 0; a 1-patch margin keeps bilinear neighbours matched too
    inner = (slice(None), slice(0, (h - 2) * P), slice(2 * P, w * P))
    err = (out["grid"][0, 0] - expected)[inner].norm(dim=-1)
    assert err.max() < 1.0
    centres = patch_centres_px(h, w, P)
    assert (out["coarse_grid"][0, 1, 1:, :-1] - (centres - shift)[1:, :-1]).norm(dim=-1).max() < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("size", [112, 224])
def test_contract_and_extra_outputs(size, symmetric):
    m = _matcher(size=size, symmetric=symmetric, desc_dim=24)
    b, h = 1, size // P
    with torch.no_grad():
        out = m(torch.rand(b, 2, 3, size, size))
    assert out["grid"].shape == (b, 2, size, size, 2) and out["grid"].dtype == torch.float32
    assert out["conf"].shape == out["conf_logit"].shape == (b, 2, size, size)
    assert ((out["conf"] > 0) & (out["conf"] < 1)).all()
    assert torch.allclose(px_to_norm(out["grid"], size, size), out["grid_norm"], atol=1e-5)
    assert out["coarse_grid"].shape == (b, 2, h, h, 2)
    assert out["corr_logit"].shape == (b, h * h, h * h) and out["corr_logit"].dtype == torch.float32
    assert out["desc"].shape == (b, 2, h, h, 24)
    assert torch.allclose(out["desc"].norm(dim=-1), torch.ones(b, 2, h, h), atol=1e-5)
    scale = m.semantic_head.match.scale
    assert torch.allclose(out["corr_logit"], torch.einsum("bnd,bmd->bnm", *out["desc"].flatten(2, 3).unbind(1)) * scale)


def test_symmetric_mode_swaps_everything_when_the_frames_swap():
    m = _matcher(symmetric=True)
    _randomise_fine(m)
    images = torch.rand(2, 2, 3, 42, 56)
    with torch.no_grad():
        ab, ba = m(images), m(images.flip(1))
    assert torch.allclose(ab["corr_logit"], ba["corr_logit"].transpose(1, 2), atol=1e-5)
    for key in ("coarse_grid", "grid", "conf_logit", "desc"):
        assert torch.allclose(ab[key], ba[key].flip(1), atol=1e-4), key


def test_gradients_reach_the_descriptors_temperature_and_refiner_but_not_the_frozen_trunk():
    m = _matcher(symmetric=False)
    m.train()
    out = m(torch.rand(1, 2, 3, 56, 56))
    match = m.semantic_head.match
    # through the coarse stage alone
    out["coarse_grid"].square().mean().backward(retain_graph=True)
    for p in (match.desc_proj.weight, match.log_scale):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert m.semantic_branch.frame_blocks["3"].attn.qkv.weight.grad.abs().sum() > 0
    m.zero_grad()
    # a loss on the final grid reaches the descriptors too (through the upsampled coarse grid) and the refiner
    (out["grid_norm"].square().mean() + out["conf_logit"].square().mean()).backward()
    assert match.desc_proj.weight.grad.abs().sum() > 0
    assert match.refine[-1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.vggt.parameters())


def test_new_parameters_are_trainable_and_in_the_trainers_semantic_group():
    from training.train.model_setup import groups

    m = _matcher()
    names = {n for n, p in m.named_parameters() if p.requires_grad}
    match = {n for n in names if n.startswith("semantic_head.match.")}
    assert {"semantic_head.match.log_scale", "semantic_head.match.desc_proj.weight"} <= match
    opt_params = {id(p) for g in m.param_groups(0.05) for p in g["params"]}
    assert {id(p) for n, p in m.named_parameters() if n in match} <= opt_params
    assert match <= set(groups(m)["default"])


def test_save_load_round_trip_is_exact(tmp_path):
    m = _matcher(desc_dim=16, corr_temperature=0.05, corr_window=1, refine_channels=8)
    _randomise_fine(m)
    images = torch.rand(2, 2, 3, 56, 56)
    with torch.no_grad():
        ref = m(images)
    save_matcher(m, tmp_path / "ckpt")
    loaded = load_matcher(tmp_path / "ckpt")
    assert loaded.cfg == m.cfg
    with torch.no_grad():
        got = loaded(images)
    assert set(got) == set(ref)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_offset_mode_layout_is_unchanged():
    offset = MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2)
    assert not {"desc_dim", "corr_temperature", "corr_window", "refine_channels", "corr_stride"} & set(offset.to_dict())
    assert MatcherConfig.from_dict(offset.to_dict()) == offset
    keys = SemanticMatcher(offset).state_dict().keys()
    assert not any(".match." in k for k in keys)
    corr = dataclasses.replace(offset, grid_mode="correlation")
    extra = set(SemanticMatcher(corr).state_dict()) - set(keys)
    assert extra and all(k.startswith("semantic_head.match.") for k in extra)


def test_from_checkpoint_initialises_the_correlation_head(tmp_path):
    from training.model import VGGT

    torch.manual_seed(0)
    torch.save(VGGT(VGGTConfig.tiny()).state_dict(), tmp_path / "vggt.pt")
    cfg = MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2, grid_mode="correlation", corr_temperature=0.2)
    m = SemanticMatcher.from_vggt_checkpoint(cfg, tmp_path / "vggt.pt")
    match = m.semantic_head.match
    assert all(torch.isfinite(p).all() for p in match.parameters())
    assert math.isclose(match.log_scale.item(), math.log(5.0), rel_tol=1e-6)
    assert not match.refine[-1].weight.any() and not match.refine[-1].bias.any()
    with torch.no_grad():
        out = m.eval()(torch.rand(1, 2, 3, 42, 42))
    assert torch.isfinite(out["grid"]).all()


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"corr_temperature": 0.001}, "corr_temperature"),
        ({"corr_window": -1}, "corr_window"),
        ({"desc_dim": 0}, "desc_dim"),
        ({"corr_stride": 15}, "corr_stride"),
        ({"corr_stride": -1}, "corr_stride"),
        ({"grid_mode": "flow"}, "grid_mode"),
    ],
)
def test_bad_correlation_settings_are_clear_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2, **{"grid_mode": "correlation", **kw})


@pytest.mark.slow
def test_torch_compile_full_graph():
    m = _matcher(corr_window=1)
    images = torch.rand(1, 2, 3, 42, 42)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        ref, got = m(images), compiled(images)
    assert torch.allclose(ref["grid"], got["grid"], atol=1e-5)
    assert torch.allclose(ref["corr_logit"], got["corr_logit"], atol=1e-5)


def test_the_refiner_reads_the_other_frame_at_the_coarse_match():
    """The refiner's input holds the frame's projected features and the other frame's, bilinearly sampled at the
    coarse grid (direction 0 reads frame 1 and direction 1 reads frame 0)."""
    m = _matcher(refine_channels=4)
    match = m.semantic_head.match
    feat = torch.randn(1, 2, match.refine_proj.in_channels, 14, 14)
    grid = torch.rand(1, 2, 14, 14, 2) * 13
    seen = {}
    handle = match.refine[0].register_forward_hook(lambda mod, args, out: seen.__setitem__("x", args[0]))
    out = match.refine_residual(feat, grid, torch.rand(1, 2, 1, 1))
    handle.remove()
    assert out.shape == (1, 2, 3, 14, 14)
    with torch.no_grad():
        proj = match.refine_proj(feat[0])  # [2, c, H, W]: frame 0, frame 1
        expected = F.grid_sample(proj.flip(0), px_to_norm(grid[0], 14, 14), mode="bilinear", align_corners=False)
    assert torch.allclose(seen["x"][:, :4], proj, atol=1e-6)
    assert torch.allclose(seen["x"][:, 4:8], expected, atol=1e-6)


def test_finer_correlation_grid_shapes_and_untrained_descriptors_are_the_upsampled_token_descriptors():
    """corr_stride 7 at 56 px: an 8 x 8 correlation grid; feat_desc starts at zero, so the fine descriptors are the
    token descriptors bilinearly upsampled (then normalised)."""
    m = _matcher(corr_stride=7)
    match = m.semantic_head.match
    assert match.feat_desc is not None and not match.feat_desc.weight.any()
    with torch.no_grad():
        out = m(torch.rand(2, 2, 3, 56, 56))
        tokens = torch.randn(3, 16, match.desc_norm.normalized_shape[0])
        feat = torch.randn(3, match.feat_desc.in_channels, 56, 56)
        got = match.describe_fine(tokens, (4, 4), feat, 7)
        coarse = match.desc_proj(match.desc_norm(tokens)).transpose(1, 2).reshape(3, -1, 4, 4)
        up = F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)
    assert out["coarse_grid"].shape == (2, 2, 8, 8, 2)
    assert out["corr_logit"].shape == (2, 64, 64)
    assert out["desc"].shape == (2, 2, 8, 8, m.cfg.desc_dim)
    assert out["grid"].shape == (2, 2, 56, 56, 2)
    assert torch.allclose(got, F.normalize(up.flatten(2).transpose(1, 2), dim=-1), atol=1e-6)
    # the cell centres are the soft-argmax support: a 7 px grid, not the 14 px patches
    assert out["coarse_grid"].min() >= 3.0 - 1e-4 and out["coarse_grid"].max() <= 52.0 + 1e-4


def test_finer_correlation_grid_trains_the_feature_descriptors_and_round_trips(tmp_path):
    from training.losses.coarse import coarse_loss

    m = _matcher(corr_stride=7).train()
    images = torch.rand(1, 2, 3, 56, 56)
    corr = pixel_grid(56, 56).repeat(1, 2, 1, 1, 1)  # [1, 2, 56, 56, 2]: a horizontal mirror in both directions
    corr[..., 0] = 55 - corr[..., 0]
    batch = {
        "corr": corr,
        "valid": torch.ones(1, 2, 56, 56, dtype=torch.bool),
        "status": torch.ones(1, 2, 56, 56, dtype=torch.uint8),
        "has_dense": torch.ones(1, dtype=torch.bool),
    }
    coarse_loss(m(images), batch).backward()
    assert m.semantic_head.match.feat_desc.weight.grad.abs().sum() > 0
    save_matcher(m.eval(), tmp_path / "ckpt")
    loaded = load_matcher(tmp_path / "ckpt")
    assert loaded.cfg.corr_stride == 7
    with torch.no_grad():
        assert torch.equal(m(images)["corr_logit"], loaded(images)["corr_logit"])


def test_input_sides_must_be_multiples_of_the_correlation_stride():
    m = _matcher(corr_stride=4)
    with pytest.raises(ValueError, match="corr_stride 4"):
        m(torch.rand(1, 2, 3, 42, 42))
