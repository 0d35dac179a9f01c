"""The dense SIFT baseline recovers known warps of a textured image (exact ground truth, real numbers)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from training.baselines.sift import DenseSiftMatcher
from training.baselines.warp_check import edge_texture, warped_pair

SIZE = 192


@functools.lru_cache(maxsize=1)
def _big_texture() -> np.ndarray:
    return edge_texture(np.random.default_rng(0), 2 * SIZE, 2 * SIZE)


def _pair(M: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """View 0 = the centre of a large texture, view 1 = the texture under ``M`` (view-0 px -> view-1 px)."""
    return warped_pair(_big_texture(), M, SIZE), M


def _errors(out: dict, M: np.ndarray, margin: int = 24) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    p = np.stack([xx, yy], -1).astype(np.float64)
    gt01 = p @ M[:2, :2].T + M[:2, 2]
    Minv = np.linalg.inv(M)
    gt10 = p @ Minv[:2, :2].T + Minv[:2, 2]

    def interior(q):
        return ((q > margin) & (q < SIZE - 1 - margin)).all(-1)

    e01 = np.linalg.norm(out["grid"][0, 0].numpy() - gt01, axis=-1)[interior(p) & interior(gt01)]
    e10 = np.linalg.norm(out["grid"][0, 1].numpy() - gt10, axis=-1)[interior(p) & interior(gt10)]
    return e01, e10


def test_output_format():
    images, _ = _pair(np.array([[1, 0, 5.0], [0, 1, 3.0], [0, 0, 1]]))
    out = DenseSiftMatcher(step=8)(images)
    assert out["grid"].shape == (1, 2, SIZE, SIZE, 2) and out["conf"].shape == (1, 2, SIZE, SIZE)
    assert float(out["conf"].min()) > 0 and float(out["conf"].max()) < 1
    torch.testing.assert_close(torch.logit(out["conf"]), out["conf_logit"])


def test_recovers_a_translation():
    M = np.array([[1, 0, 13.0], [0, 1, -7.0], [0, 0, 1]])
    out = DenseSiftMatcher()(_pair(M)[0])
    e01, e10 = _errors(out, M)
    assert np.mean(e01 < 2.0) > 0.95 and np.median(e01) < 1.0, (np.mean(e01 < 2), np.median(e01))
    assert np.mean(e10 < 2.0) > 0.95 and np.median(e10) < 1.0, (np.mean(e10 < 2), np.median(e10))


def test_recovers_an_affine_warp():
    ang, s = np.deg2rad(10.0), 1.1  # rotation and zoom about the centre, plus a shift
    R = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    c = np.array([SIZE / 2 - 0.5, SIZE / 2 - 0.5])
    M = np.eye(3)
    M[:2, :2], M[:2, 2] = R, c - R @ c + np.array([6.0, -4.0])
    out = DenseSiftMatcher()(_pair(M)[0])
    e01, e10 = _errors(out, M)
    for e in (e01, e10):
        assert np.mean(e < 4.0) > 0.85 and np.median(e) < 2.5, (np.mean(e < 4), np.median(e))


def test_l2_metric_and_bad_arguments():
    M = np.array([[1, 0, 9.0], [0, 1, 4.0], [0, 0, 1]])
    out = DenseSiftMatcher(metric="l2", step=8)(_pair(M)[0])
    e01, _ = _errors(out, M)
    assert np.mean(e01 < 2.0) > 0.9
    with pytest.raises(ValueError):
        DenseSiftMatcher(metric="hamming")
    with pytest.raises(ValueError):
        DenseSiftMatcher()(torch.zeros(1, 3, 3, 8, 8))
