"""Instance meshes prepared for rendering: per-corner normals and texture coordinates, material groups.

Both backends draw the same :class:`RenderMesh`, so the lit images of the GL and CPU backends agree in content
(not in exact pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datagen.families.base import Family, Instance

__all__ = ["RenderMesh", "prepare_mesh", "face_normals"]

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
        corner_uv: float32 [F, 3, 2] texture coordinates per face corner.
        face_group: int32 [F] material group of each face.
        group_names: names of the material groups, indexed by ``face_group``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    corner_normals: np.ndarray
    corner_uv: np.ndarray
    face_group: np.ndarray
    group_names: list[str]

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
    fn, area = face_normals(V, F)
    vn = np.zeros_like(V)
    np.add.at(vn, F.ravel(), np.repeat(fn * area[:, None], 3, axis=0))
    vn /= np.maximum(np.linalg.norm(vn, axis=1), 1e-20)[:, None]
    cn = vn[F]  # [F, 3, 3]
    smooth = np.einsum("fkd,fd->fk", cn, fn) >= _SMOOTH_COS
    cn = np.where(smooth[..., None], cn, fn[:, None, :])
    if inst.uv is not None:
        uv = np.asarray(inst.uv, np.float64)[F]
    else:
        uv = _box_uv(V[F], fn)

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
        corner_normals=cn.astype(np.float32),
        corner_uv=uv.astype(np.float32),
        face_group=lut[inst.face_slot],
        group_names=names,
    )
