"""Sources: the round trip writer -> tar -> batch, local/brace/glob/folder/http/pipe URLs, checksums, data
manifests (strict YAML), the ``python -m loaders`` command and the loader benchmark's code paths."""

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from loaders_samples import affine_pair, small_sample, write_dataset

from loaders.batch import MAX_KEYPOINTS, collate_pairs, to_item
from loaders.cli import main as cli_main
from loaders.data_manifest import DataManifest
from loaders.loader import PairLoader
from loaders.members import decode_sample, encode_sample
from loaders.schema import CORR_STEP_PX, Status
from loaders.sources import ShardError, ShardReader, expand_spec, verify_shards
from loaders.stream import PairStream
from loaders.strict import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def wds_write(path, samples):
    """Write through encode_sample with stock webdataset's TarWriter (mtime=0: byte-identical shards)."""
    with wds.TarWriter(str(path), mtime=0) as w:
        for s in samples:
            w.write(encode_sample(s))


def test_round_trip_field_for_field(tmp_path):
    dense = affine_pair((56, 70), (56, 70), seed=4)
    dense["meta"]["source"] = "procedural"
    dense["__key__"] = "s000000_00000"
    sparse = affine_pair((42, 56), (42, 56), seed=5, dense=False)
    sparse["__key__"] = "s000000_00001"
    sparse["mask0"] = np.zeros((42, 56), bool)
    sparse["mask0"][5:30, 10:40] = True
    sparse["mask1"] = ~sparse["mask0"]
    sparse["kps1_vis"][2] = False
    wds_write(tmp_path / "pairs-000000.tar", [dense, sparse])
    loader = PairLoader(PairStream([str(tmp_path / "pairs-000000.tar")], shuffle=False, progress=False), 1)
    batches = {b["key"][0]: b for b in loader}
    assert set(batches) == {"s000000_00000", "s000000_00001"}

    b, s = batches["s000000_00000"], dense
    assert b["meta"][0] == s["meta"] and b["has_dense"].item() and b["has_camera"].item() and b["has_mask"].item()
    assert np.abs(b["images"][0, 0].permute(1, 2, 0).numpy() * 255 - s["image0"]).mean() < 12  # JPEG q95
    for v, d in ((0, "0to1"), (1, "1to0")):
        st = s[f"status_{d}"]
        stored = np.isin(st, [Status.MATCHED, Status.OCCLUDED, Status.OUTSIDE])
        assert np.array_equal(b["status"][0, v].numpy(), st)
        assert np.array_equal(b["valid"][0, v].numpy(), st == Status.MATCHED)
        assert np.array_equal(b["mask"][0, v].numpy(), st != Status.BACKGROUND)
        corr = b["corr"][0, v].numpy()
        assert np.abs(corr[stored] - s[f"corr_{d}"][stored]).max() <= CORR_STEP_PX / 2 + 1e-5
        assert (corr[~stored] == 0).all()
        assert np.abs(b["depth"][0, v].numpy() - s[f"depth{v}"]).max() <= 0.5e-5 + 1e-6
        assert np.array_equal(b["K"][0, v].numpy(), s[f"K{v}"])
        assert np.array_equal(b["T_cam_from_world"][0, v].numpy(), s[f"T_cam{v}_from_world"])
        n = len(s["meta"]["keypoint_names"])
        vis = s[f"kps{v}_vis"]
        assert np.array_equal(b["kps_vis"][0, v, :n].numpy(), vis) and not b["kps_vis"][0, v, n:].any()
        assert np.allclose(b["kps"][0, v, :n].numpy()[vis], s[f"kps{v}"][vis])

    b, s = batches["s000000_00001"], sparse
    assert not b["has_dense"].item() and b["has_mask"].item() and not b["has_camera"].item()
    assert np.array_equal(b["mask"][0, 0].numpy(), s["mask0"]) and np.array_equal(b["mask"][0, 1].numpy(), s["mask1"])
    assert not b["valid"].any() and (b["corr"] == 0).all() and (b["depth"] == 0).all()
    assert np.array_equal(b["K"][0].numpy(), np.stack([np.eye(3)] * 2))
    assert b["kps_vis"][0, 1, :5].tolist() == s["kps1_vis"].tolist()

    # the same shard read by stock webdataset decodes to the same sample dict
    raw = next(iter(wds.WebDataset(str(tmp_path / "pairs-000000.tar"), shardshuffle=False)))
    d = decode_sample(raw)
    assert np.array_equal(d["status_0to1"], dense["status_0to1"]) and d["meta"] == dense["meta"]


