"""Data streams of a stage and of evaluation, from the run manifest's sources.

Each stream yields batches in the loader's format (docs/interfaces.md §4) for this rank and exposes
``state_dict()`` / ``load_state_dict()`` of its position, so a resumed run continues with the data it would have
seen. Shard sources go through ``loaders``; ``synthetic`` sources are generated in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from training.train.distributed import DistEnv
from training.train.manifest import DataSpec, EvalSpec, RunDataSource, RunManifest, StageSpec
from training.train.synthetic import SyntheticStream

__all__ = ["BatchStream", "build_stage_stream", "build_eval_batches", "move_batch", "source_problems"]


class BatchStream:
    """An endless iterator over batches: when the underlying iterable ends (an epoch), it is iterated again.

    Args:
        source: an iterable of batches with ``state_dict``/``load_state_dict`` of its position (epochs included:
            ``PairLoader`` moves to its next epoch at the end of one; a synthetic stream has none).
    """

    def __init__(self, source: Any):
        self.source = source
        self._it: Iterator | None = None

    def __next__(self) -> dict:
        for _ in range(2):
            if self._it is None:
                self._it = iter(self.source)
            try:
                return next(self._it)
            except StopIteration:
                self._it = None
        raise RuntimeError("the data stream yields no batches (is the source empty for this rank?)")

    def __iter__(self) -> BatchStream:
        return self

    @property
    def n_skipped(self) -> int:
        """Bad samples the source skipped on this rank so far (``data.skip_bad``; 0 for sources that never skip)."""
        return int(getattr(self.source, "n_skipped", 0))

    def state_dict(self) -> dict:
        return self.source.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.source.load_state_dict(state)
        self._it = None


def _seed_for(manifest_seed: int, *salt: int) -> int:
    return int(np.random.SeedSequence([manifest_seed, *salt]).generate_state(1)[0] & 0x7FFFFFFF)


def source_problems(name: str, src: RunDataSource) -> list[str]:
    """Problems with a shard source found without reading it whole (missing folder, manifest or shards)."""
    if src.path is None:
        return []
    from training.train import loaders_bridge

    return loaders_bridge.source_problems(name, src)


def build_stage_stream(
    manifest: RunManifest, stage_index: int, env: DistEnv, batch_size: int | None = None
) -> BatchStream:
    """The training stream of a stage on this rank (mixture of the stage's sources at its resolution)."""
    stage: StageSpec = manifest.stages[stage_index]
    data: DataSpec = manifest.data
    bs = batch_size or stage.batch_size or data.batch_size
    seed = _seed_for(manifest.seed, 1, stage_index)
    mix = {name: w for name, w in stage.data.items() if w > 0}
    specs = {name: data.sources[name] for name in mix}
    if all(s.synthetic is not None for s in specs.values()) and len(specs) == 1:
        (spec,) = specs.values()
        return BatchStream(SyntheticStream(spec.synthetic, seed, env.rank, bs, stage.resolution))
    if any(s.synthetic is not None for s in specs.values()):
        raise ValueError(f"stage {stage.name!r}: a synthetic source cannot be mixed with other sources")
    from training.train import loaders_bridge

    return BatchStream(
        loaders_bridge.train_loader(
            specs, mix, data, stage.resolution, bs, seed=seed, rank=env.rank, world_size=env.world_size
        )
    )


def build_eval_batches(manifest: RunManifest, env: DistEnv) -> list[dict]:
    """This rank's share of the fixed held-out batches (the same on every evaluation)."""
    spec: EvalSpec = manifest.eval
    if spec.source is None:
        return []
    n_batches = max(1, spec.pairs // spec.batch_size)
    n_batches = max(env.world_size, n_batches // env.world_size * env.world_size)  # same forwards on every rank
    mine = list(range(env.rank, n_batches, env.world_size))
    if spec.source.synthetic is not None:
        stream = SyntheticStream(
            spec.source.synthetic, _seed_for(manifest.seed, 2), 0, spec.batch_size, spec.resolution
        )
        batches = [b for b, _ in zip(stream, range(n_batches))]
        return [batches[i] for i in mine]
    from training.train import loaders_bridge

    batches = loaders_bridge.eval_batches(
        spec.source, spec.resolution, spec.batch_size, n_batches, skip_bad=manifest.data.skip_bad
    )
    return [batches[i] for i in mine if i < len(batches)]


def move_batch(batch: dict, device: torch.device) -> dict:
    """Tensors to ``device`` (non-blocking), uint8 images to float32 in [0, 1] there; other values as they are."""
    out = {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
    if not out["images"].dtype.is_floating_point:
        from loaders.batch import images_to_float

        images_to_float(out)  # bit-equal to the loaders' float32 batches
    return out
