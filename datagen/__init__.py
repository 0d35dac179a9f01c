"""datagen: dense cross-instance ground truth from procedural category families and mesh collections,
augmented real image pairs, written as WebDataset shards."""

__version__ = "0.2.0"
