"""Meshes prepared for rendering: per-corner normals and texture coordinates, material groups.

Both backends draw the same :class:`RenderMesh`, so the lit images of the GL and CPU backends agree in content
(not in exact pixels). :func:`prepare_mesh` prepares a procedural instance, :func:`prepare_user_mesh` a user's
mesh (:class:`~datagen.meshes.types.UserMesh`) with its own materials and textures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from datagen.families.base import Family, Instance
from datagen.render.appearance import Appearance, file_appearance, sample_appearance

if TYPE_CHECKING:
    from datagen.meshes.types import UserMesh

__all__ = [
    "RenderMesh",
    "prepare_mesh",
    "prepare_user_mesh",
    "prepare_geometry",
    "transform_mesh",
    "concat_meshes",
    "face_normals",
    "corner_normals",
    "APPEARANCES",
]

APPEARANCES = ("file", "random", "auto")

# A corner takes the smoothed vertex normal when it is within this angle of its face normal, else the face
# normal: curved parts shade smoothly while box edges stay crisp.
_SMOOTH_COS = np.cos(np.radians(35.0))
_UV_SCALE_PER_M = 4.0  # texture repeats per metre for box-projected coordinates


@dataclass
class RenderMesh:
    """A mesh ready for both render backends.

    Attributes:
        vertices: float64 [V, 3] shared vertices (the exact geometry of the instance).
        faces: int32 [F, 3].
        corner_normals: float32 [F, 3, 3] unit shading normals per face corner.
        corner_uv: float32 [F, 3, 2] texture coordinates per face corner: ``u`` right, ``v`` down, ``(0, 0)``
            the top-left corner of texture row 0; textures repeat outside [0, 1].
        face_group: int32 [F] material group of each face.
        group_names: names of the material groups, indexed by ``face_group``.
        two_sided: the surface is open: a face seen from its back is lit as its front (the shading normal is
            flipped for back faces), instead of the default rule that flips only normals facing away from the eye.
    """

    vertices: np.ndarray
    faces: np.ndarray
    corner_normals: np.ndarray
    corner_uv: np.ndarray
    face_group: np.ndarray
    group_names: list[str]
    two_sided: bool = False

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """(centre [3], radius) of the bounding box's circumscribed sphere, metres."""
        lo, hi = self.vertices.min(0), self.vertices.max(0)
        return (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals [F, 3] (counter-clockwise = outward) and face areas [F]."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1)
    return n / np.maximum(norm, 1e-20)[:, None], norm / 2.0


def _box_uv(points: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Box projection: the two coordinates orthogonal to the normal's dominant axis. points [F, 3, 3], normal [F, 3]."""
    axis = np.abs(normal).argmax(1)
    keep = np.array([[1, 2], [0, 2], [0, 1]])[axis]  # [F, 2]
    uv = np.take_along_axis(points, keep[:, None, :].repeat(3, 1), axis=2)
    return uv * _UV_SCALE_PER_M


def corner_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """float32 [F, 3, 3] shading normals per face corner: the area-weighted vertex normal where it is within 35°
    of the face normal (curved surfaces shade smoothly), else the face normal (creases stay crisp)."""
    fn, area = face_normals(vertices, faces)
    vn = np.zeros_like(vertices, dtype=np.float64)
    np.add.at(vn, faces.ravel(), np.repeat(fn * area[:, None], 3, axis=0))
    vn /= np.maximum(np.linalg.norm(vn, axis=1), 1e-20)[:, None]
    cn = vn[faces]  # [F, 3, 3]
    smooth = np.einsum("fkd,fd->fk", cn, fn) >= _SMOOTH_COS
    return np.where(smooth[..., None], cn, fn[:, None, :]).astype(np.float32)


def prepare_mesh(inst: Instance, family: Family | None = None) -> RenderMesh:
    """Build the :class:`RenderMesh` of an instance.

    Material groups follow ``inst.material_groups`` (slot name -> group name; a slot not listed is its own group);
    slot names come from ``family`` when given, else slots are named by index. Texture coordinates come from
    ``inst.uv`` when present, else from a box projection of the canonical-frame positions.
    """
    V = np.asarray(inst.vertices, np.float64)
    F = np.asarray(inst.faces, np.int64)
    if V.ndim != 2 or V.shape[1] != 3 or F.ndim != 2 or F.shape[1] != 3:
        raise ValueError(f"instance {inst.instance_id}: vertices must be [V, 3] and faces [F, 3]")
    cn = corner_normals(V, F)
    if inst.uv is not None:
        uv = np.asarray(inst.uv, np.float64)[F]
    else:
        uv = _box_uv(V[F], face_normals(V, F)[0])

    slot_names = [s.name for s in family.slots] if family is not None else None
    names: list[str] = []
    group_of_slot: dict[int, int] = {}
    for slot in np.unique(inst.face_slot):
        slot_name = slot_names[slot] if slot_names is not None else f"slot{int(slot)}"
        group = inst.material_groups.get(slot_name, slot_name)
        if group not in names:
            names.append(group)
        group_of_slot[int(slot)] = names.index(group)
    lut = np.zeros(int(inst.face_slot.max()) + 1, np.int32)
    for slot, g in group_of_slot.items():
        lut[slot] = g
    return RenderMesh(
        vertices=V,
        faces=F.astype(np.int32),
        corner_normals=cn,
        corner_uv=uv.astype(np.float32),
        face_group=lut[inst.face_slot],
        group_names=names,
    )


def prepare_geometry(vertices: np.ndarray, faces: np.ndarray, name: str = "surface") -> RenderMesh:
    """A :class:`RenderMesh` of bare geometry (one material group ``name``, box-projected texture coordinates),
    e.g. an occluder primitive. Faces counter-clockwise seen from outside."""
    V = np.asarray(vertices, np.float64)
    F = np.asarray(faces, np.int64)
    uv = _box_uv(V[F], face_normals(V, F)[0]).astype(np.float32)
    return RenderMesh(V, F.astype(np.int32), corner_normals(V, F), uv, np.zeros(len(F), np.int32), [name])


def transform_mesh(mesh: RenderMesh, rotation: np.ndarray, scale: float, translation: np.ndarray) -> RenderMesh:
    """The mesh moved by ``x -> scale * rotation @ x + translation`` (a similarity: shading normals rotate, texture
    coordinates and material groups stay)."""
    R = np.asarray(rotation, np.float64)
    V = float(scale) * mesh.vertices @ R.T + np.asarray(translation, np.float64)
    normals = (mesh.corner_normals.astype(np.float64) @ R.T).astype(np.float32)
    return RenderMesh(V, mesh.faces, normals, mesh.corner_uv, mesh.face_group, list(mesh.group_names), mesh.two_sided)


def concat_meshes(meshes: list[RenderMesh]) -> RenderMesh:
    """One mesh holding ``meshes`` in order: faces of mesh ``k`` follow those of meshes ``0..k-1``, and its material
    groups follow theirs (so an :class:`Appearance` for it is the concatenation of the parts' materials). Two-sided
    when any part is."""
    if not meshes:
        raise ValueError("concat_meshes needs at least one mesh")
    v_off = np.cumsum([0] + [len(m.vertices) for m in meshes])
    g_off = np.cumsum([0] + [len(m.group_names) for m in meshes])
    return RenderMesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.faces + np.int32(o) for m, o in zip(meshes, v_off)]).astype(np.int32),
        np.concatenate([m.corner_normals for m in meshes]),
        np.concatenate([m.corner_uv for m in meshes]),
        np.concatenate([m.face_group + np.int32(o) for m, o in zip(meshes, g_off)]).astype(np.int32),
        [n for m in meshes for n in m.group_names],
        any(m.two_sided for m in meshes),
    )


