"""Distributed streaming: exact epochs over simulated ranks x workers, equal per-rank steps, deterministic
resampling and mixing, resume, and bad data (truncated/corrupted/empty shards, fewer shards than workers)."""

import json
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from loaders_samples import write_dataset, write_shard

from loaders.data_manifest import Source
from loaders.loader import PairLoader
from loaders.schema import SchemaError
from loaders.sources import ShardError, expand_spec
from loaders.stream import PairStream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """Three uneven shards (7, 4, 2 samples) with a dataset.json."""
    return write_dataset(tmp_path_factory.mktemp("uneven") / "ds", [7, 4, 2])


def run_ranks(monkeypatch, make_stream, world=2, workers=2, batch_size=2, epochs=1):
    """Run every rank of a simulated torchrun job in turn (RANK/WORLD_SIZE env vars) with real worker processes.

    Returns per rank the list of batches' (url, key, is_padding) triples and len(loader)."""
    out = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        loader = PairLoader(make_stream(), batch_size=batch_size, num_workers=workers)
        batches = []
        for _ in range(epochs):
            batches += [list(zip(b["url"], b["key"], b["is_padding"].tolist())) for b in loader]
        out.append((batches, len(loader)))
    return out


def test_exact_epoch_two_ranks_two_workers_sees_every_sample_once(uneven, monkeypatch):
    runs = run_ranks(monkeypatch, lambda: PairStream([str(uneven)], mode="exact", seed=3, progress=False))
    seen = Counter((u, k) for batches, _ in runs for b in batches for u, k, pad in b if not pad)
    assert len(seen) == 13 and set(seen.values()) == {1}
    assert {u for u, _ in seen} == {str(uneven / f"pairs-00000{i}.tar") for i in range(3)}
    # 13 samples over 4 slots: L = 4 each, 3 padding repeats; both ranks run the same number of steps
    steps = [len(batches) for batches, _ in runs]
    assert steps[0] == steps[1] == runs[0][1] == runs[1][1] == 4
    pads = sum(pad for batches, _ in runs for b in batches for *_, pad in b)
    assert pads == 2 * 2 * 4 - 13


def test_exact_epochs_reshuffle_but_stay_exact(uneven, monkeypatch):
    runs = run_ranks(
        monkeypatch, lambda: PairStream([str(uneven)], mode="exact", seed=3, progress=False), workers=0, epochs=2
    )
    per_epoch = [[], []]
    for batches, n in runs:
        for e in range(2):
            per_epoch[e] += [x for b in batches[e * n : (e + 1) * n] for x in b]
    for e in range(2):
        real = [(u, k) for u, k, pad in per_epoch[e] if not pad]
        assert sorted(real) == sorted(set(real)) and len(real) == 13
    assert [x[:2] for x in per_epoch[0]] != [x[:2] for x in per_epoch[1]]


def resampled_keys(monkeypatch, sources, seed, world=2, workers=2, epoch_samples=24):
    runs = run_ranks(
        monkeypatch,
        lambda: PairStream(sources, mode="resampled", seed=seed, epoch_samples=epoch_samples, progress=False),
        world=world,
        workers=workers,
        batch_size=3,
    )
    return [[x[:2] for b in batches for x in b] for batches, _ in runs], [len(b) for b, _ in runs]


def test_resampled_is_deterministic_per_seed_and_equal_per_rank(uneven, monkeypatch):
    a, steps = resampled_keys(monkeypatch, [str(uneven)], seed=5)
    b, _ = resampled_keys(monkeypatch, [str(uneven)], seed=5)
    c, _ = resampled_keys(monkeypatch, [str(uneven)], seed=6)
    assert a == b and a != c
    assert steps == [4, 4] and all(len(x) == 12 for x in a)
    assert a[0] != a[1]  # ranks draw different samples


def test_resampled_mixture_follows_the_weights(tmp_path):
    a = write_dataset(tmp_path / "a", [3, 3])
    b = write_dataset(tmp_path / "b", [2])
    sources = [Source("a", expand_spec(str(a)), weight=3.0), Source("b", expand_spec(str(b)), weight=1.0)]
    stream = PairStream(sources, mode="resampled", seed=0, epoch_samples=800, decode=False, progress=False)
    drawn = Counter(x["source"] for x in stream)
    assert sum(drawn.values()) == 800
    assert abs(drawn["a"] / 800 - 0.75) < 0.05


