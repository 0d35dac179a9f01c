"""Baseline matchers that answer the semantic matcher's call (docs/interfaces.md §5)."""

from training.baselines.sift import DenseSiftMatcher

__all__ = ["DenseSiftMatcher"]
