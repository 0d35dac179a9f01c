"""loaders: pair shards streamed into PyTorch: schema, decoding, pair-consistent transforms, mixing, splitting."""

__version__ = "0.1.0"
