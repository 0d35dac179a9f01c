"""The fast batch path (planned samples decoded straight into the batch) equals decode -> transform -> collate, field
for field, bit for bit: on random chains of exact crops, pads, flips, swaps and colour jitter, on counterparts that
sit exactly on a frame edge, on sparse pairs with masks and resampling warps, with fewer fields and uint8 images."""

import functools

import numpy as np
import pytest
import torch
from loaders_samples import affine_pair, write_dataset

from loaders.augment import ColorJitter, Compose, Fit, RandomAffine, RandomHFlip, RandomSwap, VggtPreprocess
from loaders.batch import ARRAY_KEYS, BatchWriter, collate_pairs
from loaders.decode import plan_sample
from loaders.dense import IntegerMap, raster_plan, value_plan
from loaders.loader import PairLoader
from loaders.members import decode_sample, encode_sample
from loaders.raster import NotPlannable, Pending
from loaders.schema import CORR_STEP_PX, SchemaError, Status
from loaders.stream import PairStream
from loaders.transforms import crop, hflip, pad, swap_views
from loaders.warp import affine_hflip, affine_translate, warp_view

NO_DEPTH = tuple(k for k in ARRAY_KEYS if k != "depth")


def members_of(sample, url="mem://shard.tar"):
    m = encode_sample(sample)
    m["__url__"] = url
    return m


def both_paths(members_list, transform, seed=0, **writer_kw):
    """(fast batch, reference batch) of the same samples and random draws."""
    fast, ref = BatchWriter(len(members_list), **writer_kw), BatchWriter(len(members_list), **writer_kw)
    for i, m in enumerate(members_list):
        s = plan_sample(m)
        s = transform(s, np.random.default_rng([seed, i])) if transform else s
        fast.add_planned(s, m)
        d = decode_sample(m)
        d = transform(d, np.random.default_rng([seed, i])) if transform else d
        ref.add_sample(d)
    return fast.finish(), ref.finish()