def test_batch_keys_shapes_and_collate_errors():
    items = [to_item(small_sample(0, i)) for i in range(3)]
    b = collate_pairs(items)
    assert b["images"].shape == (3, 2, 3, 28, 28) and b["images"].dtype.is_floating_point
    assert b["corr"].shape == (3, 2, 28, 28, 2) and b["kps"].shape == (3, 2, MAX_KEYPOINTS, 2)
    assert b["kps_vis"].shape == (3, 2, MAX_KEYPOINTS) and MAX_KEYPOINTS >= 33  # aeroplane's keypoints fit
    assert b["K"].shape == (3, 2, 3, 3) and b["T_cam_from_world"].shape == (3, 2, 4, 4)
    assert b["has_dense"].tolist() == [True] * 3 and b["status"].dtype.is_floating_point is False
    odd = to_item(affine_pair((28, 42), (28, 42)))
    with pytest.raises(ValueError, match="differ in size"):
        collate_pairs([items[0], odd])
    with pytest.raises(ValueError, match="views are"):
        to_item(affine_pair((28, 28), (30, 28)))


def test_spec_forms_local(tmp_path):
    ds = write_dataset(tmp_path / "ds", [2, 1, 3])
    by_dir = expand_spec(str(ds))
    assert [r.samples for r in by_dir] == [2, 1, 3] and all(r.sha256 for r in by_dir)
    assert [r.url for r in expand_spec(str(ds / "dataset.json"))] == [r.url for r in by_dir]
    brace = expand_spec("ds/pairs-{000000..000002}.tar", base=tmp_path)
    assert [r.url for r in brace] == [r.url for r in by_dir]
    assert len(expand_spec(str(ds / "*.tar"))) == 3
    with pytest.raises(ShardError, match="pairs-000008.tar: no such shard"):
        expand_spec(str(ds / "pairs-00000{8..9}.tar"))
    with pytest.raises(ShardError, match="needs a dataset.json"):
        expand_spec(str(tmp_path))
    n = sum(1 for _ in PairStream([f"pipe:cat {ds}/pairs-{{000000..000002}}.tar"], "resampled", epoch_samples=7))
    assert n == 7
    with pytest.raises(ShardError, match="exit status"), ShardReader("pipe:cat /nonexistent/x.tar") as r:
        list(r)


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path`` (a thread; no network)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_streams_shards_over_http(http_root):
    root, url = http_root
    write_dataset(root / "ds", [3, 2])
    exact = PairStream([f"{url}/ds/dataset.json"], mode="exact", progress=False)
    keys = sorted(b["key"][0] for b in PairLoader(exact, 1))
    assert keys == ["s000000_00000", "s000000_00001", "s000000_00002", "s000001_00000", "s000001_00001"]
    assert verify_shards(exact.sources[0].shards, "sha256", progress=False) == []
    brace = PairStream([f"{url}/ds/pairs-{{000000..000001}}.tar"], mode="resampled", epoch_samples=6)
    assert sum(len(b["key"]) for b in PairLoader(brace, 2, num_workers=2)) == 6
    with pytest.raises(ShardError, match=r"pairs-000007.tar: cannot open \(HTTPError"):
        list(PairStream([f"{url}/ds/pairs-000007.tar"], mode="resampled", epoch_samples=1))


def test_checksum_verification_names_the_shard(tmp_path):
    ds = write_dataset(tmp_path / "ds", [2, 2])
    PairStream([str(ds)], verify="sha256", progress=False)  # intact: fine
    p = ds / "pairs-000001.tar"
    data = bytearray(p.read_bytes())
    data[700] ^= 0xFF  # same size, different bytes
    p.write_bytes(bytes(data))
    PairStream([str(ds)], verify="size", progress=False)  # size alone cannot see it
    with pytest.raises(ShardError, match="pairs-000001.tar: sha256 differs"):
        PairStream([str(ds)], verify="sha256", progress=False)
    p.write_bytes(bytes(data[:-512]))
    with pytest.raises(ShardError, match="pairs-000001.tar: .* bytes, manifest says"):
        PairStream([str(ds)], verify="size", progress=False)


def write_yaml(path, text):
    path.write_text(text)
    return path


