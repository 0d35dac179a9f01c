"""Run manifests, data manifests, render configs and loss parameters: one config layer (``loaders.strict``);
every shipped manifest validates, bad ones fail with one error type whose message names the file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loaders.strict import from_dict
from training.train.manifest import ConfigError, RunManifest, apply_overrides, load_run_manifest, manifest_to_yaml

ROOT = Path(__file__).resolve().parents[2]
RUN_MANIFESTS = sorted((ROOT / "manifests" / "runs").glob("*.yaml"))
DATA_MANIFESTS = sorted((ROOT / "manifests" / "data").glob("*.yaml"))


def base() -> dict:
    return {
        "name": "t",
        "model": {"preset": "tiny", "split_index": 2},
        "data": {"sources": {"syn": {"synthetic": {}}}, "batch_size": 2},
        "stages": [
            {
                "name": "dense",
                "steps": 3,
                "lr": 1e-3,
                "resolution": [56, 56],
                "data": {"syn": 1.0},
                "losses": {"dense_epe": {"weight": 1.0}},
            }
        ],
    }


def write(tmp_path: Path, d: dict, name: str = "run.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


@pytest.mark.parametrize("path", RUN_MANIFESTS, ids=[p.name for p in RUN_MANIFESTS])
def test_shipped_run_manifests_validate(path):
    from training.train import model_setup

    m = load_run_manifest(path)
    assert m.total_steps > 0
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and "train manifests/runs/" + path.name in first, "first line: the exact command"
    offline = type(m.model)(**{**m.model.__dict__, "weights": None, "init": None})
    assert model_setup.check(offline) == []  # the model config builds (on the meta device)


def test_the_three_required_run_manifests_exist():
    names = {p.name for p in RUN_MANIFESTS}
    assert {"smoke_cpu.yaml", "chair_cpu_demo.yaml", "vggt1b_spair.yaml"} <= names


@pytest.mark.parametrize("path", DATA_MANIFESTS, ids=[p.name for p in DATA_MANIFESTS])
def test_shipped_data_manifests_validate(path):
    from training.train import loaders_bridge

    loaders_bridge.validate_data_manifest(path)


def test_vggt1b_recipe_has_the_papers_four_stages():
    m = load_run_manifest(ROOT / "manifests" / "runs" / "vggt1b_spair.yaml")
    assert m.model.preset == "vggt_1b" and m.model.weights
    losses = [set(s.losses) for s in m.stages]
    assert len(losses) == 4
    assert "dense_epe" in losses[0] and "sparse_epe" not in losses[0]
    assert "sparse_epe" in losses[1]
    assert {"cycle", "confidence"} <= losses[2]
    assert "smoothness" in losses[3] and all("smoothness" not in x for x in losses[:3])


def test_minimal_manifest_fills_defaults_and_round_trips(tmp_path):
    m = load_run_manifest(write(tmp_path, base()))
    assert m.optim.grad_clip == 1.0 and m.stages[0].trainable == ["@default"]
    assert m.run_dir == Path("runs/t")
    again = load_run_manifest(write(tmp_path, yaml.safe_load(manifest_to_yaml(m)), "again.yaml"))
    assert again == m


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda d: d.update(bogus=1), "unknown key 'bogus'"),
        (lambda d: d["model"].update(weigths="x.pt"), "model: unknown key 'weigths'"),
        (lambda d: d["stages"][0].update(stepz=3), r"stages\[0\]: unknown key 'stepz'"),
        (lambda d: d["data"]["sources"]["syn"].update(pth="x"), "data.sources.syn: unknown key 'pth'"),
        (lambda d: d["data"]["sources"]["syn"]["synthetic"].update(n=3), "data.sources.syn.synthetic: unknown key 'n'"),
        (lambda d: d.update(optim={"lr": 1}), "optim: unknown key 'lr'"),
    ],
)
def test_unknown_keys_name_the_file_and_key_path(tmp_path, mutate, path):
    d = base()
    mutate(d)
    f = write(tmp_path, d)
    with pytest.raises(ConfigError, match=rf"{f}: {path} \(allowed here: "):
        load_run_manifest(f)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["stages"][0].update(steps="many"), r"stages\[0\].steps: expected an integer"),
        (lambda d: d["stages"][0].pop("lr"), r"stages\[0\].lr: required key is missing"),
        (lambda d: d["stages"][0].update(resolution=[50, 56]), "multiples of 14"),
        (lambda d: d["stages"][0].update(data={"nope": 1.0}), r"stages\[0\].data.nope: no such source"),
        (lambda d: d["stages"][0]["losses"].update(epe={}), r"stages\[0\].losses.epe: unknown loss"),
        (lambda d: d["stages"][0]["losses"]["dense_epe"].update(tau=1), r"dense_epe.tau: unknown parameter"),
        (lambda d: d["data"]["sources"]["syn"].update(path="x"), "exactly one of 'path' and 'synthetic'"),
        (lambda d: d.update(precision="fp8"), "precision must be"),
        (lambda d: d["stages"].append(dict(d["stages"][0])), "stage names must be unique"),
        (lambda d: d.update(stages=[]), "stages is empty"),
    ],
)
def test_bad_values_are_rejected_with_a_message(tmp_path, mutate, message):
    d = base()
    mutate(d)
    with pytest.raises(ConfigError, match=message):
        load_run_manifest(write(tmp_path, d))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such run manifest"):
        load_run_manifest(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_manifest(bad)


def test_overrides_by_dotted_path_index_and_stage_name(tmp_path):
    f = write(tmp_path, base())
    m = load_run_manifest(
        f, ["stages.0.steps=7", "stages.dense.lr=2e-4", "seed=5", "eval.every=3", "model.weights=null", "out_dir=/x"]
    )
    assert m.stages[0].steps == 7 and m.stages[0].lr == 2e-4 and m.seed == 5 and m.eval.every == 3
    assert m.model.weights is None and m.run_dir == Path("/x")
    m = load_run_manifest(f, ["stages.0.resolution=[28, 42]", "stages.0.losses.smoothness={order: 1}"])
    assert m.stages[0].resolution == (28, 42) and m.stages[0].losses["smoothness"] == {"order": 1}


@pytest.mark.parametrize(
    "override, message",
    [
        ("stages.0.stepz=3", r"stages\[0\]: unknown key 'stepz'"),
        ("optim.lr=1", "optim: unknown key 'lr'"),
        ("stages.warmup.steps=3", "no list entry named 'warmup'"),
        ("stages.4.steps=3", "index 4 out of range"),
        ("seed", "not of the form key.path=value"),
        ("stages.0.steps=abc", "expected an integer"),
    ],
)
def test_bad_overrides_are_rejected(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_manifest(write(tmp_path, base()), [override])


def test_apply_overrides_does_not_touch_the_input():
    d = base()
    out = apply_overrides(d, ["stages.0.steps=9"], "x")
    assert d["stages"][0]["steps"] == 3 and out["stages"][0]["steps"] == 9


def test_strict_reports_top_level_type():
    with pytest.raises(ConfigError, match="expected a mapping"):
        from_dict(RunManifest, [1, 2], "f.yaml")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["stages"][0]["losses"]["dense_epe"].update(weight="abc"), "expected a number, got 'abc'"),
        (lambda d: d["stages"][0]["losses"].update(cycle={"weight": "abc"}), "expected a number, got 'abc'"),
        (lambda d: d["stages"][0]["losses"]["dense_epe"].update(eps=True), "expected a number, got True"),
        (lambda d: d["stages"][0]["losses"]["dense_epe"].update(pixels=3), "expected a string, got 3"),
    ],
)
def test_loss_parameters_go_through_the_config_layer(tmp_path, mutate, message):
    """Loss weights and parameters are typed by the loss functions' annotations; errors name file and key path."""
    d = base()
    mutate(d)
    f = write(tmp_path, d)
    with pytest.raises(ConfigError) as e:
        load_run_manifest(f)
    key = next(iter(k for k in ("cycle", "dense_epe") if k in str(e.value)))
    assert str(e.value).startswith(f"{f}: stages[0].losses.{key}.") and message in str(e.value)