def test_resume_exact_continues_with_the_next_batch(uneven):
    def make():
        return PairLoader(PairStream([str(uneven)], mode="exact", seed=1, progress=False), 2, num_workers=2)

    full = [b["key"] for b in make()]
    first = make()
    it = iter(first)
    head = [next(it)["key"] for _ in range(3)]
    state = first.state_dict()
    assert state["epoch"] == 0 and state["batches_done"] == 3
    again = make()
    again.load_state_dict(state)
    tail = [b["key"] for b in again]
    assert head + tail == full  # exactly the uninterrupted epoch: nothing repeated, nothing lost
    assert again.epoch == 1 and again.state_dict()["batches_done"] == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_resampled_continues_the_same_draws(uneven, workers):
    """The resampled stream's position (each worker's generator and open shards) travels in the state dict: a
    resumed loader yields exactly the batches, pixels included, of the uninterrupted epoch."""
    from loaders.augment import default_train_transforms

    def make():
        transform = default_train_transforms((32, 32))
        stream = PairStream(
            [str(uneven)], mode="resampled", seed=2, epoch_samples=40, transform=transform, interleave=2, progress=False
        )
        return PairLoader(stream, 4, num_workers=workers, uint8_images=True)

    full = [(b["key"], b["images"].clone()) for b in make()]
    first = make()
    it = iter(first)
    head = [next(it)["key"] for _ in range(3)]
    state = json.loads(json.dumps(first.state_dict()))  # plain values
    assert len(state["cursors"]) == max(1, workers)
    again = make()
    again.load_state_dict(state)
    tail = [(b["key"], b["images"]) for b in again]
    assert head + [k for k, _ in tail] == [k for k, _ in full]
    for (_, a), (_, b) in zip(full[3:], tail):
        assert torch.equal(a, b)  # the same augmentation draws too
    fresh = make()
    fresh.load_state_dict({**state, "cursors": {}})  # a version-1 state: fresh draws for the rest of the epoch
    assert [b["key"] for b in fresh][:3] != [k for k, _ in full[3:6]]


def test_decoded_arrays_are_writable_no_torch_warnings(uneven):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = next(iter(PairLoader(PairStream([str(uneven)], progress=False), 4)))
    assert batch["images"].dtype.is_floating_point and batch["images"].max() <= 1


def corrupt_copy(src_dir, dst, how):
    """A copy of shard 0 of ``src_dir`` damaged: 'truncate' cuts it mid-member, 'dense' flips bytes in one
    sample's dense.bin, 'header' breaks a tar header checksum."""
    data = bytearray((src_dir / "pairs-000000.tar").read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2 + 100]
    elif how == "dense":
        i = data.find(b"SGT\x03", len(data) // 3)
        data[i + 200 : i + 260] = b"\xff" * 60
    elif how == "header":
        i = data.find(b"s000000_00003.img0.jpg")
        data[i + 148 : i + 156] = b"9999999\x00"  # the header's checksum field
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("how", ["truncate", "dense", "header"])
def test_bad_shard_errors_name_the_shard_and_skip_mode_counts(uneven, tmp_path, how):
    bad = corrupt_copy(uneven, tmp_path / "bad-000000.tar", how)
    with pytest.raises((ShardError, SchemaError), match="bad-000000.tar"):
        for _ in PairStream([str(bad)], mode="resampled", epoch_samples=20, progress=False):
            pass
    if how == "dense":
        with pytest.raises(SchemaError, match=r"sample s000000_\d+ in .*bad-000000.tar"):
            for _ in PairStream([str(bad)], mode="resampled", epoch_samples=20, progress=False):
                pass
    # skip mode: the same number of samples, the bad ones counted (exact mode: a copy of the dataset folder whose
    # dataset.json still lists the damaged shard's full count, so the exact plan expects them)
    ds = tmp_path / "ds"
    ds.mkdir()
    for f in uneven.iterdir():
        (ds / f.name).write_bytes(f.read_bytes())
    corrupt_copy(uneven, ds / "pairs-000000.tar", how)
    for refs, mode, kw in (([str(bad)], "resampled", {"epoch_samples": 20}), ([str(ds)], "exact", {})):
        stream = PairStream(refs, mode=mode, skip_bad=True, progress=False, **kw)
        loader = PairLoader(stream, 3, num_workers=0)
        batches = list(loader)
        assert len(batches) == len(loader)
        assert sum(len(b["key"]) for b in batches) == stream.samples_per_worker(0) and loader.n_skipped > 0
        assert loader.state_dict()["n_skipped"] == loader.n_skipped


def test_exact_mode_notices_a_shard_shorter_than_its_manifest(tmp_path):
    ds = write_dataset(tmp_path / "ds", [3])
    write_shard(ds / "pairs-000000.tar", [])  # replaced by an empty tar; dataset.json still says 3
    with pytest.raises(ShardError, match=r"pairs-000000.tar: ended after 0 samples, but its count says 3"):
        list(PairStream([str(ds)], mode="exact", progress=False))


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")
def test_empty_shards_and_fewer_shards_than_workers(tmp_path, monkeypatch):
    ds = write_dataset(tmp_path / "ds", [0, 3, 0])
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"\0" * 10240)  # what webdataset's ShardWriter leaves when no sample came
    runs = run_ranks(monkeypatch, lambda: PairStream([str(ds)], mode="exact", progress=False), world=1, workers=4)
    seen = [(u, k) for b in runs[0][0] for u, k, pad in b if not pad]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 3 and len(runs[0][0]) == runs[0][1] == 4
    # a plain list with an empty tar and unknown counts: resampled mode just draws another shard
    plain = [str(empty), str(ds / "pairs-000001.tar")]
    keys = [x["key"] for x in PairStream(plain, mode="resampled", epoch_samples=9, decode=False, progress=False)]
    assert len(keys) == 9
    assert len(list(PairStream(plain, mode="exact", progress=False))) == 3  # counts scanned, empty one left out
    with pytest.raises(ValueError, match="no samples"):
        PairStream([str(empty)], mode="exact", progress=False)
    with pytest.raises(ShardError, match="no samples in"):
        list(PairStream([str(empty)], mode="resampled", epoch_samples=2, progress=False))


