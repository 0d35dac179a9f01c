"""The generator configuration of a rendered dataset.

A shard is a pure function of ``(RenderConfig, shard_index)``: the config holds the root seed, and every random
choice of group ``g`` of shard ``i`` (its instances, views, pairs and their appearance) is drawn from
``datagen.pipeline.group_rng(seed, i, g)`` = ``SeedSequence([seed, i, g])`` (docs/design.md §3). A sample is
pair ``j`` of such a group; its key ``s{i:06d}_{j:05d}`` (``datagen.pipeline.sample_key``) numbers it within the
shard. :func:`sample_rng` ``SeedSequence([seed, i, j])`` is the per-sample generator of the real-pair builder
(``datagen.real.build``), whose samples have no group.

The config is recorded whole in the dataset manifest, and a resumed run must present an identical config. Its
checks run on construction (``__post_init__``) and raise :class:`~loaders.strict.ConfigError`;
:meth:`RenderConfig.from_dict` reads a recorded config through the project's one config layer
(:mod:`loaders.strict`), so unknown keys and wrong types are errors naming the key path too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loaders.strict import ConfigError, from_dict

__all__ = [
    "CameraConfig",
    "DROPPED_PAIRS",
    "OccluderConfig",
    "OCCLUDER_KINDS",
    "PhotorealConfig",
    "RENDERERS",
    "RenderConfig",
    "sample_rng",
]

# Where a sample's RGB comes from: the GT backend's own lit pass ("pyrender", the default, also with the embree
# backend) or Cycles path tracing through Blender in a worker process ("blenderproc", the photoreal extra;
# datagen/photoreal). The ground truth is the exact path's in both cases.
RENDERERS = ("pyrender", "blenderproc")
# The entry of a shard's timings (datagen.pipeline.generate_shard) that counts the pairs it did not write because a
# view's photoreal render disagreed with the exact GT (other pairs replace them); it goes to dataset.json per shard.
DROPPED_PAIRS = "dropped_pairs"

# Occluder kinds: simple primitives with a random appearance, another instance of the group's own category, or an
# instance of another built-in family (datagen/occluders).
OCCLUDER_KINDS = ("box", "cylinder", "sphere", "instance", "family")

# Defaults of the truncation and occluder options. SPair-71k annotates each pair with a truncation and an occlusion
# flag (none / source / target / both; Min et al. 2019, arXiv 1908.10543), so a per-view fraction p gives pairs
# with neither view affected (1 - p)^2, one view 2 p (1 - p) and both p^2. SPair's own shares could not be read
# here (no copy of its annotation, and the paper's statistics were out of reach of the search tools this was built
# with); 0.3 per view (49 % clean pairs, 42 % one view, 9 % both) is a placeholder until they are measured with
# `scripts/pair_flags.py --spair ROOT` on the real annotation (datagen/pair_flags.py).
DEFAULT_TRUNCATION_FRACTION = 0.3
DEFAULT_OCCLUDER_FRACTION = 0.3


def _check_range(name: str, r: tuple[float, float], lo: float, hi: float, open_lo: bool = False) -> None:
    """``r`` is an ordered pair within [lo, hi] (``(lo, hi]`` with ``open_lo``)."""
    if len(r) != 2 or not (r[0] > lo if open_lo else r[0] >= lo) or not r[0] <= r[1] <= hi:
        bound = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
        raise ConfigError(f"{name} must be an ordered pair (low, high) within {bound}, got {tuple(r)}")


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
    # Truncation (datagen.camera.truncate_view): this share of views is re-aimed so that part of the object leaves
    # the image: the camera first moves closer by a zoom factor (the object's image grows by about that much), then
    # turns along a random direction in the image until a share ``truncation_cut`` of the object's surface area lies
    # outside the frame.
    truncation_fraction: float = DEFAULT_TRUNCATION_FRACTION
    truncation_cut: tuple[float, float] = (0.1, 0.5)
    truncation_zoom: tuple[float, float] = (1.0, 1.4)

    def __post_init__(self) -> None:
        if not 0.0 <= self.truncation_fraction <= 1.0:
            raise ConfigError(f"truncation_fraction must lie in [0, 1], got {self.truncation_fraction}")
        _check_range("truncation_cut", self.truncation_cut, 0.0, 0.9, open_lo=True)
        _check_range("truncation_zoom", self.truncation_zoom, 0.5, 4.0)
        if not 0.0 <= self.max_pair_azimuth_gap_deg <= 360.0:
            raise ConfigError(f"the azimuth gap must be within [0, 360] degrees, got {self.max_pair_azimuth_gap_deg}")
        if not 0.0 <= self.max_pair_elevation_gap_deg <= 180.0:
            raise ConfigError(
                f"the elevation gap must be within [0, 180] degrees, got {self.max_pair_elevation_gap_deg}"
            )


@dataclass(frozen=True)
class OccluderConfig:
    """Other objects between the camera and the instance (datagen/occluders), drawn per view.

    A share ``fraction`` of views gets ``count`` occluders (an inclusive integer range) of the given ``kinds``
    (:data:`OCCLUDER_KINDS`, drawn uniformly). Together they are sized to hide a share ``cover`` of the object's
    silhouette (a target met on a coarse ray-cast silhouette; the share actually hidden is measured on the render
    and recorded per view). Each sits on the ray through a random point of the silhouette at ``depth`` times the
    depth of the object's bounding sphere's near side, entirely between the camera and that sphere, and its image
    is at most ``max_size`` times the object's (bounding radii seen from the camera): a sparse occluder (a chair
    seen through its legs) stays a prop instead of filling the frame, and may then hide less than aimed at.
    """

    fraction: float = DEFAULT_OCCLUDER_FRACTION
    count: tuple[int, int] = (1, 2)
    kinds: tuple[str, ...] = OCCLUDER_KINDS
    cover: tuple[float, float] = (0.1, 0.5)
    depth: tuple[float, float] = (0.3, 0.85)
    max_size: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 < self.max_size <= 5.0:
            raise ConfigError(f"occluders.max_size must lie in (0, 5], got {self.max_size}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ConfigError(f"occluders.fraction must lie in [0, 1], got {self.fraction}")
        lo, hi = self.count
        if int(lo) != lo or int(hi) != hi or not 1 <= lo <= hi <= 8:
            raise ConfigError(f"occluders.count must be whole numbers 1 <= low <= high <= 8, got {tuple(self.count)}")
        unknown = [k for k in self.kinds if k not in OCCLUDER_KINDS]
        if not self.kinds or unknown:
            raise ConfigError(
                f"occluders.kinds must be a non-empty selection of {', '.join(OCCLUDER_KINDS)}; got {tuple(self.kinds)}"
            )
        _check_range("occluders.cover", self.cover, 0.0, 0.95, open_lo=True)
        _check_range("occluders.depth", self.depth, 0.0, 0.95, open_lo=True)


@dataclass(frozen=True)
class PhotorealConfig:
    """Settings of the ``blenderproc`` renderer (datagen/photoreal): Cycles, checked per view against the exact GT.

    ``device`` is ``auto`` (OptiX, else CUDA, else CPU), ``cpu`` or ``gpu``; pixels are reproducible on one machine
    and device. A view whose Cycles object mask has an IoU below ``min_mask_iou`` with the exact mask, or whose
    median |depth difference| on shared object pixels exceeds ``max_depth_error_m``, is not used: its pairs are
    dropped (and replaced by other pairs), and the count goes in ``dataset.json``.
    """

    samples: int = 32  # samples per pixel of the beauty pass
    denoise: bool = True  # OpenImageDenoise on the beauty pass
    device: str = "auto"
    max_bounces: int = 4
    ground_fraction: float = 0.5  # views standing on a procedural ground plane (the rest: sky only)
    min_mask_iou: float = 0.99
    max_depth_error_m: float = 0.001
    # camera effects on the RGB only (the GT is unchanged): per view, Gaussian sensor noise with a standard deviation
    # drawn in [0, camera_noise] (8-bit levels) and a Gaussian blur with sigma drawn in [0, camera_blur_px]
    camera_noise: float = 0.0
    camera_blur_px: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.camera_noise <= 64.0 or not 0.0 <= self.camera_blur_px <= 8.0:
            raise ConfigError("photoreal.camera_noise must lie in [0, 64] and camera_blur_px in [0, 8]")
        if self.samples < 1:
            raise ConfigError(f"photoreal.samples must be at least 1, got {self.samples}")
        if self.device not in ("auto", "cpu", "gpu"):
            raise ConfigError(f"photoreal.device must be auto, cpu or gpu, got {self.device!r}")
        if not 0 <= self.max_bounces <= 64:
            raise ConfigError(f"photoreal.max_bounces must lie in [0, 64], got {self.max_bounces}")
        if not 0.0 <= self.ground_fraction <= 1.0:
            raise ConfigError(f"photoreal.ground_fraction must lie in [0, 1], got {self.ground_fraction}")
        if not 0.0 < self.min_mask_iou <= 1.0 or self.max_depth_error_m <= 0.0:
            raise ConfigError("photoreal.min_mask_iou must lie in (0, 1] and max_depth_error_m be positive")


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
    occluders: OccluderConfig = field(default_factory=OccluderConfig)
    jpeg_quality: int = 95
    # A user's mesh library (``datagen meshes ingest``): instances are drawn from it with probability
    # ``mesh_fraction`` (the rest are procedural), rendered with ``mesh_appearance`` (file / random / auto).
    # ``meshes_fingerprint`` pins the library's content: a resumed run must see the same meshes and registrations.
    meshes: str | None = None
    mesh_fraction: float = 1.0
    mesh_appearance: str = "auto"
    meshes_fingerprint: str | None = None
    renderer: str = "pyrender"  # RENDERERS: where the RGB comes from (the GT is the exact path's either way)
    photoreal: PhotorealConfig = field(default_factory=PhotorealConfig)
    # Real photographs as backgrounds (datagen/backgrounds.py): a folder or list file of the user's images, every
    # view over a seeded random crop of one; the fingerprint (names and sizes) pins the list for a resumed run.
    backgrounds: str | None = None
    backgrounds_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.n_pairs <= 0:
            raise ConfigError(f"the number of pairs must be positive, got {self.n_pairs}")
        if self.shard_size <= 0:
            raise ConfigError(f"the shard size must be positive, got {self.shard_size}")
        if self.size < 14:
            raise ConfigError(f"the image size must be at least 14 px, got {self.size}")
        if self.instances_per_group < 1 or self.views_per_instance < 1 or self.pairs_per_group < 1:
            raise ConfigError("instances_per_group, views_per_instance and pairs_per_group must be positive")
        if not 0.0 <= self.same_instance_fraction <= 1.0:
            raise ConfigError(f"same_instance_fraction must lie in [0, 1], got {self.same_instance_fraction}")
        if not 0.0 <= self.mesh_fraction <= 1.0:
            raise ConfigError(f"mesh_fraction must lie in [0, 1], got {self.mesh_fraction}")
        if self.mesh_appearance not in ("file", "random", "auto"):
            raise ConfigError(f"mesh_appearance must be file, random or auto, got {self.mesh_appearance!r}")
        if self.renderer not in RENDERERS:
            raise ConfigError(f"unknown renderer {self.renderer!r}; choose one of {', '.join(RENDERERS)}")

    @property
    def n_shards(self) -> int:
        return -(-self.n_pairs // self.shard_size)

    def shard_count(self, shard_index: int) -> int:
        """Pairs in shard ``shard_index``."""
        if not 0 <= shard_index < self.n_shards:
            raise IndexError(f"shard {shard_index} outside 0..{self.n_shards - 1}")
        return min(self.shard_size, self.n_pairs - shard_index * self.shard_size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.renderer == "pyrender" and self.photoreal == PhotorealConfig():
            del d["renderer"], d["photoreal"]  # unchanged records (and fingerprints) for the default renderer
        if self.backgrounds is None and self.backgrounds_fingerprint is None:
            del d["backgrounds"], d["backgrounds_fingerprint"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "render config") -> RenderConfig:
        """A config from :meth:`to_dict`'s output (e.g. ``dataset.json``'s ``generator.config``), strictly.

        JSON lists become the tuples the frozen configs hold; numbers keep their type as recorded, so the
        fingerprint of a recorded config does not change.

        Raises:
            ConfigError: an unknown key, a wrong type or a refused setting, naming ``where`` and the key path.
        """
        return from_dict(cls, d, where, exact_numbers=True)

    def fingerprint(self) -> str:
        """sha256 of the whole config: two runs with equal fingerprints make identical datasets."""
        d = self.to_dict()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def sample_rng(seed: int, shard_index: int, sample_index: int) -> np.random.Generator:
    """The generator of sample ``sample_index`` of a real-pair shard (``datagen.real.build``): the same whatever the
    number of workers or machines. Rendered shards draw per group instead (``datagen.pipeline.group_rng``)."""
    return np.random.default_rng(np.random.SeedSequence([seed, shard_index, sample_index]))
