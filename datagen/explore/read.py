"""Reading a dataset folder's pairs for the explorer (through the project's shard reader and schema decoder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loaders.dataset_manifest import DatasetManifest
from loaders.members import decode_sample
from loaders.sources import ShardReader

__all__ = ["read_pairs", "explore_dataset"]


def read_pairs(directory: str | Path, n: int | None = None) -> Iterator[dict[str, Any]]:
    """The first ``n`` (all when None) decoded samples of the shards listed in ``directory``'s manifest, in shard and
    key order (:class:`loaders.sources.ShardReader`, :func:`loaders.schema.decode_sample`)."""
    manifest = DatasetManifest.load(directory)
    count = 0
    for path in manifest.shard_paths(directory):
        with ShardReader(str(path)) as reader:
            while n is None or count < n:
                members = reader.next_sample()
                if members is None:
                    break
                yield decode_sample(members)
                count += 1
        if n is not None and count >= n:
            return


def explore_dataset(directory: str | Path, out: str | Path, n: int = 50) -> tuple[Path, int]:
    """Write the explorer page of the first ``n`` pairs of a dataset folder; returns ``(path, pairs)``."""
    from datagen.explore.page import pair_record, write_page

    directory = Path(directory)
    records = [pair_record(s) for s in read_pairs(directory, n)]
    if not records:
        raise ValueError(f"{directory}: the manifest lists no samples yet")
    cats = sorted({r["category"] for r in records})
    subtitle = f"{len(records)} pairs of {directory.absolute()} ({', '.join(cats)})"
    return write_page(out, records, f"datagen explore: {directory.name}", subtitle=subtitle), len(records)
