"""Shard writing: deterministic tars readable by stock webdataset and tar, atomic publishing, concurrent and
resumable runs, and refusing folders that hold something else. Uses the fake generator (tests/fake_pairs.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import fake_pairs
import numpy as np
import pytest
import webdataset as wds

from datagen.config import RenderConfig
from datagen.dataset_dir import DatasetExistsError, OutputFolderError
from datagen.shards import ShardWriteError, render_dataset_dir, sample_members, write_shard, write_shards, write_tar
from loaders.dataset_manifest import DatasetManifest, sha256_file, shard_name
from loaders.members import decode_sample

REPO = Path(__file__).resolve().parents[2]
CONFIG = RenderConfig(category="chair", n_pairs=10, shard_size=3, size=24)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden ones included), by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def dataset_files(root: Path) -> dict[str, str]:
    """The published dataset: shards and manifest (the ``.datagen`` bookkeeping excluded)."""
    return {k: v for k, v in snapshot(root).items() if not k.startswith(".datagen")}


def write(root: Path, config: RenderConfig = CONFIG, **kw) -> object:
    return write_shards(config, root, progress=False, generate=fake_pairs.generate_shard, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted single-process run of CONFIG."""
    root = tmp_path_factory.mktemp("ref") / "chair"
    write(root)
    return root


def test_tar_is_byte_identical_to_webdataset_tarwriter():
    samples = [fake_pairs.fake_sample(CONFIG, 0, j) for j in range(3)]
    ours = io.BytesIO()
    n, nbytes, sha = write_tar(samples, ours)
    stock = io.BytesIO()
    with wds.TarWriter(stock, mtime=0, encoder=False) as w:
        for s in samples:
            key, fields = sample_members(s)
            w.write({"__key__": key, **dict(fields)})
    assert ours.getvalue() == stock.getvalue()
    assert (n, nbytes, sha) == (3, len(ours.getvalue()), hashlib.sha256(ours.getvalue()).hexdigest())


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, reference):
    write(tmp_path / "again")
    assert dataset_files(tmp_path / "again") == dataset_files(reference)
    write(tmp_path / "seed1", RenderConfig(**{**CONFIG.to_dict(), "seed": 1, "camera": CONFIG.camera}))
    a, b = dataset_files(tmp_path / "seed1"), dataset_files(reference)
    assert a.keys() == b.keys() and all(a[k] != b[k] for k in a)


@pytest.mark.integration
def test_two_workers_give_the_same_dataset(tmp_path, reference):
    report = write(tmp_path / "w2", workers=2)
    assert dataset_files(tmp_path / "w2") == dataset_files(reference)
    assert report.pairs_made == CONFIG.n_pairs and {"raster", "encode", "write"} <= report.timings.keys()


def test_manifest_records_every_shard(reference):
    m = DatasetManifest.load(reference)
    assert m.complete and m.n_shards == 4 and m.n_samples == 10
    assert [s.samples for s in m.shards] == [3, 3, 3, 1]
    assert (
        m.generator["fingerprint"] == CONFIG.fingerprint() and RenderConfig.from_dict(m.generator["config"]) == CONFIG
    )
    assert m.verify_files(reference) == []
    assert not list((reference / ".datagen" / "tmp").iterdir())


def test_stock_webdataset_and_tar_read_the_shards(reference):
    url = str(reference / shard_name(0))
    raw = list(wds.WebDataset(url, shardshuffle=False))
    assert [r["__key__"] for r in raw] == ["s000000_00000", "s000000_00001", "s000000_00002"]
    sample = decode_sample(raw[1])
    expected = fake_pairs.fake_sample(CONFIG, 0, 1)
    assert np.array_equal(sample["status_0to1"], expected["status_0to1"])
    assert sample["meta"]["seed"] == [0, 0, 1]
    listing = subprocess.run(["tar", "-tf", url], capture_output=True, text=True, check=True).stdout.split()
    assert listing[:4] == [f"s000000_00000.{m}" for m in ("dense.bin", "img0.jpg", "img1.jpg", "pair.json")]
    assert len(listing) == 12
    with tarfile.open(url) as tar:
        assert {(m.mtime, m.uname, m.mode) for m in tar.getmembers()} == {(0, "bigdata", 0o444)}


def test_split_runs_into_one_folder_equal_one_run(tmp_path, reference):
    write(tmp_path / "split", shards=range(2, 4))
    assert not DatasetManifest.load(tmp_path / "split").complete
    write(tmp_path / "split", shards=range(0, 2))  # no --resume needed: none of these shards exists yet
    assert dataset_files(tmp_path / "split") == dataset_files(reference)


def test_folder_with_same_dataset_needs_resume(tmp_path, reference):
    root = tmp_path / "partial"
    write(root, shards=range(0, 2))
    before = snapshot(root)
    with pytest.raises(DatasetExistsError, match=r"already holds 2 of the 4 requested shards.*--resume"):
        write(root)
    assert snapshot(root) == before
    tmp = root / ".datagen" / "tmp"  # what a writer killed mid-way can leave: shard, receipt and manifest temps
    for name in ("pairs-000002.tar.deadhost.999.tmp", "pairs-000003.json.deadhost.999.tmp", "dataset.json.x.1.tmp"):
        (tmp / name).write_bytes(b"half")
    report = write(root, resume=True)
    assert [e.index for e in report.kept] == [0, 1] and [e.index for e in report.made] == [2, 3]
    assert dataset_files(root) == dataset_files(reference)
    assert not list(tmp.iterdir())


