"""The run manifest (``manifests/runs/*.yaml``): model, data, stages, optimiser, evaluation, checkpoints.

A run manifest is strict YAML, read by the project's one config layer (:mod:`loaders.strict`): every key is known
(unknown keys are :class:`ConfigError` naming the file and key path), types are checked, and cross-references (a
stage's data mix naming a source, a stage's losses and their parameters, resolutions that are multiples of the
patch size) are validated before anything is built. Command-line overrides are dotted ``key=value`` pairs
applied to the parsed YAML before validation, so they obey the same rules: ``stages.0.steps=10``,
``stages.dense.lr=1e-4`` (a stage by name), ``model.weights=/ckpt/model.pt``.

Shape of a manifest (all keys, with defaults, in :class:`RunManifest` and the classes below)::

    name: chair_cpu_demo
    model: {preset: tiny, config: {...}, split_index: 2, weights: null}
    data:
      sources: {chair: {path: data/chair_train}}      # a data manifest YAML or a dataset folder
      batch_size: 8                                    # per rank
    stages:
      - {name: dense, steps: 500, lr: 1e-3, resolution: [112, 112], data: {chair: 1.0},
         losses: {dense_epe: {weight: 1.0}, matchability: {weight: 0.1}}, trainable: ["@default"]}
    optim: {weight_decay: 0.05, grad_clip: 1.0, warmup_steps: 50, min_lr_ratio: 0.05}
    eval: {every: 100, source: {path: data/chair_test}, pairs: 64, resolution: [112, 112]}
    checkpoint: {every: 100}
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loaders.strict import ConfigError, from_dict, to_dict
from training.losses import Objective

__all__ = [
    "ConfigError",
    "SyntheticSpec",
    "RunDataSource",
    "DataSpec",
    "ModelSpec",
    "StageSpec",
    "OptimSpec",
    "EvalSpec",
    "CheckpointSpec",
    "LogSpec",
    "DistributedSpec",
    "RunManifest",
    "load_run_manifest",
    "apply_overrides",
    "manifest_to_yaml",
]

PATCH_SIZE = 14


@dataclass
class SyntheticSpec:
    """In-memory pairs: a random smooth texture and its random affine warp, with exact dense GT and keypoints.

    Needs no files; used by tests and quick checks of the loop (the batches follow docs/interfaces.md §4).
    """

    n_samples: int = 0  # 0: an endless stream; otherwise an epoch of this many pairs per rank
    max_rotation_deg: float = 20.0
    max_log_scale: float = 0.2
    max_shift: float = 0.1  # fraction of the image size
    n_keypoints: int = 8

    def validate(self) -> None:
        if self.n_samples < 0:
            raise ValueError("synthetic.n_samples must be >= 0")


@dataclass
class RunDataSource:
    """One data source of a run: ``path`` (a loaders data manifest ``*.yaml`` or a dataset folder with ``dataset.json``)
    or ``synthetic`` pairs."""

    path: str | None = None
    synthetic: SyntheticSpec | None = None
    verify_checksums: bool = False

    def validate(self) -> None:
        if (self.path is None) == (self.synthetic is None):
            raise ValueError("a source needs exactly one of 'path' and 'synthetic'")


@dataclass
class DataSpec:
    """Named sources and how they are streamed (per-rank batch size, DataLoader workers, stream mode)."""

    sources: dict[str, RunDataSource]
    batch_size: int = 4
    workers: int = 0
    mode: str = "resampled"  # resampled (endless, drawn by weight, deterministic) | exact (each sample once an epoch)
    # the loaders' transforms ([{op: random_affine, scale: [1.0, 1.3]}, ...]; ``out_hw`` defaults to the stage's
    # resolution); null: loaders.augment.default_train_transforms at the stage's resolution
    augment: list[dict[str, Any]] | None = None
    skip_bad: bool = False  # skip (and count) unreadable samples instead of failing

    def validate(self) -> None:
        if not self.sources:
            raise ValueError("data.sources is empty")
        if self.batch_size < 1 or self.workers < 0:
            raise ValueError("data.batch_size must be >= 1 and data.workers >= 0")
        if self.mode not in ("resampled", "exact"):
            raise ValueError(f"data.mode must be 'resampled' or 'exact', got {self.mode!r}")


@dataclass
class ModelSpec:
    """The matcher: a VGGT config (a preset plus field overrides), the semantic split and initial weights."""

    preset: str = "tiny"  # a VGGTConfig constructor: tiny | vggt_1b | ...
    config: dict[str, Any] = field(default_factory=dict)  # VGGTConfig field overrides
    matcher: dict[str, Any] = field(default_factory=dict)  # semantic matcher options
    split_index: int | None = None  # first aggregator block duplicated into the semantic branch
    weights: str | None = None  # the official VGGT checkpoint (model.pt / model.safetensors); null = random init
    init: str | None = None  # a saved matcher (save_matcher folder or file) to start from instead
    activation_checkpointing: bool = False
    # GPU speed options (docs/bench/model.md); the defaults keep the reference (upstream-identical) numerics
    compile: str = "none"  # none | blocks | blocks+head: regional torch.compile (training.model.speed)
    channels_last: bool = False  # the semantic head's convolution weights in NHWC

    def validate(self) -> None:
        if self.weights is not None and self.init is not None:
            raise ValueError("model.weights and model.init are exclusive (init already holds the backbone)")
        if self.compile not in ("none", "blocks", "blocks+head"):
            raise ValueError(f"model.compile must be none, blocks or blocks+head, got {self.compile!r}")


@dataclass
class StageSpec:
    """One stage of the progressive recipe."""

    name: str
    steps: int
    lr: float
    losses: dict[str, dict[str, Any]]
    data: dict[str, float]  # mixture weights over data.sources
    resolution: tuple[int, int]  # (H, W), multiples of 14
    trainable: list[str] = field(default_factory=lambda: ["@default"])  # "@group" or glob over parameter names
    batch_size: int | None = None  # per rank; default data.batch_size
    warmup_steps: int | None = None  # default optim.warmup_steps

    def validate(self) -> None:
        if self.steps < 1:
            raise ValueError(f"stage {self.name!r}: steps must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"stage {self.name!r}: lr must be > 0")
        h, w = self.resolution
        if h <= 0 or w <= 0 or h % PATCH_SIZE or w % PATCH_SIZE:
            raise ValueError(f"stage {self.name!r}: resolution {h}x{w} must be positive multiples of {PATCH_SIZE}")
        if not self.data or any(v < 0 for v in self.data.values()) or sum(self.data.values()) <= 0:
            raise ValueError(f"stage {self.name!r}: data mix needs non-negative weights with a positive sum")
        if not self.trainable:
            raise ValueError(f"stage {self.name!r}: trainable is empty")


@dataclass
class OptimSpec:
    """AdamW with linear warm-up then cosine decay (per stage), gradient clipping."""

    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # final lr of the cosine as a fraction of the stage's lr
    fused: bool = False  # fused AdamW kernel (CUDA parameters only; elsewhere the default implementation)

    def validate(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"optim.schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("optim.min_lr_ratio must be in [0, 1]")


@dataclass
class EvalSpec:
    """Periodic evaluation on held-out pairs: dense EPE and PCK at keypoints, model vs zero-shot baseline."""

    source: RunDataSource | None = None  # held-out shards; null disables evaluation
    every: int = 0  # steps between evaluations (0: only at the end)
    pairs: int = 64
    batch_size: int = 4
    resolution: tuple[int, int] = (224, 224)
    alphas: list[float] = field(default_factory=lambda: [0.05, 0.1])
    threshold: str = "img"  # img (alpha * max(H, W)) | bbox (alpha * max side of the target object's box)
    baseline: bool = True  # also score the zero-shot nearest-neighbour baseline (once, at the first evaluation)

    def validate(self) -> None:
        if self.threshold not in ("img", "bbox"):
            raise ValueError(f"eval.threshold must be 'img' or 'bbox', got {self.threshold!r}")
        h, w = self.resolution
        if h % PATCH_SIZE or w % PATCH_SIZE:
            raise ValueError(f"eval.resolution {h}x{w} must be multiples of {PATCH_SIZE}")


@dataclass
class CheckpointSpec:
    every: int = 1000  # steps; a checkpoint is also written at the end
    keep: int = 3  # most recent checkpoints kept (0: all)


@dataclass
class LogSpec:
    every: int = 10  # steps between metric records
    tensorboard: bool = True


@dataclass
class DistributedSpec:
    backend: str = "auto"  # auto (nccl on GPU, gloo on CPU) | nccl | gloo
    strategy: str = "ddp"  # ddp | fsdp (FSDP2 fully_shard per transformer block)
    find_unused_parameters: bool = False

    def validate(self) -> None:
        if self.backend not in ("auto", "nccl", "gloo"):
            raise ValueError(f"distributed.backend must be auto, nccl or gloo, got {self.backend!r}")
        if self.strategy not in ("ddp", "fsdp"):
            raise ValueError(f"distributed.strategy must be ddp or fsdp, got {self.strategy!r}")


@dataclass
class RunManifest:
    """A training run. ``out_dir`` defaults to ``runs/<name>``."""

    name: str
    model: ModelSpec
    data: DataSpec
    stages: list[StageSpec]
    out_dir: str | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (autocast on GPU)
    cpu_threads: int = 0  # torch intra-op threads per process (0: torch's default)
    resume: bool = False
    optim: OptimSpec = field(default_factory=OptimSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    log: LogSpec = field(default_factory=LogSpec)
    distributed: DistributedSpec = field(default_factory=DistributedSpec)

    def validate(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if not self.stages:
            raise ValueError("stages is empty")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir if self.out_dir is not None else f"runs/{self.name}")


def _cross_check(m: RunManifest, where: str) -> None:
    for i, stage in enumerate(m.stages):
        for src in stage.data:
            if src not in m.data.sources:
                known = ", ".join(m.data.sources)
                raise ConfigError(f"{where}: stages[{i}].data.{src}: no such source in data.sources ({known})")
        Objective(stage.losses, where=f"stages[{i}].losses", file=where)  # raises ConfigError naming the parameter


def _set_path(tree: Any, keys: list[str], value: Any, where: str, dotted: str) -> None:
    node = tree
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if key.lstrip("-").isdigit():
                idx = int(key)
            else:  # a list of named entries (stages): select by name
                matches = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == key]
                if not matches:
                    raise ConfigError(f"{where}: override {dotted!r}: no list entry named {key!r}")
                idx = matches[0]
            if not -len(node) <= idx < len(node):
                raise ConfigError(f"{where}: override {dotted!r}: index {idx} out of range ({len(node)} entries)")
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
        else:
            raise ConfigError(f"{where}: override {dotted!r}: {'.'.join(keys[:depth])} is not a mapping or list")


def apply_overrides(raw: dict, overrides: list[str], where: str) -> dict:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a parsed manifest; returns a new dict."""
    tree = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{where}: override {item!r} is not of the form key.path=value")
        dotted, text = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"{where}: override {item!r} has an empty key")
        _set_path(tree, keys, yaml.safe_load(text) if text.strip() else None, where, dotted)
    return tree


def load_run_manifest(path: str | Path, overrides: list[str] | None = None) -> RunManifest:
    """Parse, override and strictly validate a run manifest (no file-system checks; see ``preflight``)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ConfigError(f"{where}: no such run manifest")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping")
    if overrides:
        raw = apply_overrides(raw, overrides, where)
    manifest = from_dict(RunManifest, raw, where)
    _cross_check(manifest, where)
    return manifest


def manifest_to_yaml(m: RunManifest) -> str:
    """The manifest with every default filled in, as YAML (what a run folder records)."""
    return yaml.safe_dump(to_dict(m), sort_keys=False, default_flow_style=None)