def prepare_user_mesh(
    mesh: UserMesh, appearance: str = "file", rng: np.random.Generator | None = None
) -> tuple[RenderMesh, Appearance]:
    """The :class:`RenderMesh` and :class:`Appearance` of a user's mesh.

    Args:
        mesh: a mesh from a library (canonical frame, metres).
        appearance: ``file``: the file's own materials: its textures on its texture coordinates, its base
            colours elsewhere (a file without materials renders in one grey); ``random``: a procedural appearance
            drawn with ``rng`` (:func:`~datagen.render.appearance.sample_appearance`), one material per part label
            when the mesh has labels, else per file material, on box-projected texture coordinates; ``auto``:
            ``file`` when the file has a look of its own (:attr:`UserMesh.has_appearance`), else ``random``.
        rng: needed for ``random`` (and ``auto`` on a file without materials).

    Returns:
        (render mesh with ``two_sided`` from the mesh, appearance indexed by its ``face_group``).
    """
    if appearance not in APPEARANCES:
        raise ValueError(f"unknown appearance {appearance!r}; choose one of {', '.join(APPEARANCES)}")
    if appearance == "auto":
        appearance = "file" if mesh.has_appearance else "random"
    V = np.asarray(mesh.vertices, np.float64)
    F = np.asarray(mesh.faces, np.int64)
    cn = corner_normals(V, F)
    if appearance == "file":
        uv = mesh.corner_uv if mesh.corner_uv is not None else np.zeros((len(F), 3, 2), np.float32)
        names = [m.name for m in mesh.materials]
        group = mesh.face_material.copy()
        render = RenderMesh(V, F.astype(np.int32), cn, uv.astype(np.float32), group, names, bool(mesh.two_sided))
        return render, file_appearance(mesh.materials)
    if rng is None:
        raise ValueError(f"{mesh.mesh_id}: a random appearance needs rng")
    if mesh.face_part is not None:
        names = list(mesh.part_names)
        group = mesh.face_part.copy()
        if (group < 0).any():
            group[group < 0] = len(names)
            names.append("unlabelled")
    else:
        names, group = [m.name for m in mesh.materials], mesh.face_material.copy()
    uv = _box_uv(V[F], face_normals(V, F)[0]).astype(np.float32)
    render = RenderMesh(V, F.astype(np.int32), cn, uv, group.astype(np.int32), names, bool(mesh.two_sided))
    return render, sample_appearance(rng, len(names))
