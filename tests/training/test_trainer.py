"""The training loop on the real tiny matcher and in-memory synthetic pairs: exact resume, stage switching,
the non-finite guard, run-folder records, and bad manifests failing before any training step."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from tiny_manifest import tiny_model_and_data

from training.train import model_setup
from training.train.hooks import ModelHooks, default_hooks, select_trainable
from training.train.manifest import ConfigError, load_run_manifest
from training.train.metrics import read_metrics
from training.train.preflight import preflight
from training.train.schedule import lr_factor
from training.train.trainer import Trainer


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and the CI machine's 2 cores are shared)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def manifest_dict(out_dir: Path, **top) -> dict:
    d = {
        "name": "tiny",
        "out_dir": str(out_dir),
        "device": "cpu",
        "cpu_threads": 1,
        **tiny_model_and_data(),
        "stages": [
            {
                "name": "dense",
                "steps": 3,
                "lr": 2e-3,
                "resolution": [28, 42],
                "data": {"syn": 1.0},
                "losses": {"dense_epe": {"weight": 1.0}, "matchability": {"weight": 0.1}},
            },
            {
                "name": "cycle",
                "steps": 2,
                "lr": 1e-3,
                "resolution": [28, 28],
                "data": {"syn": 1.0},
                "trainable": ["@all"],
                "losses": {"cycle": {}, "confidence": {}, "smoothness": {"weight": 0.1}, "dense_epe": {}},
            },
        ],
        "optim": {"warmup_steps": 1},
        "checkpoint": {"every": 2, "keep": 0},
        "log": {"every": 1, "tensorboard": False},
    }
    d.update(top)
    return d


def write(tmp_path: Path, d: dict, name: str = "run.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


def run(path: Path, overrides=(), stop_at=None, hooks=None) -> Trainer:
    trainer = Trainer(
        load_run_manifest(path, list(overrides)), hooks or default_hooks(), progress=False, stop_at_step=stop_at
    )
    trainer.run()
    return trainer


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [2, 3])  # inside the first stage, and exactly at the stage boundary
def test_resume_equals_uninterrupted_training(tmp_path, stop_at):
    f = write(tmp_path, manifest_dict(tmp_path / "x"))
    run(f, [f"out_dir={tmp_path / 'straight'}"])
    run(f, [f"out_dir={tmp_path / 'resumed'}"], stop_at=stop_at)
    assert not (tmp_path / "resumed" / "model").exists()
    run(f, [f"out_dir={tmp_path / 'resumed'}", "resume=true"])
    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    before = load_file(str(tmp_path / "straight" / "checkpoints" / "step_000002" / "model.safetensors"))
    assert any(not torch.equal(before[k], a[k]) for k in a)  # training changed the weights
    resumed_metrics = read_metrics(tmp_path / "resumed" / "metrics.jsonl", "train")
    straight_metrics = read_metrics(tmp_path / "straight" / "metrics.jsonl", "train")
    assert [r["step"] for r in resumed_metrics] == [1, 2, 3, 4, 5][: len(resumed_metrics)] or len(resumed_metrics) == 5
    last = {r["step"]: r["objective"] for r in straight_metrics}
    for r in resumed_metrics:
        assert math.isclose(r["objective"], last[r["step"]], rel_tol=1e-5), r["step"]


@pytest.mark.slow
def test_run_folder_records_manifest_code_environment_and_checkpoints(tmp_path):
    d = manifest_dict(tmp_path / "run")
    d["eval"] = {"source": {"synthetic": {}}, "every": 3, "pairs": 4, "batch_size": 2, "resolution": [28, 28]}
    t = run(write(tmp_path, d))
    run_dir = tmp_path / "run"
    resolved = yaml.safe_load((run_dir / "manifest.resolved.yaml").read_text())
    assert resolved["optim"]["grad_clip"] == 1.0 and resolved["stages"][1]["trainable"] == ["@all"]
    info = json.loads((run_dir / "run_info.json").read_text())
    assert "git_sha" in info["code"] and "git_dirty" in info["code"]
    assert info["environment"]["torch"] == torch.__version__ and info["environment"]["world_size"] == 1
    ckpts = run_dir / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "step_000005"
    names = sorted(p.name for p in ckpts.iterdir())
    assert names == ["latest", "step_000002", "step_000003", "step_000004", "step_000005"]  # every 2, stage end, end
    assert sorted(p.name for p in (ckpts / "step_000005").iterdir()) == [
        "model.safetensors",
        "model_config.json",
        "optimizer.pt",
        "rank_00000.pt",
        "trainer.pt",
    ]
    records = read_metrics(run_dir / "metrics.jsonl")
    splits = {r["split"] for r in records}
    assert {"train", "eval", "baseline", "identity", "final"} <= splits
    assert [r["step"] for r in records if r["split"] == "eval"] == [0, 3, 5]
    assert all("pck@0.1" in r and "epe_px" in r for r in records if r["split"] in ("eval", "baseline", "identity"))
    # the offset head starts at the identity warp: the untrained model scores exactly the identity reference
    first, identity = (next(r for r in records if r["split"] == s) for s in ("eval", "identity"))
    assert first["step"] == identity["step"] == 0
    assert first["pck@0.1"] == identity["pck@0.1"] and abs(first["epe_px"] - identity["epe_px"]) < 1e-4
    assert [r["stage"] for r in records if r["split"] == "train"] == ["dense"] * 3 + ["cycle"] * 2
    assert records[-1]["ranks_in_sync"] == 1.0
    from training.model import load_matcher

    model = load_matcher(run_dir / "model")  # the final matcher is standalone
    out = model(torch.rand(1, 2, 3, 28, 28))
    assert out["grid"].shape == (1, 2, 28, 28, 2)
    assert t.global_step == 5

    from training.train.export import export_comparisons
    from training.train.plots import plot_run

    assert plot_run(run_dir, tmp_path / "curves.png").stat().st_size > 10_000
    paths = export_comparisons(run_dir, tmp_path / "compare")
    untrained = load_matcher(paths["untrained"])
    start = load_file(str(run_dir / "checkpoints" / "step_000002" / "model.safetensors"))
    frozen = "vggt.aggregator.frame_blocks.3.attn.qkv.weight"  # never trained: equal to the initial weights
    assert torch.equal(untrained.state_dict()[frozen], start[frozen])
    baseline = load_matcher(paths["zeroshot_trained"])
    trunk = "vggt.aggregator.frame_blocks.0.attn.qkv.weight"
    assert torch.equal(baseline.state_dict()[trunk], model.state_dict()[trunk])


@pytest.mark.slow
def test_stages_switch_trainable_parameters(tmp_path):
    run_dir = tmp_path / "run"
    run(write(tmp_path, manifest_dict(run_dir)))
    init = load_file(str(run_dir / "checkpoints" / "step_000002" / "model.safetensors"))  # after 2 of 3 steps
    end_dense = load_file(str(run_dir / "checkpoints" / "step_000003" / "model.safetensors"))
    end = final_weights(run_dir)
    trunk = "vggt.aggregator.frame_blocks.0.attn.qkv.weight"
    head = "semantic_head.scratch.output_conv2.2.weight"
    assert torch.equal(init[trunk], end_dense[trunk])  # frozen in stage "dense" (@default)
    assert not torch.equal(end_dense[trunk], end[trunk])  # trained in stage "cycle" (@all)
    assert not torch.equal(init[head], end_dense[head])
    unused = "vggt.aggregator.frame_blocks.3.attn.qkv.weight"  # VGGT's own copy above the split is never trained
    assert torch.equal(init[unused], end[unused])


def test_select_trainable_groups_and_globs():
    spec = load_run_manifest.__globals__["ModelSpec"](preset="tiny", split_index=2, matcher={"geometry_heads": False})
    model = model_setup.build(spec)
    groups = model_setup.groups(model)
    names = select_trainable(model, ["@default"], groups)
    assert names and all(n.startswith(("semantic_branch.", "semantic_head.")) for n in names)
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith("vggt."))
    names = select_trainable(model, ["semantic_head.*"], groups)
    assert all(n.startswith("semantic_head.") for n in names)
    from training.train.manifest import OptimSpec
    from training.train.schedule import build_optimizer

    opt = build_optimizer(model, 1e-3, OptimSpec(weight_decay=0.1))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in model.parameters() if p.requires_grad}  # frozen ones excluded
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.1}
    with pytest.raises(ValueError, match="unknown parameter group '@heads'"):
        select_trainable(model, ["@heads"], groups)
    with pytest.raises(ValueError, match="matches no parameter"):
        select_trainable(model, ["decoder.*"], groups)


def test_non_finite_loss_is_skipped_and_reported(tmp_path):
    hooks = default_hooks()
    calls = {"n": 0}

    def build(spec):
        model = model_setup.build(spec)
        original = model.forward

        def forward(images, **kw):
            out = original(images, **kw)
            calls["n"] += 1
            if calls["n"] == 2:  # the second training step
                out = {**out, "grid": out["grid"] * float("nan")}
            return out

        model.forward = forward
        return model

    d = manifest_dict(tmp_path / "run")
    d["stages"] = d["stages"][:1]
    trainer = run(write(tmp_path, d), hooks=ModelHooks(**{**hooks.__dict__, "build": build}))
    assert trainer.skipped_steps == 1
    train = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    assert [r["skipped_steps"] for r in train] == [0, 1, 1]
    assert isinstance(train[1]["objective"], str)  # "nan", recorded as such
    for k, v in final_weights(tmp_path / "run").items():
        assert torch.isfinite(v).all(), k


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 10, 2, "cosine", 0.1) == 0.5
    assert lr_factor(1, 10, 2, "cosine", 0.1) == 1.0
    assert lr_factor(2, 10, 2, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(9, 10, 2, "cosine", 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert lr_factor(10, 10, 2, "cosine", 0.1) == pytest.approx(0.1)
    mid = lr_factor(5, 10, 2, "cosine", 0.0)
    assert mid == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 8)))
    assert lr_factor(7, 10, 2, "constant", 0.0) == 1.0


# ------------------------------------------------------------------------------------------ bad manifests


def test_preflight_names_missing_data_folders_and_weights(tmp_path):
    d = manifest_dict(tmp_path / "run")
    d["data"]["sources"]["real"] = {"path": str(tmp_path / "no_such_shards")}
    d["stages"][0]["data"] = {"syn": 1.0, "real": 1.0}
    d["model"]["weights"] = str(tmp_path / "missing.pt")
    m = load_run_manifest(write(tmp_path, d))
    with pytest.raises(ConfigError) as e:
        preflight(m, default_hooks(), where="run.yaml")
    msg = str(e.value)
    assert "data.sources.real" in msg and "no_such_shards" in msg
    assert "model.weights" in msg and "missing.pt" in msg


def test_preflight_rejects_weights_of_the_wrong_model(tmp_path):
    from training.model import VGGT, VGGTConfig

    other = VGGT(VGGTConfig.tiny(embed_dim=64, enable_track=False))  # a different width than the run's tiny model
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "other.safetensors"))
    d = manifest_dict(tmp_path / "run")
    d["model"]["weights"] = str(tmp_path / "other.safetensors")
    m = load_run_manifest(write(tmp_path, d))
    with pytest.raises(ConfigError, match=r"model: weights: .*other.safetensors does not fit .*wrong shape"):
        preflight(m, default_hooks(), where="run.yaml")


def test_preflight_rejects_unknown_trainable_group_and_existing_run(tmp_path):
    d = manifest_dict(tmp_path / "run")
    d["stages"][1]["trainable"] = ["@decoder"]
    m = load_run_manifest(write(tmp_path, d))
    with pytest.raises(ConfigError, match=r"stages\[1\]\.trainable: unknown parameter group '@decoder'"):
        preflight(m, default_hooks(), where="run.yaml")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "latest").write_text("step_000001\n")
    d["stages"][1]["trainable"] = ["@all"]
    with pytest.raises(ConfigError, match="already holds checkpoints; pass --resume"):
        preflight(load_run_manifest(write(tmp_path, d)), default_hooks(), where="run.yaml")


def test_cli_fails_before_training_and_names_the_problem(tmp_path, capsys):
    from training.cli import main

    d = manifest_dict(tmp_path / "run")
    d["model"]["init"] = str(tmp_path / "nowhere")
    f = write(tmp_path, d)
    assert main(["train", str(f), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "model.init" in err and "nowhere" in err
    assert not (tmp_path / "run").exists()  # nothing was started
    assert main(["train", str(f), "model.init=null", "stages.dense.stepz=1"]) == 2
    assert "stages[0]: unknown key 'stepz'" in capsys.readouterr().err
    assert main(["train", str(f), "model.init=null", "--check"]) == 0
    assert "OK (5 steps in 2 stages)" in capsys.readouterr().out
