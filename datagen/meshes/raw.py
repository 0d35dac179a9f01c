"""What a reader returns: :class:`RawMesh`, a file's triangles in the file's own coordinates and units.

Every reader (:mod:`datagen.meshes.obj` for Wavefront OBJ, :mod:`datagen.meshes.scene` for the formats trimesh
reads) produces one, with the faces in the file's order, so labels given per face (a sidecar file) line up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datagen.meshes.types import MeshMaterial

__all__ = ["RawMesh", "MeshReadError"]


class MeshReadError(ValueError):
    """The file cannot be read as a mesh; the message says why (without the file name, which callers add)."""


@dataclass
class RawMesh:
    """A file's triangles, untouched apart from triangulation (file coordinates, file units).

    Attributes:
        vertices: float64 [V, 3].
        faces: int64 [F, 3] as written (winding not checked).
        face_material: int32 [F] index into ``materials``.
        materials: at least one.
        corner_uv: float32 [F, 3, 2] (image convention: v down) or None; NaN on faces without coordinates.
        face_group: int32 [F] index into ``group_names`` (OBJ ``g``/``o`` names, glTF node names), -1 where none.
        group_names: the file's group names.
        face_polygon: int64 [F] the index of the file's face (polygon) each triangle comes from.
        notes: what the reader saw that the user should know (missing textures, skipped elements), one sentence
            each.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray
    materials: list[MeshMaterial]
    corner_uv: np.ndarray | None = None
    face_group: np.ndarray | None = None
    group_names: list[str] = field(default_factory=list)
    face_polygon: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_faces(self) -> int:
        return int(len(self.faces))

    @property
    def n_polygons(self) -> int:
        """Faces as the file counts them (polygons before triangulation)."""
        if self.face_polygon is None or not len(self.face_polygon):
            return self.n_faces
        return int(self.face_polygon.max()) + 1
