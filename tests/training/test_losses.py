"""Analytic tests of the matching losses: identity grids, known affine warps, perfect and wrong predictions."""

from __future__ import annotations

import math

import pytest
import torch

from training.geometry import pixel_grid
from training.losses import (
    LOSSES,
    Objective,
    confidence_loss,
    cycle_loss,
    cycle_points,
    dense_epe_loss,
    keypoint_epe_loss,
    keypoint_predictions,
    matchability_loss,
    reconstruction_loss,
    smoothness_loss,
)
from training.losses.common import inside_image, robust_penalty, sample_at_px

H, W = 24, 32
S = float(max(H, W))


def affine(A: torch.Tensor, t: torch.Tensor, h: int = H, w: int = W) -> tuple[torch.Tensor, torch.Tensor]:
    """The 0->1 map p -> A p + t and its exact inverse, as [H, W, 2] pixel fields."""
    p = pixel_grid(h, w, dtype=torch.float64)
    fwd = p @ A.T + t
    bwd = (p - t) @ torch.linalg.inv(A).T
    return fwd.float(), bwd.float()


def make_batch(A=None, t=(0.0, 0.0), b: int = 2, n_kps: int = 6, seed: int = 0) -> dict:
    """A batch (docs/interfaces.md §4) whose dense GT is an exact affine warp."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.eye(2, dtype=torch.float64) if A is None else torch.as_tensor(A, dtype=torch.float64)
    t = torch.as_tensor(t, dtype=torch.float64)
    fwd, bwd = affine(A, t)
    corr = torch.stack([fwd, bwd]).expand(b, 2, H, W, 2).clone()
    valid = inside_image(corr, H, W)
    kps0 = torch.rand(b, n_kps, 2, generator=gen) * torch.tensor([W - 8.0, H - 8.0]) + 4.0
    kps1 = (kps0.double() @ A.T + t).float()
    kps = torch.stack([kps0, kps1], dim=1)
    kps_vis = inside_image(kps, H, W)
    kps_vis[:, :, -1] = False  # padding slot
    return {
        "images": torch.rand(b, 2, 3, H, W, generator=gen),
        "corr": torch.where(valid[..., None], corr, torch.zeros_like(corr)),
        "valid": valid,
        "status": valid.to(torch.uint8),
        "mask": torch.ones(b, 2, H, W, dtype=torch.bool),
        "kps": kps,
        "kps_vis": kps_vis,
        "has_dense": torch.ones(b, dtype=torch.bool),
        "has_mask": torch.ones(b, dtype=torch.bool),
        "has_camera": torch.zeros(b, dtype=torch.bool),
    }


def output(grid: torch.Tensor, conf_logit: torch.Tensor | None = None) -> dict:
    if conf_logit is None:
        conf_logit = torch.zeros(grid.shape[:-1])
    return {"grid": grid, "conf_logit": conf_logit, "conf": torch.sigmoid(conf_logit)}


ROT = [[math.cos(0.3) * 1.2, -math.sin(0.3) * 1.2], [math.sin(0.3) * 1.2, math.cos(0.3) * 1.2]]


def test_robust_penalties_are_zero_at_zero_and_linear_far_away():
    e = torch.tensor([0.0, 0.5])
    for kind in ("charbonnier", "huber", "l1"):
        p = robust_penalty(e, kind)
        assert p[0] == 0
        assert p[1] == pytest.approx(0.5, abs=0.01)
    assert robust_penalty(e, "l2")[1] == pytest.approx(0.125)
    with pytest.raises(ValueError, match="unknown robust penalty"):
        robust_penalty(e, "l3")


def test_sample_at_px_reads_pixel_centres_exactly():
    field = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W)
    pts = torch.tensor([[[0.0, 0.0], [5.0, 3.0], [W - 1.0, H - 1.0], [5.5, 3.0]]])
    vals = sample_at_px(field, pts)[..., 0]
    assert torch.allclose(vals, torch.tensor([[0.0, 3 * W + 5.0, H * W - 1.0, 3 * W + 5.5]]), atol=1e-3)


def test_dense_epe_is_zero_for_perfect_grid_and_known_for_constant_offset():
    batch = make_batch(ROT, (3.0, -2.0))
    assert dense_epe_loss(output(batch["corr"].clone()), batch).item() == pytest.approx(0.0, abs=1e-6)
    off = batch["corr"] + torch.tensor([3.0, 4.0])
    expect = math.sqrt((5.0 / S) ** 2 + 1e-6) - 1e-3
    assert dense_epe_loss(output(off), batch).item() == pytest.approx(expect, rel=1e-5)
    # pixels without a valid counterpart do not count, however wrong
    wild = torch.where(batch["valid"][..., None], batch["corr"], torch.full_like(batch["corr"], 1e4))
    assert dense_epe_loss(output(wild), batch).item() == pytest.approx(0.0, abs=1e-6)
    # samples without dense GT do not count either
    batch["has_dense"][:] = False
    assert dense_epe_loss(output(off), batch).item() == 0.0


def test_dense_epe_on_defined_pixels_includes_occluded_counterparts():
    batch = make_batch()
    grid = batch["corr"].clone()
    occluded = torch.zeros_like(batch["valid"])
    occluded[:, :, :4] = True
    batch["valid"] &= ~occluded
    batch["status"][occluded] = 2  # OCCLUDED: the counterpart exists and its projection is known
    grid[occluded] += torch.tensor([0.0, 8.0])
    assert dense_epe_loss(output(grid), batch, pixels="valid").item() == pytest.approx(0.0, abs=1e-6)
    share = occluded.sum() / (batch["valid"] | occluded).sum()
    expect = share.item() * (math.sqrt((8.0 / S) ** 2 + 1e-6) - 1e-3)
    assert dense_epe_loss(output(grid), batch, pixels="defined").item() == pytest.approx(expect, rel=1e-4)
    with pytest.raises(ValueError, match="unknown pixel set"):
        dense_epe_loss(output(grid), batch, pixels="all")


def test_dense_epe_gradient_points_toward_the_truth():
    batch = make_batch()
    grid = (batch["corr"] + 2.0).requires_grad_()
    dense_epe_loss(output(grid), batch).backward()
    g = grid.grad[batch["valid"]]
    assert (g > 0).all()  # decreasing the coordinates lowers the loss


def test_matchability_low_for_right_confidence_high_for_wrong():
    batch = make_batch(ROT, (10.0, 0.0))
    assert (~batch["valid"]).any() and batch["valid"].any()
    right = torch.where(batch["valid"], 20.0, -20.0)
    grid = batch["corr"]
    assert matchability_loss(output(grid, right), batch).item() < 1e-6
    assert matchability_loss(output(grid, -right), batch).item() > 10


def test_sparse_epe_exact_under_affine_grid():
    A, t = torch.tensor(ROT, dtype=torch.float64), torch.tensor([2.0, 1.0], dtype=torch.float64)
    batch = make_batch(A, t)
    fwd, bwd = affine(A, t)
    grid = torch.stack([fwd, bwd]).expand(2, 2, H, W, 2).clone()  # undefined pixels kept: grid is affine everywhere
    pred = keypoint_predictions(grid, batch["kps"])
    assert torch.allclose(pred[:, 0], batch["kps"][:, 1], atol=1e-3)
    assert keypoint_epe_loss(output(grid), batch).item() == pytest.approx(0.0, abs=1e-5)
    shifted = grid + torch.tensor([0.0, 6.0])
    expect = math.sqrt((6.0 / S) ** 2 + 1e-6) - 1e-3
    assert keypoint_epe_loss(output(shifted), batch).item() == pytest.approx(expect, rel=1e-3)


def test_sparse_epe_ignores_keypoints_not_visible_in_both():
    batch = make_batch()
    grid = pixel_grid(H, W).expand(2, 2, H, W, 2).clone()
    batch["kps"][:, 1, 0] += 9.0  # a wrong target ...
    batch["kps_vis"][:, 1, 0] = False  # ... that is invisible in frame 1
    assert keypoint_epe_loss(output(grid), batch).item() == pytest.approx(0.0, abs=1e-6)
    batch["kps_vis"][:, 1, 0] = True
    assert keypoint_epe_loss(output(grid), batch).item() > 0.01


def test_cycle_zero_for_inverse_pair_and_known_for_inconsistent_pair():
    A, t = torch.tensor([[0.9, 0.1], [-0.05, 1.1]], dtype=torch.float64), torch.tensor([1.0, 0.5], dtype=torch.float64)
    fwd, bwd = affine(A, t)
    grid = torch.stack([fwd, bwd]).expand(1, 2, H, W, 2).clone()
    p = pixel_grid(H, W)
    x, y = grid.unbind(-1)
    inside = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)  # bilinear is exact between pixel centres
    assert torch.allclose(cycle_points(grid)[inside], p.expand(1, 2, H, W, 2)[inside], atol=1e-3)
    batch = make_batch(b=1)
    ones = torch.full((1, 2, H, W), 20.0)
    assert cycle_loss(output(grid, ones), batch).item() == pytest.approx(0.0, abs=1e-4)
    # both directions shift by +2 px in x: the round trip lands 4 px off
    shift = (p + torch.tensor([2.0, 0.0])).expand(1, 2, H, W, 2).clone()
    expect = math.sqrt((4.0 / S) ** 2 + 1e-6) - 1e-3
    got = cycle_loss(output(shift, ones), batch, weighting="none").item()
    assert got == pytest.approx(expect, rel=1e-3)


def test_cycle_is_weighted_by_confidence():
    p = pixel_grid(H, W)
    grid = torch.stack([p + torch.tensor([2.0, 0.0]), p]).expand(1, 2, H, W, 2).clone()
    batch = make_batch(b=1)
    conf_logit = torch.full((1, 2, H, W), 20.0)
    conf_logit[:, :, :, : W // 2] = -30.0  # not confident on the left half
    grid[:, :, :, : W // 2] += 7.0  # the left half is badly inconsistent
    cheap = cycle_loss(output(grid, conf_logit), batch, threshold=0.5).item()
    full = cycle_loss(output(grid, conf_logit), batch, weighting="none").item()
    assert cheap == pytest.approx(math.sqrt((2 / S) ** 2 + 1e-6) - 1e-3, rel=1e-2)
    assert full > 2 * cheap


def test_reconstruction_zero_for_true_translation_and_positive_for_wrong_one():
    gen = torch.Generator().manual_seed(1)
    big = torch.rand(3, H + 8, W + 8, generator=gen)
    img0, img1 = big[:, 4 : 4 + H, 4 : 4 + W], big[:, 1 : 1 + H, 6 : 6 + W]  # img1(p) = img0(p + (2, -3))
    batch = make_batch(b=1)
    batch["images"] = torch.stack([img0, img1])[None]
    p = pixel_grid(H, W)
    grid = torch.stack([p + torch.tensor([-2.0, 3.0]), p + torch.tensor([2.0, -3.0])])[None]
    conf = torch.full((1, 2, H, W), 20.0)
    assert reconstruction_loss(output(grid, conf), batch).item() < 1e-4
    assert reconstruction_loss(output(grid + 1.0, conf), batch).item() > 0.05


def test_confidence_loss_prefers_confidence_that_tracks_the_error():
    batch = make_batch(ROT, (6.0, 0.0))
    grid = batch["corr"].clone()
    wrong = torch.zeros_like(batch["valid"])
    wrong[:, :, : H // 2] = True
    grid[wrong] += 10.0  # top half wrong by 10 px > tau * S
    good = batch["valid"] & ~wrong
    tracking = torch.where(good, 10.0, -10.0)
    assert confidence_loss(output(grid, tracking), batch, tau=0.1).item() < 1e-3
    blind = torch.full_like(tracking, 10.0)  # confident everywhere
    assert confidence_loss(output(grid, blind), batch, tau=0.1).item() > 1.0
    # gradients reach the confidence only
    g = grid.clone().requires_grad_()
    c = torch.zeros_like(tracking).requires_grad_()
    confidence_loss(output(g, c), batch).backward()
    assert g.grad is None or g.grad.abs().sum() == 0
    assert c.grad.abs().sum() > 0


def test_confidence_from_keypoints_and_from_cycle():
    batch = make_batch()
    batch["has_dense"][:] = False
    p = pixel_grid(H, W).expand(2, 2, H, W, 2).clone()
    right = torch.full((2, 2, H, W), 10.0)
    # identity grid, identity keypoints: every visible keypoint is right -> confident is good
    assert confidence_loss(output(p, right), batch).item() < 1e-3
    assert confidence_loss(output(p, -right), batch).item() > 1.0
    # cycle source: a consistent pair of grids makes confident pixels right
    assert confidence_loss(output(p, right), batch, source="cycle").item() < 1e-3


def test_smoothness_identity_affine_and_noise():
    batch = make_batch(b=1)
    p = pixel_grid(H, W)
    ident = p.expand(1, 2, H, W, 2).clone()
    fwd, bwd = affine(torch.tensor(ROT, dtype=torch.float64), torch.tensor([3.0, 1.0], dtype=torch.float64))
    aff = torch.stack([fwd, bwd])[None]
    assert smoothness_loss(output(ident), batch, order=1).item() == pytest.approx(0.0, abs=1e-7)
    assert smoothness_loss(output(aff), batch, order=2).item() == pytest.approx(0.0, abs=1e-5)
    assert smoothness_loss(output(aff), batch, order=1).item() > 1e-3
    noisy = aff + torch.randn(aff.shape, generator=torch.Generator().manual_seed(0))
    assert smoothness_loss(output(noisy), batch, order=2).item() > 0.02


def test_smoothness_edge_aware_relaxes_across_image_edges():
    batch = make_batch(b=1)
    img = torch.zeros(3, H, W)
    img[:, :, W // 2 :] = 1.0  # a vertical edge
    batch["images"] = img.expand(1, 2, 3, H, W).clone()
    grid = pixel_grid(H, W).expand(1, 2, H, W, 2).clone()
    grid[..., W // 2 :, 0] += 5.0  # the warp breaks exactly at the image edge
    plain = smoothness_loss(output(grid), batch, order=1).item()
    aware = smoothness_loss(output(grid), batch, order=1, edge_aware=10.0).item()
    assert plain > 0 and aware < 1e-3 * plain


def test_objective_weights_and_names_terms():
    batch = make_batch()
    grid = (batch["corr"] + 1.0).requires_grad_()
    obj = Objective({"dense_epe": {"weight": 2.0}, "smoothness": {"weight": 0.5, "order": 1}})
    terms = obj(output(grid), batch)
    assert set(terms) == {"loss_dense_epe", "loss_smoothness", "objective"}
    expect = 2.0 * terms["loss_dense_epe"] + 0.5 * terms["loss_smoothness"]
    assert torch.allclose(terms["objective"], expect)
    terms["objective"].backward()
    assert grid.grad is not None


def test_objective_rejects_unknown_losses_and_params():
    with pytest.raises(ValueError, match=r"stages\[0\].losses.dense: unknown loss"):
        Objective({"dense": {}}, where="stages[0].losses")
    with pytest.raises(ValueError, match=r"losses.cycle.tau: unknown parameter"):
        Objective({"cycle": {"tau": 0.1}})
    with pytest.raises(ValueError, match=r"losses.smoothness.order: expected an integer"):
        Objective({"smoothness": {"order": 1.5}})
    with pytest.raises(ValueError, match=r"losses.confidence.tau: expected a number"):
        Objective({"confidence": {"tau": "big"}})
    assert Objective({"confidence": {"tau": "5e-2"}}).terms[0][2]["tau"] == 0.05
    assert set(LOSSES) >= {"dense_epe", "sparse_epe", "cycle", "reconstruction", "confidence", "smoothness"}


def test_every_loss_keeps_the_graph_on_an_empty_batch():
    """A rank whose batch has no labels for a term still back-propagates through every parameter (DDP)."""
    batch = make_batch()
    batch["has_dense"][:] = False
    batch["kps_vis"][:] = False
    grid = pixel_grid(H, W).expand(2, 2, H, W, 2).clone().requires_grad_()
    logit = torch.zeros(2, 2, H, W, requires_grad=True)
    coarse = {  # the correlation head's extra outputs (3 x 4 patches of 8 px), read by the coarse loss
        "coarse_grid": torch.zeros(2, 2, 3, 4, 2, requires_grad=True),
        "corr_logit": torch.zeros(2, 12, 12, requires_grad=True),
    }
    for name, fn in LOSSES.items():
        value = fn({"grid": grid, "conf_logit": logit, "conf": torch.sigmoid(logit), **coarse}, batch)
        assert torch.isfinite(value), name
        assert value.requires_grad, name
