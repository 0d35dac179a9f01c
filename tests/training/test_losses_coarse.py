"""The coarse-stage loss of the correlation head on analytic cases (known translations, perfect and wrong
correlations), both directions, and its registration in the objective."""

import pytest
import torch

from loaders.schema import Status
from training.geometry import pixel_grid
from training.losses import LOSSES, Objective, coarse_loss, coarse_targets
from training.losses.coarse import _bilinear_patch_weights
from training.model.correlation import patch_centres_px

P = 14


def _translation_batch(h: int, w: int, shift_px: tuple[float, float], b: int = 1) -> dict:
    """Dense GT of a pure translation: frame-0 pixel p shows up at p + shift in frame 1 (and back)."""
    height, width = h * P, w * P
    pix = pixel_grid(height, width)
    shift = torch.tensor(shift_px)
    corr = torch.stack((pix + shift, pix - shift))[None].expand(b, 2, height, width, 2).clone()
    inside = ((corr >= -0.5) & (corr <= torch.tensor([width - 0.5, height - 0.5]))).all(-1)
    status = torch.where(inside, int(Status.MATCHED), int(Status.OUTSIDE)).to(torch.uint8)
    return {"corr": corr, "valid": inside, "status": status, "has_dense": torch.ones(b, dtype=torch.bool)}


def _translation_logits(h: int, w: int, t: tuple[int, int], value: float = 100.0) -> torch.Tensor:
    """Correlation logits peaked on frame-0 patch (i, j) <-> frame-1 patch (i + t0, j + t1)."""
    logit = torch.zeros(1, h * w, h * w)
    for i in range(h):
        for j in range(w):
            if 0 <= i + t[0] < h and 0 <= j + t[1] < w:
                logit[0, i * w + j, (i + t[0]) * w + j + t[1]] = value
    return logit


def test_targets_are_the_correspondences_at_patch_centres():
    h, w = 3, 4
    batch = _translation_batch(h, w, (5.0, -2.0))
    target, ok = coarse_targets(batch, (h, w))
    centres = patch_centres_px(h, w, P)
    assert torch.allclose(target[0, 0], centres + torch.tensor([5.0, -2.0]))
    assert torch.allclose(target[0, 1], centres - torch.tensor([5.0, -2.0]))
    assert ok.all()  # a 5 / 2 px shift keeps every centre inside the other image
    batch["valid"][0, 0, 7, 7] = False  # one of the four pixels around patch (0, 0)'s centre
    _, ok = coarse_targets(batch, (h, w))
    assert not ok[0, 0, 0, 0] and ok[0, 0, 0, 1:].all() and ok[0, 1].all()


def test_targets_leave_out_points_outside_the_other_image_and_samples_without_dense_gt():
    h, w = 2, 3
    batch = _translation_batch(h, w, (2.0 * P, 0.0), b=2)
    _, ok = coarse_targets(batch, (h, w), pixels="defined")
    assert ok[0, 0, :, :1].all() and not ok[0, 0, :, 1:].any()  # columns 1, 2 land beyond the right border
    batch["has_dense"][1] = False
    _, ok = coarse_targets(batch, (h, w))
    assert not ok[1].any()


def test_bilinear_patch_weights_average_back_to_the_target():
    h, w = 4, 5
    centres = patch_centres_px(h, w, P).reshape(-1, 2)
    target = torch.tensor([[20.0, 30.0], [6.5, 6.5], [60.5, 48.5], [33.3, 10.0]])  # inside the centres' hull
    idx, wts = _bilinear_patch_weights(target, (h, w), P)
    assert torch.allclose(wts.sum(-1), torch.ones(4))
    assert torch.allclose((wts[..., None] * centres[idx]).sum(-2), target, atol=1e-4)


def test_cross_entropy_is_zero_for_the_right_match_and_large_for_a_wrong_one_in_both_directions():
    h, w, t = 3, 4, (1, 1)
    batch = _translation_batch(h, w, (t[1] * P, t[0] * P))
    coarse = torch.zeros(1, 2, h, w, 2)
    right = {"corr_logit": _translation_logits(h, w, t), "coarse_grid": coarse}
    assert coarse_loss(right, batch) < 1e-6
    wrong = {"corr_logit": _translation_logits(h, w, (0, 1)), "coarse_grid": coarse}
    assert coarse_loss(wrong, batch) > 50.0
    # direction 1 -> 0 reads the columns: the transposed matrix of the right one is wrong for both directions
    assert coarse_loss({"corr_logit": right["corr_logit"].transpose(1, 2), "coarse_grid": coarse}, batch) > 10.0


def test_epe_kind_scores_the_coarse_grid():
    h, w = 3, 4
    shift = torch.tensor([5.0, 3.0])
    batch = _translation_batch(h, w, tuple(shift.tolist()))
    centres = patch_centres_px(h, w, P)
    perfect = torch.stack((centres + shift, centres - shift))[None]
    logit = torch.zeros(1, h * w, h * w)
    assert coarse_loss({"corr_logit": logit, "coarse_grid": perfect}, batch, kind="epe") < 1e-9
    off = perfect + torch.tensor([P, 0.0])
    err = P / (w * P)  # normalised by max(H, W)
    got = coarse_loss({"corr_logit": logit, "coarse_grid": off}, batch, kind="epe", penalty="l1")
    assert torch.isclose(got, torch.tensor(err))


def test_gradient_pulls_the_logits_towards_the_target():
    h, w, t = 2, 3, (0, 1)
    batch = _translation_batch(h, w, (t[1] * P, t[0] * P))
    logit = torch.zeros(1, h * w, h * w, requires_grad=True)
    coarse_loss({"corr_logit": logit, "coarse_grid": torch.zeros(1, 2, h, w, 2)}, batch).backward()
    # frame-0 patch (0, 0) -> frame-1 patch (0, 1): its logit is pushed up (negative gradient), the others down
    assert logit.grad[0, 0, 1] < 0 and (logit.grad[0, 0, [0, 2, 3, 4, 5]] > 0).all()


def test_registered_and_clear_errors():
    assert LOSSES["coarse"] is coarse_loss
    objective = Objective({"coarse": {"weight": 0.5, "kind": "epe"}}, where="run.yaml: stages[0].losses")
    batch = _translation_batch(2, 2, (0.0, 0.0))
    with pytest.raises(ValueError, match="grid_mode: correlation"):
        objective({"grid": torch.zeros(1, 2, 28, 28, 2)}, batch)
    with pytest.raises(ValueError, match="kind"):
        coarse_loss({"corr_logit": torch.zeros(1, 4, 4), "coarse_grid": torch.zeros(1, 2, 2, 2, 2)}, batch, kind="x")
