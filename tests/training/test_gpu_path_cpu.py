"""The GPU path's code checked on the CPU: model-FLOP counting, the speed options (bf16 head, regional compile,
channels-last head) and their manifest switches, the throughput metrics of the trainer's log, one-rank torchrun,
the GPU recipes' data commands, and the speed ladder script. The real-GPU checks are tests/training/test_gpu_tier.py."""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny_manifest import tiny_model_and_data

from training.model import MatcherConfig, SemanticMatcher, VGGTConfig
from training.model.flops import count_flops, matcher_flops
from training.model.layers import Block
from training.model.speed import enable_compile, redraw_zero_inits, set_channels_last

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_matcher(grid_mode: str = "correlation", **kw) -> SemanticMatcher:
    torch.manual_seed(0)
    cfg = MatcherConfig(
        vggt=VGGTConfig.tiny(checkpoint_blocks=False), split_index=2, grid_mode=grid_mode, head_init="random", **kw
    )
    model = SemanticMatcher(cfg)
    redraw_zero_inits(model, std=0.2, generator=torch.Generator().manual_seed(1))
    return model


def surrogate(out: dict) -> torch.Tensor:
    return out["grid_norm"].square().mean() + out["conf_logit"].square().mean()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / (b - b.mean()).norm())


# ------------------------------------------------------------------------------------------------ FLOPs


def test_block_flops_follow_the_transformer_formula():
    """One block: 2 N (12 C^2) for the four matmuls + 4 N^2 C for attention forward; backward of trainable weights
    and inputs doubles the matmuls, and the fused attention backward counts 2.5x its forward."""
    b, n, c, heads = 2, 10, 32, 2
    with torch.device("meta"):
        block = Block(c, heads, qk_norm=True, init_values=0.01)
        x = torch.empty(b, n, c, requires_grad=True)
    fwd = count_flops(lambda: block(x))
    matmuls = 2 * b * n * 12 * c * c
    attention = 4 * b * n * n * c
    assert fwd == matmuls + attention
    step = count_flops(lambda: block(x).sum().backward())
    assert step == 3 * matmuls + 3.5 * attention


@pytest.mark.slow
@pytest.mark.parametrize("grid_mode", ["offset", "correlation"])
def test_meta_count_equals_a_real_run_plus_attention(grid_mode):
    model = tiny_matcher(grid_mode)
    model.train()
    images = torch.rand(2, 2, 3, 56, 56)
    real = count_flops(lambda: surrogate(model(images)).backward(), by_op=True)
    assert not any("attention" in op for op in real)  # the CPU's fused attention is invisible to the counter
    twin = count_flops(lambda: _meta_step(model, (56, 56), 2), by_op=True)
    attention = sum(v for op, v in twin.items() if "attention" in op)
    assert attention > 0
    assert sum(real.values()) + attention == matcher_flops(model, (56, 56), 2)
    fwd = matcher_flops(model, (56, 56), 2, backward=False)
    assert 0 < fwd < matcher_flops(model, (56, 56), 2)


def _meta_step(model, image_hw, pairs):
    with torch.device("meta"):
        twin = SemanticMatcher(model.cfg)
    for p, q in zip(model.parameters(), twin.parameters()):
        q.requires_grad_(p.requires_grad)
    twin.train()
    surrogate(twin(torch.empty(pairs, 2, 3, *image_hw, device="meta"))).backward()


@pytest.mark.slow
def test_frozen_layers_count_no_weight_gradients():
    model = tiny_matcher()
    full = matcher_flops(model, (56, 56), 2)
    model.semantic_branch.requires_grad_(False)
    assert matcher_flops(model, (56, 56), 2) < full


