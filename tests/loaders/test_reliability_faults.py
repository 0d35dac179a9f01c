"""Fault injection: damaged shards through every reader (the stream's three decode paths, ``datagen verify``, the
``semmatch eval --shards`` reader, ``semmatch train`` and ``semmatch eval``).

Two small datasets (rendered chair pairs with ``dense.bin``; real-style pairs with mask PNGs), two shards of three
samples each. Every member type of a sample is damaged (bytes overwritten, cut short at many lengths, left out)
and the first shard file is cut at many offsets and has tar header bytes overwritten (:mod:`loaders.faults`).
For each damaged copy:

* the oracle: which samples do not read and decode (``ShardReader`` + ``decode_sample``), independently of the
  readers under test;
* every reader either finishes or raises ``SchemaError``/``ShardError`` naming the shard file (and, for a damaged
  member, the sample key): never another exception type; it raises exactly when the oracle finds a bad sample;
* with ``skip_bad`` every reader finishes and counts exactly the oracle's bad samples.

Damage the decoders cannot see (a JPEG or a compressed plane that still decodes, to other pixels) is counted as
*undetected*: per-sample decoding has no checksum to notice it; the shard's sha256 in ``dataset.json`` does
(``datagen verify``, ``verify: sha256``). ``pytest -s`` prints the totals recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from loaders_samples import affine_pair, write_shard

from loaders.augment import ColorJitter, Compose, RandomAffine, RandomHFlip, RandomSwap
from loaders.dataset_manifest import DatasetManifest, ShardEntry, sha256_file, shard_name
from loaders.faults import Fault, file_faults, member_faults, read_members, sample_keys
from loaders.loader import PairLoader
from loaders.members import decode_sample
from loaders.schema import SchemaError
from loaders.sources import ShardError, ShardReader
from loaders.stream import PairStream
from training.eval.synthetic import iter_shard_samples

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration
NAMED = (SchemaError, ShardError)
SHARD_SAMPLES = 3
HIT = 1  # the damaged sample's index in shard 0 (good samples before and after it)
# damaged copies per member type (byte overwrites, cuts) and per shard file (cuts, header bytes); SEMMATCH_FAULTS=full
# runs the larger campaign recorded in docs/benchmarks.md
FULL = os.environ.get("SEMMATCH_FAULTS") == "full"
MEMBER_FLIPS, MEMBER_CUTS = (30, 20) if FULL else (9, 6)
FILE_CUTS, FILE_HEADERS = (48, 16) if FULL else (16, 6)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TQDM_DISABLE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _manifest_for(directory: Path) -> Path:
    entries = []
    for i in range(2):
        p = directory / shard_name(i)
        entries.append(
            ShardEntry(index=i, name=p.name, samples=SHARD_SAMPLES, bytes=p.stat().st_size, sha256=sha256_file(p))
        )
    DatasetManifest(generator={"name": "tests"}, root_seed=0, n_shards=2, shards=entries).save(directory)
    return directory


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """``dense``: 6 rendered chair pairs (56 px); ``sparse``: 6 real-style pairs with keypoints and mask PNGs."""
    root = tmp_path_factory.mktemp("faults")
    dense = root / "dense"
    cmd = [sys.executable, "-m", "datagen", "render", "--category", "chair", "--size", "56", "--workers", "1"]
    cmd += ["--n", "6", "--shard-size", str(SHARD_SAMPLES), "--seed", "5", "--out", str(dense), "--no-progress"]
    subprocess.run(cmd, cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
    sparse = root / "sparse"
    sparse.mkdir()
    for i in range(2):
        samples = []
        for j in range(SHARD_SAMPLES):
            s = affine_pair((48, 48), (48, 48), seed=10 * i + j, dense=False)
            s["__key__"] = f"s{i:06d}_{j:05d}"
            rng = np.random.default_rng(j)
            for v in (0, 1):
                s[f"mask{v}"] = rng.random((48, 48)) < 0.6
            samples.append(s)
        write_shard(sparse / shard_name(i), samples)
    return {"dense": dense, "sparse": _manifest_for(sparse)}


# ---------------------------------------------------------------------------------------------------------------
# the oracle and the readers under test


def oracle(ds: Path) -> int:
    """Samples of the dataset that do not read and decode, counted without the readers under test."""
    manifest = DatasetManifest.load(ds)
    bad = 0
    for entry, path in zip(sorted(manifest.shards, key=lambda s: s.index), manifest.shard_paths(ds)):
        with ShardReader(str(path)) as reader:
            for n in range(entry.samples):
                try:
                    members = reader.next_sample()
                except ShardError:
                    bad += entry.samples - n  # nothing after damage to the tar itself reads
                    break
                if members is None:
                    bad += entry.samples - n
                    break
                try:
                    decode_sample(members)
                except SchemaError:
                    bad += 1
    return bad


PLANNED = Compose([RandomHFlip(p_both=0.5), ColorJitter(0.2, 0.2, 0.2), RandomSwap(0.5)])  # exact warps only
RESAMPLED = Compose([RandomAffine((32, 32), scale=(1.0, 1.3), rotate_deg=10.0), ColorJitter(0.2, 0.2, 0.2)])


@dataclass
class Reader:
    """A reader under test: ``run(ds, skip_bad)`` -> bad samples it counted (skip) or finishes (no skip)."""

    name: str

    def run(self, ds: Path, skip_bad: bool) -> int:
        if self.name == "eval":
            skipped: list[str] = []
            for _ in iter_shard_samples(ds, skip_bad=skip_bad, skipped=skipped):
                pass
            return len(skipped)
        if self.name == "resampled":
            stream = PairStream([str(ds)], mode="resampled", seed=1, epoch_samples=12, skip_bad=skip_bad,
                                verify="none", progress=False)  # fmt: skip
            loader = PairLoader(stream, 3)
            for _ in loader:
                pass
            return -1  # draws with replacement: the count is not the oracle's
        transform = {"items": None, "planned": PLANNED, "decoded": RESAMPLED}[self.name]
        stream = PairStream([str(ds)], mode="exact", seed=1, shuffle=False, transform=transform, skip_bad=skip_bad,
                            verify="none", progress=False)  # fmt: skip
        if self.name == "items":
            items = list(stream)
            real = sum(not item["is_padding"] for item in items)
            skipped = max(item["stream"]["skipped"] for item in items)  # the count travels with the items
        else:
            loader = PairLoader(stream, 2, uint8_images=True)
            real = sum(int((~b["is_padding"]).sum()) for b in loader)
            skipped = loader.n_skipped
        assert real + skipped == 2 * SHARD_SAMPLES, (real, skipped)  # every sample read once or counted bad
        return skipped


READERS = [Reader(n) for n in ("items", "planned", "decoded", "resampled", "eval")]


def check_named(err: BaseException, shard: str, key: str | None, where: str) -> None:
    assert isinstance(err, NAMED), f"{where}: bare {type(err).__name__}: {err}"
    assert shard in str(err), f"{where}: the error does not name {shard}: {err}"
    assert "\n" not in str(err), f"{where}: not one line: {err}"
    if key is not None:
        assert key in str(err), f"{where}: the error does not name sample {key}: {err}"


def _same_members(path: Path, original: bytes) -> bool:
    """The damaged tar still holds exactly the original members (e.g. a cut inside the zero padding at its end)."""
    try:
        return read_members(path) == read_members(io.BytesIO(original))
    except (tarfile.TarError, OSError):
        return False


def run_case(ds: Path, fault: Fault, data: bytes, totals: Counter, original: bytes) -> None:
    """Write the damaged shard 0 into ``ds`` and run every reader and ``verify`` over it (see the module doc)."""
    from datagen.verify import verify_dataset

    shard = shard_name(0)
    (ds / shard).write_bytes(data)
    bad = oracle(ds)
    key = None if fault.member is None else fault.member.split(".", 1)[0]
    where = f"{ds.name} {fault}"
    for reader in READERS:
        try:
            reader.run(ds, skip_bad=False)
        except Exception as e:
            check_named(e, shard, key if reader.name != "resampled" else None, f"{where} [{reader.name}]")
            assert bad > 0, f"{where} [{reader.name}]: raised though every sample decodes: {e}"
        else:
            assert bad == 0 or reader.name == "resampled", f"{where} [{reader.name}]: {bad} bad sample(s) passed"
        skipped = reader.run(ds, skip_bad=True)
        assert skipped in (bad, -1), f"{where} [{reader.name}]: skipped {skipped}, the oracle says {bad}"
        totals["reader runs"] += 2
    report = verify_dataset(ds, samples=0, checksums=True, progress=False)
    decoded = sum(s.decoded for s in report.shards)
    assert any(shard in p and ("sha256" in p or "bytes" in p) for p in report.problems), report.problems
    if fault.member is not None:  # the tar is intact: exactly the bad sample fails, named, the rest decode
        assert decoded == 2 * SHARD_SAMPLES - bad, (where, decoded, report.problems)
        if bad:
            assert any(key in p for p in report.problems), (where, report.problems)
        assert not any("holds" in p for p in report.problems), (where, report.problems)
    totals["cases"] += 1
    totals["detected" if bad else "undetected"] += 1
    if not bad and fault.member is None:  # damage to the tar that no reader noticed must have changed nothing
        assert _same_members(ds / shard, original), f"{where}: the tar changed, yet every sample read"
        totals["harmless"] += 1
    label = f"{fault.kind} {fault.member.split('.', 1)[1] if fault.member else 'file'}"
    totals[label] += 1
    if not bad:
        totals[f"undetected: {label}"] += 1


def _restore(ds: Path, original: bytes) -> None:
    (ds / shard_name(0)).write_bytes(original)


TOTALS: Counter = Counter()


@pytest.mark.parametrize(
    ("kind", "field"),
    [("dense", f) for f in ("img0.jpg", "img1.jpg", "pair.json", "dense.bin")]
    + [("sparse", f) for f in ("img0.jpg", "img1.jpg", "pair.json", "mask0.png", "mask1.png")],
)
def test_damaged_member_is_named_and_skipped_with_the_right_count(datasets, tmp_path, kind, field):
    ds = tmp_path / kind
    shutil.copytree(datasets[kind], ds)
    original = (ds / shard_name(0)).read_bytes()
    key = sample_keys(ds / shard_name(0))[HIT]
    totals: Counter = Counter()
    for fault, data in member_faults(datasets[kind] / shard_name(0), field, HIT, 0, MEMBER_FLIPS, MEMBER_CUTS):
        assert fault.member == f"{key}.{field}"
        run_case(ds, fault, data, totals, original)
    _restore(ds, original)
    assert oracle(ds) == 0
    assert totals["cases"] == MEMBER_FLIPS + MEMBER_CUTS + 1
    assert totals["detected"] >= 1 + 1  # leaving the member out and emptying it are always noticed
    TOTALS.update(totals)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_damaged_tar_is_named_and_skipped_with_the_right_count(datasets, tmp_path, kind):
    ds = tmp_path / kind
    shutil.copytree(datasets[kind], ds)
    original = (ds / shard_name(0)).read_bytes()
    totals: Counter = Counter()
    for fault, data in file_faults(datasets[kind] / shard_name(0), 0, FILE_CUTS, FILE_HEADERS):
        run_case(ds, fault, data, totals, original)
    assert totals["cases"] == FILE_CUTS + FILE_HEADERS and totals["detected"] >= totals["cases"] // 2
    TOTALS.update(totals)


def test_zz_print_totals():
    """The campaign's totals (``pytest -s`` shows them; docs/benchmarks.md records them)."""
    if not TOTALS:
        pytest.skip("run with the fault cases")
    print("\nfault injection:", json.dumps(dict(sorted(TOTALS.items()))))
    assert TOTALS["cases"] == TOTALS["detected"] + TOTALS["undetected"]


