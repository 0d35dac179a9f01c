"""Texture images of a file's materials as uint8 sRGB arrays: alpha dropped, size capped, factors baked in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["MAX_TEXTURE_SIDE", "texture_array", "read_texture", "mean_color"]

MAX_TEXTURE_SIDE = 2048  # larger textures are downscaled at intake (GL limits, memory, render time)


def texture_array(image: Image.Image, max_side: int = MAX_TEXTURE_SIDE) -> tuple[np.ndarray, str | None]:
    """(uint8 [H, W, 3] sRGB with row 0 at the top, a note or None) of a PIL image.

    Alpha is dropped (cut-outs are not supported), palettes and grey levels become RGB, and an image whose longer
    side exceeds ``max_side`` is downscaled (Lanczos) to that side, with a note.
    """
    note = None
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        note = f"texture of {w}x{h} px downscaled to {size[0]}x{size[1]}"
    return np.asarray(image, np.uint8).copy(), note


def read_texture(path: Path, max_side: int = MAX_TEXTURE_SIDE) -> tuple[np.ndarray, str | None]:
    """:func:`texture_array` of an image file. Raises ``OSError`` when the file is missing or not an image."""
    with Image.open(path) as image:
        image.load()
        return texture_array(image, max_side)


def mean_color(texture: np.ndarray) -> np.ndarray:
    """float64 [3] sRGB mean of a texture (the base colour stand-in where faces have no coordinates)."""
    return texture.reshape(-1, 3).mean(0) / 255.0