def test_data_manifest_is_strict_and_expands_env(tmp_path, monkeypatch):
    write_dataset(tmp_path / "data" / "a", [2])
    write_dataset(tmp_path / "data" / "b", [1, 1])
    good = write_yaml(
        tmp_path / "m.yaml",
        "data_root: ${MY_ROOT:-data}\nverify: size\nsources:\n  a: {path: a, weight: 3}\n  b: b\n",
    )
    srcs = DataManifest.load(good).resolve()
    assert [(s.name, s.weight, s.n_samples, s.verify) for s in srcs] == [("a", 3.0, 2, "size"), ("b", 1.0, 2, "size")]
    monkeypatch.setenv("MY_ROOT", str(tmp_path / "data"))
    assert DataManifest.load(good).data_root == str(tmp_path / "data")
    bad_cases = {
        "sources:\n  a: {path: a}\nshuffle: true\n": "unknown key 'shuffle'",
        "sources:\n  a: {path: a, wieght: 2}\n": r"sources.a: unknown key 'wieght'",
        "sources:\n  a: {path: a, weight: -1}\n": r"sources.a.weight: must be a positive number",
        "sources: {}\n": "sources must be a non-empty mapping",
        "verify: md5\nsources:\n  a: a\n": "verify: must be one of",
        "data_root: ${NOPE_NOT_SET}\nsources:\n  a: a\n": "NOPE_NOT_SET is not set",
        "sources: [\n": "not valid YAML",
    }
    for text, message in bad_cases.items():
        f = write_yaml(tmp_path / "bad.yaml", text)
        with pytest.raises(ConfigError, match=f"{f}: .*{message}"):
            DataManifest.load(f)


@pytest.mark.parametrize("name", ["chair.yaml", "mixed.yaml"])
def test_shipped_data_manifests_load_and_resolve_under_a_data_root(name, tmp_path, monkeypatch):
    path = ROOT / "manifests" / "data" / name
    assert path.read_text().startswith("# python -m loaders stats manifests/data/")
    m = DataManifest.load(path)
    assert m.data_root.endswith("data") and "/YOUR/" not in path.read_text()
    for spec in m.sources:
        write_dataset(tmp_path / spec.specs[0], [1])
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    assert all(s.n_samples == 1 for s in DataManifest.load(path).resolve())


def printed_table(out, caption):
    """The Markdown table printed after the line starting with ``caption``: one dict of cell texts per row."""
    lines = out.split("\n" + caption, 1)[1].splitlines()[1:]
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    head, rule, *rows = block
    assert set("".join(rule)) <= set("-:|"), rule
    return [dict(zip(head, r, strict=True)) for r in rows]


def test_cli_stats_prints_sources_mixture_and_speed(tmp_path, capsys):
    write_dataset(tmp_path / "a", [4])
    write_dataset(tmp_path / "b", [4])
    m = write_yaml(tmp_path / "m.yaml", "sources:\n  a: {path: a, weight: 3}\n  b: {path: b, weight: 1}\n")
    assert cli_main(["stats", str(m), "-k", "400", "--decode", "4", "--transforms", "none"]) == 0
    out = "\n" + capsys.readouterr().out
    a = printed_table(out, "sources:")[0]
    assert (a["source"], a["weight"], a["share"], a["shards"], a["samples"]) == ("a", "3", "0.750", "1", "4")
    assert "| a      | " in out  # a Markdown table whose text is aligned too
    mix = printed_table(out, "mixture drawn over 400 samples")
    assert [r["source"] for r in mix] == ["a", "b"] and sum(int(r["drawn"]) for r in mix) == 400
    assert abs(float(mix[0]["drawn_share"]) - 0.75) < 0.08 and mix[0]["asked_share"] == "0.750"
    decode = printed_table(out, "speed")[1]
    assert (decode["stage"], decode["n"], decode["transforms"]) == ("decode", "4", "none")
    assert float(decode["per_s"]) > 0 and decode["unit"] == "pairs into float32 batches"
    assert cli_main(["verify", str(m)]) == 0
    shutil.rmtree(tmp_path / "b")
    assert cli_main(["stats", str(m)]) == 2
    assert "b: no such shard or dataset folder" in capsys.readouterr().err


