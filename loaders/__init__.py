"""loaders: pair shards streamed into PyTorch: schema, decoding, pair-consistent transforms, mixing, splitting.

The contract: :mod:`loaders.schema` (sample fields, status codes, checks: what datagen, loaders and training
import), :mod:`loaders.members` (a sample's tar members) and :mod:`loaders.codec` (the ``dense.bin`` container).

The loader is four stages a sample passes in order (:mod:`loaders.stream` composes them):
read (:mod:`loaders.read`, planned by :mod:`loaders.plan`, shards by :mod:`loaders.sources`) -> decode
(:mod:`loaders.decode`) -> pair-consistent transform (:mod:`loaders.augment`, :mod:`loaders.transforms`,
:mod:`loaders.warp`) -> batch (:mod:`loaders.batch`; planned samples decode there: :mod:`loaders.fused`,
:mod:`loaders.dense`).

Main entry points (imported lazily so ``import loaders.schema`` stays light for the data writers):

* :class:`loaders.stream.PairStream`: shards of a data manifest as an ``IterableDataset`` (exact or resampled);
* :class:`loaders.loader.PairLoader`: its batches (docs/interfaces.md §4) and the stream position
  (``state_dict``/``load_state_dict``);
* :mod:`loaders.transforms` / :mod:`loaders.augment`: pair-consistent transforms on schema sample dicts;
* :class:`loaders.data_manifest.DataManifest`: ``manifests/data/*.yaml``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PairStream": "loaders.stream",
    "PairLoader": "loaders.loader",
    "DataManifest": "loaders.data_manifest",
    "collate_pairs": "loaders.batch",
    "to_item": "loaders.batch",
    "build_transforms": "loaders.augment",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'loaders' has no attribute {name!r}")
