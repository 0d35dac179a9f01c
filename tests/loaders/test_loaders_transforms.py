"""Pair-consistent transforms against analytic warps: after any chain, correspondences still point at the same
surface points (the composed affine map), statuses follow the frames, keypoints keep their meaning."""

import numpy as np
import pytest
from loaders_samples import G_BODY, G_PART, KP_FLIP, PART_BOX, affine_pair

from loaders.augment import ColorJitter, Compose, RandomAffine, RandomHFlip, RandomSwap, build_transforms
from loaders.schema import Status, check_sample
from loaders.transforms import (
    crop,
    crop_to_multiple,
    hflip,
    pad,
    pad_to_multiple,
    resize,
    swap_views,
    vggt_preprocess,
)
from loaders.warp import affine_hflip, affine_resize, affine_translate, update_camera

STORED = (Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE)


def _grid(hw):
    yy, xx = np.mgrid[0 : hw[0], 0 : hw[1]].astype(np.float64)
    return np.stack([xx, yy], -1)


def _ap(A, xy):
    return xy @ A[:2, :2].T + A[:2, 2]


def _inside(xy, hw):
    return (xy[..., 0] >= -0.5) & (xy[..., 0] < hw[1] - 0.5) & (xy[..., 1] >= -0.5) & (xy[..., 1] < hw[0] - 0.5)


def check_direction(orig, out, d, A_src, A_dst, maps, loose_px=0.9, tight_px=0.03):
    """Check direction ``d`` ("0to1"/"1to0") of ``out`` = ``orig`` with view warps ``A_src`` (the direction's own
    view) and ``A_dst`` (the view it points into). ``maps(src_xy)`` gives the original analytic map per pixel.

    * tight: where the whole 2x2 source block has one status and one analytic map, corr == A_dst G A_src^-1 q;
    * loose: every stored pixel is within half a source pixel (times the map's stretch) of it;
    * statuses: the original status at the source pixel, MATCHED/OCCLUDED -> OUTSIDE when leaving the new frame.
    """
    v_src = 0 if d == "0to1" else 1
    hw_src_old = orig[f"image{v_src}"].shape[:2]
    hw_dst_new = out[f"image{1 - v_src}"].shape[:2]
    hw_new = out[f"image{v_src}"].shape[:2]
    s = _ap(np.linalg.inv(A_src), _grid(hw_new))  # source position of every new pixel
    G, region = maps(s)
    expect = _ap(A_dst, np.einsum("hwij,hwj->hwi", G[..., :2, :2], s) + G[..., :2, 2])
    st_old = orig[f"status_{d}"]
    r = np.rint(s).astype(int)
    have_src = (r[..., 0] >= 0) & (r[..., 0] < hw_src_old[1]) & (r[..., 1] >= 0) & (r[..., 1] < hw_src_old[0])
    frac_tie = np.abs(np.abs(s - np.floor(s)) - 0.5).min(-1) < 0.02  # rounding ties may go either way
    rc = np.clip(r, 0, [hw_src_old[1] - 1, hw_src_old[0] - 1])
    src_status = np.where(have_src, st_old[rc[..., 1], rc[..., 0]], Status.BACKGROUND)
    st_new = out[f"status_{d}"]
    ok = ~frac_tie
    exp_status = src_status.copy()
    # a status belongs to the nearest source pixel: it leaves the frame when that pixel's counterpart does
    expect_nn = _ap(A_dst, np.einsum("hwij,hwj->hwi", G[..., :2, :2], r.astype(float)) + G[..., :2, 2])
    moved_out = np.isin(src_status, [Status.MATCHED, Status.OCCLUDED]) & ~_inside(expect_nn, hw_dst_new)
    # within a pixel of the frame edge an interpolated correspondence may decide it: both answers are right there
    ok &= _inside(expect_nn, hw_dst_new) == _inside(expect, hw_dst_new)
    for e, margin in ((expect_nn, 1e-3), (expect, 0.05)):  # float32 and 1/32 px resampling decide edge ties
        edge_x = np.minimum(np.abs(e[..., 0] + 0.5), np.abs(e[..., 0] - hw_dst_new[1] + 0.5))
        edge_y = np.minimum(np.abs(e[..., 1] + 0.5), np.abs(e[..., 1] - hw_dst_new[0] + 0.5))
        ok &= np.minimum(edge_x, edge_y) > margin
    exp_status[moved_out] = Status.OUTSIDE
    bad = ok & (st_new != exp_status)
    assert not bad.any(), f"{d}: {bad.sum()} statuses differ, first at {np.argwhere(bad)[:3].tolist()}"
    assert np.array_equal(out[f"valid_{d}"], st_new == Status.MATCHED)

    corr = out[f"corr_{d}"]
    stored = np.isin(st_new, STORED)
    assert np.isnan(corr[~stored]).all() and np.isfinite(corr[stored]).all(), f"{d}: NaN where not stored only"
    # tight where the 2x2 block around s and its neighbours carry values of one analytic piece
    f = np.floor(s).astype(int)
    uniform = np.ones(hw_new, bool)
    stored_old = np.isin(st_old, STORED)
    codes = np.where(stored_old, 1 + region_map(orig, v_src), -5 - st_old.astype(int))  # value pieces
    h0, w0 = hw_src_old
    for dy in (-1, 0, 1, 2):  # the block and the ring around it (seams are found by second differences)
        for dx in (-1, 0, 1, 2):
            yy, xx = f[..., 1] + dy, f[..., 0] + dx
            inb = (yy >= 0) & (yy < h0) & (xx >= 0) & (xx < w0)
            c = np.where(inb, codes[np.clip(yy, 0, h0 - 1), np.clip(xx, 0, w0 - 1)], -1)
            c0 = np.where(inb, codes[np.clip(f[..., 1], 0, h0 - 1), np.clip(f[..., 0], 0, w0 - 1)], -2)
            uniform &= c == c0
    tight = stored & uniform
    err = np.linalg.norm(corr - expect, axis=-1)
    assert tight.sum() > 100
    assert err[tight].max() < tight_px, f"{d}: interpolated corr off by {err[tight].max():.4f} px"
    stretch = np.linalg.norm(A_dst[:2, :2] @ G_BODY[:2, :2] @ np.linalg.inv(A_src)[:2, :2], 2)
    assert err[stored & ok].max() < loose_px * stretch + 0.05, f"{d}: nearest corr off by {err[stored & ok].max()}"


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return a.shape == b.shape and np.allclose(a, b, atol=1e-4, equal_nan=True)
    return np.array_equal(a, b)


