"""Your own meshes: intake of category-aligned collections (ShapeNet, Objaverse, PartNet, ...) into a library.

``datagen meshes ingest DIR --category chair --out LIB`` lists the collection (:mod:`.discover`), and for each
file runs the per-mesh stages (:mod:`.stages`: read, check, repair and normalise in :mod:`.intake`, later stages
such as template registration) in parallel and resumably (:mod:`.ingest`), into a library on disk
(:mod:`.library`) that :class:`MeshLibrary` reads back as :class:`UserMesh` objects in the canonical frame.
Axis conventions of the common sources are in :mod:`.axes`.
"""

from datagen.meshes.axes import canonical_rotation
from datagen.meshes.discover import Collection, Source, discover
from datagen.meshes.intake import IntakeOptions, IntakeResult, intake_file
from datagen.meshes.library import LibraryError, MeshLibrary, load_mesh, save_mesh
from datagen.meshes.normalize import reference_size
from datagen.meshes.stages import STAGES, Stage
from datagen.meshes.types import MeshMaterial, UserMesh

__all__ = [
    "UserMesh",
    "MeshMaterial",
    "MeshLibrary",
    "LibraryError",
    "Stage",
    "STAGES",
    "Source",
    "Collection",
    "discover",
    "intake_file",
    "IntakeOptions",
    "IntakeResult",
    "reference_size",
    "canonical_rotation",
    "load_mesh",
    "save_mesh",
]