def test_resume_remakes_a_corrupted_shard(tmp_path, reference):
    root = tmp_path / "corrupt"
    write(root)
    path = root / shard_name(1)
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF  # same size, different content: only the checksum notices
    path.write_bytes(bytes(data))
    report = write(root, resume=True)
    assert [e.index for e in report.made] == [1]
    assert dataset_files(root) == dataset_files(reference)


def test_refuses_a_different_dataset_and_touches_nothing(tmp_path, reference):
    root = tmp_path / "other"
    write(root)
    before = snapshot(root)
    bigger = RenderConfig(**{**CONFIG.to_dict(), "n_pairs": 12, "camera": CONFIG.camera})
    for resume in (False, True):
        with pytest.raises(OutputFolderError, match=r"holds a different dataset \(n_pairs 10 there vs 12 here"):
            write(root, bigger, resume=resume)
    assert snapshot(root) == before


def test_refuses_a_folder_of_unrelated_files(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match=r"not empty and holds no dataset.json \(found notes.txt\)"):
        write(root)
    assert snapshot(root) == {"notes.txt": hashlib.sha256(b"keep me").hexdigest()}
    (root / "notes.txt").unlink()
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(OutputFolderError, match=r"dataset.json: not valid JSON"):
        write(root, resume=True)
    assert sorted(p.name for p in root.iterdir()) == ["dataset.json"]


def test_refuses_a_read_only_folder(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("running as a user who can write to a 0o555 folder (root)")
        with pytest.raises(OutputFolderError, match="not writable"):
            write(root / "data")
    finally:
        root.chmod(0o755)


def test_write_shard_rejects_wrong_count_and_bad_keys(tmp_path):
    dataset = render_dataset_dir(CONFIG, tmp_path / "d")
    dataset.claim()
    with pytest.raises(ShardWriteError, match="gave 1 samples, expected 3"):
        write_shard(dataset, 0, fake_pairs.generate_shard(CONFIG, 3), expected_samples=3)  # shard 3 has 1 sample
    bad = fake_pairs.fake_sample(CONFIG, 0, 0)
    with pytest.raises(ShardWriteError, match="without '.'"):
        write_shard(dataset, 0, [{**bad, "__key__": "a.b"}])
    with pytest.raises(ShardWriteError, match="appears twice"):
        write_shard(dataset, 0, [bad, bad])
    assert not (tmp_path / "d" / shard_name(0)).exists()
    assert not list((tmp_path / "d" / ".datagen" / "tmp").iterdir())
    assert DatasetManifest.load(tmp_path / "d").shards == []


def test_a_shard_owned_by_a_live_process_is_left_to_it(tmp_path):
    dataset = render_dataset_dir(CONFIG, tmp_path / "d")
    dataset.claim()
    with dataset.own_shard(2) as owned:
        assert owned
        # flock belongs to an open file description, so a second open here contends exactly as another process
        assert write_shard(dataset, 2, fake_pairs.generate_shard(CONFIG, 2)) is None
    assert not (tmp_path / "d" / shard_name(2)).exists()
    assert write_shard(dataset, 2, fake_pairs.generate_shard(CONFIG, 2)) is not None


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.mark.integration
def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, reference):
    root = tmp_path / "killed"
    code = (
        "from datagen.shards import write_shards; from datagen.config import RenderConfig; import fake_pairs; "
        f"write_shards(RenderConfig.from_dict({CONFIG.to_dict()!r}), {str(root)!r}, progress=False, "
        "generate=fake_pairs.generate_shard)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(FAKE_PAIRS_DELAY_S="0.3"), cwd=REPO)
    receipt = root / ".datagen" / "receipts" / "pairs-000000.json"
    deadline = time.monotonic() + 60
    while not (receipt.exists() and any((root / ".datagen" / "tmp").glob("pairs-000001.tar.*"))):
        assert proc.poll() is None and time.monotonic() < deadline, "the writer ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (root / shard_name(0)).exists() and not (root / shard_name(1)).exists()
    stale = list((root / ".datagen" / "tmp").glob("pairs-000001.tar.*"))
    assert stale, "the killed run should leave its half-written shard behind"
    with pytest.raises(DatasetExistsError, match="--resume"):
        write(root)
    report = write(root, resume=True)
    assert [e.index for e in report.kept] == [0] and [e.index for e in report.made] == [1, 2, 3]
    assert not any(p.exists() for p in stale) and not list((root / ".datagen" / "tmp").iterdir())
    assert dataset_files(root) == dataset_files(reference)
    assert json.loads((root / "dataset.json").read_text()) == json.loads((reference / "dataset.json").read_text())
    assert sha256_file(root / shard_name(1)) == sha256_file(reference / shard_name(1))


def test_read_only_check_runs_before_anything_is_written(tmp_path, monkeypatch):
    """The same refusal where the test runs as root (who may write anywhere): os.access says no."""
    root = tmp_path / "ro"
    root.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == root else real_access(p, mode))
    with pytest.raises(OutputFolderError, match=f"{root} is not writable"):
        write(root)
    with pytest.raises(OutputFolderError, match=f"{root / 'sub'} cannot be created: {root} is not writable"):
        write(root / "sub")
    assert list(root.iterdir()) == []
