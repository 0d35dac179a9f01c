"""Which samples each global worker reads, in which order: the sources, the exact-epoch plan and the resampled draw.

**Sources.** :func:`load_sources` resolves what a :class:`loaders.stream.PairStream` is given (a data manifest,
sources or shard specs); :func:`check_shards` compares the shards with their dataset manifests and
:func:`fill_counts` counts the samples of local shards that have no count (an exact epoch needs every count).

A *slot* is one global data worker: ``slot = rank * num_workers + worker``, ``S = world_size * num_workers``.

**Exact epoch.** The epoch's order is all non-empty shards of all sources, shuffled with ``(seed, epoch)``; their
samples form one sequence of ``N`` positions. Every slot gets the same count ``L = ceil(N / S)``: slot ``s``
takes positions ``s*L .. s*L + L - 1``, and a position ``p >= N`` is a *padding* repeat of position ``p - N``
(flagged; ``S*L - N < S`` of them per epoch). So every sample is seen exactly once per epoch, not counting
padding, and every rank runs exactly ``num_workers * ceil(L / batch_size)`` batches: DDP never waits on a rank
that ran out. A slot's positions are a few contiguous *segments* (runs within one shard), read with up to
``interleave`` segments open at once, the next segment drawn at random: the emission order is a pure function
of ``(seed, epoch, slot)``, so resuming after ``c`` samples replays it and reads on from there.

**Resampled.** Infinite and deterministic from ``(seed, epoch, slot, start)``: each draw picks a source by the
mixture weights, then the next sample of one of that source's ``interleave`` open shards (each shard drawn with
probability proportional to its sample count, or uniformly when counts are unknown, and read to its end).
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from loaders.data_manifest import DataManifest, Source
from loaders.sources import ShardError, ShardRef, count_samples, expand_spec, is_remote, verify_shards

__all__ = [
    "dist_info",
    "load_sources",
    "check_shards",
    "fill_counts",
    "Segment",
    "EpochLayout",
    "exact_layout",
    "slot_segments",
    "interleave_order",
    "rng_for",
]


def dist_info(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments, else torchrun's ``RANK``/``WORLD_SIZE``, else ``(0, 1)``."""
    r = int(os.environ.get("RANK", 0)) if rank is None else rank
    w = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if not 0 <= r < w:
        raise ValueError(f"rank {r} is not in [0, world_size={w})")
    return r, w


def load_sources(
    sources: DataManifest | str | Path | Sequence[Source] | Sequence[str], data_root: str | Path | None = None
) -> list[Source]:
    """Resolve what :class:`loaders.stream.PairStream` accepts: a manifest (object or YAML path), sources, or shard
    specs."""
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


def check_shards(sources: Sequence[Source], verify: str | None, rank: int, world_size: int, progress: bool) -> None:
    """Check shards against their manifests (``verify``: ``"none"``/``"size"``/``"sha256"``, ``None`` = each
    source's own); each rank checks every ``world_size``-th shard.

    Raises:
        ShardError: listing the shards that disagree.
    """
    problems = []
    for src in sources:
        mode = verify or src.verify
        if mode != "none":
            mine = src.shards[rank::world_size]
            problems += verify_shards(mine, mode, progress=progress and rank == 0)
    if problems:
        raise ShardError("shards disagree with their dataset manifest:\n  " + "\n  ".join(problems))


def fill_counts(sources: list[Source], tolerant: bool, progress: bool) -> None:
    """Give every shard its sample count (in place), scanning local shards that have none (``tolerant``: count the
    good samples of a damaged one).

    Raises:
        ValueError: a remote shard without a count (it cannot be scanned), or no samples at all.
    """
    todo = [(i, j) for i, s in enumerate(sources) for j, r in enumerate(s.shards) if r.samples is None]
    remote = [sources[i].shards[j].url for i, j in todo if is_remote(sources[i].shards[j].url)]
    if remote:
        raise ValueError(
            f"exact mode needs sample counts; {remote[0]} (and {len(remote) - 1} more) has none: point the source"
            " at a dataset.json, set samples_per_shard in the data manifest, or use mode='resampled'"
        )
    for i, j in tqdm(todo, desc="counting samples", unit="shard", disable=not progress or not todo):
        r = sources[i].shards[j]
        sources[i].shards[j] = ShardRef(r.url, count_samples(r.url, tolerant), r.nbytes, r.sha256)
    if not sum(s.n_samples for s in sources):
        raise ValueError("PairStream: the sources hold no samples")


def rng_for(*key: int) -> np.random.Generator:
    """A generator derived from integers with ``SeedSequence`` (docs/design.md §3)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


@dataclass(frozen=True)
class Segment:
    """Samples ``start .. stop - 1`` of one shard, at global positions ``pos0 ..`` of the epoch."""

    source: int
    shard: ShardRef
    start: int
    stop: int
    pos0: int
    padding: bool

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class EpochLayout:
    """The exact epoch's shard order: ``order[i] = (source index, shard)`` and cumulative sample counts."""

    order: list[tuple[int, ShardRef]]
    cum: list[int]  # cum[i] = samples before order[i]; cum[-1] = N

    @property
    def n_samples(self) -> int:
        return self.cum[-1]

    def per_slot(self, n_slots: int) -> int:
        """``L``: samples every slot emits per epoch."""
        return math.ceil(self.n_samples / n_slots) if self.n_samples else 0


def exact_layout(sources: Sequence[Sequence[ShardRef]], seed: int, epoch: int, shuffle: bool = True) -> EpochLayout:
    """The epoch's shard order over all sources (counts must be known; empty shards are left out)."""
    order = [(i, s) for i, shards in enumerate(sources) for s in shards if s.samples]
    if shuffle:
        perm = rng_for(seed, epoch, 0x5EED).permutation(len(order))
        order = [order[j] for j in perm]
    cum = [0]
    for _, s in order:
        cum.append(cum[-1] + int(s.samples))
    return EpochLayout(order, cum)


def slot_segments(layout: EpochLayout, slot: int, n_slots: int) -> list[Segment]:
    """The contiguous runs of shards that make up slot ``slot``'s ``L`` positions (padding wraps to the start)."""
    n, L = layout.n_samples, layout.per_slot(n_slots)
    segs: list[Segment] = []
    p, end = slot * L, (slot + 1) * L
    while p < end:
        q = p % n
        i = bisect.bisect_right(layout.cum, q) - 1
        start = q - layout.cum[i]
        take = min(layout.cum[i + 1] - q, end - p)  # never crosses a shard end, hence never the epoch end
        src, shard = layout.order[i]
        segs.append(Segment(src, shard, start, start + take, p, p >= n))
        p += take
    return segs


def interleave_order(lengths: Sequence[int], width: int, rng: np.random.Generator) -> list[int]:
    """Emission order of segments read ``width`` at a time: entry ``j`` is the segment of the ``j``-th sample.

    Segments open in order; each step takes the next sample of a uniformly drawn open segment, and an exhausted
    segment is replaced by the next unopened one. Within a segment, samples come in order.
    """
    left = list(lengths)
    nxt = 0
    open_: list[int] = []
    out: list[int] = []
    total = sum(left)
    while len(out) < total:
        while len(open_) < max(1, width) and nxt < len(left):
            if left[nxt] > 0:
                open_.append(nxt)
            nxt += 1
        k = int(rng.integers(len(open_)))
        seg = open_[k]
        out.append(seg)
        left[seg] -= 1
        if left[seg] == 0:
            open_.pop(k)
    return out
