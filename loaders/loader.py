"""``PairLoader``: batches from a :class:`loaders.stream.PairStream`, with the stream position as a state dict.

Usage (one per rank)::

    stream = PairStream("manifests/data/chair.yaml", mode="resampled", seed=0, transform=build_transforms(spec))
    loader = PairLoader(stream, batch_size=8, num_workers=4)
    loader.load_state_dict(ckpt["data"])            # optional: resume
    for epoch in range(loader.epoch, n_epochs):
        for batch in loader:                         # one epoch from the current position; len(loader) batches
            ...
            ckpt["data"] = loader.state_dict()       # {"epoch", "batches_done", ...}

``iter(loader)`` runs the current epoch from the current position to its end, then moves to the next epoch. The
position is counted in batches handed to the caller, so a checkpoint taken after step ``k`` resumes with batch
``k + 1``: exactly the batch an uninterrupted run would have produced next (same world size, workers and batch
size). In exact mode the position is a count (the epoch's order replays); in resampled mode each worker's batches
also carry its draws' state (generator, open shards and how far they were read), which the state dict keeps per
rank. With another layout, exact mode restarts at the next epoch and resampled mode continues with fresh draws.
Every rank has the same ``len(loader)``.

Workers are restarted each epoch (the epoch and the resume position travel with the dataset to the workers);
batches come from the workers in round-robin order, which is what makes the position exact.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator
from typing import Any

import torch

from loaders.batch import resolve_fields
from loaders.stream import PairStream

__all__ = ["PairLoader", "STATE_VERSION"]

log = logging.getLogger("loaders")
STATE_VERSION = 2  # 2: resampled cursors; 1 (a count only) still loads


class _Batches(torch.utils.data.IterableDataset):
    """The stream's batches as a dataset (each DataLoader worker runs :meth:`PairStream.batches` on its share)."""

    def __init__(self, stream: PairStream, batch_size: int, drop_last: bool, uint8_images: bool, fields) -> None:
        super().__init__()
        self.stream, self.batch_size, self.drop_last = stream, batch_size, drop_last
        self.uint8_images, self.fields = uint8_images, fields

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.stream.batches(self.batch_size, self.drop_last, self.uint8_images, self.fields)


def _as_is(batch: dict[str, Any]) -> dict[str, Any]:
    return batch