def test_loss_weight_error_reads_file_then_key_path(tmp_path):
    d = base()
    d["stages"].append({**d["stages"][0], "name": "two", "losses": {"cycle": {"weight": "abc"}}})
    f = write(tmp_path, d)
    with pytest.raises(ConfigError, match=rf"^{f}: stages\[1\]\.losses\.cycle\.weight: expected a number, got 'abc'$"):
        load_run_manifest(f)


@pytest.mark.parametrize(
    "text, message",
    [
        ("sources:\n  a: {path: a}\nshuffle: true\n", "unknown key 'shuffle'"),
        ("sources:\n  a: {path: a, wieght: 2}\n", "sources.a: unknown key 'wieght'"),
        ("sources:\n  a: {path: a, weight: -1}\n", "sources.a.weight: must be a positive number"),
        ("sources:\n  a: {path: a, weight: abc}\n", "sources.a.weight: expected a number, got 'abc'"),
        ("sources:\n  a: {path: a, samples_per_shard: 1.5}\n", "sources.a.samples_per_shard: expected an integer"),
        ("sources:\n  a: {path: []}\n", "sources.a.path: must be a path/URL string"),
        ("sources:\n  a: {path: a, verify: md5}\n", "sources.a.verify: must be one of"),
        ("version: 2\nsources:\n  a: a\n", "version: 2 is not supported"),
        ("sources: {}\n", "sources must be a non-empty mapping"),
        ("- a\n", "expected a mapping, got list"),
    ],
)
def test_data_manifest_errors_are_the_same_config_error(tmp_path, text, message):
    from loaders.data_manifest import DataManifest

    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        DataManifest.load(f)
    assert str(e.value).startswith(f"{f}: ") and message in str(e.value)


