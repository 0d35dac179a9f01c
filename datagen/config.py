"""The generator configuration of a rendered dataset.

A shard is a pure function of ``(RenderConfig, shard_index)``: the config holds the root seed, and the sample
generator of sample ``j`` of shard ``i`` is derived from ``SeedSequence([root_seed, i, j])`` (DESIGN.md §3).
The config is recorded whole in the dataset manifest, and a resumed run must present an identical config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CameraConfig", "RenderConfig", "sample_rng", "shard_rng"]


@dataclass(frozen=True)
class CameraConfig:
    """How views are drawn around an instance (angles in degrees, distances relative to the framing distance)."""

    azimuth_deg: tuple[float, float] = (-180.0, 180.0)  # 0 = looking at the object's front (camera on +z)
    elevation_deg: tuple[float, float] = (-5.0, 45.0)  # positive = camera above, looking down
    fov_deg: tuple[float, float] = (30.0, 60.0)  # vertical field of view
    roll_deg: float = 5.0  # |roll| <= this
    fill: tuple[float, float] = (0.5, 0.85)  # fraction of the image's shorter side the object's bounding sphere spans
    max_pair_azimuth_gap_deg: float = 120.0  # viewpoint gap between the two views of a pair
    max_pair_elevation_gap_deg: float = 40.0
    center_jitter: float = 0.1  # look-at target jitter, as a fraction of the bounding-sphere radius

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_pair_azimuth_gap_deg <= 360.0:
            raise ValueError(f"the azimuth gap must be within [0, 360] degrees, got {self.max_pair_azimuth_gap_deg}")
        if not 0.0 <= self.max_pair_elevation_gap_deg <= 180.0:
            raise ValueError(
                f"the elevation gap must be within [0, 180] degrees, got {self.max_pair_elevation_gap_deg}"
            )


@dataclass(frozen=True)
class RenderConfig:
    """Everything that determines a rendered dataset's content (not where or how fast it is made)."""

    category: str = "chair"
    n_pairs: int = 1000
    size: int = 518  # square images, pixels
    shard_size: int = 100  # pairs per shard; the last shard may hold fewer
    seed: int = 0
    backend: str = "pyrender"  # "pyrender" (rasterised GT, EGL/OSMesa) or "embree" (ray-cast GT, CPU only)
    same_instance_fraction: float = 0.0  # fraction of pairs whose two views show one instance
    instances_per_group: int = 4  # instances built and rendered together; pairs are drawn within a group
    views_per_instance: int = 4  # views rendered per instance of a group, reused across pairs
    # pairs drawn from one group's renders (the render-reuse factor): 16 views serve 50 pairs, each view ~6 pairs
    # among 192 cross-instance candidates; 50 divides the default shard size, so no shard ends on a part group
    pairs_per_group: int = 50
    camera: CameraConfig = field(default_factory=CameraConfig)
    jpeg_quality: int = 95
    # A user's mesh library (``datagen meshes ingest``): instances are drawn from it with probability
    # ``mesh_fraction`` (the rest are procedural), rendered with ``mesh_appearance`` (file / random / auto).
    # ``meshes_fingerprint`` pins the library's content: a resumed run must see the same meshes and registrations.
    meshes: str | None = None
    mesh_fraction: float = 1.0
    mesh_appearance: str = "auto"
    meshes_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.n_pairs <= 0:
            raise ValueError(f"the number of pairs must be positive, got {self.n_pairs}")
        if self.shard_size <= 0:
            raise ValueError(f"the shard size must be positive, got {self.shard_size}")
        if self.size < 14:
            raise ValueError(f"the image size must be at least 14 px, got {self.size}")
        if self.instances_per_group < 1 or self.views_per_instance < 1 or self.pairs_per_group < 1:
            raise ValueError("instances_per_group, views_per_instance and pairs_per_group must be positive")
        if not 0.0 <= self.same_instance_fraction <= 1.0:
            raise ValueError(f"same_instance_fraction must lie in [0, 1], got {self.same_instance_fraction}")
        if not 0.0 <= self.mesh_fraction <= 1.0:
            raise ValueError(f"mesh_fraction must lie in [0, 1], got {self.mesh_fraction}")
        if self.mesh_appearance not in ("file", "random", "auto"):
            raise ValueError(f"mesh_appearance must be file, random or auto, got {self.mesh_appearance!r}")

    @property
    def n_shards(self) -> int:
        return -(-self.n_pairs // self.shard_size)

    def shard_count(self, shard_index: int) -> int:
        """Pairs in shard ``shard_index``."""
        if not 0 <= shard_index < self.n_shards:
            raise IndexError(f"shard {shard_index} outside 0..{self.n_shards - 1}")
        return min(self.shard_size, self.n_pairs - shard_index * self.shard_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RenderConfig:
        d = dict(d)
        cam = d.pop("camera", {})
        cam = CameraConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cam.items()})
        return cls(camera=cam, **d)

    def fingerprint(self) -> str:
        """sha256 of the whole config: two runs with equal fingerprints make identical datasets."""
        d = self.to_dict()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def shard_rng(seed: int, shard_index: int) -> np.random.Generator:
    """The generator of a shard's shared choices (e.g. its instance groups)."""
    return np.random.default_rng(np.random.SeedSequence([seed, shard_index]))


def sample_rng(seed: int, shard_index: int, sample_index: int) -> np.random.Generator:
    """The generator of one sample: the same whatever the number of workers or machines."""
    return np.random.default_rng(np.random.SeedSequence([seed, shard_index, sample_index]))
