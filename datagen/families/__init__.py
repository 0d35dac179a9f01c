"""Procedural category families: the registry.

``get_family("chair")`` returns the family object; ``family_names()`` lists them. Each family lives in its own
module and is registered in ``_REGISTRY`` (module path, class name), imported lazily.
"""

from __future__ import annotations

import importlib

from datagen.families.base import Family, Instance, KeypointSpec, SlotSpec, face_map, surface_points

__all__ = ["Family", "Instance", "KeypointSpec", "SlotSpec", "face_map", "surface_points", "get_family", "family_names"]

_REGISTRY: dict[str, tuple[str, str]] = {
    "chair": ("datagen.families.chair", "ChairFamily"),
    "table": ("datagen.families.table", "TableFamily"),
    "car": ("datagen.families.car", "CarFamily"),
    "aeroplane": ("datagen.families.aeroplane", "AeroplaneFamily"),
    "bottle": ("datagen.families.bottle", "BottleFamily"),
    "quadruped": ("datagen.families.quadruped", "QuadrupedFamily"),
    "bicycle": ("datagen.families.bicycle", "BicycleFamily"),
    "motorbike": ("datagen.families.motorbike", "MotorbikeFamily"),
    "person": ("datagen.families.person", "PersonFamily"),
    "bird": ("datagen.families.bird", "BirdFamily"),
    "cat": ("datagen.families.quadruped", "CatFamily"),
    "cow": ("datagen.families.quadruped", "CowFamily"),
    "dog": ("datagen.families.quadruped", "DogFamily"),
    "horse": ("datagen.families.quadruped", "HorseFamily"),
    "sheep": ("datagen.families.quadruped", "SheepFamily"),
    "tvmonitor": ("datagen.families.tvmonitor", "TvMonitorFamily"),
    "pottedplant": ("datagen.families.pottedplant", "PottedPlantFamily"),
    "bus": ("datagen.families.bus", "BusFamily"),
    "train": ("datagen.families.train", "TrainFamily"),
    "boat": ("datagen.families.boat", "BoatFamily"),
}


def family_names() -> list[str]:
    """Names of the built-in families, sorted."""
    return sorted(_REGISTRY)


def get_family(name: str) -> Family:
    """The family called ``name``. Raises ``KeyError`` listing the known names when there is none."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown category {name!r}; known categories: {', '.join(family_names()) or '(none)'}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()
