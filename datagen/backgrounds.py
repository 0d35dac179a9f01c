"""Real photographs as backgrounds (``datagen render --backgrounds PATH``), for both renderers.

``PATH`` is a folder of the user's own photos (e.g. COCO or SUN images; searched recursively, by extension), one
photo, or a text file listing image paths, one a line (relative paths are taken from the list's folder; ``#`` starts a
comment). Each view draws one photo and a random crop of it (at least half of the photo's shorter side, with the
view's aspect) from its own seeded generator; the pyrender path composites the object over the crop, the Cycles
path renders with a transparent film (the ground, when drawn, only catches shadows) and composites the same way.
The choice is recorded in the view's meta; the list's fingerprint (names and sizes) pins it in ``dataset.json``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["PHOTO_EXTENSIONS", "BackgroundError", "PhotoBackgrounds", "photo_backgrounds", "photo_rng"]

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_PHOTO_STREAM = 21  # a view's photo draw: a stream of its own beside lighting, background and scene dressing
MIN_CROP = 0.5  # a crop spans at least this share of the photo's shorter side


class BackgroundError(ValueError):
    """A background list that cannot be used: no images, or a missing or unreadable one (named)."""


def photo_rng(view_seed: int) -> np.random.Generator:
    """The generator of a view's photo and crop."""
    return np.random.default_rng(np.random.SeedSequence([view_seed, _PHOTO_STREAM]))


def _list_paths(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS and p.is_file())
    if source.is_file() and source.suffix.lower() in PHOTO_EXTENSIONS:  # one photo
        return [source]
    if source.is_file():
        paths = []
        for line in source.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                p = Path(line).expanduser()
                paths.append(p if p.is_absolute() else source.parent / p)
        return paths
    raise BackgroundError(f"--backgrounds {source}: no such folder or list file")


class PhotoBackgrounds:
    """The photos of a folder or list file; :meth:`sample` draws a view's crop."""

    def __init__(self, source: str | Path, check: bool = True) -> None:
        self.source = Path(source).expanduser().absolute()
        self.paths = _list_paths(self.source)
        if not self.paths:
            raise BackgroundError(f"--backgrounds {self.source}: no images ({', '.join(PHOTO_EXTENSIONS)})")
        if check:
            for p in self.paths:
                self._check(p)

    @staticmethod
    def _check(path: Path) -> tuple[int, int]:
        if not path.is_file():
            raise BackgroundError(f"background photo {path}: missing")
        try:
            with Image.open(path) as im:
                return im.size
        except (OSError, ValueError) as e:
            raise BackgroundError(f"background photo {path}: unreadable ({e})") from e

    def name(self, path: Path) -> str:
        """The photo's name as recorded: relative to the folder (or the list's folder) when inside it."""
        base = self.source if self.source.is_dir() else self.source.parent
        try:
            return str(path.relative_to(base))
        except ValueError:
            return str(path)

    def fingerprint(self) -> str:
        """sha256 over the photos' recorded names and byte sizes, in order."""
        h = hashlib.sha256()
        for p in self.paths:
            h.update(f"{self.name(p)}\t{p.stat().st_size}\n".encode())
        return h.hexdigest()

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, dict[str, Any]]:
        """uint8 [height, width, 3]: a random crop of a random photo, resized; and its record (``photo``, ``crop``
        as x, y, w, h in the photo's pixels, ``flip``)."""
        path = self.paths[int(rng.integers(len(self.paths)))]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                W, H = im.size
                aspect = width / height
                side = min(H, W / aspect) * rng.uniform(MIN_CROP, 1.0)
                cw, ch = max(1, round(side * aspect)), max(1, round(side))
                cw, ch = min(cw, W), min(ch, H)
                x, y = int(rng.integers(W - cw + 1)), int(rng.integers(H - ch + 1))
                flip = bool(rng.random() < 0.5)
                crop = im.crop((x, y, x + cw, y + ch)).resize((width, height), Image.Resampling.BILINEAR)
        except (OSError, ValueError) as e:
            raise BackgroundError(f"background photo {path}: unreadable ({e})") from e
        out = np.asarray(crop, np.uint8)
        if flip:
            out = out[:, ::-1]
        return np.ascontiguousarray(out), {"photo": self.name(path), "crop": [x, y, cw, ch], "flip": flip}


@lru_cache(maxsize=4)
def photo_backgrounds(source: str) -> PhotoBackgrounds:
    """The process's list for ``source`` (checked once by the CLI; workers list it without re-opening every photo)."""
    return PhotoBackgrounds(source, check=False)
