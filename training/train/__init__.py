"""The trainer: run manifests, the training loop, checkpoints, distributed setup, metrics and evaluation."""
