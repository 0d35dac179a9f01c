"""Interactive, self-contained HTML pages to explore pairs: ground truth from shards, and a matcher's predictions.

* :func:`explore_dataset` (``datagen explore DIR --out explore.html``): the first pairs of a dataset folder;
* :mod:`datagen.explore.page`: the page builder (:func:`pair_record`, :func:`build_page`), also used by
  ``semmatch match --html`` and ``semmatch eval --html`` (:mod:`training.report_html`).
"""

from __future__ import annotations

from datagen.explore.page import build_page, encode_field, keypoint_sides, pair_record, pair_stats, write_page
from datagen.explore.read import explore_dataset, read_pairs

__all__ = [
    "build_page",
    "encode_field",
    "explore_dataset",
    "keypoint_sides",
    "pair_record",
    "pair_stats",
    "read_pairs",
    "write_page",
]