# ---------------------------------------------------------------------------------------------------------------
# train and eval on a dataset with one damaged member of each type


@pytest.fixture(scope="module")
def damaged(datasets, tmp_path_factory) -> tuple[Path, list[str]]:
    """The dense dataset with 4 of its 6 samples damaged (one member type each): the folder and the bad keys."""
    ds = tmp_path_factory.mktemp("damaged") / "dense"
    shutil.copytree(datasets["dense"], ds)
    bad_keys = []
    for shard, sample, field in ((0, 0, "dense.bin"), (0, 2, "pair.json"), (1, 0, "img1.jpg"), (1, 1, "dense.bin")):
        path = ds / shard_name(shard)
        fault, data = next(f for f in member_faults(path, field, sample, seed=3) if f[0].kind == "truncate")
        path.write_bytes(data)
        bad_keys.append(fault.member.split(".", 1)[0])
    # damage done before the manifest was written (a writer bug, a re-hashed copy): sizes and sha256 agree, so only
    # the decoders can notice
    manifest = DatasetManifest.load(ds)
    manifest.shards = [replace(e, bytes=(ds / e.name).stat().st_size, sha256=sha256_file(ds / e.name))
                       for e in manifest.shards]  # fmt: skip
    manifest.save(ds)
    assert oracle(ds) == 4
    return ds, bad_keys