def test_cli_stats_report_holds_the_printed_numbers(tmp_path, capsys):
    """``--report`` writes the printed tables: the CSV read back with pandas gives the printed numbers (at full
    precision), the JSON the same rows, the Markdown the printed text; an unknown suffix is one line, exit 2."""
    import pandas as pd

    a, b = write_dataset(tmp_path / "a", [4]), write_dataset(tmp_path / "b", [3, 2])
    m = write_yaml(tmp_path / "m.yaml", "sources:\n  a: {path: a, weight: 3}\n  b: {path: b, weight: 1}\n")
    run = ["stats", str(m), "-k", "200", "--decode", "2", "--transforms", "none", "--seed", "3"]
    assert cli_main(run + ["--report", str(tmp_path / "out" / "stats.csv")]) == 0
    out = "\n" + capsys.readouterr().out
    csv = pd.read_csv(tmp_path / "out" / "stats.csv")
    assert list(csv["table"].unique()) == ["sources", "mixture", "speed"]

    def rows(name):
        return csv[csv["table"] == name].to_dict("records")

    sizes = {"a": sum(p.stat().st_size for p in a.glob("*.tar")), "b": sum(p.stat().st_size for p in b.glob("*.tar"))}
    for shown, r in zip(printed_table(out, "sources:"), rows("sources"), strict=True):
        assert shown["source"] == r["source"] and shown["path"] == r["path"] == str(tmp_path / r["source"])
        assert float(shown["weight"]) == r["weight"] and shown["share"] == f"{r['share']:.3f}"
        assert int(shown["shards"]) == r["shards"] and int(shown["samples"]) == r["samples"]
        assert r["bytes"] == sizes[r["source"]] and shown["bytes"] == f"{r['bytes'] / 1000:.1f} KB"
    assert [r["samples"] for r in rows("sources")] == [4, 5] and [r["shards"] for r in rows("sources")] == [1, 2]
    assert [r["share"] for r in rows("sources")] == [0.75, 0.25]
    for shown, r in zip(printed_table(out, "mixture drawn over 200 samples"), rows("mixture"), strict=True):
        assert shown["source"] == r["source"] and int(shown["drawn"]) == r["drawn"]
        assert shown["drawn_share"] == f"{r['drawn_share']:.3f}" and r["drawn_share"] == r["drawn"] / 200
        assert shown["asked_share"] == f"{r['asked_share']:.3f}"
    assert sum(r["drawn"] for r in rows("mixture")) == 200
    speed = rows("speed")
    for shown, r in zip(printed_table(out, "speed"), speed, strict=True):
        assert shown["stage"] == r["stage"] and int(shown["n"]) == r["n"]
        assert shown["seconds"] == f"{r['seconds']:.2f}" and shown["per_s"] == f"{r['per_s']:.1f}"
        assert r["per_s"] == pytest.approx(r["n"] / r["seconds"])
    assert [(r["stage"], r["n"]) for r in speed] == [("read", 200), ("decode", 2)]

    assert cli_main(run + ["--report", str(tmp_path / "stats.json")]) == 0
    printed = capsys.readouterr().out
    tables = json.loads((tmp_path / "stats.json").read_text())
    assert list(tables) == ["sources", "mixture", "speed"]
    keep = ["source", "path", "weight", "share", "shards", "samples", "bytes"]
    assert tables["sources"] == [{k: r[k] for k in keep} for r in rows("sources")]
    mixture = ["source", "drawn", "drawn_share", "asked_share"]
    assert tables["mixture"] == [{k: r[k] for k in mixture} for r in rows("mixture")]  # same seed: the same draws
    assert tables["speed"][0]["transforms"] is None and tables["speed"][1]["transforms"] == "none"

    assert cli_main(run + ["--report", str(tmp_path / "stats.md")]) == 0
    printed = capsys.readouterr().out
    md = (tmp_path / "stats.md").read_text()
    assert printed == md + f"\nreport: {tmp_path / 'stats.md'}\n" and md.startswith(f"manifest  {m}\n")

    assert cli_main(run + ["--report", str(tmp_path / "stats.xlsx")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not (tmp_path / "stats.xlsx").exists()
    message = "a report is written as .md, .csv, .json (by the suffix)"
    assert captured.err == f"error: {tmp_path / 'stats.xlsx'}: {message}\n"


def test_dataset_manifest_json_is_what_the_stream_reads(tmp_path):
    ds = write_dataset(tmp_path / "ds", [2])
    d = json.loads((ds / "dataset.json").read_text())
    assert d["n_samples"] == 2 and d["complete"]
    assert len(list(ShardReader(str(ds / "pairs-000000.tar")))) == 2


def test_bench_runs_on_a_tiny_shard():
    """The benchmark's code paths work (its timings are not asserted: scripts/bench_loaders.py reports them)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_loaders.py"
    spec = importlib.util.spec_from_file_location("bench_loaders", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.run(n=3, size=56, rounds=1, batch=2, photo=True)
    assert [r[0] for r in res["rows"]] == list(bench.pipelines(56)) and all(r[1] > 0 for r in res["rows"])


def test_cli_help_is_plain_text(capsys):
    """``python -m loaders --help`` prints readable text: no reStructuredText markup."""
    for argv in (["--help"], ["stats", "--help"], ["verify", "--help"]):
        with pytest.raises(SystemExit):
            cli_main(argv)
        text = capsys.readouterr().out
        assert "usage: python -m loaders" in text and "``" not in text and ":func:" not in text
