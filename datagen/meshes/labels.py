"""Per-face part labels: from a sidecar file or from the file's own groups (OBJ ``g``/``o``, glTF node names).

A sidecar is ``<stem>.labels.txt`` next to the mesh file: one label name per line, one line per face, in the
file's face order. For OBJ files a line may label a polygon (as the file writes it) or a triangle (after fan
triangulation, see :mod:`datagen.meshes.obj`); for the other formats it labels a triangle as trimesh reads it
(scene nodes in name order), which is the file's order for one-node, triangle-only files. An empty line or ``-``
leaves the face unlabelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.meshes.raw import RawMesh

__all__ = ["PART_MODES", "sidecar_path", "part_labels"]

PART_MODES = ("auto", "sidecar", "groups", "none")
_UNLABELLED = ("", "-")


def sidecar_path(mesh_path: Path) -> Path:
    """Where the sidecar label file of ``mesh_path`` lives: ``<folder>/<stem>.labels.txt``."""
    return mesh_path.with_name(mesh_path.stem + ".labels.txt")


def _from_names(names: list[str]) -> tuple[np.ndarray, list[str]]:
    """(int32 [N] index, sorted distinct names) with -1 for unlabelled entries."""
    distinct = sorted({n for n in names if n not in _UNLABELLED})
    index = {n: i for i, n in enumerate(distinct)}
    return np.asarray([index.get(n, -1) for n in names], np.int32), distinct


def part_labels(
    raw: RawMesh, mesh_path: Path, mode: str = "auto"
) -> tuple[np.ndarray | None, list[str], str, list[str]]:
    """Part labels of a read mesh.

    Args:
        raw: the mesh as read (file face order).
        mesh_path: its file (the sidecar is looked up beside it).
        mode: ``sidecar`` (the sidecar only), ``groups`` (the file's groups only), ``auto`` (the sidecar when it
            exists, else the file's groups when there are at least two), ``none``.

    Returns:
        (face_part int32 [F] or None, part_names, source: "sidecar" / "groups" / "", notes). A sidecar whose line
        count matches neither the faces nor the polygons is ignored, with a note.
    """
    if mode not in PART_MODES:
        raise ValueError(f"unknown part-label mode {mode!r}; choose one of {', '.join(PART_MODES)}")
    notes: list[str] = []
    side = sidecar_path(mesh_path)
    if mode in ("auto", "sidecar") and side.is_file():
        lines = [ln.strip() for ln in side.read_text(encoding="utf-8", errors="replace").splitlines()]
        while lines and lines[-1] == "":
            lines.pop()
        face_part, names = _from_names(lines)
        if len(lines) == raw.n_faces:
            return face_part, names, "sidecar", notes
        if raw.face_polygon is not None and len(lines) == raw.n_polygons:
            return face_part[raw.face_polygon], names, "sidecar", notes
        notes.append(
            f"{side.name} has {len(lines)} labels but the mesh has {raw.n_faces} triangles"
            + (f" ({raw.n_polygons} polygons)" if raw.n_polygons != raw.n_faces else "")
            + "; part labels ignored"
        )
        return None, [], "", notes
    if mode in ("auto", "groups") and raw.face_group is not None:
        used = np.unique(raw.face_group[raw.face_group >= 0])
        if len(used) >= (2 if mode == "auto" else 1):
            distinct = sorted({raw.group_names[g] for g in used})
            lut = np.asarray([distinct.index(n) if n in distinct else -1 for n in raw.group_names], np.int32)
            face_part = np.where(raw.face_group >= 0, lut[np.maximum(raw.face_group, 0)], -1).astype(np.int32)
            return face_part, distinct, "groups", notes
    return None, [], "", notes
