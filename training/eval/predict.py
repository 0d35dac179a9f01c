"""Running a matcher on an image pair of any size and reading its answer in original image coordinates.

The matcher sees both images resized into one ``S × S`` model frame (``"pad"``: longest side to ``S``, centred
on a black canvas, as peers' 840-px padded frame; ``"stretch"``: each axis scaled to ``S``). Source points are
mapped into the model frame, ``grid[:, 0]`` is sampled there bilinearly (``grid_sample``, pixel-centre
convention of ``training/geometry.py``) and the predicted target points are mapped back to the target's
original pixels. With the pixel-centre convention a resize by ``s`` maps ``x -> (x + 0.5) s - 0.5``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from training.geometry import px_to_norm

__all__ = ["RESIZE_MODES", "FrameMap", "fit_frame", "run_matcher", "sample_field", "predict_points", "predict_dense"]

RESIZE_MODES = ("pad", "stretch")

Matcher = Callable[[torch.Tensor], dict]


@dataclass(frozen=True)
class FrameMap:
    """The map from an original image (``in_hw``) into the model frame (``out_hw``): per-axis scale, offset.

    ``x_model = (x + 0.5) * scale_x - 0.5 + offset_x`` (and the same for y).
    """

    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    scale_xy: tuple[float, float]
    offset_xy: tuple[int, int]

    @property
    def content_hw(self) -> tuple[int, int]:
        """Size of the resized image inside the model frame."""
        return round(self.in_hw[0] * self.scale_xy[1]), round(self.in_hw[1] * self.scale_xy[0])

    def to_model(self, xy: np.ndarray) -> np.ndarray:
        """[..., 2] original px -> model-frame px."""
        s, o = np.asarray(self.scale_xy), np.asarray(self.offset_xy)
        return (np.asarray(xy, np.float64) + 0.5) * s - 0.5 + o

    def from_model(self, xy: np.ndarray) -> np.ndarray:
        """[..., 2] model-frame px -> original px."""
        s, o = np.asarray(self.scale_xy), np.asarray(self.offset_xy)
        return (np.asarray(xy, np.float64) - o + 0.5) / s - 0.5

    def apply(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, C] original -> uint8 [S, S, C] model-frame image (zero padding)."""
        ch, cw = self.content_hw
        interp = cv2.INTER_AREA if ch < image.shape[0] or cw < image.shape[1] else cv2.INTER_LINEAR
        resized = cv2.resize(image, (cw, ch), interpolation=interp)
        out = np.zeros((*self.out_hw, image.shape[2]), image.dtype)
        ox, oy = self.offset_xy
        out[oy : oy + ch, ox : ox + cw] = resized
        return out


