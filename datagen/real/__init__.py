"""Real image pairs: benchmark readers (SPair-71k, PF-PASCAL, AP-10K), keypoint-exact augmentation, warp pairs.

``read_pairs(dataset, root, split)`` validates a whole split up front and returns :class:`RealPair` records;
``RealPair.to_sample()`` reads the images and gives a schema sample (``loaders.schema``) without dense fields.
"""

from __future__ import annotations

from pathlib import Path

from datagen.real.pair import DatasetFormatError, RealPair

__all__ = ["DATASETS", "DatasetFormatError", "RealPair", "read_pairs"]

DATASETS = ("spair", "pfpascal", "ap10k")


def read_pairs(dataset: str, root: str | Path, split: str, categories: list[str] | None = None) -> list[RealPair]:
    """Read and validate every pair of ``dataset``'s ``split`` under ``root``.

    Raises:
        DatasetFormatError: naming the offending file.
        ValueError: for an unknown dataset name.
    """
    if dataset == "spair":
        from datagen.real.spair import read_spair

        return read_spair(root, split, categories)
    if dataset == "pfpascal":
        from datagen.real.pfpascal import read_pfpascal

        return read_pfpascal(root, split, categories)
    if dataset == "ap10k":
        from datagen.real.ap10k import read_ap10k

        return read_ap10k(root, split, categories)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
