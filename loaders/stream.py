"""``PairStream``: the shards of a data manifest as an ``IterableDataset`` split by rank and DataLoader worker.

Two modes (the policies are in :mod:`loaders.plan`):

* ``"exact"``: every sample once per epoch across all ranks and workers; each worker emits ``L = ceil(N / S)``
  samples (``S`` = world size x workers), the few extra ones flagged ``is_padding``, so every rank runs the same
  number of batches. Mixture weights do not apply (every sample counts once); sources mix at shard granularity
  through the shuffled shard order and the interleaved reading.
* ``"resampled"``: an infinite stream cut into epochs of ``epoch_samples`` (global), sources drawn by their
  weights; deterministic from ``(seed, epoch, rank, worker)``. In :meth:`PairStream.batches` each batch carries
  ``stream_state``, the worker's draws after it (generator state, open shards and how far they were read), which
  :class:`loaders.loader.PairLoader` keeps in its state dict and hands back (``PairStream.cursors``) on resume, so a
  resumed run draws exactly what the uninterrupted one would have.

Each yielded item is one pair's record (:func:`loaders.batch.to_item`); :meth:`PairStream.batches` writes the
pairs into batches instead (decoding each raster straight into the batch when the transform is plannable, see
:mod:`loaders.pending`), which is what :class:`loaders.loader.PairLoader` runs in its workers while it records the
stream position. Rank and world size come from torchrun's ``RANK``/``WORLD_SIZE``
(or the arguments); the worker from ``torch.utils.data.get_worker_info()``.

Bad data: a truncated or corrupted shard or sample raises an error naming the shard (and sample). With
``skip_bad=True`` it is logged and counted instead (``batch["stream"][i]["skipped"]``, ``PairLoader.n_skipped``);
in exact mode a skipped sample is replaced by a padding repeat, so the per-rank count never changes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from loaders.batch import MAX_KEYPOINTS, BatchWriter, resolve_fields, to_item
from loaders.data_manifest import DataManifest, Source
from loaders.members import decode_sample
from loaders.pending import NotPlannable, plan_sample
from loaders.plan import exact_layout, interleave_order, rng_for, slot_segments
from loaders.schema import SchemaError
from loaders.sources import ShardError, ShardReader, ShardRef, count_samples, expand_spec, is_remote, verify_shards

__all__ = ["PairStream", "load_sources", "dist_info"]

log = logging.getLogger("loaders")
MODES = ("exact", "resampled")
_MAX_EMPTY_DRAWS = 1000  # consecutive draws that found no sample before resampled mode gives up


def dist_info(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments, else torchrun's ``RANK``/``WORLD_SIZE``, else ``(0, 1)``."""
    r = int(os.environ.get("RANK", 0)) if rank is None else rank
    w = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if not 0 <= r < w:
        raise ValueError(f"rank {r} is not in [0, world_size={w})")
    return r, w


class _Cursor:
    """Where one worker's resampled draws stand: its generator, its open shards and how far it has read them.

    ``origin`` is the ``start`` the draws were seeded with (0 for a run that started at the epoch's beginning);
    the per-sample transform keys use it, so a resumed worker keeps the keys of the run it continues. ``n``: the
    samples emitted so far this epoch.
    """

    def __init__(self, epoch: int, slot: int, origin: int, rng: np.random.Generator, live: Sequence[int]) -> None:
        self.epoch, self.slot, self.origin, self.n, self.rng = epoch, slot, origin, origin, rng
        self.open: dict[int, list[ShardReader]] = {i: [] for i in live}

    def state(self) -> dict[str, Any]:
        """Plain values (``torch.save``/JSON-safe): enough to continue the draws exactly (:meth:`restore`)."""
        return {
            "epoch": self.epoch,
            "slot": self.slot,
            "origin": self.origin,
            "n": self.n,
            "rng": self.rng.bit_generator.state,
            "open": {str(i): [[r.url, r.index] for r in readers] for i, readers in self.open.items()},
        }

    @classmethod
    def restore(cls, state: dict[str, Any], live: Sequence[int]) -> _Cursor:
        """A cursor at ``state``: the generator state set, each open shard reopened and read up to where it was."""
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        cur = cls(int(state["epoch"]), int(state["slot"]), int(state["origin"]), rng, live)
        cur.n = int(state["n"])
        for i, readers in state["open"].items():
            for url, index in readers:
                r = ShardReader(url)
                cur.open[int(i)].append(r)
                if r.skip(int(index)) != int(index):
                    raise ShardError(f"{url}: ended before sample #{index}, where the saved stream position was")
        return cur

    def close(self) -> None:
        for readers in self.open.values():
            for r in readers:
                r.close()