class PairLoader:
    """Batches of pairs for one rank (see the module doc).

    Args:
        dataset: the stream.
        batch_size: pairs per batch (per rank).
        num_workers: DataLoader worker processes (0 = in the calling process).
        drop_last: drop each worker's last partial batch.
        pin_memory, prefetch_factor, timeout, multiprocessing_context: passed to ``torch.utils.data.DataLoader``.
        uint8_images: batches carry ``images`` as uint8 [0, 255] instead of float32 [0, 1] (4x less to fill and to
            send from the workers; convert on the GPU with :func:`loaders.batch.images_to_float`).
        fields: the array keys batches carry (default all of :data:`loaders.batch.ARRAY_KEYS`; e.g. leave out
            ``depth`` when nothing reads it: it is then not even decoded).
    """

    def __init__(
        self,
        dataset: PairStream,
        batch_size: int,
        num_workers: int = 0,
        drop_last: bool = False,
        pin_memory: bool = False,
        prefetch_factor: int | None = None,
        timeout: float = 0,
        multiprocessing_context: Any = None,
        uint8_images: bool = False,
        fields: Collection[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.fields = resolve_fields(fields)
        self.dataset, self.batch_size, self.num_workers = dataset, int(batch_size), int(num_workers)
        self.drop_last, self.pin_memory, self.prefetch_factor = drop_last, pin_memory, prefetch_factor
        self.timeout, self.multiprocessing_context = timeout, multiprocessing_context
        self.uint8_images = uint8_images
        self.epoch = 0
        self.batches_done = 0
        self._skipped: dict[int, int] = {}  # slot -> skipped samples reported by that worker (this epoch)
        self._cursors: dict[int, dict[str, Any]] = {}  # resampled: logical worker -> its draws after its last batch
        self.n_skipped_total = 0  # skipped samples on this rank in finished epochs

    # ---- sizes ------------------------------------------------------------------------------------------------
    @property
    def _workers(self) -> int:
        return max(1, self.num_workers)

    def batches_per_worker(self) -> int:
        L = self.dataset.samples_per_worker(self.num_workers)
        return L // self.batch_size if self.drop_last else math.ceil(L / self.batch_size)

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        return self._workers * self.batches_per_worker()

    @property
    def n_skipped(self) -> int:
        """Bad samples skipped on this rank so far (``skip_bad=True``)."""
        return self.n_skipped_total + sum(self._skipped.values())

    # ---- iteration --------------------------------------------------------------------------------------------
    def _worker_starts(self) -> dict[int, int]:
        """Samples each logical worker already emitted this epoch, from the batches handed out (round robin)."""
        k, nw = self.batches_done, self._workers
        per = self.dataset.samples_per_worker(self.num_workers)
        return {j: min(per, max(0, -(-(k - j) // nw)) * self.batch_size) for j in range(nw)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ds = self.dataset
        ds.set_epoch(self.epoch)
        ds.start = self._worker_starts()
        ds.rotation = self.batches_done % self._workers
        ds.cursors = dict(self._cursors)
        kwargs: dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs.update(prefetch_factor=self.prefetch_factor, multiprocessing_context=self.multiprocessing_context)
        loader = torch.utils.data.DataLoader(
            _Batches(ds, self.batch_size, self.drop_last, self.uint8_images, self.fields),
            batch_size=None,  # the workers write whole batches (PairStream.batches)
            num_workers=self.num_workers,
            collate_fn=_as_is,
            pin_memory=self.pin_memory,
            timeout=self.timeout,
            **kwargs,
        )
        for batch in loader:
            for info in batch["stream"]:
                slot = info.get("slot", 0)
                self._skipped[slot] = max(self._skipped.get(slot, 0), info.get("skipped", 0))
            cursor = batch.pop("stream_state", None)
            if cursor is not None:
                self._cursors[int(cursor["slot"]) % self._workers] = cursor
            self.batches_done += 1
            yield batch
        self.n_skipped_total += sum(self._skipped.values())
        self._skipped = {}
        self._cursors = {}
        self.epoch += 1
        self.batches_done = 0

    def set_epoch(self, epoch: int) -> None:
        """Jump to the start of ``epoch``."""
        self.epoch, self.batches_done, self._cursors = int(epoch), 0, {}

    # ---- state ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The stream position and the layout it was counted in (plain Python values, JSON-serialisable)."""
        return {
            "version": STATE_VERSION,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "samples_done": min(
                self.batches_done * self.batch_size, self._workers * self.dataset.samples_per_worker(self.num_workers)
            ),
            "mode": self.dataset.mode,
            "seed": self.dataset.seed,
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "world_size": self.dataset.world_size,
            "n_skipped": self.n_skipped,
            "cursors": {str(j): c for j, c in sorted(self._cursors.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``. A different world size, worker count or batch size cannot replay an exact
        epoch mid-way: the exact mode then starts the next epoch, the resampled mode continues the epoch with fresh
        draws for the samples left on this rank.

        Raises:
            ValueError: on an unknown state version or a different mode or seed.
        """
        if state.get("version") not in (1, STATE_VERSION):
            raise ValueError(f"loader state version {state.get('version')} is not {STATE_VERSION}")
        for k, mine in (("mode", self.dataset.mode), ("seed", self.dataset.seed)):
            if state[k] != mine:
                raise ValueError(f"loader state has {k}={state[k]!r}, this loader {mine!r}")
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])
        self.n_skipped_total, self._skipped = int(state.get("n_skipped", 0)), {}
        self._cursors = {int(j): c for j, c in state.get("cursors", {}).items()}
        same = (state["batch_size"], state["num_workers"], state["world_size"]) == (
            self.batch_size,
            self.num_workers,
            self.dataset.world_size,
        )
        if same or self.batches_done == 0:
            return
        self._cursors = {}
        if self.dataset.mode == "exact":
            log.warning(
                "data layout changed since the checkpoint: the exact epoch restarts at epoch %d", self.epoch + 1
            )
            self.epoch, self.batches_done = self.epoch + 1, 0
        else:
            # same number of samples consumed on this rank, re-expressed in this loader's batches
            self.batches_done = min(len(self), int(state["samples_done"]) // self.batch_size)