def test_exact_needs_counts_for_remote_shards():
    with pytest.raises(ValueError, match="exact mode needs sample counts"):
        PairStream(["pipe:cat x-{0..1}.tar"], mode="exact", progress=False)
    assert np.isclose(PairStream(["pipe:cat x.tar"], mode="resampled", epoch_samples=10).epoch_samples, 10)


def test_the_pipeline_stages_compose_by_hand(uneven):
    """read -> decode -> transform -> batch, each stage called on its own, gives the loader's batch."""
    from loaders.augment import Compose, RandomHFlip, RandomSwap
    from loaders.batch import BatchWriter
    from loaders.decode import decode_pair
    from loaders.plan import rng_for
    from loaders.raster import Pending
    from loaders.read import Drawn, ExactReader

    stream = PairStream([str(uneven)], mode="exact", seed=5, progress=False)
    transform = Compose([RandomHFlip(0.5), RandomSwap(0.5)])
    reader = ExactReader([s.shards for s in stream.sources], 5, 0, True, 4, slot=0, n_slots=1)
    drawn = list(reader.run(lambda d: d))  # stage 1 alone: the epoch's 13 samples as read
    assert len(drawn) == 13 and all(isinstance(d, Drawn) and "pair.json" in d.members for d in drawn)
    assert len({(d.members["__url__"], d.members["__key__"]) for d in drawn}) == 13
    planned = decode_pair(drawn[0].members, plan=True)  # stage 2 alone: placeholders, or arrays
    assert isinstance(planned["image0"], Pending) and planned["image0"].shape == (28, 28, 3)
    assert decode_pair(drawn[0].members)["image0"].dtype == np.uint8
    writer = BatchWriter(4)
    for d in drawn[:4]:
        sample = transform(decode_pair(d.members, plan=True), rng_for(*d.rng_key))  # stage 3
        sample.update(__url__=d.members["__url__"], __source__="source0", __padding__=False)
        sample["__stream__"] = {"slot": 0, "skipped": 0}
        writer.add(sample, d.members)  # stage 4
    by_hand = writer.finish()
    assert len(writer) == 0  # finish() empties the writer for the next batch
    stream.transform = transform
    batch = next(iter(stream.batches(4)))
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, by_hand[k]), k
        else:
            assert v == by_hand[k], k


def test_a_resampling_transform_decodes_the_sample_instead_of_planning_it(uneven):
    """Batches of a plannable transform whose warp resamples a dense view equal those of the decoded path."""
    from loaders.augment import RandomAffine

    class Opaque:  # the same transform, not plannable: always decoded first
        def __init__(self, t):
            self.t = t

        def __call__(self, sample, rng):
            return self.t(sample, rng)

    t = RandomAffine((24, 24), scale=(1.0, 1.2), rotate_deg=5.0)
    a = PairStream([str(uneven)], mode="exact", seed=2, transform=t, progress=False)
    b = PairStream([str(uneven)], mode="exact", seed=2, transform=Opaque(t), progress=False)
    for x, y in zip(a.batches(5), b.batches(5), strict=True):
        for k, v in x.items():
            assert torch.equal(v, y[k]) if isinstance(v, torch.Tensor) else v == y[k], k
