"""Wavefront OBJ + MTL reader that keeps the file's face order, groups and materials.

trimesh's OBJ loader regroups faces by material (and splits the file into one geometry per group), so face order
and the group of each face are lost; both matter here (per-face part labels, sidecar label files). This reader
takes what the intake needs and nothing else:

- ``v`` (x y z; extra values such as vertex colours are ignored), ``vt`` (u v), ``f`` with any of ``v``,
  ``v/vt``, ``v//vn``, ``v/vt/vn`` and negative (relative) indices; polygons are fan-triangulated
  ``(0, k, k + 1)`` in order, so triangle ``t`` of the output comes from file face ``face_polygon[t]``;
- ``usemtl``, ``mtllib`` (one or more files), ``g`` and ``o`` (the group of a face is its ``g`` name when the file
  has ``g`` lines, else its ``o`` name);
- MTL: ``newmtl``, ``Kd`` and ``map_Kd`` (texture options such as ``-s 1 1 1`` are skipped; Windows separators
  are accepted). The texture replaces ``Kd`` on textured faces, as common OBJ viewers (and ShapeNet's own
  renderer) draw it.

Lines, points, curves and everything else are ignored. Errors name the line: a vertex index out of range or a
number that does not parse makes the file unreadable (:class:`~datagen.meshes.raw.MeshReadError`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.meshes.raw import MeshReadError, RawMesh
from datagen.meshes.textures import MAX_TEXTURE_SIDE, read_texture
from datagen.meshes.types import DEFAULT_COLOR, DEFAULT_MATERIAL, MeshMaterial

__all__ = ["read_obj", "read_mtl"]

# map_Kd options and how many values each takes (MTL spec); -o/-s/-t take 1 to 3 numbers
_MAP_OPTIONS = {"-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1, "-imfchan": 1}
_MAP_OPTIONS |= {"-mm": 2, "-texres": 1, "-o": 3, "-s": 3, "-t": 3}


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _map_file(tokens: list[str]) -> str:
    """The file name of a ``map_Kd`` statement's arguments (options skipped)."""
    i = 0
    while i < len(tokens) - 1 and tokens[i].lower() in _MAP_OPTIONS:
        n = _MAP_OPTIONS[tokens[i].lower()]
        i += 1
        taken = 0
        while taken < n and i < len(tokens) - 1 and (_is_number(tokens[i]) or tokens[i] in ("on", "off")):
            i += 1
            taken += 1
    return " ".join(tokens[i:]).replace("\\", "/")


def _find_asset(name: str, folders: list[Path]) -> Path | None:
    """The file ``name`` relative to one of ``folders``, or its base name in one of them."""
    for folder in folders:
        for candidate in (folder / name, folder / Path(name).name):
            if candidate.is_file():
                return candidate
    return None


