"""The docs/design.md §5 checks themselves, on analytic fields with exact answers."""

import numpy as np

from datagen import invariants
from loaders.schema import Status


def _affine_pair(A, t, h=60, w=80, hole=True):
    """A sample whose 0->1 field is q = A p + t and 1->0 its exact inverse, on ragged valid regions."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    p = np.stack([xx, yy], -1)
    Ainv = np.linalg.inv(A)
    c01 = p @ A.T + t
    c10 = (p - t) @ Ainv.T
    s = {}
    for (
        d,
        c,
    ) in (("0to1", c01), ("1to0", c10)):
        inside = (c[..., 0] >= 0) & (c[..., 0] <= w - 1) & (c[..., 1] >= 0) & (c[..., 1] <= h - 1)
        valid = inside & ((xx - 40) ** 2 / 30**2 + (yy - 30) ** 2 / 22**2 < 1)  # an elliptic object
        if hole:
            valid &= ~((xx > 35) & (xx < 38))  # a thin gap: edges inside the object
        s[f"corr_{d}"] = c.astype(np.float32)
        s[f"valid_{d}"] = valid
        s[f"status_{d}"] = np.where(valid, Status.MATCHED, Status.BACKGROUND).astype(np.uint8)
    return s


def test_sample_field_is_exact_on_affine_fields_also_at_edges():
    A = np.array([[1.1, 0.2], [-0.1, 0.9]])
    s = _affine_pair(A, np.array([3.0, -2.0]))
    rng = np.random.default_rng(0)
    xy = rng.uniform([5, 5], [75, 55], (2000, 2))
    val, ok, gain = invariants.sample_field(s["corr_0to1"], s["valid_0to1"], xy, with_gain=True)
    truth = xy @ A.T + np.array([3.0, -2.0])
    assert ok.sum() > 500
    assert np.abs(val[ok] - truth[ok]).max() < 1e-3  # bilinear inside, first-order extension at edges
    assert np.allclose(gain[ok], np.linalg.svd(A, compute_uv=False)[0], atol=1e-3)


def test_cycle_exact_for_inverse_fields_and_fails_when_shifted():
    A = np.array([[1.0, 0.1], [0.0, 1.05]])
    s = _affine_pair(A, np.array([2.0, 1.0]))
    good = invariants.cycle(s)
    assert good["n_cycle"] > 1000
    assert good["cycle_frac_within_1.5px"] == 1.0 and good["cycle_median_px"] < 1e-3
    assert good["cycle_frac_within_1.5px_smooth"] == 1.0  # no depth: every all-valid block counts as smooth
    bad = dict(s)
    bad["corr_0to1"] = s["corr_0to1"] + np.float32(2.5)  # every match off by 2.5 px in x and y
    m = invariants.cycle(bad)
    assert m["cycle_frac_within_1.5px"] < 0.05 and m["cycle_frac_within_1.5px_smooth"] < 0.05
    assert invariants.failures(m)


def test_cycle_smooth_figure_leaves_out_blocks_across_a_depth_step():
    s = _affine_pair(np.eye(2), np.zeros(2), hole=False)
    h, w = s["valid_0to1"].shape
    for v in (0, 1):
        depth = np.full((h, w), 2.0, np.float32)
        depth[:, 41:] = 3.0  # an occlusion edge between columns 40 and 41
        s[f"depth{v}"] = depth
    s["corr_0to1"] = s["corr_0to1"] + np.float32([0.5, 0.0])  # lands between pixel centres
    s["corr_1to0"] = s["corr_1to0"] - np.float32([0.5, 0.0])
    m = invariants.cycle(s)
    assert m["n_cycle_smooth"] < m["n_cycle"]  # the blocks straddling columns 40/41 are not smooth
    raw_only = m["n_cycle"] - m["n_cycle_smooth"]
    assert 0 < raw_only < 0.1 * m["n_cycle"]


def _plane_pair(field_0to1, h=48, w=64, z=2.0):
    """Two identical cameras looking at planes at depth ``z``; ``field_0to1(xy) -> xy'`` the map, its inverse
    derived numerically by a dense nearest search (the stretch check only reads the 0->1 direction here)."""
    K = np.array([[60.0, 0.0, (w - 1) / 2], [0.0, 60.0, (h - 1) / 2], [0.0, 0.0, 1.0]], np.float32)
    T = np.eye(4, dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xy = np.stack([xx, yy], -1).reshape(-1, 2)
    c01 = field_0to1(xy).reshape(h, w, 2).astype(np.float32)
    valid = np.ones((h, w), bool)
    valid[:, :2] = valid[:, -2:] = valid[:2] = valid[-2:] = False
    s = {
        "corr_0to1": c01,
        "valid_0to1": valid & (c01[..., 0] >= 0) & (c01[..., 0] <= w - 1) & (c01[..., 1] >= 0) & (c01[..., 1] <= h - 1),
        "corr_1to0": np.zeros((h, w, 2), np.float32),
        "valid_1to0": np.zeros((h, w), bool),
        "depth0": np.full((h, w), z, np.float32),
        "depth1": np.full((h, w), z, np.float32),
        "K0": K,
        "K1": K,
        "T_cam0_from_world": T,
        "T_cam1_from_world": T,
    }
    return s


def test_stretch_check_passes_scaled_and_sheared_maps_and_catches_a_collapse():
    w = 64
    scaled = _plane_pair(lambda p: 0.6 * p + np.array([5.0, 4.0]))
    m = invariants.distortion(scaled)
    assert m["n_stretch"] > 1000 and m["collapse_frac"] == 0.0
    assert abs(m["stretch_scale"] - 0.6) < 0.01  # metres of B per metre of A: same depth, same camera
    sheared = _plane_pair(lambda p: p @ np.array([[1.0, 0.0], [0.4, 1.0]]) * 0.7)
    assert invariants.distortion(sheared)["collapse_frac"] == 0.0

    def collapsing(p):  # the left third of the image squeezed onto a 0.2 px wide strip
        q = p.copy()
        left = p[:, 0] < w / 3
        q[left, 0] = w / 3 + 0.01 * (p[left, 0] - w / 3)
        return q

    c = invariants.distortion(_plane_pair(collapsing))
    assert 0.25 < c["collapse_frac"] < 0.4  # the squeezed third, not the rest
    assert invariants.failures(c)


def test_stretch_check_leaves_out_stencils_across_a_seam_between_two_parts_but_not_a_collapse_within_one():
    # Φ keeps (part, u, v): two parts' maps are independent and may jump at their seam (a boat's deckhouse wall
    # meets the deck at another place of the hull's canonical coordinates on every instance). A stencil across the
    # seam sees two maps, and its far corner still completes the parallelogram (both rows shift alike), so only
    # the part labels tell it from a stretch.
    w, split = 64, 32
    labels = np.where(np.arange(w)[None, :] < split, 0, 1) * np.ones((48, 1), np.int64)

    def seam(p):  # the left part halved (lands on x < 16), the right one kept: a 16 px jump at the seam
        return np.where((p[:, 0] < split)[:, None], 0.5 * p, p)

    s = _plane_pair(seam)
    blind = invariants.distortion(s)
    assert blind["collapse_frac"] > 0  # without labels the seam's stencils read as a 17x stretch
    m = invariants.distortion(s, labels=(labels, labels))
    assert m["collapse_frac"] == 0.0 and m["n_stretch"] > 0.8 * blind["n_stretch"]
    assert m["parts"][0][1] == 0 and m["parts"][1][1] == 0

    def seam_and_collapse(p):  # as above, and the first 10 columns of the left part squeezed onto 0.1 px
        q = seam(p)
        squeezed = p[:, 0] < 12
        q[squeezed, 0] = 6.0 + 0.01 * (p[squeezed, 0] - 12)
        return q

    c = invariants.distortion(_plane_pair(seam_and_collapse), labels=(labels, labels))
    assert c["parts"][0][1] > 0.2 * c["parts"][0][0] and c["parts"][1][1] == 0  # the squeeze is still caught


def test_target_on_mask_flags_targets_off_the_other_object():
    s = _affine_pair(np.eye(2), np.zeros(2), hole=False)
    for v, d in ((0, "0to1"), (1, "1to0")):
        s[f"mask{v}"] = s[f"valid_{d}"].copy()
    assert invariants.target_on_mask(s)["off_mask_frac"] == 0.0
    s["corr_0to1"] = s["corr_0to1"] + np.float32([0.0, 4.0])  # 4 px down: the lowest rows land off the ellipse
    m = invariants.target_on_mask(s)
    assert 0 < m["off_mask_frac"] < 0.2 and m["off_mask_max_px"] > 2.0


def test_aggregate_is_pixel_weighted():
    rows = [
        {"same": False, "n_cycle": 900, "n_cycle_smooth": 900, "cycle_frac_within_1.5px": 1.0,
         "cycle_frac_within_1.5px_smooth": 1.0, "parts_stretch": {"top": [600, 0]}},
        {"same": False, "n_cycle": 120, "n_cycle_smooth": 100, "cycle_frac_within_1.5px": 0.2,
         "cycle_frac_within_1.5px_smooth": 0.3, "parts_stretch": {"top": [400, 30]}},
        {"same": True, "n_object": 10, "valid_agreement": 0.9, "n_cycle": 5, "cycle_frac_within_1.5px": 0.0},
    ]  # fmt: skip
    agg = invariants.aggregate(rows)
    assert agg["n_cycle"] == 1020 and agg["cycle_frac_within_1.5px"] == (900 + 0.2 * 120) / 1020
    assert agg["n_cycle_smooth"] == 1000 and agg["cycle_frac_within_1.5px_smooth"] == 0.93
    assert agg["valid_agreement"] == 0.9
    assert agg["part_collapse_frac"] == 0.03 and agg["part_collapse_worst"] == "top"
    assert invariants.aggregate_failures(agg) == [
        "cycle_frac_within_1.5px_smooth = 0.93 over the sampled pairs (limit >= 0.97)",
        "cycle_frac_within_1.5px = 0.9059 over the sampled pairs (limit >= 0.93)",
        "part_collapse_frac = 0.03 (part top) over the sampled pairs (limit <= 0.02)",
        "valid_agreement = 0.9 over the sampled pairs (limit >= 0.995)",
    ]


def test_gain_is_unbounded_on_a_one_pixel_sliver():
    # A field valid on a full block has a finite gain (here 2: x doubled); on a one-row sliver the derivative
    # across it is unknown, so the gain is inf and the checks leave reads there undecided.
    H = W = 8
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    corr = np.stack([2 * xs, ys], axis=-1)
    block = np.ones((H, W), bool)
    sliver = np.zeros((H, W), bool)
    sliver[3] = True
    xy = np.array([[3.25, 3.0], [4.5, 3.0]])
    _, ok, gain = invariants.sample_field(corr, block, xy, with_gain=True)
    assert ok.all() and np.allclose(gain, 2.0)
    _, ok, gain = invariants.sample_field(corr, sliver, xy, with_gain=True)
    assert ok.all() and np.isinf(gain).all()
