"""One entry point for every mesh format: :func:`read_mesh` picks the reader by the file's extension."""

from __future__ import annotations

from pathlib import Path

from datagen.meshes.obj import read_obj
from datagen.meshes.raw import MeshReadError, RawMesh
from datagen.meshes.scene import SCENE_FORMATS, read_scene
from datagen.meshes.textures import MAX_TEXTURE_SIDE

__all__ = ["MESH_FORMATS", "read_mesh", "MeshReadError"]

MESH_FORMATS = (".obj", *SCENE_FORMATS)


def read_mesh(path: Path, max_texture_side: int = MAX_TEXTURE_SIDE) -> RawMesh:
    """The file's triangles, materials and groups in file coordinates.

    Raises:
        MeshReadError: the file is not a readable mesh of its format, or the format is not supported.
        OSError: the file cannot be opened.
    """
    suffix = path.suffix.lower()
    if suffix == ".obj":
        return read_obj(path, max_texture_side)
    if suffix in SCENE_FORMATS:
        return read_scene(path, max_texture_side)
    raise MeshReadError(f"unsupported format {suffix!r}; supported: {', '.join(MESH_FORMATS)}")
