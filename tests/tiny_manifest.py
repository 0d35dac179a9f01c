"""The parts of a run manifest the trainer tests share: a tiny VGGT-shaped matcher on synthetic pairs."""

from __future__ import annotations

import copy


def tiny_model_and_data() -> dict:
    """``model`` (tiny preset, split 2, one order, random head, no geometry heads) and ``data`` (the built-in
    synthetic source, batches of 2), fresh copies each call."""
    return copy.deepcopy(
        {
            "model": {
                "preset": "tiny",
                "split_index": 2,
                "matcher": {"symmetric": False, "head_init": "random", "geometry_heads": False},
            },
            "data": {"sources": {"syn": {"synthetic": {}}}, "batch_size": 2},
        }
    )