def read_mtl(path: Path, max_texture_side: int = MAX_TEXTURE_SIDE) -> tuple[dict[str, MeshMaterial], list[str]]:
    """Materials of an MTL file by name, and notes (missing or unreadable textures).

    Raises:
        OSError: the MTL file cannot be read.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    materials: dict[str, MeshMaterial] = {}
    notes: list[str] = []
    name: str | None = None
    color: list[float] = list(DEFAULT_COLOR)
    texture = None

    def close() -> None:
        if name is not None:
            materials[name] = MeshMaterial(name, np.asarray(color), texture)

    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        key = parts[0].lower()
        if key == "newmtl":
            close()
            name, color, texture = " ".join(parts[1:]), list(DEFAULT_COLOR), None
        elif name is None:
            continue
        elif key == "kd" and len(parts) >= 4:
            try:
                color = [float(x) for x in parts[1:4]]
            except ValueError:
                notes.append(f"material {name!r}: Kd {' '.join(parts[1:4])!r} is not a colour; grey used")
        elif key == "map_kd" and len(parts) >= 2:
            file = _map_file(parts[1:])
            found = _find_asset(file, [path.parent])
            if found is None:
                notes.append(f"material {name!r}: texture {file!r} not found; its base colour is used")
                continue
            try:
                texture, note = read_texture(found, max_texture_side)
            except OSError as e:
                notes.append(f"material {name!r}: texture {file!r} unreadable ({e}); its base colour is used")
                continue
            if note:
                notes.append(f"material {name!r}: {note}")
    close()
    return materials, notes


def _float_rows(rows: list[list[str]], width: int, what: str, lines: list[int]) -> np.ndarray:
    """float64 [N, width] of the first ``width`` numbers of each row; errors name the line."""
    out = np.empty((len(rows), width), np.float64)
    for i, row in enumerate(rows):
        if len(row) < width:
            raise MeshReadError(f"line {lines[i]}: {what} needs {width} numbers, got {len(row)}")
        try:
            out[i] = [float(x) for x in row[:width]]
        except ValueError:
            raise MeshReadError(f"line {lines[i]}: {what} {' '.join(row[:width])!r} is not numeric") from None
    return out


def read_obj(path: Path, max_texture_side: int = MAX_TEXTURE_SIDE) -> RawMesh:
    """Read an OBJ file (and its MTL files and textures) into a :class:`RawMesh`.

    Raises:
        MeshReadError: not a text OBJ, a malformed number, or a face index out of range (naming the line).
        OSError: the file cannot be read.
    """
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise MeshReadError("binary data, not a text OBJ file")
    text = data.decode("utf-8", errors="replace").replace("\\\r\n", " ").replace("\\\n", " ")

    v_rows: list[list[str]] = []
    v_lines: list[int] = []
    vt_rows: list[list[str]] = []
    vt_lines: list[int] = []
    tri: list[tuple[int, int, int]] = []
    tri_uv: list[tuple[int, int, int]] = []
    tri_mat: list[int] = []
    tri_poly: list[int] = []
    mtllibs: list[str] = []
    mat_names: list[str] = []
    mat_index: dict[str, int] = {}
    g_names: dict[str, int] = {}  # 'g' groups
    o_names: dict[str, int] = {}  # 'o' objects
    face_g: list[int] = []
    face_o: list[int] = []
    cur_mat, cur_g, cur_o = -1, -1, -1
    n_poly = 0
    short_faces = 0

    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key == "v":
            v_rows.append(parts[1:4])
            v_lines.append(lineno)
        elif key == "vt":
            vt_rows.append(parts[1:3] if len(parts) >= 3 else [*parts[1:2], "0"])
            vt_lines.append(lineno)
        elif key == "f":
            corners = parts[1:]
            if len(corners) < 3:
                short_faces += 1
                continue
            vi, ti = [], []
            nv, nt = len(v_rows), len(vt_rows)
            for tok in corners:
                fields = tok.split("/")
                try:
                    a = int(fields[0])
                    b = int(fields[1]) if len(fields) > 1 and fields[1] else 0
                except ValueError:
                    raise MeshReadError(f"line {lineno}: face corner {tok!r} is not an index") from None
                a = a - 1 if a > 0 else nv + a
                if not 0 <= a < nv:  # 0, or beyond the vertices defined so far
                    raise MeshReadError(f"line {lineno}: face references vertex {fields[0]} of {nv} defined so far")
                vi.append(a)
                if b:
                    b = b - 1 if b > 0 else nt + b
                    if not 0 <= b < nt:
                        raise MeshReadError(f"line {lineno}: face references texture coordinate {fields[1]} of {nt}")
                    ti.append(b)
                else:
                    ti.append(-1)
            if min(ti) < 0:
                ti = [-1] * len(ti)
            for k in range(1, len(vi) - 1):
                tri.append((vi[0], vi[k], vi[k + 1]))
                tri_uv.append((ti[0], ti[k], ti[k + 1]))
                tri_mat.append(cur_mat)
                tri_poly.append(n_poly)
                face_g.append(cur_g)
                face_o.append(cur_o)
            n_poly += 1
        elif key == "usemtl":
            name = " ".join(parts[1:])
            if name not in mat_index:
                mat_index[name] = len(mat_names)
                mat_names.append(name)
            cur_mat = mat_index[name]
        elif key == "mtllib":
            mtllibs.append(" ".join(parts[1:]).replace("\\", "/"))
        elif key in ("g", "o"):
            name = " ".join(parts[1:]) or "(unnamed)"
            table = g_names if key == "g" else o_names
            if name not in table:
                table[name] = len(table)
            if key == "g":
                cur_g = table[name]
            else:
                cur_o = table[name]

    vertices = _float_rows(v_rows, 3, "vertex", v_lines)
    notes: list[str] = []
    if not tri:  # an empty mesh is the checks' to report, not a read error
        empty = MeshMaterial(DEFAULT_MATERIAL, np.asarray(DEFAULT_COLOR))
        return RawMesh(vertices, np.zeros((0, 3), np.int64), np.zeros(0, np.int32), [empty], notes=notes)
    if short_faces:
        notes.append(f"{short_faces} face lines with fewer than 3 corners skipped")

    # materials: the MTL's, in first-use order, plus the default for faces before any usemtl
    library: dict[str, MeshMaterial] = {}
    for lib in mtllibs:
        found = _find_asset(lib, [path.parent])
        if found is None:
            notes.append(f"material library {lib!r} not found; materials are grey")
            continue
        try:
            mats, mat_notes = read_mtl(found, max_texture_side)
        except OSError as e:
            notes.append(f"material library {lib!r} unreadable ({e}); materials are grey")
            continue
        library.update(mats)
        notes.extend(mat_notes)
    face_mat = np.asarray(tri_mat, np.int64)
    materials: list[MeshMaterial] = []
    for name in mat_names:
        if name in library:
            materials.append(library[name])
        else:
            if library:
                notes.append(f"material {name!r} is used but not defined in the MTL; grey used")
            materials.append(MeshMaterial(name, np.asarray(DEFAULT_COLOR)))
    if (face_mat < 0).any():
        face_mat[face_mat < 0] = len(materials)
        materials.append(MeshMaterial(DEFAULT_MATERIAL, np.asarray(DEFAULT_COLOR)))

    corner_uv = None
    uv_idx = np.asarray(tri_uv, np.int64)
    if vt_rows and (uv_idx >= 0).any():
        vt = _float_rows(vt_rows, 2, "texture coordinate", vt_lines)
        vt[:, 1] = 1.0 - vt[:, 1]  # OBJ: v up from the bottom row -> image convention (v down)
        corner_uv = np.full((len(tri), 3, 2), np.nan, np.float32)
        has = uv_idx[:, 0] >= 0
        corner_uv[has] = vt[uv_idx[has]]
        if not has.all():
            notes.append(f"{int((~has).sum())} of {len(tri)} triangles have no texture coordinates")

    use_g = bool(g_names)
    names = list(g_names if use_g else o_names)
    face_group = np.asarray(face_g if use_g else face_o, np.int32)
    return RawMesh(
        vertices=vertices,
        faces=np.asarray(tri, np.int64),
        face_material=face_mat.astype(np.int32),
        materials=materials,
        corner_uv=corner_uv,
        face_group=face_group if names else None,
        group_names=names,
        face_polygon=np.asarray(tri_poly, np.int64),
        notes=notes,
    )
