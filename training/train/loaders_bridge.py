"""The trainer's bindings to ``loaders``: shard sources of a run manifest -> per-rank batch streams.

A run-manifest source ``path`` is either a loaders data manifest (``*.yaml``, itself a weighted mixture of
sources) or anything ``loaders.sources.expand_spec`` reads (a dataset folder with ``dataset.json``, a shard,
a brace pattern, a URL). A stage's mixture weight multiplies the inner weights of a data manifest (normalised), so
``{synthetic: 0.3, spair: 0.7}`` keeps those proportions whatever the manifests hold. Streams split by rank and
worker and give every rank the same number of batches (``PairLoader``), so DDP never waits on a rank that ran dry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "resolve_sources",
    "build_augment",
    "train_loader",
    "eval_batches",
    "source_problems",
    "validate_data_manifest",
]

_SIZED_OPS = ("random_affine", "fit")
# what the losses and the evaluation read (depth and cameras are then not even decoded)
FIELDS = ("images", "corr", "valid", "status", "mask", "kps", "kps_vis")


def _is_yaml(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def resolve_sources(name: str, spec, weight: float = 1.0) -> list:
    """``loaders.data_manifest.Source`` objects of one run-manifest source, weights scaled to sum to ``weight``."""
    from loaders.data_manifest import DataManifest, Source
    from loaders.sources import expand_spec

    if _is_yaml(spec.path):
        inner = DataManifest.load(spec.path).resolve()
        total = sum(s.weight for s in inner) or 1.0
        return [Source(f"{name}/{s.name}", s.shards, weight * s.weight / total, s.verify) for s in inner]
    verify = "sha256" if spec.verify_checksums else "size"
    return [Source(name, expand_spec(spec.path), weight, verify)]


def build_augment(augment: list[dict[str, Any]] | None, resolution: tuple[int, int], where: str = "data.augment"):
    """The training transform at ``resolution``: the loaders' default pipeline, or the manifest's list with the
    stage's ``out_hw`` filled in (and a final ``fit`` when no op sets the size)."""
    from loaders.augment import Compose, Fit, build_transforms, default_train_transforms

    if augment is None:
        return default_train_transforms(tuple(resolution))
    ops = [dict(op) for op in augment]
    for op in ops:
        if op.get("op") in _SIZED_OPS:
            op.setdefault("out_hw", list(resolution))
    transform = build_transforms(ops, where=where)
    if not any(op.get("op") in _SIZED_OPS for op in ops):
        transform = Compose([*transform.transforms, Fit(tuple(resolution))])
    return transform


class _Loader:
    """``PairLoader`` plus the stream it reads (kept for ``len`` and state)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def n_skipped(self) -> int:
        return self.loader.n_skipped

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)


def train_loader(specs, mix, data, resolution, batch_size, seed, rank, world_size) -> _Loader:
    """This rank's training batches for a stage.

    Args:
        specs: ``{name: RunDataSource}`` of the stage's sources.
        mix: ``{name: weight}`` of the stage.
        data: the manifest's ``DataSpec`` (mode, workers, augmentation, skip_bad).
        resolution: (H, W) of the batches.
        batch_size: pairs per batch on this rank.
        seed: the stream's root seed (per stage).
        rank, world_size: this process's place.
    """
    from loaders.loader import PairLoader
    from loaders.stream import PairStream

    sources = [s for name, spec in specs.items() for s in resolve_sources(name, spec, mix[name])]
    stream = PairStream(
        sources,
        mode=data.mode,
        seed=seed,
        transform=build_augment(data.augment, resolution),
        skip_bad=data.skip_bad,
        rank=rank,
        world_size=world_size,
        progress=False,
    )
    loader = PairLoader(
        stream, batch_size=batch_size, num_workers=data.workers, drop_last=True, uint8_images=True, fields=FIELDS
    )
    return _Loader(loader)


def eval_batches(
    spec, resolution: tuple[int, int], batch_size: int, n_batches: int, skip_bad: bool = False
) -> list[dict]:
    """The first ``n_batches`` held-out batches (every sample once, in order; resized by ``Fit``), whole set.
    ``skip_bad``: a bad sample is logged and left out (its slot becomes a padding repeat, which evaluation ignores).
    """
    from loaders.augment import Fit
    from loaders.loader import PairLoader
    from loaders.stream import PairStream

    stream = PairStream(
        resolve_sources("eval", spec),
        mode="exact",
        seed=0,
        shuffle=False,
        transform=Fit(tuple(resolution)),
        rank=0,
        world_size=1,
        progress=False,
        skip_bad=skip_bad,
    )
    loader = PairLoader(stream, batch_size=batch_size, num_workers=0, uint8_images=True, fields=FIELDS)
    out = []
    for batch in loader:
        if len(out) >= n_batches:
            break
        out.append(batch)
    return out


def source_problems(name: str, spec) -> list[str]:
    """What is wrong with a shard source, found from its manifests and file sizes (no shard is read)."""
    from loaders.dataset_manifest import ManifestError
    from loaders.sources import ShardError, verify_shards
    from loaders.strict import ConfigError

    path = spec.path
    if not _is_yaml(path) and "://" not in path and not path.startswith("pipe:"):
        p = Path(path)
        if not p.exists() and not any(c in path for c in "*?{"):
            return [f"{path}: no such dataset folder or shard"]
    try:
        sources = resolve_sources(name, spec)
    except (ConfigError, ManifestError, ShardError, OSError) as e:
        return [str(e)]
    problems = []
    for src in sources:
        if not src.shards:
            problems.append(f"{src.name}: no shards")
            continue
        if src.n_samples == 0:
            problems.append(f"{src.name}: its shards hold no samples")
        mode = "sha256" if spec.verify_checksums else "size"
        problems += verify_shards(src.shards, mode, progress=False)
    return problems


def validate_data_manifest(path: str | Path) -> None:
    """Parse a loaders data manifest strictly (raises :class:`~loaders.strict.ConfigError` naming the file and key)."""
    from loaders.data_manifest import DataManifest

    DataManifest.load(path)
