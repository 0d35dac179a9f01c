"""Reader for the formats trimesh loads (GLB/GLTF, PLY, OFF, STL): the scene flattened with its transforms.

Every node that holds a triangle mesh contributes its faces, moved by the node's world transform; a node whose
transform mirrors (negative determinant) has its triangles' corner order reversed, as glTF prescribes, so faces
keep their facing. Nodes are taken in the order of their names (deterministic; the faces of a one-node file keep
the file's order). Nodes holding anything else (lines, points) are left out with a note. The group of a face is
its node's name.

Materials: a glTF material gives its base-colour factor and texture (the factor multiplies the texture, per the
glTF spec, and is baked into it); a PLY/OFF with per-face or per-vertex colours gets one material per distinct
face colour (vertex colours are averaged per face by trimesh; more than 256 colours are quantised to 3 bits per
channel). trimesh stores texture coordinates with ``v`` up from the bottom row; they are converted to the image
convention (``v`` down).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.meshes.raw import MeshReadError, RawMesh
from datagen.meshes.textures import MAX_TEXTURE_SIDE, texture_array
from datagen.meshes.types import DEFAULT_COLOR, DEFAULT_MATERIAL, MeshMaterial

__all__ = ["read_scene", "SCENE_FORMATS"]

SCENE_FORMATS = (".glb", ".gltf", ".ply", ".off", ".stl")
_MAX_EXACT_COLORS = 256


def _rgba_float(value, default=(1.0, 1.0, 1.0)) -> np.ndarray:
    """float64 [3] of a trimesh colour (uint8 0..255 or float 0..1, RGB or RGBA); ``default`` when None."""
    if value is None:
        return np.asarray(default, np.float64)
    c = np.asarray(value).reshape(-1)[:3]
    return c.astype(np.float64) / 255.0 if c.dtype.kind in "ui" else c.astype(np.float64)


def _texture_material(material, max_side: int, notes: list[str]) -> MeshMaterial:
    """A :class:`MeshMaterial` of a trimesh ``PBRMaterial`` or ``SimpleMaterial``."""
    name = getattr(material, "name", None) or "material"
    if hasattr(material, "baseColorFactor") or hasattr(material, "baseColorTexture"):
        factor = _rgba_float(getattr(material, "baseColorFactor", None))
        image = getattr(material, "baseColorTexture", None)
    else:
        factor = _rgba_float(getattr(material, "diffuse", None), DEFAULT_COLOR)
        image = getattr(material, "image", None)
    texture = None
    if image is not None:
        texture, note = texture_array(image, max_side)
        if note:
            notes.append(f"material {name!r}: {note}")
        if not np.allclose(factor, 1.0):
            texture = np.clip(np.rint(texture * factor[None, None]), 0, 255).astype(np.uint8)
    return MeshMaterial(name, factor, texture)


def _color_materials(face_colors: np.ndarray, notes: list[str]) -> tuple[list[MeshMaterial], np.ndarray]:
    """One material per distinct face colour (quantised when there are many): (materials, int32 [F] index)."""
    rgb = np.asarray(face_colors)[:, :3].astype(np.uint8)
    unique, inverse = np.unique(rgb, axis=0, return_inverse=True)
    if len(unique) > _MAX_EXACT_COLORS:
        q = (rgb >> 5).astype(np.int64)
        key = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
        ukey, inverse = np.unique(key, return_inverse=True)
        means = np.stack([np.bincount(inverse, rgb[:, c], len(ukey)) for c in range(3)], 1)
        unique = means / np.bincount(inverse, minlength=len(ukey))[:, None]
        notes.append(f"{len(np.unique(rgb, axis=0))} face colours quantised to {len(ukey)} materials")
    mats = [MeshMaterial(f"color{k}", np.asarray(c, np.float64) / 255.0) for k, c in enumerate(unique)]
    return mats, inverse.reshape(-1).astype(np.int32)


def read_scene(path: Path, max_texture_side: int = MAX_TEXTURE_SIDE) -> RawMesh:
    """Read a GLB/GLTF/PLY/OFF/STL file with trimesh into a :class:`RawMesh` (file coordinates).

    Raises:
        MeshReadError: trimesh cannot parse the file (its message is kept).
    """
    import trimesh

    try:
        scene = trimesh.load_scene(str(path), process=False)
    except Exception as e:  # trimesh raises many kinds for malformed files
        raise MeshReadError(f"trimesh cannot read it ({type(e).__name__}: {e})") from None
    notes: list[str] = []
    vertices, faces, uvs, face_mat, face_group = [], [], [], [], []
    materials: list[MeshMaterial] = []
    mat_of: dict[int, int] = {}  # id(trimesh material) -> index
    default_index: int | None = None
    group_names: list[str] = []
    offset = 0
    skipped = 0
    any_uv = False
    for node in sorted(scene.graph.nodes_geometry):  # name order: deterministic whatever the graph's
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh):
            skipped += 1
            continue
        F = np.asarray(geom.faces, np.int64).reshape(-1, 3)
        V = np.asarray(geom.vertices, np.float64).reshape(-1, 3)
        if not len(F):
            continue
        T = np.asarray(transform, np.float64)
        V = V @ T[:3, :3].T + T[:3, 3]
        order = [0, 2, 1] if np.linalg.det(T[:3, :3]) < 0 else [0, 1, 2]
        F = F[:, order]
        visual = geom.visual
        kind = getattr(visual, "kind", None)
        uv = None
        if kind == "texture":
            material = visual.material
            key = id(material)
            if key not in mat_of:
                mat_of[key] = len(materials)
                materials.append(_texture_material(material, max_texture_side, notes))
            fm = np.full(len(F), mat_of[key], np.int32)
            if visual.uv is not None and len(visual.uv) == len(V):
                uv = np.asarray(visual.uv, np.float64)[:, :2].copy()
                uv[:, 1] = 1.0 - uv[:, 1]
        elif kind in ("face", "vertex"):
            mats, fm = _color_materials(visual.face_colors, notes)
            fm = fm + len(materials)
            materials.extend(mats)
        else:
            if default_index is None:
                default_index = len(materials)
                materials.append(MeshMaterial(DEFAULT_MATERIAL, np.asarray(DEFAULT_COLOR)))
            fm = np.full(len(F), default_index, np.int32)
        any_uv |= uv is not None
        uvs.append(uv[F] if uv is not None else np.full((len(F), 3, 2), np.nan))
        vertices.append(V)
        faces.append(F + offset)
        face_mat.append(fm)
        if node not in group_names:
            group_names.append(str(node))
        face_group.append(np.full(len(F), group_names.index(str(node)), np.int32))
        offset += len(V)
    if skipped:
        notes.append(f"{skipped} scene nodes without triangles (lines, points) left out")
    if not faces:
        empty = MeshMaterial(DEFAULT_MATERIAL, np.asarray(DEFAULT_COLOR))
        V = np.concatenate(vertices) if vertices else np.zeros((0, 3))
        return RawMesh(V, np.zeros((0, 3), np.int64), np.zeros(0, np.int32), [empty], notes=notes)
    F = np.concatenate(faces)
    return RawMesh(
        vertices=np.concatenate(vertices),
        faces=F,
        face_material=np.concatenate(face_mat),
        materials=materials,
        corner_uv=np.concatenate(uvs).astype(np.float32) if any_uv else None,
        face_group=np.concatenate(face_group),
        group_names=group_names,
        face_polygon=np.arange(len(F)),
        notes=notes,
    )