def _train_manifest(tmp_path: Path, ds: Path, skip_bad: bool) -> Path:
    d = {
        "name": "faults",
        "device": "cpu",
        "cpu_threads": 1,
        "model": {
            "preset": "tiny",
            "split_index": 2,
            "matcher": {"symmetric": False, "head_init": "random", "geometry_heads": False},
        },
        "data": {"sources": {"chair": {"path": str(ds)}}, "batch_size": 2, "mode": "exact", "skip_bad": skip_bad},
        "stages": [
            {
                "name": "a",
                "steps": 3,  # one exact epoch: every sample read once
                "lr": 1e-3,
                "resolution": [28, 28],
                "data": {"chair": 1.0},
                "losses": {"dense_epe": {}},
            }
        ],
        "eval": {"source": {"path": str(ds)}, "every": 0, "pairs": 6, "batch_size": 2, "resolution": [28, 28]},
        "checkpoint": {"every": 100},
        "log": {"every": 1, "tensorboard": False},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def test_train_skips_and_counts_bad_samples_or_fails_in_one_line(damaged, tmp_path):
    from training.train.metrics import read_metrics

    ds, bad_keys = damaged
    base = [sys.executable, "-m", "training", "train", "--no-progress"]
    proc = subprocess.run(base + [str(_train_manifest(tmp_path, ds, skip_bad=False)), f"out_dir={tmp_path / 'a'}"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("semmatch train: rank 0: sample ") and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert any(k in line for k in bad_keys) and shard_name(0) in line or shard_name(1) in line, line
    proc = subprocess.run(base + [str(_train_manifest(tmp_path, ds, skip_bad=True)), f"out_dir={tmp_path / 'b'}"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    train = read_metrics(tmp_path / "b" / "metrics.jsonl", "train")
    assert train[-1]["skipped_samples"] == 4  # the exact epoch read each damaged sample once
    assert [r["skipped_samples"] for r in train] == sorted(r["skipped_samples"] for r in train)
    assert "skipping bad data" in proc.stderr  # and the log says so
    final_eval = read_metrics(tmp_path / "b" / "metrics.jsonl", "eval")[-1]
    assert final_eval["pairs"] == 2 * 2  # the 2 good pairs, both directions: the bad ones left out


def test_eval_names_the_bad_sample_or_skips_and_counts(damaged, tmp_path):
    ds, bad_keys = damaged
    base = [sys.executable, "-m", "training", "eval", "--checkpoint", "identity", "--shards", str(ds), "--size", "56"]
    proc = subprocess.run(base + ["--out", str(tmp_path / "a")], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("semmatch eval: sample ") and bad_keys[0] in line and shard_name(0) in line, line
    proc = subprocess.run(base + ["--out", str(tmp_path / "b"), "--skip-bad"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "b" / "pck.json").read_text())
    assert record["skipped_samples"] == 4
    assert "skipped 4 bad sample(s)" in proc.stderr