def fit_frame(in_hw: Sequence[int], size: int, mode: str = "pad") -> FrameMap:
    """The :class:`FrameMap` of an ``(H, W)`` image into a ``size × size`` model frame."""
    h, w = int(in_hw[0]), int(in_hw[1])
    if mode == "stretch":
        return FrameMap((h, w), (size, size), (size / w, size / h), (0, 0))
    if mode != "pad":
        raise ValueError(f"unknown resize mode {mode!r}; expected one of {RESIZE_MODES}")
    s = size / max(h, w)
    ch, cw = max(1, round(h * s)), max(1, round(w * s))
    return FrameMap((h, w), (size, size), (cw / w, ch / h), ((size - cw) // 2, (size - ch) // 2))


def run_matcher(matcher: Matcher, image0: np.ndarray, image1: np.ndarray, size: int, mode: str, device) -> tuple:
    """Resize a pair into the model frame and run the matcher.

    Returns:
        ``(out, map0, map1)``: the matcher's dict (``grid`` [1, 2, S, S, 2], ``conf`` [1, 2, S, S]) and the two
        :class:`FrameMap`.
    """
    map0, map1 = fit_frame(image0.shape[:2], size, mode), fit_frame(image1.shape[:2], size, mode)
    frames = np.stack([map0.apply(image0), map1.apply(image1)])  # [2, S, S, 3]
    images = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)[None]
    with torch.no_grad():
        out = matcher(images)
    return out, map0, map1


def _extend_linearly(f: torch.Tensor) -> torch.Tensor:
    """Pad [1, C, H, W] by one pixel on every side, continuing the field linearly (``2 edge - inner``)."""
    if f.shape[-1] > 1:
        f = torch.cat([2 * f[..., :1] - f[..., 1:2], f, 2 * f[..., -1:] - f[..., -2:-1]], dim=-1)
    else:
        f = torch.cat([f, f, f], dim=-1)
    if f.shape[-2] > 1:
        f = torch.cat([2 * f[..., :1, :] - f[..., 1:2, :], f, 2 * f[..., -1:, :] - f[..., -2:-1, :]], dim=-2)
    else:
        f = torch.cat([f, f, f], dim=-2)
    return f


def sample_field(field: torch.Tensor, xy_px: np.ndarray, extrapolate: bool = False) -> np.ndarray:
    """Bilinearly sample a model-frame field at pixel positions.

    Args:
        field: float [H, W, C] (e.g. ``grid[0, 0]``) or [H, W].
        xy_px: float [N, 2] model-frame pixels.
        extrapolate: continue the field linearly for one pixel beyond the outer pixel centres (a point near the
            image border maps into that rim; a correspondence field is smooth there), instead of clamping.

    Returns:
        float64 [N, C] (or [N]); beyond that, positions take the border value.
    """
    squeeze = field.ndim == 2
    f = (field[..., None] if squeeze else field).permute(2, 0, 1)[None].float()  # [1, C, H, W]
    pts = torch.as_tensor(np.asarray(xy_px, np.float32), device=f.device).reshape(1, 1, -1, 2)
    if extrapolate:
        f, pts = _extend_linearly(f), pts + 1.0
    h, w = f.shape[-2:]
    vals = F.grid_sample(f, px_to_norm(pts, h, w), mode="bilinear", padding_mode="border", align_corners=False)
    vals = vals[0, :, 0].T.double().cpu().numpy()  # [N, C]
    return vals[:, 0] if squeeze else vals


def predict_points(
    matcher: Matcher, image0: np.ndarray, image1: np.ndarray, xy0: np.ndarray, size: int, mode: str, device
) -> tuple[np.ndarray, np.ndarray]:
    """Where the matcher sends source points, in the target's original pixels.

    Args:
        xy0: float [N, 2] points of image 0 (original px).

    Returns:
        ``(xy1 float64 [N, 2], conf float64 [N])``.
    """
    out, map0, map1 = run_matcher(matcher, image0, image1, size, mode, device)
    at = map0.to_model(xy0)
    xy1_model = sample_field(out["grid"][0, 0], at, extrapolate=True)
    conf = sample_field(out["conf"][0, 0], at) if "conf" in out else np.ones(len(at))
    return map1.from_model(xy1_model), conf


def predict_dense(
    matcher: Matcher, image0: np.ndarray, image1: np.ndarray, size: int, mode: str, device
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense prediction in original coordinates, both directions.

    Returns:
        ``(corr_0to1 [H0, W0, 2], conf0 [H0, W0], corr_1to0 [H1, W1, 2], conf1 [H1, W1])`` float64.
    """
    out, map0, map1 = run_matcher(matcher, image0, image1, size, mode, device)
    result = []
    for v, (src, trg) in enumerate(((map0, map1), (map1, map0))):
        h, w = src.in_hw
        yy, xx = np.mgrid[0:h, 0:w]
        at = src.to_model(np.stack([xx, yy], -1).reshape(-1, 2))
        corr = trg.from_model(sample_field(out["grid"][0, v], at, extrapolate=True)).reshape(h, w, 2)
        conf = sample_field(out["conf"][0, v], at).reshape(h, w) if "conf" in out else np.ones((h, w))
        result += [corr, conf]
    return tuple(result)
