"""The pair-sample schema: codec exactness, budgets and clear errors."""

import numpy as np
import pytest

from loaders.codec import decode_dense, decode_plane, encode_dense, encode_plane
from loaders.members import decode_sample, encode_sample
from loaders.schema import CORR_STEP_PX, DEPTH_STEP_M, SCHEMA_VERSION, SchemaError, Status, check_sample


def _synthetic_sample(h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    status = np.zeros((h, w), np.uint8)
    status[10:50, 12:70] = Status.MATCHED
    status[20:30, 20:30] = Status.OCCLUDED
    status[40:50, 60:70] = Status.OUTSIDE
    status[12:15, 12:70] = Status.NO_COUNTERPART
    corr = np.stack([xx * 0.9 + 3.3, yy * 1.1 - 2.2], -1).astype(np.float32)
    corr[status == Status.OUTSIDE] = -37.123  # out-of-frame coordinates are stored too
    depth = np.where(status > 0, 2.0 + 0.1 * np.sin(xx / 7), 0).astype(np.float32)
    sample = {
        "__key__": "s000000_00000",
        "image0": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
        "image1": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
        "status_0to1": status,
        "status_1to0": status.copy(),
        "corr_0to1": corr,
        "corr_1to0": corr.copy(),
        "depth0": depth,
        "depth1": depth.copy(),
        "K0": np.eye(3, dtype=np.float32),
        "K1": np.eye(3, dtype=np.float32),
        "T_cam0_from_world": np.eye(4, dtype=np.float32),
        "T_cam1_from_world": np.eye(4, dtype=np.float32),
        "kps0": np.array([[1.5, 2.5], [0, 0]], np.float32),
        "kps1": np.array([[3.0, 4.0], [0, 0]], np.float32),
        "kps0_vis": np.array([True, False]),
        "kps1_vis": np.array([True, False]),
        "meta": {
            "schema_version": SCHEMA_VERSION,
            "source": "procedural",
            "category": "chair",
            "image_size0": [h, w],
            "image_size1": [h, w],
            "keypoint_names": ["a", "b"],
        },
    }
    return sample


def test_plane_roundtrip_exact_with_escapes():
    rng = np.random.default_rng(1)
    q = np.cumsum(np.cumsum(rng.integers(-3, 4, (37, 51)), 0), 1)
    q[10:20, 5:9] += 300_000  # a discontinuity: residuals far beyond int8 go to the escape table
    q -= q.min()
    plane, idx, val = encode_plane(q)
    assert idx.size > 0
    out = decode_plane(np.frombuffer(plane, np.uint8), idx, val, q.shape, base=[-7])
    assert np.array_equal(out.astype(np.int64), q - 7)
    q2 = np.stack([q, q[::-1] // 3], -1)  # two interleaved channels, one base each
    plane, idx, val = encode_plane(q2)
    out = decode_plane(np.frombuffer(plane, np.uint8), idx, val, q2.shape, base=[1, 2])
    assert np.array_equal(out.astype(np.int64), q2 + [1, 2])
    with pytest.raises(SchemaError, match="out of range"):
        encode_plane(q + 2**22)


def test_dense_codec_meets_budget_and_keeps_far_outside_points():
    """<= 1/64 px lost (the docs/design.md budget is 1/16 px); far OUTSIDE counterparts are clamped, not rejected."""
    s = _synthetic_sample(h=70, w=90, seed=3)
    corr = s["corr_0to1"].copy()
    rng = np.random.default_rng(0)
    corr += rng.uniform(-0.5, 0.5, corr.shape).astype(np.float32)  # non-smooth: many escapes
    corr[s["status_0to1"] == Status.OUTSIDE] = [1e7, -2e6]
    view = decode_dense(encode_dense([{"status": s["status_0to1"], "corr": corr}]))[0]
    stored = np.isin(s["status_0to1"], [Status.MATCHED, Status.OCCLUDED])
    assert np.abs(view["corr"][stored] - corr[stored]).max() <= 1 / 64 + 1e-6
    assert (view["corr"][s["status_0to1"] == Status.OUTSIDE] == [65535, -65535]).all()
    assert "depth" not in view


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_dense_codecs_decode_the_same(codec):
    s = _synthetic_sample()
    view = {"status": s["status_0to1"], "corr": s["corr_0to1"], "depth": s["depth0"]}
    a = decode_dense(encode_dense([view], codec=codec))[0]
    b = decode_dense(encode_dense([view]))[0]
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=k != "status")


def test_dense_codec_empty_and_full_views():
    h, w = 12, 17
    empty = {"status": np.zeros((h, w), np.uint8), "corr": np.zeros((h, w, 2), np.float32)}
    full_status = np.full((h, w), Status.MATCHED, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    full = {"status": full_status, "corr": np.stack([xx * 2 - 5, yy + 0.25], -1), "depth": 1 + xx / 100}
    v0, v1 = decode_dense(encode_dense([empty, full]))
    assert np.isnan(v0["corr"]).all() and (v0["status"] == 0).all()
    assert np.allclose(v1["corr"], full["corr"], atol=1 / 64) and np.allclose(v1["depth"], full["depth"], atol=1e-5)
    assert v1["corr"].flags.writeable and v1["depth"].flags.writeable and v1["status"].flags.writeable


def test_dense_roundtrip_within_quantisation():
    s = _synthetic_sample()
    views = decode_dense(encode_dense([{"status": s["status_0to1"], "corr": s["corr_0to1"], "depth": s["depth0"]}]))
    v = views[0]
    stored = np.isin(s["status_0to1"], [Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE])
    assert np.array_equal(v["status"], s["status_0to1"])
    assert np.abs(v["corr"][stored] - s["corr_0to1"][stored]).max() <= CORR_STEP_PX / 2 + 1e-6
    assert np.isnan(v["corr"][~stored]).all()
    surface = s["status_0to1"] != Status.BACKGROUND
    assert np.abs(v["depth"][surface] - s["depth0"][surface]).max() <= DEPTH_STEP_M / 2 + 1e-6
    assert (v["depth"][~surface] == 0).all()


def test_sample_roundtrip_fields():
    s = _synthetic_sample()
    d = decode_sample(encode_sample(s))
    assert d["meta"] == s["meta"]
    for k in ("status_0to1", "status_1to0", "kps0_vis"):
        assert np.array_equal(d[k], s[k])
    assert np.array_equal(d["valid_0to1"], s["status_0to1"] == Status.MATCHED)
    assert np.array_equal(d["mask0"], s["status_0to1"] != Status.BACKGROUND)
    assert np.allclose(d["kps0"], s["kps0"]) and np.allclose(d["K1"], s["K1"])
    # JPEG q95 4:4:4 on noise is lossy but close on average
    assert np.abs(d["image0"].astype(int) - s["image0"]).mean() < 12
    assert d["image0"].flags.writeable and d["corr_0to1"].flags.writeable


def test_version_mismatch_is_named():
    s = _synthetic_sample()
    m = encode_sample(s)
    import json

    rec = json.loads(m["pair.json"])
    rec["meta"]["schema_version"] = 99
    m["pair.json"] = json.dumps(rec).encode()
    m["__url__"] = "shards/pairs-000003.tar"
    with pytest.raises(SchemaError, match=r"pairs-000003.tar.*schema_version 99"):
        decode_sample(m)


def test_corrupt_dense_member_is_named():
    m = encode_sample(_synthetic_sample())
    m["dense.bin"] = m["dense.bin"][:-50]
    m["__url__"] = "x/pairs-000001.tar"
    with pytest.raises(SchemaError, match="pairs-000001.tar"):
        decode_sample(m)


def test_bad_shape_rejected():
    s = _synthetic_sample()
    s["corr_0to1"] = s["corr_0to1"][:-1]
    with pytest.raises(SchemaError, match="corr_0to1"):
        encode_sample(s)


def test_flip_perm_must_be_an_involution():
    s = _synthetic_sample()
    s["meta"]["flip_perm"] = [1, 0]
    check_sample(s)
    s["meta"]["flip_perm"] = [0, 0]
    with pytest.raises(SchemaError, match="flip_perm"):
        check_sample(s)


def test_jpeg_memo_reuses_only_immutable_images():
    """encode_sample reuses a frozen view's JPEG; a writable image changed in place is encoded afresh."""
    s = _synthetic_sample(h=40, w=48, seed=5)
    first = encode_sample(s)["img0.jpg"]
    s["image0"][:8] = 255  # writable: no memo, the change shows
    assert encode_sample(s)["img0.jpg"] != first
    frozen = s["image0"].copy()
    frozen.setflags(write=False)
    s["image0"] = frozen
    a = encode_sample(s)["img0.jpg"]
    assert encode_sample(s)["img0.jpg"] is a  # served from the memo
    assert decode_sample(encode_sample(s))["image0"].shape == (40, 48, 3)


def test_deep_views_store_depth_with_a_coarser_step():
    """An aeroplane seen along its length spans > 40 m of depth: the view's step doubles until it fits."""
    s = _synthetic_sample()
    surface = s["status_0to1"] != Status.BACKGROUND
    deep = np.where(surface, 80.0 + 60.0 * np.linspace(0, 1, surface.size).reshape(surface.shape), 0).astype(np.float32)
    views = decode_dense(encode_dense([{"status": s["status_0to1"], "corr": s["corr_0to1"], "depth": deep}]))
    err = np.abs(views[0]["depth"][surface] - deep[surface]).max()
    assert 0 < err <= 4 * DEPTH_STEP_M  # 60 m span -> step 4e-5 m, rounding error <= 2e-5 m