def region_map(sample, view):
    """int [H, W]: 1 on the part patch of view 0 (its own analytic map), 0 elsewhere."""
    reg = np.zeros(sample[f"image{view}"].shape[:2], int)
    if view == 0:
        reg[PART_BOX] = 1
    return reg


def maps_0to1(s):
    r = np.rint(s).astype(int)
    part = (r[..., 1] >= PART_BOX[0].start) & (r[..., 1] < PART_BOX[0].stop)
    part &= (r[..., 0] >= PART_BOX[1].start) & (r[..., 0] < PART_BOX[1].stop)
    G = np.where(part[..., None, None], G_PART, G_BODY)
    return G, part


def maps_1to0(s):
    G = np.broadcast_to(np.linalg.inv(G_BODY), s.shape[:2] + (3, 3))
    return G, np.zeros(s.shape[:2], bool)


def check_pair(orig, out, A0, A1, **kw):
    check_direction(orig, out, "0to1", A0, A1, maps_0to1, **kw)
    check_direction(orig, out, "1to0", A1, A0, maps_1to0, **kw)
    kv = orig["kps0_vis"]
    assert np.allclose(out["kps0"][kv], _ap(A0, orig["kps0"][kv].astype(np.float64)), atol=1e-3)
    assert np.array_equal(out["kps0_vis"], kv & _inside(out["kps0"], out["image0"].shape[:2]))
    check_sample(out)


def test_resize_crop_pad_keep_correspondences_exact():
    s = affine_pair()
    out = resize(s, (50, 66), views=0)
    out = crop(out, 1, 7, -3, 56, 70)  # partly outside the image: exact, empty background there
    out = pad(out, 0, 4, 5, (60, 77), fill=255)
    A0 = affine_translate(5, 4) @ affine_resize((64, 80), (50, 66))
    A1 = affine_translate(3, -7)
    check_pair(s, out, A0, A1)
    assert (out["image0"][:4] == 255).all() and out["image1"].shape == (56, 70, 3)
    assert (out["status_1to0"][:, :3] == Status.BACKGROUND).all()  # pixels with no source are background
    # depth is linear in the pixel: interpolated exactly on continuous blocks
    q = _ap(np.linalg.inv(A0), _grid((60, 77)))
    inner = (out["status_0to1"] == Status.MATCHED) & (q[..., 0] > 5) & (q[..., 0] < 70) & (q[..., 1] < 55)
    expect = 2 + 0.01 * q[..., 0] + 0.005 * q[..., 1]
    assert np.abs(out["depth0"] - expect)[inner].max() < 1e-3


def test_crop_moves_counterparts_out_of_frame():
    s = affine_pair()
    out = crop(s, 1, 20, 25, 30, 30)
    A1 = affine_translate(-25, -20)
    check_pair(s, out, np.eye(3), A1)
    # a view-0 pixel that was MATCHED and now points outside the crop is OUTSIDE, never MATCHED
    was = s["status_0to1"] == Status.MATCHED
    gone = was & ~_inside(_ap(A1, s["corr_0to1"].astype(np.float64)), (30, 30))
    assert gone.sum() > 100 and (out["status_0to1"][gone] == Status.OUTSIDE).all()


