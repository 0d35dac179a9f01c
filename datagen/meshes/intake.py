"""One file through the intake: read, label, check and repair, normalise -> :class:`IntakeResult`.

Outcomes (every one with its reason):

- **rejected**: ``unreadable: ...`` (the reader failed; its message says where), ``non-finite: ...``,
  ``empty: ...``, ``degenerate: ...``;
- **repaired**: accepted after a change of the surface or its winding (zero-area or duplicate faces removed,
  winding made consistent, inward components flipped, decimation above ``max_faces``, NaN vertices dropped);
- **accepted**: possibly with notes that change nothing (duplicate vertices merged, multi-body, open surface
  rendered two-sided, missing textures, ignored labels).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datagen.meshes.checks import (
    Note,
    Rejected,
    Surface,
    check_finite,
    clean,
    decimate,
    make_winding_consistent,
    orient,
)
from datagen.meshes.labels import part_labels
from datagen.meshes.normalize import apply_transform, normalising_transform
from datagen.meshes.raw import MeshReadError, RawMesh
from datagen.meshes.read import read_mesh
from datagen.meshes.textures import MAX_TEXTURE_SIDE, mean_color
from datagen.meshes.types import MeshMaterial, UserMesh

__all__ = ["IntakeOptions", "IntakeResult", "intake_file", "DEFAULT_MAX_FACES"]

DEFAULT_MAX_FACES = 100_000


@dataclass(frozen=True)
class IntakeOptions:
    """How one file is taken in.

    Attributes:
        up, front: the file axes of the object's top and front (see :mod:`datagen.meshes.axes`).
        target_diagonal_m: bounding-box diagonal in metres after normalisation (the category's reference size).
        scale_m_per_unit: metres per file unit; when given it replaces ``target_diagonal_m``.
        max_faces: meshes with more faces are decimated to this many.
        parts: part-label source, one of :data:`datagen.meshes.labels.PART_MODES`.
        max_texture_side: longer textures are downscaled to this side, pixels.
    """

    up: str = "+y"
    front: str = "+z"
    target_diagonal_m: float | None = None
    scale_m_per_unit: float | None = None
    max_faces: int = DEFAULT_MAX_FACES
    parts: str = "auto"
    max_texture_side: int = MAX_TEXTURE_SIDE


@dataclass
class IntakeResult:
    """What the intake made of one file.

    Attributes:
        status: ``accepted``, ``repaired`` or ``rejected``.
        reason: why it was rejected ("" otherwise), starting with the kind (``unreadable:``, ``empty:``, ...).
        mesh: the normalised mesh (None when rejected).
        notes: every note, in the order the steps made them.
        faces_in: triangles as read (0 when unreadable).
        seconds: wall time of the intake.
        part_source: where the part labels came from ("sidecar", "groups" or "").
    """

    status: str
    reason: str = ""
    mesh: UserMesh | None = None
    notes: list[Note] = field(default_factory=list)
    faces_in: int = 0
    seconds: float = 0.0
    part_source: str = ""

    @property
    def repairs(self) -> list[str]:
        return [n.text for n in self.notes if n.kind == "repair"]


def _resolve_textures(s: Surface, materials: list[MeshMaterial]) -> tuple[list[MeshMaterial], list[Note]]:
    """Textured materials on faces without texture coordinates fall back to the texture's mean colour."""
    notes: list[Note] = []
    materials = list(materials)
    if s.corner_uv is None:
        missing = np.ones(s.n_faces, bool)
    else:
        missing = ~np.isfinite(s.corner_uv).all(axis=(1, 2))
    for m in np.unique(s.face_material[missing]):
        mat = materials[m]
        if mat.texture is None:
            continue
        plain = MeshMaterial(f"{mat.name} (no uv)", mean_color(mat.texture))
        sel = missing & (s.face_material == m)
        if (s.face_material == m).sum() == sel.sum():
            materials[m] = plain
        else:
            materials.append(plain)
            s.face_material[sel] = len(materials) - 1
        notes.append(
            Note(
                "warning",
                f"material {mat.name!r}: {int(sel.sum())} faces have no texture coordinates; "
                "the texture's mean colour is used there",
            )
        )
    if s.corner_uv is not None:
        s.corner_uv[missing] = 0.0
    return materials, notes


def _drop_unused_materials(s: Surface, materials: list[MeshMaterial]) -> list[MeshMaterial]:
    used = np.unique(s.face_material)
    remap = np.full(len(materials), -1, np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    s.face_material = remap[s.face_material]
    return [materials[i] for i in used]


def _surface(raw: RawMesh, face_part: np.ndarray | None) -> Surface:
    faces = np.asarray(raw.faces, np.int64).reshape(-1, 3)
    vertices = np.asarray(raw.vertices, np.float64).reshape(-1, 3)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise MeshReadError(f"faces reference vertex {int(faces.max())} of {len(vertices)}")
    uv = None if raw.corner_uv is None else np.array(raw.corner_uv, np.float32)
    return Surface(vertices.copy(), faces.copy(), np.asarray(raw.face_material, np.int32).copy(), uv, face_part)


def intake_file(path: Path, mesh_id: str, options: IntakeOptions) -> IntakeResult:
    """Read, check, repair and normalise one mesh file. Never raises for a bad file: it is rejected instead."""
    t0 = time.perf_counter()
    notes: list[Note] = []

    def rejected(reason: str, faces_in: int = 0) -> IntakeResult:
        return IntakeResult("rejected", reason, None, notes, faces_in, time.perf_counter() - t0)

    try:
        raw = read_mesh(path, options.max_texture_side)
        face_part, part_names, part_source, label_notes = part_labels(raw, path, options.parts)
        s = _surface(raw, face_part)
    except (MeshReadError, OSError, UnicodeError) as e:
        return rejected(f"unreadable: {e}")
    except Exception as e:  # a reader bug or a file no reader foresaw: still one reason, never a crash
        return rejected(f"unreadable: {type(e).__name__}: {e}")
    notes += [Note("warning", n) for n in raw.notes]  # what the reader could not use as written
    notes += [Note("warning", n) for n in label_notes]
    faces_in = raw.n_faces
    try:
        notes += check_finite(s)
        notes += clean(s)
        notes += make_winding_consistent(s)
        if s.n_faces > options.max_faces:
            notes += decimate(s, options.max_faces)
            notes += [n for n in clean(s) if n.kind != "info"]
            notes += make_winding_consistent(s)
        two_sided, orient_notes = orient(s)
        notes += orient_notes
        T = normalising_transform(
            s.vertices, options.up, options.front, options.target_diagonal_m, options.scale_m_per_unit
        )
    except Rejected as e:
        return rejected(str(e), faces_in)
    materials, tex_notes = _resolve_textures(s, raw.materials)
    notes += tex_notes
    materials = _drop_unused_materials(s, materials)
    if options.scale_m_per_unit is not None:
        notes.append(Note("info", f"scaled by the file's {options.scale_m_per_unit:g} m per unit"))
    face_part = s.face_part
    if face_part is not None and (face_part < 0).all():
        face_part, part_names = None, []
    mesh = UserMesh(
        mesh_id=mesh_id,
        source_path=str(path),
        vertices=apply_transform(T, s.vertices),
        faces=s.faces.astype(np.int32),
        face_material=s.face_material,
        materials=materials,
        corner_uv=s.corner_uv,
        face_part=face_part,
        part_names=part_names if face_part is not None else [],
        two_sided=two_sided,
        transform=T,
        notes=[n.text for n in notes],
    )
    status = "repaired" if any(n.kind == "repair" for n in notes) else "accepted"
    return IntakeResult(status, "", mesh, notes, faces_in, time.perf_counter() - t0, part_source)
