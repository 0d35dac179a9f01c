"""Your own meshes: intake of category-aligned collections (ShapeNet, Objaverse, PartNet, ...) into a library.

``datagen meshes ingest DIR --category chair --out LIB`` lists the collection (:mod:`.discover`), and for each
file runs the per-mesh stages (:mod:`.stages`: read, check, repair and normalise in :mod:`.intake`, later stages
such as template registration) in parallel and resumably (:mod:`.ingest`), into a library on disk
(:mod:`.library`) that :class:`MeshLibrary` reads back as :class:`UserMesh` objects in the canonical frame.
Axis conventions of the common sources are in :mod:`.axes`.

The names below are imported on first use, so importing one submodule (``datagen.meshes.library``) does not
import the others (a stage module imported by :mod:`.stages` can import the library without a cycle).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UserMesh": "types",
    "MeshMaterial": "types",
    "MeshLibrary": "library",
    "LibraryError": "library",
    "load_mesh": "library",
    "save_mesh": "library",
    "Stage": "stages",
    "STAGES": "stages",
    "Source": "discover",
    "Collection": "discover",
    "discover": "discover",
    "ingest": "ingest",
    "ingest_collection": "ingest",
    "plan_collection": "ingest",
    "IngestReport": "ingest",
    "intake_file": "intake",
    "IntakeOptions": "intake",
    "IntakeResult": "intake",
    "reference_size": "normalize",
    "canonical_rotation": "axes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