def load_sources(
    sources: DataManifest | str | Path | Sequence[Source] | Sequence[str], data_root: str | Path | None = None
) -> list[Source]:
    """Resolve what :class:`PairStream` accepts: a manifest (object or YAML path), sources, or shard specs."""
    if isinstance(sources, DataManifest):
        return sources.resolve()
    if isinstance(sources, (str, Path)) and str(sources).endswith((".yaml", ".yml")):
        return DataManifest.load(sources, data_root=data_root).resolve()
    if isinstance(sources, (str, Path)):
        sources = [str(sources)]
    items = list(sources)
    if items and all(isinstance(s, Source) for s in items):
        return items
    if items and all(isinstance(s, str) for s in items):
        return [Source(name=f"source{i}", shards=expand_spec(s, base=data_root)) for i, s in enumerate(items)]
    raise TypeError("sources must be a DataManifest, a YAML path, a list of Source, or a list of shard specs")


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
        self._writer: BatchWriter | None = None  # the open batch while iterating batches()
        self.epoch = 0
        self.start: dict[int, int] = {}  # logical worker -> samples it already emitted this epoch (resume)
        self.cursors: dict[int, dict[str, Any]] = {}  # resampled: logical worker -> its saved _Cursor.state()
        self._cursor: _Cursor | None = None  # resampled: the draws of the worker iterating now
        self.rotation = 0  # physical DataLoader worker w plays logical worker (w + rotation) % num_workers
        self._verify(verify, progress)
        if mode == "exact":
            if epoch_samples is not None:
                raise ValueError("epoch_samples applies to mode='resampled'; an exact epoch is every sample once")
            self._fill_counts(progress)
        else:
            total = self.n_samples
            if epoch_samples is None and total is None:
                raise ValueError("resampled mode without sample counts: pass epoch_samples")
            epoch_samples = total if epoch_samples is None else int(epoch_samples)
            weights = [s.weight for s in self.sources if s.shards and s.n_samples != 0]
            if not weights:
                raise ValueError("PairStream: every source is empty")
        self.epoch_samples = epoch_samples

    # ---- setup ------------------------------------------------------------------------------------------------
    def _verify(self, verify: str | None, progress: bool) -> None:
        """Check shards against their manifests; each rank checks every ``world_size``-th shard."""
        problems = []
        for src in self.sources:
            mode = verify or src.verify
            if mode != "none":
                mine = src.shards[self.rank :: self.world_size]
                problems += verify_shards(mine, mode, progress=progress and self.rank == 0)
        if problems:
            raise ShardError("shards disagree with their dataset manifest:\n  " + "\n  ".join(problems))

    def _fill_counts(self, progress: bool) -> None:
        """Exact mode needs every shard's count: scan local shards that have none (remote ones cannot be)."""
        todo = [(i, j) for i, s in enumerate(self.sources) for j, r in enumerate(s.shards) if r.samples is None]
        remote = [self.sources[i].shards[j].url for i, j in todo if is_remote(self.sources[i].shards[j].url)]
        if remote:
            raise ValueError(
                f"exact mode needs sample counts; {remote[0]} (and {len(remote) - 1} more) has none: point the source"
                " at a dataset.json, set samples_per_shard in the data manifest, or use mode='resampled'"
            )
        for i, j in tqdm(todo, desc="counting samples", unit="shard", disable=not progress or not todo):
            r = self.sources[i].shards[j]
            self.sources[i].shards[j] = ShardRef(r.url, count_samples(r.url, self.skip_bad), r.nbytes, r.sha256)
        if not self.n_samples:
            raise ValueError("PairStream: the sources hold no samples")

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
        if self.mode == "exact":
            return math.ceil(self.n_samples / n_slots)
        return math.ceil(self.epoch_samples / n_slots)

    # ---- iteration --------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        logical = (worker + self.rotation) % n_workers
        slot, n_slots = self.rank * n_workers + logical, self.world_size * n_workers
        start = self.start.get(logical, 0)
        self._skipped = 0
        self._cursor = None
        if self.mode == "exact":
            return self._exact(slot, n_slots, start)
        return self._resampled(slot, n_slots, start, logical)

    def _make(self, members: dict[str, Any], source: int, rng_key: tuple[int, ...], slot: int, padding: bool):
        """The item of one sample; in batch mode (:meth:`batches`) the sample is written into the open batch."""
        if not self.decode:
            name = self.sources[source].name
            return {"key": members["__key__"], "url": members["__url__"], "source": name, "is_padding": padding}
        extra = {
            "__url__": members["__url__"],
            "__source__": self.sources[source].name,
            "__padding__": padding,
            "__stream__": {"slot": slot, "skipped": self._skipped},
        }
        if self._writer is not None and (self.transform is None or getattr(self.transform, "plannable", False)):
            try:  # decode each raster once, straight into the batch
                sample = plan_sample(members)
                if self.transform is not None:
                    sample = self.transform(sample, rng_for(*rng_key))
                sample.update(extra)
                self._writer.add_planned(sample, members)
                return None
            except NotPlannable:  # a resampling warp of a dense view: the same draws on decoded arrays below
                pass
        sample = decode_sample(members)
        if self._writer is not None and "depth" not in self._writer.fields:
            # depth the batch leaves out is not worth warping (masks stay: has_mask is read from them)
            sample.pop("depth0", None)
            sample.pop("depth1", None)
        if self.transform is not None:
            sample = self.transform(sample, rng_for(*rng_key))
        sample.update(extra)
        if self._writer is not None:
            self._writer.add_sample(sample)
            return None
        return to_item(sample, self.max_keypoints)

    def batches(
        self,
        batch_size: int,
        drop_last: bool = False,
        uint8_images: bool = False,
        fields: Collection[str] | None = None,
        shared: bool | None = None,
    ) -> Iterator[dict[str, Any]]:
        """This worker's stream as batches (docs/interfaces.md §4) of ``batch_size`` pairs (the last one partial
        unless ``drop_last``): what :class:`loaders.loader.PairLoader` runs in each worker.

        Each pair is written into the batch arrays as it is read: with a plannable transform (or none) its rasters
        are decoded straight into the batch (:mod:`loaders.pending`); otherwise it is decoded, transformed and
        copied in. ``fields`` limits the array keys (default all; see :func:`loaders.batch.resolve_fields`);
        ``shared`` puts the batches in shared memory (default: when in a DataLoader worker).
        """
        resolve_fields(fields)

        def new() -> BatchWriter:
            return BatchWriter(batch_size, uint8_images, fields, self.max_keypoints, shared)

        self._writer = new()
        try:
            for _ in self:
                if self._writer.full:
                    batch, self._writer = self._writer.finish(), new()
                    if self._cursor is not None:  # resampled: where this worker's draws stand after the batch
                        batch["stream_state"] = self._cursor.state()
                    yield batch
            if len(self._writer) and not drop_last:
                yield self._writer.finish()
        finally:
            self._writer = None

    def _bad(self, err: Exception) -> None:
        if not self.skip_bad:
            raise err
        self._skipped += 1
        if self._skipped <= 10:
            log.warning("skipping bad data (%d so far in this worker): %s", self._skipped, err)

    def _exact(self, slot: int, n_slots: int, start: int) -> Iterator[dict[str, Any]]:
        layout = exact_layout([s.shards for s in self.sources], self.seed, self.epoch, self.shuffle)
        segs = slot_segments(layout, slot, n_slots)
        order = interleave_order([len(s) for s in segs], self.interleave, rng_for(self.seed, self.epoch, slot, 1))
        done = [0] * len(segs)
        for j in order[:start]:
            done[j] += 1
        readers: dict[int, ShardReader | None] = {}
        last_good: tuple | None = None
        debt = 0
        try:
            for j in order[start:]:
                seg, k = segs[j], done[j]
                done[j] += 1
                pos = seg.pos0 + k
                try:
                    members = self._read(readers, j, seg.shard, seg.start, k)
                    item = self._make(members, seg.source, (self.seed, self.epoch, pos, 4), slot, seg.padding)
                except (ShardError, SchemaError) as e:
                    self._bad(e)
                    debt += 1
                else:
                    last_good = (members, seg.source, pos)
                    yield item
                if done[j] == len(seg) and readers.get(j) is not None:
                    readers.pop(j).close()
                while debt and last_good is not None:  # keep the count: repeat the last good sample as padding
                    members, src, pos = last_good
                    debt -= 1
                    yield self._make(members, src, (self.seed, self.epoch, pos, 4), slot, True)
            if debt:
                raise ShardError(f"worker slot {slot}: all {len(order) - start} of its samples this epoch are bad")
        finally:
            for r in readers.values():
                if r is not None:
                    r.close()

    @staticmethod
    def _read(readers: dict[int, ShardReader | None], j: int, ref: ShardRef, seg_start: int, k: int):
        """Sample ``seg_start + k`` of shard ``ref`` through segment ``j``'s reader (opened and skipped lazily)."""
        if j in readers and readers[j] is None:
            raise ShardError(f"{ref.url}: unreadable past sample #{seg_start + k - 1} (see the earlier error)")
        try:
            if j not in readers:
                readers[j] = ShardReader(ref.url)
                readers[j].skip(seg_start + k)
            members = readers[j].next_sample()
        except ShardError:
            if readers.get(j) is not None:
                readers[j].close()
            readers[j] = None
            raise
        if members is None:
            got = readers[j].index
            readers[j].close()
            readers[j] = None
            raise ShardError(
                f"{ref.url}: ended after {got} samples, but its count says {ref.samples}"
                " (truncated, or the dataset manifest is stale)"
            )
        return members

    def _resampled(self, slot: int, n_slots: int, start: int, logical: int) -> Iterator[dict[str, Any]]:
        n_emit = math.ceil(self.epoch_samples / n_slots)
        live = [i for i, s in enumerate(self.sources) if s.shards and s.n_samples != 0]
        weights = [self.sources[i].weight for i in live]
        p = [w / sum(weights) for w in weights]
        cur = self._resume_cursor(logical, slot, start, live)
        self._cursor = cur
        rng, open_ = cur.rng, cur.open
        empty_draws = 0
        try:
            for n in range(start, n_emit):
                while True:
                    src = live[int(rng.choice(len(live), p=p))]
                    readers = open_[src]
                    while len(readers) < self.interleave:
                        readers.append(ShardReader(self._draw_shard(src, rng).url))
                    k = int(rng.integers(len(readers)))
                    try:
                        members = readers[k].next_sample()
                    except ShardError as e:
                        readers.pop(k).close()
                        self._bad(e)
                        continue
                    if members is None:
                        readers.pop(k).close()
                        empty_draws += 1
                        if empty_draws > _MAX_EMPTY_DRAWS:
                            raise ShardError(f"source {self.sources[src].name!r}: no samples in {empty_draws} shards")
                        continue
                    empty_draws = 0
                    try:
                        item = self._make(members, src, (self.seed, self.epoch, slot, cur.origin, n, 3), slot, False)
                    except SchemaError as e:
                        self._bad(e)
                        continue
                    cur.n = n + 1
                    yield item
                    break
        finally:
            cur.close()

    def _resume_cursor(self, logical: int, slot: int, start: int, live: list[int]) -> _Cursor:
        """The resampled draws of this worker: continued from a saved :meth:`_Cursor.state` (resume: the same draws
        an uninterrupted run makes next), else fresh from ``(seed, epoch, slot, start)``."""
        saved = self.cursors.get(logical)
        if saved is not None:
            expect = {"epoch": self.epoch, "slot": slot, "n": start}
            got = {k: saved.get(k) for k in expect}
            if got == expect and set(map(int, saved["open"])) <= set(live):
                return _Cursor.restore(saved, live)
            log.warning("resampled stream: saved position %s does not match %s; drawing afresh", got, expect)
        return _Cursor(self.epoch, slot, start, rng_for(self.seed, self.epoch, slot, start, 2), live)

    def _draw_shard(self, src: int, rng) -> ShardRef:
        shards = self.sources[src].shards
        counts = [s.samples for s in shards]
        if all(c is not None for c in counts):
            total = sum(counts)
            return shards[int(rng.choice(len(shards), p=[c / total for c in counts]))]
        return shards[int(rng.integers(len(shards)))]
