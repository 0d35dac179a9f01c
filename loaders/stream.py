"""``PairStream``: the shards of a data manifest as an ``IterableDataset`` split by rank and DataLoader worker.

The loader is a pipeline of four stages, each a module of its own, that a sample passes in this order:

1. **read** (:mod:`loaders.read`): the worker's share of the epoch (planned by :mod:`loaders.plan`) read from its
   shards, the tar members of one key grouped into one sample (:class:`loaders.read.Drawn`);
2. **decode** (:func:`loaders.decode.decode_pair`): the members decoded into a schema sample dict, or *planned*
   (rasters left as placeholders, decoded later straight into the batch);
3. **transform** (``transform(sample, rng)``, :mod:`loaders.augment`): pair-consistent, with the sample's own
   generator ``rng_for(*drawn.rng_key)``;
4. **batch** (:meth:`loaders.batch.BatchWriter.add`): the pair written into the next slot of the batch (a planned
   sample decodes there, :mod:`loaders.fused`), or :func:`loaders.batch.to_item` for a per-pair record.

:meth:`PairStream.batches` composes all four (what :class:`loaders.loader.PairLoader` runs in each worker);
iterating the stream yields per-pair records instead (stages 1-3, then ``to_item``). A sample is planned when the
transform can run on a plan (``transform.plannable``, or no transform); a resampling warp of a dense view raises
:class:`loaders.raster.NotPlannable` and that sample is decoded and transformed again with the same generator.

Modes (:mod:`loaders.plan`): ``"exact"``, every sample once per epoch over all ranks and workers, each worker
emitting ``L = ceil(N / S)`` samples (a few flagged ``is_padding``) so every rank runs the same number of batches;
``"resampled"``, an endless stream cut into epochs of ``epoch_samples``, sources drawn by their weights,
deterministic from ``(seed, epoch, rank, worker)``, each batch carrying ``stream_state`` (the worker's draws after
it) that :class:`loaders.loader.PairLoader` hands back on resume (``PairStream.cursors``). Rank and world size come
from torchrun's ``RANK``/``WORLD_SIZE`` (or the arguments). Bad data raises an error naming the shard (and sample);
with ``skip_bad=True`` it is logged and counted (``batch["stream"][i]["skipped"]``, ``PairLoader.n_skipped``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from loaders.batch import MAX_KEYPOINTS, BatchWriter, to_item
from loaders.data_manifest import DataManifest, Source
from loaders.decode import decode_pair
from loaders.plan import check_shards, dist_info, fill_counts, load_sources, rng_for
from loaders.raster import NotPlannable
from loaders.read import Drawn, ExactReader, ResampledReader

__all__ = ["PairStream", "load_sources", "dist_info"]

MODES = ("exact", "resampled")


class PairStream(torch.utils.data.IterableDataset):
    """Pair samples streamed from shards (see the module doc).

    Args:
        sources: a :class:`DataManifest`, a YAML data-manifest path, a list of :class:`Source`, or shard specs.
        mode: ``"exact"`` or ``"resampled"``.
        seed: root seed of shard order, interleaving, resampling and augmentation.
        transform: ``(sample, rng) -> sample`` on schema dicts (:mod:`loaders.augment`), or ``None``.
        epoch_samples: resampled mode: samples per epoch over all ranks (default: the sources' total).
        shuffle: exact mode: shuffle the shard order every epoch.
        interleave: shards read at once per worker (exact) or per source and worker (resampled).
        skip_bad: skip (and count) unreadable samples instead of raising.
        max_keypoints: keypoint padding ``N``.
        verify: ``"none"``/``"size"``/``"sha256"`` against the dataset manifests; ``None`` = each source's own.
        rank, world_size: override torchrun's environment.
        data_root: base of relative paths when ``sources`` are specs (a manifest has its own).
        progress: show progress bars for verification and counting.
        decode: ``False`` yields only each sample's identity (``key``, ``url``, ``source``, ``is_padding``) without
            decoding: the same stream, for statistics.
    """

    def __init__(
        self,
        sources: DataManifest | str | Path | Sequence[Source] | Sequence[str],
        mode: str = "exact",
        seed: int = 0,
        transform: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
        epoch_samples: int | None = None,
        shuffle: bool = True,
        interleave: int = 4,
        skip_bad: bool = False,
        max_keypoints: int = MAX_KEYPOINTS,
        verify: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        data_root: str | Path | None = None,
        progress: bool = True,
        decode: bool = True,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.sources = load_sources(sources, data_root)
        if not self.sources or not any(s.shards for s in self.sources):
            raise ValueError("PairStream: the sources list no shards")
        self.mode, self.seed, self.transform = mode, int(seed), transform
        self.shuffle, self.interleave, self.skip_bad = shuffle, max(1, int(interleave)), skip_bad
        self.max_keypoints, self.decode = max_keypoints, decode
        self.rank, self.world_size = dist_info(rank, world_size)
        self.epoch = 0
        self.start: dict[int, int] = {}  # logical worker -> samples it already emitted this epoch (resume)
        self.cursors: dict[int, dict[str, Any]] = {}  # resampled: logical worker -> its saved Cursor.state()
        self.rotation = 0  # physical DataLoader worker w plays logical worker (w + rotation) % num_workers
        check_shards(self.sources, verify, self.rank, self.world_size, progress)
        if mode == "exact":
            if epoch_samples is not None:
                raise ValueError("epoch_samples applies to mode='resampled'; an exact epoch is every sample once")
            fill_counts(self.sources, skip_bad, progress)
        else:
            total = self.n_samples
            if epoch_samples is None and total is None:
                raise ValueError("resampled mode without sample counts: pass epoch_samples")
            epoch_samples = total if epoch_samples is None else int(epoch_samples)
            if not any(s.shards and s.n_samples != 0 for s in self.sources):
                raise ValueError("PairStream: every source is empty")
        self.epoch_samples = epoch_samples

    @property
    def n_samples(self) -> int | None:
        """Samples over all sources (``None`` when a count is unknown)."""
        counts = [s.n_samples for s in self.sources]
        return None if any(c is None for c in counts) else sum(counts)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def samples_per_worker(self, num_workers: int) -> int:
        """``L``: samples each DataLoader worker of each rank emits per epoch (``num_workers=0`` counts as 1)."""
        n_slots = self.world_size * max(1, num_workers)
        return math.ceil((self.n_samples if self.mode == "exact" else self.epoch_samples) / n_slots)

    # ---- the pipeline -----------------------------------------------------------------------------------------
    def reader(self) -> ExactReader | ResampledReader:
        """Stage 1 for the calling DataLoader worker (or the calling process): its slot, from its resume point."""
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        logical = (worker + self.rotation) % n_workers
        slot, n_slots = self.rank * n_workers + logical, self.world_size * n_workers
        start = self.start.get(logical, 0)
        if self.mode == "exact":
            shards = [s.shards for s in self.sources]
            return ExactReader(
                shards, self.seed, self.epoch, self.shuffle, self.interleave, slot, n_slots, start, self.skip_bad
            )
        args = (self.epoch_samples, self.interleave, slot, n_slots, start, self.cursors.get(logical), self.skip_bad)
        return ResampledReader(self.sources, self.seed, self.epoch, *args)

    def pair(self, drawn: Drawn, plan: bool = False, keep_depth: bool = True) -> dict[str, Any]:
        """Stages 2 and 3 for one sample: decode (or plan) it, transform it; plus where it came from."""
        sample = decode_pair(drawn.members, plan, keep_depth)
        if self.transform is not None:
            try:
                sample = self.transform(sample, rng_for(*drawn.rng_key))
            except NotPlannable:  # a resampling warp of a dense view: the same draws on decoded arrays
                sample = self.transform(decode_pair(drawn.members, False, keep_depth), rng_for(*drawn.rng_key))
        sample["__url__"] = drawn.members["__url__"]
        sample["__source__"] = self.sources[drawn.source].name
        sample["__padding__"] = drawn.padding
        sample["__stream__"] = {"slot": drawn.slot, "skipped": drawn.skipped}
        return sample

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Per-pair records (:func:`loaders.batch.to_item`), or each sample's identity when ``decode=False``."""
        if not self.decode:
            names = [s.name for s in self.sources]
            return self.reader().run(
                lambda d: {
                    "key": d.members["__key__"],
                    "url": d.members["__url__"],
                    "source": names[d.source],
                    "is_padding": d.padding,
                }
            )
        return self.reader().run(lambda d: to_item(self.pair(d), self.max_keypoints))

    def batches(
        self,
        batch_size: int,
        drop_last: bool = False,
        uint8_images: bool = False,
        fields: Collection[str] | None = None,
        shared: bool | None = None,
    ) -> Iterator[dict[str, Any]]:
        """This worker's stream as batches (docs/interfaces.md §4) of ``batch_size`` pairs (the last one partial
        unless ``drop_last``): the whole pipeline, what :class:`loaders.loader.PairLoader` runs in each worker.

        ``fields`` limits the array keys (default all; see :func:`loaders.batch.resolve_fields`); ``shared`` puts the
        batches in shared memory (default: when in a DataLoader worker).
        """
        writer = BatchWriter(batch_size, uint8_images, fields, self.max_keypoints, shared)
        keep_depth = "depth" in writer.fields
        plan = self.transform is None or getattr(self.transform, "plannable", False)
        reader = self.reader()
        for _ in reader.run(lambda d: writer.add(self.pair(d, plan, keep_depth), d.members)):
            if writer.full:
                batch = writer.finish()
                if isinstance(reader, ResampledReader):  # where this worker's draws stand after the batch
                    batch["stream_state"] = reader.cursor.state()
                yield batch
        if len(writer) and not drop_last:
            yield writer.finish()