def test_random_affine_with_rotation_per_view():
    s = affine_pair((64, 80), (70, 76), seed=2)
    rng = np.random.default_rng(5)
    t = RandomAffine(out_hw=(56, 70), scale=(0.8, 1.3), rotate_deg=25, translate=0.1)
    from loaders.augment import random_affine_matrix

    r2 = np.random.default_rng(5)
    A = []
    for hw in ((64, 80), (70, 76)):
        r2.random()  # RandomAffine's "apply to this view?" draw
        A.append(random_affine_matrix(r2, hw, (56, 70), (0.8, 1.3), 25, 0.1))
    out = t(s, rng)
    assert out["image0"].shape == (56, 70, 3) and out["image1"].shape == (56, 70, 3)
    check_pair(s, out, A[0], A[1])


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("hw", [(48, 90), (90, 48)])
def test_vggt_preprocess_modes(mode, hw):
    size = 56  # a small stand-in for 518: the same rules with multiples of 14
    s = affine_pair(hw, (60, 60), seed=1)
    out = vggt_preprocess(s, mode, size=size)
    h, w = hw
    if mode == "crop":
        rh = round(h * (size / w) / 14) * 14
        assert out["image0"].shape[:2] == (min(rh, size), size)
        A0 = affine_translate(0, -((rh - min(rh, size)) // 2)) @ affine_resize(hw, (rh, size))
    else:
        rh, rw = (round(h * size / w / 14) * 14, size) if w >= h else (size, round(w * size / h / 14) * 14)
        assert out["image0"].shape[:2] == (size, size)
        A0 = affine_translate((size - rw) // 2, (size - rh) // 2) @ affine_resize(hw, (rh, rw))
        white = np.ones((size, size), bool)
        white[(size - rh) // 2 : (size - rh) // 2 + rh, (size - rw) // 2 : (size - rw) // 2 + rw] = False
        assert (out["image0"][white] == 255).all()
    assert out["image0"].shape[0] % 14 == 0 and out["image0"].shape[1] % 14 == 0
    A1 = affine_resize((60, 60), (size, size))
    check_pair(s, out, A0, A1)


def test_multiples_of_14_are_exact_crops_and_pads():
    s = affine_pair((64, 80), (70, 76))
    c = crop_to_multiple(s)
    assert c["image0"].shape[:2] == (56, 70) and c["image1"].shape[:2] == (70, 70)
    check_pair(s, c, affine_translate(-5, -4), affine_translate(-3, 0))
    p = pad_to_multiple(s)
    assert p["image0"].shape[:2] == (70, 84) and p["image1"].shape[:2] == (70, 84)
    check_pair(s, p, affine_translate(2, 3), affine_translate(4, 0))
    assert np.array_equal(p["image0"][3:67, 2:82], s["image0"])  # integer path: no resampling at all


def test_flip_both_views_keeps_dense_exact_and_labels_true():
    s = affine_pair()
    out = hflip(s, (0, 1))
    F0, F1 = affine_hflip(80), affine_hflip(76)
    # keypoint i of the flipped view is the mirror of the keypoint that i was before the mirror (left <-> right)
    for v, F in ((0, F0), (1, F1)):
        for i, j in enumerate(KP_FLIP):
            assert np.allclose(out[f"kps{v}"][i], _ap(F, s[f"kps{v}"][j].astype(np.float64)))
            assert out[f"kps{v}_vis"][i] == s[f"kps{v}_vis"][j]
    assert out["meta"]["mirrored"] == [True, True]
    assert np.array_equal(out["image0"], s["image0"][:, ::-1])
    # a left eye still corresponds to a left eye: kps1 == corr_0to1 at kps0 for the same label
    for i in range(len(KP_FLIP)):
        x, y = np.rint(out["kps0"][i]).astype(int)
        if out["status_0to1"][y, x] == Status.MATCHED and out["kps1_vis"][i]:
            assert np.linalg.norm(out["corr_0to1"][y, x] - out["kps1"][i]) < 1.5
    # the dense field is exact: F1 G F0^-1, checked pixel by pixel on the part-free body
    q = _grid((64, 80))
    expect = _ap(F1 @ G_BODY @ np.linalg.inv(F0), q)
    body = out["status_0to1"] == Status.MATCHED
    body[:, 80 - PART_BOX[1].stop : 80 - PART_BOX[1].start + 1] = False
    assert np.abs(out["corr_0to1"][body] - expect[body]).max() < 1e-3
    back = hflip(out, (0, 1))
    for k in ("image0", "corr_0to1", "status_1to0", "kps0", "kps1_vis", "depth1"):
        assert _same(back[k], s[k]), k


def test_single_view_flip_refuses_dense_and_keeps_sparse_labels():
    s = affine_pair()
    with pytest.raises(ValueError, match="left parts to right parts"):
        hflip(s, 1)
    d = hflip(s, 1, drop_dense=True)
    assert "corr_0to1" not in d and d["meta"]["dense_dropped"] == "single-view flip"
    sparse = affine_pair(dense=False)
    out = hflip(sparse, 1)
    F1 = affine_hflip(76)
    for i, j in enumerate(KP_FLIP):
        assert np.allclose(out["kps1"][i], _ap(F1, sparse["kps1"][j].astype(np.float64)))
        assert np.array_equal(out["kps0"][i], sparse["kps0"][i])
    assert out["meta"]["mirrored"] == [False, True]
    sparse["meta"]["flip_perm"] = None
    with pytest.raises(ValueError, match="flip_perm"):
        hflip(sparse, 0)


def test_swap_views_is_an_involution():
    s = affine_pair()
    s["meta"]["instance_ids"] = ["a", "b"]
    sw = swap_views(s)
    assert sw["meta"]["instance_ids"] == ["b", "a"]
    assert np.array_equal(sw["corr_0to1"], s["corr_1to0"], equal_nan=True)
    assert np.array_equal(sw["image1"], s["image0"]) and np.array_equal(sw["kps0"], s["kps1"])
    assert sw["meta"]["image_size0"] == s["meta"]["image_size1"] and sw["meta"]["swapped"]
    check_sample(sw)
    back = swap_views(sw)
    for k in s:
        if k != "meta":
            assert _same(back[k], s[k]), k


def _project(K, T, X):
    Xc = X @ T[:3, :3].T + T[:3, 3]
    uv = Xc @ K.T
    return uv[:, :2] / uv[:, 2:3], Xc[:, 2]


def test_camera_follows_the_pixels_including_mirror():
    rng = np.random.default_rng(0)
    K = np.array([[300.0, 0, 160], [0, 280, 120], [0, 0, 1]])
    ang = 0.3
    T = np.eye(4)
    T[:3, :3] = [[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]]
    T[:3, 3] = [0.1, -0.2, 3.0]
    X = rng.uniform(-0.5, 0.5, (50, 3))
    uv, z = _project(K, T, X)
    th = np.deg2rad(17)
    A = affine_translate(10, -4) @ np.array(
        [[1.3 * np.cos(th), -1.3 * np.sin(th), 0], [1.3 * np.sin(th), 1.3 * np.cos(th), 0], [0, 0, 1]]
    )
    for mirror in (False, True):
        B = affine_hflip(320) @ A if mirror else A
        K2, T2 = update_camera(K, T, B)
        assert abs(K2[1, 0]) < 1e-6 and K2[0, 0] > 0 and K2[1, 1] > 0
        R2 = T2[:3, :3].astype(np.float64)
        assert np.allclose(R2 @ R2.T, np.eye(3), atol=1e-5) and np.linalg.det(R2) > 0
        Xw = X * [-1, 1, 1] if mirror else X  # a mirrored view shows the mirrored instance
        uv2, z2 = _project(K2.astype(np.float64), T2.astype(np.float64), Xw)
        assert np.allclose(uv2, _ap(B, uv), atol=1e-3) and np.allclose(z2, z, atol=1e-5)


def test_random_augmentations_are_deterministic_and_only_touch_what_they_should():
    s = affine_pair()
    pipe = Compose([RandomHFlip(p_both=0.5, p_one=0.5), ColorJitter(0.3, 0.3, 0.3, hue=0.05), RandomSwap(0.5)])
    a = pipe(s, np.random.default_rng(3))
    b = pipe(s, np.random.default_rng(3))
    for k in a:
        if k != "meta":
            assert _same(a[k], b[k]), k
    j = ColorJitter(0.3, 0.3, 0.3)(s, np.random.default_rng(0))
    assert j["image0"].dtype == np.uint8 and not np.array_equal(j["image0"], s["image0"])
    assert j["corr_0to1"] is s["corr_0to1"]
    # dense pairs never get a single-view flip from the random flip: the dense field survives every draw
    for seed in range(10):
        assert "corr_0to1" in RandomHFlip(0, 1.0)(s, np.random.default_rng(seed))


def test_build_transforms_validates():
    t = build_transforms([{"op": "vggt_preprocess", "mode": "pad"}, {"op": "random_hflip", "p_both": 0.5}])
    assert len(t.transforms) == 2
    with pytest.raises(ValueError, match=r"x.yaml: transforms\[0\]: unknown op 'blur'"):
        build_transforms([{"op": "blur"}], where="x.yaml: transforms")
    with pytest.raises(ValueError, match="unexpected keyword"):
        build_transforms([{"op": "random_swap", "q": 1}])