# ------------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("grid_mode", ["offset", "correlation"])
def test_bf16_head_is_close_to_the_fp32_head(grid_mode):
    model = tiny_matcher(grid_mode).eval()
    images = torch.rand(2, 2, 3, 56, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(images)
        model.cfg = MatcherConfig.from_dict({**model.cfg.to_dict(), "head_dtype": "bfloat16"})
        low = model(images)
    assert low["grid"].dtype == torch.float32 and low["conf_logit"].dtype == torch.float32
    err = rel(low["grid_norm"], ref["grid_norm"])
    assert 0 < err < 5e-3  # the last layers stay fp32: no bf16 rounding of the offsets (~2 px at 518 px)
    conf_err = float((low["conf_logit"] - ref["conf_logit"]).norm() / ref["conf_logit"].norm())
    assert 0 < conf_err < 3e-2
    if grid_mode == "correlation":  # the correlation stays fp32 whatever the head's precision
        assert low["corr_logit"].dtype == torch.float32
        assert torch.equal(low["corr_logit"], ref["corr_logit"])


def test_head_dtype_is_validated_and_serialised():
    with pytest.raises(ValueError, match="head_dtype"):
        MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2, head_dtype="float16")
    cfg = MatcherConfig(vggt=VGGTConfig.tiny(), split_index=2, head_dtype="bfloat16")
    assert MatcherConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.slow
@pytest.mark.parametrize("grid_mode", ["offset", "correlation"])
def test_regional_compile_is_full_graph_and_matches_eager(grid_mode):
    eager = tiny_matcher(grid_mode).train()
    comp = copy.deepcopy(eager)  # copy first, then compile (module docstring of training.model.speed)
    keys = list(comp.state_dict())
    n = enable_compile(comp, "blocks+head", backend="aot_eager")  # fullgraph=True: a graph break raises
    assert n == sum(isinstance(m, Block) for m in comp.modules()) > 10 and comp.compiled_head
    assert list(comp.state_dict()) == keys  # no _orig_mod. prefixes: checkpoints stay interchangeable
    images = torch.rand(2, 2, 3, 56, 56, generator=torch.Generator().manual_seed(3))
    outs = []
    for model in (eager, comp):
        out = model(images)
        surrogate(out).backward()
        outs.append(out)
    assert rel(outs[1]["grid_norm"].detach(), outs[0]["grid_norm"].detach()) < 1e-5
    for (name, p), q in zip(eager.named_parameters(), comp.parameters()):
        if p.grad is not None:
            assert torch.allclose(q.grad, p.grad, rtol=1e-4, atol=1e-7), name


def test_compile_regions_are_checked():
    with pytest.raises(ValueError, match="compile regions"):
        enable_compile(tiny_matcher(), "everything")
    model = tiny_matcher()
    assert enable_compile(model, "none") == 0 and not model.compiled_head


def test_channels_last_head_keeps_the_outputs():
    model = tiny_matcher().eval()
    images = torch.rand(1, 2, 3, 56, 56, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = model(images)
        n = set_channels_last(model)
        out = model(images)
    convs = [p for p in model.semantic_head.parameters() if p.ndim == 4]
    assert n == len(convs) > 5 and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert torch.allclose(out["grid"], ref["grid"], atol=1e-4)


def test_manifest_switches_reach_the_model(tmp_path):
    from training.train import model_setup
    from training.train.manifest import ConfigError, load_run_manifest

    d = {"name": "t", **tiny_model_and_data(), "stages": [_stage(2)]}
    d["model"].update(compile="blocks+head", channels_last=True)
    d["model"]["matcher"].update(grid_mode="correlation", head_dtype="bfloat16")
    d["optim"] = {"fused": True}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(d))
    m = load_run_manifest(path)
    assert m.optim.fused
    model = model_setup.build(m.model)
    assert model.cfg.head_dtype == "bfloat16" and model.compiled_head
    assert all(b._compiled_call_impl is not None for b in model.modules() if isinstance(b, Block))
    assert model.semantic_head.projects[0].weight.is_contiguous(memory_format=torch.channels_last)
    defaults = model_setup.build(load_run_manifest(path, ["model.compile=none", "model.channels_last=false"]).model)
    assert not defaults.compiled_head
    assert all(b._compiled_call_impl is None for b in defaults.modules() if isinstance(b, Block))
    with pytest.raises(ConfigError, match="compile"):
        load_run_manifest(path, ["model.compile=all"])