def assert_same_batch(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if torch.is_tensor(a[k]):
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            assert torch.equal(a[k], b[k]), f"{k}: {(a[k] != b[k]).sum().item()} elements differ"
        else:
            assert a[k] == b[k], k


def dense_pair(seed, hw0=(48, 60), hw1=(56, 48)):
    s = affine_pair(hw0, hw1, seed=seed)
    s["meta"]["source"] = "procedural"
    return s


EXACT_AUG = [
    None,
    Compose([RandomHFlip(0.5), ColorJitter(0.3, 0.3, 0.3, hue=0.05), RandomSwap(0.5)]),
    # random integer shifts (crops and pads at once), flips and swaps; then a pad and shifts again
    Compose(
        [
            RandomAffine((48, 48), scale=(1, 1), rotate_deg=0, translate=0.2),
            RandomHFlip(0.5),
            RandomSwap(0.5),
            Fit((48, 52), "pad"),
            RandomAffine((48, 52), scale=(1, 1), rotate_deg=0, translate=0.15, fill=(9, 99, 199)),
            RandomHFlip(0.6),
            ColorJitter(0.2, 0.2, 0.2),
            RandomSwap(0.5),
        ]
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("aug", range(len(EXACT_AUG)))
def test_planned_batches_equal_decoded_ones_on_exact_transforms(aug):
    transform = EXACT_AUG[aug]
    hw = ((48, 60), (56, 48)) if aug == 2 else ((48, 48), (48, 48))
    members = [members_of(dense_pair(i, *hw)) for i in range(4)]
    for seed in range(6):
        fast, ref = both_paths(members, transform, seed)
        assert_same_batch(fast, ref)
        if aug == 2:  # the chain really moved things out of frame and back
            assert (fast["status"] == Status.OUTSIDE).any() and not fast["mask"].all()


@pytest.mark.slow
def test_random_chains_of_crops_pads_flips_and_swaps():
    """Hand-made chains through the transform functions, including crops past the border and pads back."""
    members = [members_of(dense_pair(i, (40, 44), (44, 40))) for i in range(3)]
    for trial in range(25):
        rng = np.random.default_rng(trial)
        ops = []
        for _ in range(rng.integers(1, 6)):
            kind = rng.choice(["crop", "pad", "flip", "swap"])
            v = int(rng.integers(2))
            if kind == "crop":
                ops.append(functools.partial(_crop, v=v, y0x0=rng.integers(-6, 8, 2), hw=rng.integers(30, 48, 2)))
            elif kind == "pad":
                ops.append(functools.partial(_pad, v=v, tl=rng.integers(0, 6, 2), extra=rng.integers(0, 6, 2)))
            elif kind == "flip":
                ops.append(lambda s: hflip(s, (0, 1)))
            else:
                ops.append(swap_views)
        ops.append(lambda s: _fit(s, (36, 36)))

        def chain(s, rng_, ops=ops):
            for op in ops:
                s = op(s)
            return s

        fast, ref = both_paths(members, chain)
        assert_same_batch(fast, ref)


def _crop(s, v, y0x0, hw):
    return crop(s, v, int(y0x0[0]), int(y0x0[1]), int(hw[0]), int(hw[1]))


def _pad(s, v, tl, extra):
    h, w = s[f"image{v}"].shape[:2]
    return pad(s, v, int(tl[0]), int(tl[1]), (h + int(tl[0] + extra[0]), w + int(tl[1] + extra[1])), fill=77)


def _fit(s, hw):
    for v in (0, 1):
        s = crop(s, v, 0, 0, *hw)
    return s


def test_counterparts_exactly_on_the_frame_edge_follow_the_slow_path():
    """-0.5 is inside a frame and W - 0.5 is not: a mirror swaps which edge is open, a shift moves them."""
    s = dense_pair(0, (40, 44), (40, 44))
    st, corr = s["status_0to1"], s["corr_0to1"]
    pts = [(20, 10, -0.5), (21, 10, 43.5), (22, 10, 43.5 - CORR_STEP_PX), (23, 10, -0.5 + CORR_STEP_PX), (24, 10, 42.5)]
    for r, c, x in pts:
        st[r, c], corr[r, c] = Status.MATCHED if -0.5 <= x < 43.5 else Status.OUTSIDE, (x, 12.0)
    members = [members_of(s)]
    chains = [
        lambda x, r: hflip(x, (0, 1)),
        lambda x, r: warp_view(x, 1, affine_translate(1, 0), (40, 44)),
        lambda x, r: warp_view(hflip(x, (0, 1)), 1, affine_translate(-1, 0), (40, 44)),
        lambda x, r: warp_view(warp_view(x, 1, affine_hflip(44), (40, 44)), 1, affine_translate(-1, 0), (40, 44)),
        lambda x, r: hflip(warp_view(x, 1, affine_translate(1, 0), (40, 44)), (0, 1)),  # 42.5 -> 43.5 (out) -> -0.5
    ]
    for chain in chains:
        fast, ref = both_paths(members, chain)
        assert_same_batch(fast, ref)


def test_sparse_pairs_with_masks_and_resampling_warps_are_planned():
    samples = []
    for i in range(3):
        s = affine_pair((42, 56), (50, 40), seed=i, dense=False)
        s["mask0"] = np.zeros((42, 56), bool)
        s["mask0"][5:30, 10:40] = True
        s["mask1"] = np.ones((50, 40), bool)
        s["mask1"][:7] = False
        samples.append(s)
    members = [members_of(s) for s in samples]
    aug = Compose([VggtPreprocess("pad", 70), RandomHFlip(0.3, 0.5), ColorJitter(0.2, 0.2, 0.2), RandomSwap(0.5)])
    for seed in range(4):
        fast, ref = both_paths(members, aug, seed)
        assert_same_batch(fast, ref)
        assert fast["images"].shape[-2:] == (70, 70) and fast["has_mask"].all()


def test_single_view_flip_dropping_dense_keeps_the_silhouette():
    members = [members_of(dense_pair(i, (40, 40), (40, 40))) for i in range(3)]
    aug = Compose([RandomHFlip(0.0, 1.0, drop_dense=True), RandomSwap(0.5)])
    fast, ref = both_paths(members, aug)
    assert_same_batch(fast, ref)
    assert not fast["has_dense"].any() and fast["has_mask"].all() and not fast["mask"].all()


@pytest.mark.parametrize("fields", [None, NO_DEPTH, ("images", "valid", "kps", "kps_vis")])
def test_fields_and_uint8_images(fields):
    members = [members_of(dense_pair(i, (48, 48), (48, 48))) for i in range(2)]
    fast, ref = both_paths(members, EXACT_AUG[1], fields=fields, uint8_images=True)
    assert_same_batch(fast, ref)
    assert fast["images"].dtype == torch.uint8
    assert set(fast) & set(ARRAY_KEYS) == set(fields or ARRAY_KEYS)
    full, _ = both_paths(members, EXACT_AUG[1])
    for k in set(fast) & set(ARRAY_KEYS) - {"images"}:
        assert torch.equal(fast[k], full[k]), k
    assert torch.equal(fast["images"].float() * np.float32(1 / 255), full["images"])


def test_resampling_warp_of_a_dense_view_is_not_plannable():
    s = plan_sample(members_of(dense_pair(0, (48, 48), (48, 48))))
    assert isinstance(s["image0"], Pending) and s["image0"].shape == (48, 48, 3)
    with pytest.raises(NotPlannable):
        RandomAffine((48, 48), rotate_deg=10)(s, np.random.default_rng(0))


@pytest.mark.parametrize(
    "transform",
    [
        EXACT_AUG[1],
        Compose([RandomAffine((28, 28), scale=(1, 1.2), rotate_deg=8), RandomHFlip(0.5), RandomSwap(0.5)]),
    ],
)
def test_loader_batches_equal_collated_stream_items(tmp_path, transform):
    """End to end: PairLoader (planned, or falling back per sample) == the stream's own items collated."""
    data = write_dataset(tmp_path / "d", [5, 3])
    stream = PairStream([str(data)], seed=3, transform=transform, progress=False)
    items = list(stream)
    batches = list(PairLoader(stream, 3))
    assert [len(b["key"]) for b in batches] == [3, 3, 2]
    for j, b in enumerate(batches):
        assert_same_batch(b, collate_pairs(items[3 * j : 3 * j + 3]))


def test_planned_write_names_a_broken_member():
    m = members_of(dense_pair(0, (40, 40), (40, 40)))
    m["img1.jpg"] = m["img1.jpg"][:50]
    w = BatchWriter(2)
    with pytest.raises(SchemaError, match="sample s000000_00000 in mem://shard.tar"):
        w.add_planned(plan_sample(m), m)
    assert len(w) == 0
    m = members_of(dense_pair(0, (40, 40), (40, 40)))
    m["img0.jpg"] = members_of(dense_pair(0, (40, 44), (40, 40)))["img0.jpg"]  # pair.json says 40 x 40
    with pytest.raises(SchemaError, match="image0 is"):
        w.add_planned(plan_sample(m), m)


def test_plans_compose_like_the_steps():
    # shift right by 5 on 10 -> 12, mirror: the raster keeps columns 5..11 of the 12-wide frame, mirrored
    ops = [("warp", affine_translate(5, 0), (8, 10), (8, 12)), ("warp", affine_hflip(12), (8, 12), (8, 12))]
    plan = raster_plan((8, 10), ops)
    assert plan.map == IntegerMap(-1, 6, 0) and plan.rect == (0, 8, 0, 7) and plan.hw == (8, 12)
    vp = value_plan([("values", affine_translate(5, 0), (8, 12)), ("values", affine_hflip(12), (8, 12))])
    # first frame [-0.5, 11.5) -> mirrored (-0.5, 11.5]; second [-0.5, 11.5): the intersection is open both ends
    assert vp.map == IntegerMap(-1, 6, 0) and vp.bounds[:4] == (-0.5, 11.5, True, True)


def test_batch_memory_is_reused_only_once_dropped():
    members = [members_of(dense_pair(i, (40, 40), (40, 40))) for i in range(2)]

    def batch(seed):
        fast, ref = both_paths(members, EXACT_AUG[1], seed)
        assert_same_batch(fast, ref)  # reused memory is cleared where the earlier pairs left values
        return fast

    held = batch(0)
    expect = {k: v.clone() for k, v in held.items() if torch.is_tensor(v)}
    second = batch(1)  # `held` is alive: its memory must not be written
    assert second["corr"].data_ptr() != held["corr"].data_ptr()
    assert all(torch.equal(held[k], v) for k, v in expect.items())
    ptr = second["corr"].data_ptr()
    del second
    assert batch(2)["corr"].data_ptr() == ptr  # dropped: its pages are written again
    members[:] = [members_of(dense_pair(i + 5, (40, 40), (40, 40))) for i in range(2)]
    for seed in range(3, 8):  # other silhouettes and flips in the same memory
        batch(seed)


def test_images_to_float_equals_the_float32_batch():
    from loaders.batch import images_to_float

    members = [members_of(dense_pair(0, (40, 40), (40, 40)))]
    u8, _ = both_paths(members, None, uint8_images=True)
    f32, _ = both_paths(members, None)
    assert torch.equal(images_to_float(u8)["images"], f32["images"])
    assert images_to_float(f32)["images"] is f32["images"]
