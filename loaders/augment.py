"""Random pair augmentations: callables ``(sample, rng) -> sample`` drawing every choice from the given generator.

Each is deterministic given the ``numpy.random.Generator`` (the stream derives one per sample from the seed, the
epoch and the sample's position, so a sample is augmented the same way whatever the number of workers).
Geometric ones go through :func:`loaders.warp.warp_view` and keep correspondences exact.

Build a pipeline in code (``Compose([VggtPreprocess("crop"), RandomHFlip(0.5), ColorJitter(0.2, 0.2, 0.2)])``)
or from a manifest's ``transforms:`` list with :func:`build_transforms`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from loaders.raster import affine_translate, is_pending, jitter_image
from loaders.schema import META_FLIP_PERM, has_dense
from loaders.transforms import hflip, swap_views, vggt_preprocess, view_size
from loaders.warp import warp_view

__all__ = [
    "Transform",
    "Compose",
    "VggtPreprocess",
    "Fit",
    "RandomAffine",
    "default_train_transforms",
    "RandomHFlip",
    "ColorJitter",
    "RandomSwap",
    "build_transforms",
    "random_affine_matrix",
]

Transform = Callable[[dict[str, Any], np.random.Generator], dict[str, Any]]


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    @property
    def plannable(self) -> bool:
        """Every step can run on a planned sample (:mod:`loaders.decode`): the loader may then decode each raster
        once, straight into the batch."""
        return all(getattr(t, "plannable", False) for t in self.transforms)

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class VggtPreprocess:
    """:func:`loaders.transforms.vggt_preprocess` (deterministic): ``mode`` ``"crop"`` or ``"pad"``."""

    plannable = True  # touches rasters only through warp_view / Pending (see loaders.decode)

    def __init__(self, mode: str = "crop", size: int = 518) -> None:
        if mode not in ("crop", "pad"):
            raise ValueError(f"VggtPreprocess: mode must be 'crop' or 'pad', got {mode!r}")
        self.mode, self.size = mode, size

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        return vggt_preprocess(sample, self.mode, self.size)

    def __repr__(self) -> str:
        return f"VggtPreprocess(mode={self.mode!r}, size={self.size})"


class Fit:
    """Deterministic resize of both views to ``out_hw``: ``"crop"`` scales to cover and centre-crops, ``"pad"``
    scales to fit and pads (white by default), keeping the aspect ratio either way (evaluation at a fixed size)."""

    plannable = True  # touches rasters only through warp_view / Pending (see loaders.decode)

    def __init__(self, out_hw: tuple[int, int], mode: str = "crop", fill: int | tuple[int, int, int] = 255) -> None:
        if mode not in ("crop", "pad"):
            raise ValueError(f"Fit: mode must be 'crop' or 'pad', got {mode!r}")
        self.out_hw, self.mode, self.fill = (int(out_hw[0]), int(out_hw[1])), mode, fill

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any]:
        (H, W) = self.out_hw
        for v in (0, 1):
            h, w = view_size(sample, v)
            s = max(H / h, W / w) if self.mode == "crop" else min(H / h, W / w)
            if abs(s - 1) < 1e-12 and (H - h) % 2 == 0 and (W - w) % 2 == 0:
                A = affine_translate((W - w) // 2, (H - h) // 2)  # same scale: an exact crop or pad
            else:
                A = (
                    affine_translate((W - 1) / 2, (H - 1) / 2)
                    @ np.diag([s, s, 1.0])
                    @ affine_translate(-(w - 1) / 2, -(h - 1) / 2)
                )
            sample = warp_view(sample, v, A, self.out_hw, fill=self.fill)
        return sample

    def __repr__(self) -> str:
        return f"Fit(out_hw={self.out_hw}, mode={self.mode!r})"


def random_affine_matrix(
    rng: np.random.Generator,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    scale: tuple[float, float],
    rotate_deg: float,
    translate: float,
) -> np.ndarray:
    """float64 [3, 3]: scale the view to cover ``out_hw``, times a log-uniform ``scale``, rotate by a uniform angle
    in ``±rotate_deg`` about the centre, shift the centre by up to ``translate`` of the output size.

    With no rotation and unit scale the shift is rounded to whole pixels (an exact crop, no resampling).
    """
    (h, w), (H, W) = in_hw, out_hw
    s = max(H / h, W / w) * float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    theta = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg)) if rotate_deg > 0 else 0.0
    tx, ty = rng.uniform(-translate, translate, 2) * np.array([W, H])
    c, si = np.cos(theta) * s, np.sin(theta) * s
    R = np.array([[c, -si, 0], [si, c, 0], [0, 0, 1]])
    A = affine_translate((W - 1) / 2 + tx, (H - 1) / 2 + ty) @ R @ affine_translate(-(w - 1) / 2, -(h - 1) / 2)
    if theta == 0 and abs(s - 1) < 1e-9:
        A[:2, 2] = np.round(A[:2, 2])
    return A


class RandomAffine:
    """Per view (independently), a random scale / rotation / shift onto an ``out_hw`` raster.

    Args:
        out_hw: output ``(H, W)`` of both views (use multiples of 14).
        scale: log-uniform range of the zoom on top of the scale that makes the view cover ``out_hw``.
        rotate_deg: rotation range ``±rotate_deg``.
        translate: centre shift range as a fraction of the output size.
        p: probability of applying it to each view (otherwise the view is only scaled to cover and centre-cropped).
        fill: colour where the warped view has no content.
    """

    plannable = True  # touches rasters only through warp_view / Pending (see loaders.decode)

    def __init__(
        self,
        out_hw: tuple[int, int] = (518, 518),
        scale: tuple[float, float] = (1.0, 1.3),
        rotate_deg: float = 10.0,
        translate: float = 0.05,
        p: float = 1.0,
        fill: int | tuple[int, int, int] = 0,
    ) -> None:
        if scale[0] <= 0 or scale[0] > scale[1]:
            raise ValueError(f"RandomAffine: bad scale range {scale}")
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        self.scale, self.rotate_deg, self.translate, self.p, self.fill = tuple(scale), rotate_deg, translate, p, fill

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        for v in (0, 1):
            if rng.random() < self.p:
                A = random_affine_matrix(
                    rng, view_size(sample, v), self.out_hw, self.scale, self.rotate_deg, self.translate
                )
            else:
                A = random_affine_matrix(rng, view_size(sample, v), self.out_hw, (1.0, 1.0), 0.0, 0.0)
            sample = warp_view(sample, v, A, self.out_hw, fill=self.fill)
        return sample

    def __repr__(self) -> str:
        return f"RandomAffine(out_hw={self.out_hw}, scale={self.scale}, rotate_deg={self.rotate_deg})"


class RandomHFlip:
    """Mirror both views with probability ``p_both``, else one view (chosen at random) with ``p_one``.

    A single-view flip is only drawn when it can keep labels true: never on a dense pair unless ``drop_dense``
    (see :func:`loaders.transforms.hflip`), and never when keypoints have no ``meta.flip_perm``; in those cases
    the draw falls back to flipping both views.
    """

    plannable = True  # touches rasters only through warp_view / Pending (see loaders.decode)

    def __init__(self, p_both: float = 0.5, p_one: float = 0.0, drop_dense: bool = False) -> None:
        self.p_both, self.p_one, self.drop_dense = p_both, p_one, drop_dense

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        r = rng.random()
        if r < self.p_both:
            return hflip(sample, (0, 1))
        if r < self.p_both + self.p_one:
            view = int(rng.integers(2))
            meta = sample["meta"]
            single_ok = (not has_dense(sample) or self.drop_dense) and (
                meta.get(META_FLIP_PERM) is not None or not meta.get("keypoint_names")
            )
            return hflip(sample, view, drop_dense=self.drop_dense) if single_ok else hflip(sample, (0, 1))
        return sample

    def __repr__(self) -> str:
        return f"RandomHFlip(p_both={self.p_both}, p_one={self.p_one})"


class ColorJitter:
    """Random brightness, contrast, saturation (factors in ``1 ± value``) and hue shift (``± hue`` of a turn).

    Args:
        same_for_both: one draw for both views (default: an independent draw per view).
    """

    plannable = True  # touches rasters only through warp_view / Pending (see loaders.decode)

    def __init__(
        self,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
        hue: float = 0.0,
        same_for_both: bool = False,
    ) -> None:
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.same_for_both = same_for_both

    def _draw(self, rng: np.random.Generator) -> tuple[float, float, float, float]:
        b, c, s = (1 + rng.uniform(-x, x) for x in (self.brightness, self.contrast, self.saturation))
        return b, c, s, rng.uniform(-self.hue, self.hue)

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        out = dict(sample)
        params = self._draw(rng)
        for v in (0, 1):
            if v == 1 and not self.same_for_both:
                params = self._draw(rng)
            img = sample[f"image{v}"]
            out[f"image{v}"] = img.then(("jitter", *params)) if is_pending(img) else jitter_image(img, *params)
        return out

    def __repr__(self) -> str:
        return f"ColorJitter({self.brightness}, {self.contrast}, {self.saturation}, {self.hue})"


class RandomSwap:
    """Exchange the two views with probability ``p``."""

    plannable = True  # touches rasters only through warp_view / Pending (see loaders.decode)

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        return swap_views(sample) if rng.random() < self.p else sample

    def __repr__(self) -> str:
        return f"RandomSwap(p={self.p})"


def default_train_transforms(out_hw: tuple[int, int] = (518, 518)) -> Compose:
    """The default training augmentation at ``out_hw``: per-view random zoom (1-1.3x over covering), rotation
    (±10°) and shift (±5 %), a flip of both views half the time (single-view flips on sparse pairs 20 %), colour
    jitter (±0.2) and swapping the views half the time."""
    return Compose(
        [
            RandomAffine(out_hw, scale=(1.0, 1.3), rotate_deg=10.0, translate=0.05),
            RandomHFlip(p_both=0.4, p_one=0.2),
            ColorJitter(0.2, 0.2, 0.2),
            RandomSwap(0.5),
        ]
    )


_REGISTRY: dict[str, type] = {
    "vggt_preprocess": VggtPreprocess,
    "fit": Fit,
    "random_affine": RandomAffine,
    "random_hflip": RandomHFlip,
    "color_jitter": ColorJitter,
    "random_swap": RandomSwap,
}


def build_transforms(spec: Sequence[Mapping[str, Any]] | None, where: str = "transforms") -> Compose:
    """Build a :class:`Compose` from a list like ``[{"op": "random_hflip", "p_both": 0.5}, ...]``.

    Raises:
        ValueError: naming ``where`` and the entry on an unknown op or argument.
    """
    out = []
    for i, entry in enumerate(spec or []):
        if not isinstance(entry, Mapping) or "op" not in entry:
            raise ValueError(f"{where}[{i}]: each transform is a mapping with an 'op' key, got {entry!r}")
        kwargs = {k: v for k, v in entry.items() if k != "op"}
        cls = _REGISTRY.get(entry["op"])
        if cls is None:
            raise ValueError(f"{where}[{i}]: unknown op {entry['op']!r}; known: {sorted(_REGISTRY)}")
        for k in ("out_hw", "scale"):
            if k in kwargs:
                kwargs[k] = tuple(kwargs[k])
        try:
            out.append(cls(**kwargs))
        except TypeError as e:
            raise ValueError(f"{where}[{i}] ({entry['op']}): {e}") from None
    return Compose(out)