# ------------------------------------------------------------------------------------------------ logs


def _stage(steps: int) -> dict:
    return {
        "name": "dense",
        "steps": steps,
        "lr": 1e-3,
        "resolution": [28, 28],
        "data": {"syn": 1.0},
        "losses": {"dense_epe": {"weight": 1.0}},
    }


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_step_meter_rates(monkeypatch):
    from training.train import perf

    clock = FakeClock()
    monkeypatch.setattr(perf, "perf_counter", clock)
    meter = perf.StepMeter(torch.device("cpu"), pairs_per_step=8, flops_per_step=2e12, peak_flops=1e15)
    for _ in range(4):  # per step: 0.1 s waiting for data, 0.4 s computing
        with meter.wait():
            clock.t += 0.1
        clock.t += 0.4
        meter.step()
    with meter.excluding():  # an evaluation: left out
        clock.t += 7.0
    rates = meter.summary()
    assert rates["pairs_per_s"] == pytest.approx(32 / 2.0)
    assert rates["data_wait"] == pytest.approx(0.2)
    assert rates["step_ms"] == pytest.approx(500.0)
    assert rates["mfu"] == pytest.approx(4 * 2e12 / 2.0 / 1e15)
    assert "peak_mem_gib" not in rates  # CPU
    meter.reset()
    assert meter.steps == 0 and meter.waited == 0 and meter.excluded == 0


@pytest.mark.slow
def test_trainer_logs_throughput_and_mfu(tmp_path, monkeypatch):
    """Every train record carries the window's rates; MFU = step FLOPs / step time / peak (a fake peak on CPU)."""
    import training.model.flops as flops
    from training.train import trainer as trainer_mod
    from training.train.hooks import default_hooks
    from training.train.manifest import load_run_manifest
    from training.train.metrics import read_metrics

    monkeypatch.setattr(flops, "peak_flops", lambda device: 1e12)
    d = {"name": "t", "out_dir": str(tmp_path / "run"), "device": "cpu", **tiny_model_and_data()}
    d.update(stages=[_stage(4)], log={"every": 2, "tensorboard": True}, checkpoint={"every": 2, "keep": 1})
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(d))
    m = load_run_manifest(path)
    trainer = trainer_mod.Trainer(m, default_hooks(), progress=True)
    trainer.run()
    train = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    assert [r["step"] for r in train] == [2, 4]
    step_flops = matcher_flops(trainer.model, (28, 28), 2)
    for r in train:
        assert 0 <= r["data_wait"] <= 1 and r["pairs_per_s"] > 0
        assert r["pairs_per_s"] == pytest.approx(2 * 1e3 / r["step_ms"])
        assert r["mfu"] == pytest.approx(step_flops / (r["step_ms"] / 1e3) / 1e12)
    tb = list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert tb and b"train/mfu" in tb[0].read_bytes() and b"train/data_wait" in tb[0].read_bytes()


def test_speed_postfix_formats_the_rates():
    from training.train.trainer import _speed_postfix

    rates = {"pairs_per_s": 15.04, "data_wait": 0.031, "mfu": 0.3712, "peak_mem_gib": 61.26, "step_ms": 530.0}
    assert _speed_postfix(rates) == {"pairs/s": "15.0", "wait": "3%", "mfu": "37.1%", "mem": "61.3G"}
    assert _speed_postfix({"pairs_per_s": 2.0, "data_wait": 0.5}) == {"pairs/s": "2.0", "wait": "50%"}


@pytest.mark.slow
def test_torchrun_one_rank_creates_a_process_group(tmp_path):
    d = {"name": "t", "out_dir": str(tmp_path / "run"), "device": "cpu", **tiny_model_and_data()}
    d.update(stages=[_stage(2)], log={"every": 1, "tensorboard": False})
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(d))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    cmd += ["-m", "training", "train", str(path), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())["environment"]
    assert info["backend"] == "gloo" and info["world_size"] == 1


