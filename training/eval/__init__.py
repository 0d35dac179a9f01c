"""Evaluation: the peers' PCK protocol, prediction at keypoints, benchmark and shard runners, reports."""

from training.eval.pck import DEFAULT_ALPHAS, DEFAULT_THRESHOLD, PCKAccumulator, geo_aware_mask, threshold_length

__all__ = ["DEFAULT_ALPHAS", "DEFAULT_THRESHOLD", "PCKAccumulator", "geo_aware_mask", "threshold_length"]
