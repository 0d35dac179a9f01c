"""Synthetic pairs in memory: a random smooth texture with an elliptical "object", and its random affine warp.

Every batch follows the loader's batch format (docs/interfaces.md §4) with exact dense GT (``corr`` both ways,
``valid``/``status``/``mask``) and keypoints, and is a pure function of ``(seed, rank, batch index)``, so the
stream's state is one integer and resuming is exact. It needs no files: tests and quick checks of the loop use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from loaders.schema import Status
from training.geometry import pixel_grid
from training.losses.common import inside_image, sample_at_px
from training.train.manifest import SyntheticSpec

__all__ = ["synthetic_pair_batch", "SyntheticStream"]


def _texture(gen: torch.Generator, h: int, w: int) -> torch.Tensor:
    """[3, H, W] in [0, 1]: smooth colour noise at two scales."""
    coarse = torch.rand(3, 5, 5, generator=gen)
    fine = torch.rand(3, 17, 17, generator=gen)
    img = 0.6 * F.interpolate(coarse[None], (h, w), mode="bicubic", align_corners=False)[0]
    img = img + 0.4 * F.interpolate(fine[None], (h, w), mode="bicubic", align_corners=False)[0]
    return img.clamp(0, 1)


def _random_affine(gen: torch.Generator, spec: SyntheticSpec, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [2, 2], t [2]) float64 with ``p1 = A p0 + t`` rotating/scaling about the image centre, then shifting."""
    u = torch.rand(4, generator=gen, dtype=torch.float64) * 2 - 1
    angle = math.radians(spec.max_rotation_deg) * u[0]
    scale = torch.exp(spec.max_log_scale * u[1])
    c, s = torch.cos(angle), torch.sin(angle)
    A = scale * torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
    shift = spec.max_shift * torch.stack([u[2] * w, u[3] * h])
    t = centre - A @ centre + shift
    return A, t


def _ellipse_mask(gen: torch.Generator, h: int, w: int) -> torch.Tensor:
    """bool [H, W]: an ellipse covering a good part of the image."""
    r = torch.rand(4, generator=gen)
    p = pixel_grid(h, w)
    cx, cy = (0.4 + 0.2 * r[0]) * w, (0.4 + 0.2 * r[1]) * h
    ax, ay = (0.3 + 0.15 * r[2]) * w, (0.3 + 0.15 * r[3]) * h
    return ((p[..., 0] - cx) / ax) ** 2 + ((p[..., 1] - cy) / ay) ** 2 <= 1.0


def _one_pair(gen: torch.Generator, spec: SyntheticSpec, h: int, w: int) -> dict[str, torch.Tensor]:
    A, t = _random_affine(gen, spec, h, w)
    A_inv = torch.linalg.inv(A)
    p = pixel_grid(h, w, dtype=torch.float64)
    fwd = (p @ A.T + t).float()  # view 0 pixel -> view 1
    bwd = ((p - t) @ A_inv.T).float()  # view 1 pixel -> view 0
    image0 = _texture(gen, h, w)
    mask0 = _ellipse_mask(gen, h, w)
    image0 = torch.where(mask0, image0, 0.5 * image0.mean(dim=0, keepdim=True).expand_as(image0))
    image1 = sample_at_px(image0[None], bwd[None])[0].permute(2, 0, 1)
    mask1 = (sample_at_px(mask0[None, None].float(), bwd[None], mode="nearest")[0, ..., 0] > 0.5) & inside_image(
        bwd, h, w
    )
    image1 = torch.where(mask1, image1, 0.5 * image0.mean())
    statuses, valids = [], []
    for mask, corr in ((mask0, fwd), (mask1, bwd)):
        inside = inside_image(corr, h, w)
        status = torch.full((h, w), int(Status.BACKGROUND), dtype=torch.uint8)
        status[mask & inside] = int(Status.MATCHED)
        status[mask & ~inside] = int(Status.OUTSIDE)
        statuses.append(status)
        valids.append(status == Status.MATCHED)
    n = spec.n_keypoints
    ys, xs = torch.nonzero(mask0, as_tuple=True)
    pick = torch.randint(len(xs), (n,), generator=gen)
    kps0 = torch.stack([xs[pick], ys[pick]], dim=-1).float()
    kps1 = (kps0.double() @ A.T + t).float()
    vis1 = inside_image(kps1, h, w)
    corr = torch.stack([fwd, bwd])
    valid = torch.stack(valids)
    return {
        "images": torch.stack([image0, image1]),
        "corr": torch.where(valid[..., None], corr, torch.zeros_like(corr)),
        "valid": valid,
        "mask": torch.stack([mask0, mask1]),
        "status": torch.stack(statuses),
        "depth": torch.zeros(2, h, w),
        "K": torch.eye(3).expand(2, 3, 3).clone(),
        "T_cam_from_world": torch.eye(4).expand(2, 4, 4).clone(),
        "kps": torch.stack([kps0, kps1]),
        "kps_vis": torch.stack([torch.ones(n, dtype=torch.bool), vis1]),
    }


def synthetic_pair_batch(seed: int, batch_size: int, height: int, width: int, spec: SyntheticSpec) -> dict:
    """One batch of synthetic pairs (docs/interfaces.md §4), a pure function of the arguments."""
    gen = torch.Generator().manual_seed(seed)
    pairs = [_one_pair(gen, spec, height, width) for _ in range(batch_size)]
    batch = {k: torch.stack([p[k] for p in pairs]) for k in pairs[0]}
    batch["has_dense"] = torch.ones(batch_size, dtype=torch.bool)
    batch["has_mask"] = torch.ones(batch_size, dtype=torch.bool)
    batch["has_camera"] = torch.zeros(batch_size, dtype=torch.bool)
    batch["meta"] = [{"source": "warp", "category": "synthetic", "seed": seed} for _ in range(batch_size)]
    return batch


class SyntheticStream:
    """An iterable of synthetic batches for one rank with a resumable position.

    Args:
        spec: the source's options; ``n_samples > 0`` makes each epoch ``n_samples // batch_size`` batches
            (the same count on every rank), else the stream is endless.
        seed, rank: together with the batch index they determine each batch.
        batch_size, resolution: batch shape; resolution is (H, W).
    """

    def __init__(self, spec: SyntheticSpec, seed: int, rank: int, batch_size: int, resolution: tuple[int, int]):
        self.spec, self.seed, self.rank = spec, seed, rank
        self.batch_size, self.resolution = batch_size, resolution
        self.index = 0  # batches handed out so far

    def __len__(self) -> int:
        if self.spec.n_samples <= 0:
            raise TypeError("an endless synthetic stream has no length")
        return max(1, self.spec.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        while True:
            seed = int(np.random.SeedSequence([self.seed, self.rank, self.index]).generate_state(1)[0])
            self.index += 1  # counted before yielding: a state saved after consuming this batch moves past it
            yield synthetic_pair_batch(seed, self.batch_size, *self.resolution, self.spec)
            if self.spec.n_samples > 0 and self.index % len(self) == 0:
                return

    def state_dict(self) -> dict:
        return {"index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.index = int(state["index"])
