"""Stage 1 of the loader: read a worker's share of an epoch from its shards, one sample (tar member group) at a time.

:mod:`loaders.plan` says which samples a worker (a *slot*) reads and in which order; :class:`ExactReader` and
:class:`ResampledReader` read them (:class:`loaders.sources.ShardReader` groups consecutive tar members sharing a
key into one sample) and hand each on as a :class:`Drawn` record: the members, the source, the key of the sample's
random generator, whether it is a padding repeat.

``reader.run(make)`` yields ``make(drawn)`` for every sample, where ``make`` is the rest of the pipeline for one
sample (decode, transform, batch; see :mod:`loaders.stream`). The reader calls it because a bad sample changes what
it reads next: a truncated or corrupted shard or sample (``ShardError``, ``SchemaError`` from ``make``) raises, or
with ``skip_bad`` is logged and counted (``Drawn.skipped``). An exact epoch then repeats the last good sample as
padding, so the per-slot count never changes; the resampled stream draws another.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from loaders.data_manifest import Source
from loaders.plan import exact_layout, interleave_order, rng_for, slot_segments
from loaders.schema import SchemaError
from loaders.sources import ShardError, ShardReader, ShardRef

__all__ = ["Drawn", "ExactReader", "ResampledReader", "Cursor"]

log = logging.getLogger("loaders")
T = TypeVar("T")
_MAX_EMPTY_DRAWS = 1000  # consecutive draws that found no sample before resampled mode gives up


@dataclass(frozen=True)
class Drawn:
    """One sample as read: its tar ``members`` (``{field: bytes}`` plus ``__key__``/``__url__``), the index of its
    ``source``, ``rng_key`` (its transform generator is ``rng_for(*rng_key)``), the global worker ``slot`` that read
    it, ``padding`` (a repeat that only evens out the epoch) and ``skipped``: bad samples this worker skipped so far."""

    members: dict[str, Any]
    source: int
    rng_key: tuple[int, ...]
    slot: int
    padding: bool
    skipped: int


class _Reader:
    """What both readers share: the slot and the bad-data policy."""

    def __init__(self, slot: int, skip_bad: bool) -> None:
        self.slot, self.skip_bad, self.skipped = slot, skip_bad, 0

    def _bad(self, err: Exception) -> None:
        if not self.skip_bad:
            raise err
        self.skipped += 1
        if self.skipped <= 10:
            log.warning("skipping bad data (%d so far in this worker): %s", self.skipped, err)


class ExactReader(_Reader):
    """Slot ``slot`` of ``n_slots``: its samples of the exact epoch (:func:`loaders.plan.slot_segments`), read
    ``interleave`` segments at a time in the order of :func:`loaders.plan.interleave_order`, from the ``start``-th on
    (resume)."""

    def __init__(
        self,
        shards: Sequence[Sequence[ShardRef]],
        seed: int,
        epoch: int,
        shuffle: bool,
        interleave: int,
        slot: int,
        n_slots: int,
        start: int = 0,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(slot, skip_bad)
        self.seed, self.epoch, self.start = seed, epoch, start
        self.segs = slot_segments(exact_layout(shards, seed, epoch, shuffle), slot, n_slots)
        self.order = interleave_order([len(s) for s in self.segs], interleave, rng_for(seed, epoch, slot, 1))

    def _drawn(self, members: dict[str, Any], source: int, pos: int, padding: bool) -> Drawn:
        return Drawn(members, source, (self.seed, self.epoch, pos, 4), self.slot, padding, self.skipped)

    def run(self, make: Callable[[Drawn], T]) -> Iterator[T]:
        segs, start = self.segs, self.start
        done = [0] * len(segs)
        for j in self.order[:start]:
            done[j] += 1
        readers: dict[int, ShardReader | None] = {}
        last_good: tuple | None = None
        owed = 0  # bad samples not yet replaced by a padding repeat
        try:
            for j in self.order[start:]:
                seg, k = segs[j], done[j]
                done[j] += 1
                pos = seg.pos0 + k
                try:
                    members = _read(readers, j, seg.shard, seg.start, k)
                    item = make(self._drawn(members, seg.source, pos, seg.padding))
                except (ShardError, SchemaError) as e:
                    self._bad(e)
                    owed += 1
                else:
                    last_good = (members, seg.source, pos)
                    yield item
                if done[j] == len(seg) and readers.get(j) is not None:
                    readers.pop(j).close()
                while owed and last_good is not None:  # keep the count: repeat the last good sample as padding
                    owed -= 1
                    yield make(self._drawn(*last_good, True))
            if owed:
                raise ShardError(
                    f"worker slot {self.slot}: all {len(self.order) - start} of its samples this epoch are bad"
                )
        finally:
            for r in readers.values():
                if r is not None:
                    r.close()


def _read(readers: dict[int, ShardReader | None], j: int, ref: ShardRef, seg_start: int, k: int) -> dict[str, Any]:
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


class Cursor:
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
    def restore(cls, state: dict[str, Any], live: Sequence[int]) -> Cursor:
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


class ResampledReader(_Reader):
    """Slot ``slot`` of ``n_slots``: ``ceil(epoch_samples / n_slots)`` draws (from the ``start``-th on), each a
    source by the mixture weights, then the next sample of one of its ``interleave`` open shards (see
    :mod:`loaders.plan`). ``saved``: a :meth:`Cursor.state` to continue from (resume: the same draws an
    uninterrupted run makes next); :attr:`cursor` is where the draws stand after the last sample ``run`` yielded."""

    def __init__(
        self,
        sources: Sequence[Source],
        seed: int,
        epoch: int,
        epoch_samples: int,
        interleave: int,
        slot: int,
        n_slots: int,
        start: int = 0,
        saved: dict[str, Any] | None = None,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(slot, skip_bad)
        self.sources, self.seed, self.epoch, self.interleave, self.start = sources, seed, epoch, interleave, start
        self.n_emit = math.ceil(epoch_samples / n_slots)
        self.live = [i for i, s in enumerate(sources) if s.shards and s.n_samples != 0]
        weights = [sources[i].weight for i in self.live]
        self.p = [w / sum(weights) for w in weights]
        self.saved = saved
        self.cursor: Cursor | None = None  # set when run() starts

    def _cursor(self, saved: dict[str, Any] | None) -> Cursor:
        if saved is not None:
            expect = {"epoch": self.epoch, "slot": self.slot, "n": self.start}
            got = {k: saved.get(k) for k in expect}
            if got == expect and set(map(int, saved["open"])) <= set(self.live):
                return Cursor.restore(saved, self.live)
            log.warning("resampled stream: saved position %s does not match %s; drawing afresh", got, expect)
        rng = rng_for(self.seed, self.epoch, self.slot, self.start, 2)
        return Cursor(self.epoch, self.slot, self.start, rng, self.live)

    def run(self, make: Callable[[Drawn], T]) -> Iterator[T]:
        cur = self.cursor = self._cursor(self.saved)
        live = self.live
        rng, open_ = cur.rng, cur.open
        empty_draws = 0
        try:
            for n in range(self.start, self.n_emit):
                while True:
                    src = live[int(rng.choice(len(live), p=self.p))]
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
                    key = (self.seed, self.epoch, self.slot, cur.origin, n, 3)
                    try:
                        item = make(Drawn(members, src, key, self.slot, False, self.skipped))
                    except SchemaError as e:
                        self._bad(e)
                        continue
                    cur.n = n + 1
                    yield item
                    break
        finally:
            cur.close()

    def _draw_shard(self, src: int, rng: np.random.Generator) -> ShardRef:
        shards = self.sources[src].shards
        counts = [s.samples for s in shards]
        if all(c is not None for c in counts):
            total = sum(counts)
            return shards[int(rng.choice(len(shards), p=[c / total for c in counts]))]
        return shards[int(rng.integers(len(shards)))]