# ------------------------------------------------------------------------------------------------ recipes


def _header_commands(path: Path) -> list[list[str]]:
    """The ``datagen`` commands in a manifest's header comment, as argument lists."""
    cmds = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith(("datagen ", ".venv/bin/datagen ")):
            cmds.append(shlex.split(text.split("  #")[0])[1:])
    return cmds


@pytest.mark.parametrize("name", ["vggt1b_spair.yaml", "vggt1b_gpu_smoke.yaml"])
def test_gpu_recipe_data_commands_make_exactly_the_folders_it_reads(name):
    from datagen.families import family_names
    from training.train.manifest import load_run_manifest

    path = ROOT / "manifests" / "runs" / name
    m = load_run_manifest(path)
    made, categories = set(), []
    for cmd in _header_commands(path):
        args = dict(zip(cmd[1::2], cmd[2::2])) if cmd[0] in ("render", "real") else {}
        assert "--out" in args, cmd
        made.add(args["--out"])
        if cmd[0] == "render":
            categories.append(args["--category"])
            assert int(args["--size"]) == 518
    read = {s.path for s in m.data.sources.values() if not s.path.endswith(".yaml")} | {m.eval.source.path}
    assert made == read
    assert set(categories) <= set(family_names())
    from datagen.families import get_family
    from loaders.batch import MAX_KEYPOINTS

    assert all(len(get_family(c).keypoints) <= MAX_KEYPOINTS for c in categories)  # the loader pads to this
    for src_name, src in m.data.sources.items():  # each synthetic source is named after its category
        if src.path.startswith("data/") and "spair" not in src.path:
            assert src_name in family_names(), src_name
    assert m.model.matcher["grid_mode"] == "correlation"
    used = {src for stage in m.stages for src in stage.data}
    assert used == set(m.data.sources)
    assert all("coarse" in stage.losses for stage in m.stages)


def test_gpu_smoke_runs_all_four_stages_with_the_recipes_settings():
    from training.train.manifest import load_run_manifest

    recipe = load_run_manifest(ROOT / "manifests" / "runs" / "vggt1b_spair.yaml")
    smoke = load_run_manifest(ROOT / "manifests" / "runs" / "vggt1b_gpu_smoke.yaml")
    assert [s.name for s in smoke.stages] == [s.name for s in recipe.stages]
    assert [set(s.losses) for s in smoke.stages] == [set(s.losses) for s in recipe.stages]
    for key in ("preset", "split_index", "activation_checkpointing", "compile", "channels_last"):
        assert getattr(smoke.model, key) == getattr(recipe.model, key), key
    assert smoke.model.matcher == recipe.model.matcher
    assert smoke.optim.fused == recipe.optim.fused and smoke.data.batch_size == recipe.data.batch_size
    assert smoke.stages[0].steps >= 60  # a measured window of >= 50 steps after the first (compilation)


# ------------------------------------------------------------------------------------------------ ladder


@pytest.mark.slow
def test_speed_ladder_runs_every_rung_on_cpu(tmp_path):
    out = tmp_path / "ladder.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "speed_ladder.py"), "--device", "cpu", "--preset", "tiny"]
    cmd += ["--size", "56", "--batch", "2", "--ref-batch", "1", "--warmup", "1", "--iters", "1"]
    cmd += ["--compile-backend", "aot_eager", "--json", str(out)]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert len(rows) == 10 and rows[0]["x_reference"] == 1.0
    assert [r["batch"] for r in rows] == [1] + [2] * 9
    assert all(r["mfu"] is None and r["gflop_per_pair"] > 0 for r in rows)
    per_pair = {r["batch"]: r["gflop_per_pair"] for r in rows}
    assert per_pair[1] == pytest.approx(per_pair[2], rel=1e-6)  # model FLOPs scale with the pairs
    assert 0 < result["accuracy_bf16_head"]["grid_norm_rel_l2"] < 2e-2