def test_data_manifest_shorthand_and_null_verify(tmp_path):
    from loaders.data_manifest import DataManifest

    f = tmp_path / "m.yaml"
    f.write_text("verify: null\nsources:\n  a: x\n  b: {path: [y, z], weight: 2, verify: false}\n  c: {path: w}\n")
    m = DataManifest.load(f, data_root=tmp_path)
    assert m.verify == "none"
    assert [(s.name, s.specs, s.weight, s.verify) for s in m.sources] == [
        ("a", ["x"], 1.0, None),
        ("b", ["y", "z"], 2.0, "none"),
        ("c", ["w"], 1.0, None),
    ]


def test_render_config_is_read_by_the_same_layer():
    from datagen.config import OccluderConfig, RenderConfig

    cfg = RenderConfig(mesh_fraction=1, occluders=OccluderConfig(count=(1, 3), kinds=("box",)))
    back = RenderConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.fingerprint() == cfg.fingerprint()  # recorded ints stay ints: same fingerprint
    with pytest.raises(ConfigError, match=r"^dataset.json: camera: unknown key 'fov'"):
        RenderConfig.from_dict({"camera": {"fov": [1, 2]}}, where="dataset.json")
    with pytest.raises(ConfigError, match=r"^render config: occluders.count: expected 2 values, got 3"):
        RenderConfig.from_dict({"occluders": {"count": [1, 2, 3]}})
    with pytest.raises(ConfigError, match=r"^render config: size: expected an integer, got '56'"):
        RenderConfig.from_dict({"size": "56"})
    with pytest.raises(ConfigError, match=r"^render config: camera: truncation_fraction must lie in \[0, 1\]"):
        RenderConfig.from_dict({"camera": {"truncation_fraction": 2.0}})


def test_one_error_type_everywhere():
    from loaders import data_manifest, strict
    from training.train import manifest

    assert manifest.ConfigError is strict.ConfigError is data_manifest.ConfigError
    assert not hasattr(data_manifest, "DataManifestError")  # no second name for it
    from loaders.dataset_manifest import ManifestError  # a generated dataset.json, not a config: its own type

    assert not issubclass(ManifestError, strict.ConfigError) and issubclass(ManifestError, ValueError)
    assert issubclass(strict.ConfigError, ValueError)
