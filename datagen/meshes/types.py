"""The in-memory form of a user's mesh: :class:`UserMesh` (canonical frame, metres) and its materials.

Frames and units: ``vertices`` are in the category canonical frame of docs/design.md §3 (right-handed, metres, y up,
the object's front faces +z, its own left side is +x); ``transform`` maps the file's coordinates (file units,
file axes) to that frame. Faces are counter-clockwise seen from outside (outward normals) wherever the surface is
closed; an open surface has no outside, so its mesh is marked ``two_sided``.

Texture coordinates follow the image convention used by the render backends: ``u`` runs right and ``v`` runs
*down*, ``(0, 0)`` is the top-left corner of texture row 0, and the texture repeats outside ``[0, 1]``. (OBJ files
and trimesh put ``v = 0`` at the bottom row; the loaders convert.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MeshMaterial", "UserMesh", "DEFAULT_MATERIAL", "DEFAULT_COLOR"]

DEFAULT_MATERIAL = "default"  # the one material of a file that has none
DEFAULT_COLOR = (0.7, 0.7, 0.7)  # its sRGB base colour


@dataclass
class MeshMaterial:
    """One material of a file.

    Attributes:
        name: the file's material name (``DEFAULT_MATERIAL`` where the file has none).
        base_color: float64 [3] sRGB in [0, 1].
        texture: optional uint8 [H, W, 3] sRGB image (row 0 at the top); where present it replaces ``base_color``
            on faces with texture coordinates.
    """

    name: str
    base_color: np.ndarray
    texture: np.ndarray | None = None

    def __post_init__(self):
        self.base_color = np.clip(np.asarray(self.base_color, np.float64).reshape(3), 0.0, 1.0)
        if self.texture is not None:
            tex = np.asarray(self.texture)
            if tex.dtype != np.uint8 or tex.ndim != 3 or tex.shape[2] != 3:
                raise ValueError(
                    f"material {self.name!r}: texture must be uint8 [H, W, 3], got {tex.dtype} {tex.shape}"
                )
            self.texture = np.ascontiguousarray(tex)


@dataclass
class UserMesh:
    """A checked, repaired and normalised mesh of a user's collection.

    Attributes:
        mesh_id: the library's id of the mesh (a ShapeNet model folder name, a file stem, ...).
        source_path: the file it was read from.
        vertices: float64 [V, 3] canonical frame, metres; resting on y = 0, bounding box centred in x and z.
        faces: int32 [F, 3] counter-clockwise seen from outside (closed parts).
        face_material: int32 [F] index into ``materials``.
        materials: the file's materials (at least one).
        corner_uv: float32 [F, 3, 2] texture coordinates per face corner (image convention, see the module
            docstring), or None when the file has none.
        face_part: int32 [F] index into ``part_names``, -1 where unlabelled; None when the file has no labels.
        part_names: names of the part labels.
        two_sided: the surface is open somewhere (not watertight): it has no inside, so back faces are lit as
            front faces and visibility tests must not rely on the facing of a triangle.
        transform: float64 [4, 4] file coordinates -> canonical frame (``p_canonical = T @ [p_file, 1]``): a
            rotation (the axis remap), a uniform scale and a translation.
        notes: what the intake did to the file (repairs, handling), one sentence each.
    """

    mesh_id: str
    source_path: str
    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray
    materials: list[MeshMaterial]
    corner_uv: np.ndarray | None = None
    face_part: np.ndarray | None = None
    part_names: list[str] = field(default_factory=list)
    two_sided: bool = False
    transform: np.ndarray = field(default_factory=lambda: np.eye(4))
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, np.float64)
        self.faces = np.asarray(self.faces, np.int32)
        self.face_material = np.asarray(self.face_material, np.int32)
        self.transform = np.asarray(self.transform, np.float64)
        n_faces = len(self.faces)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"{self.mesh_id}: vertices must be [V, 3], got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"{self.mesh_id}: faces must be [F, 3], got {self.faces.shape}")
        if self.face_material.shape != (n_faces,):
            raise ValueError(f"{self.mesh_id}: face_material must be [{n_faces}], got {self.face_material.shape}")
        if not self.materials:
            raise ValueError(f"{self.mesh_id}: at least one material is needed")
        if n_faces and (self.face_material.min() < 0 or self.face_material.max() >= len(self.materials)):
            raise ValueError(f"{self.mesh_id}: face_material out of range of {len(self.materials)} materials")
        if self.corner_uv is not None:
            self.corner_uv = np.asarray(self.corner_uv, np.float32)
            if self.corner_uv.shape != (n_faces, 3, 2):
                raise ValueError(f"{self.mesh_id}: corner_uv must be [{n_faces}, 3, 2], got {self.corner_uv.shape}")
        if self.face_part is not None:
            self.face_part = np.asarray(self.face_part, np.int32)
            if self.face_part.shape != (n_faces,):
                raise ValueError(f"{self.mesh_id}: face_part must be [{n_faces}], got {self.face_part.shape}")
            if n_faces and self.face_part.max() >= len(self.part_names):
                raise ValueError(f"{self.mesh_id}: face_part out of range of {len(self.part_names)} part names")
        if self.transform.shape != (4, 4):
            raise ValueError(f"{self.mesh_id}: transform must be [4, 4], got {self.transform.shape}")

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def has_appearance(self) -> bool:
        """Whether the file gave any look of its own (a texture, or a named material or colour)."""
        return any(m.texture is not None or m.name != DEFAULT_MATERIAL for m in self.materials)

    @property
    def bbox_diagonal_m(self) -> float:
        """Length of the bounding-box diagonal, metres."""
        return float(np.linalg.norm(self.vertices.max(0) - self.vertices.min(0)))
