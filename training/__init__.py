"""training: the VGGT re-implementation, the semantic matcher, losses, the trainer and evaluation."""

__version__ = "0.1.0"
