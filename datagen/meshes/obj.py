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
  are accepted; a texture not found where the MTL says is looked for by its base name beside the MTL and in
  ``../images``, ShapeNet's folder). The texture replaces ``Kd`` on textured faces, as common OBJ viewers draw it.

Lines, points, curves and everything else are ignored. Errors name the line: a vertex index out of range or a
number that does not parse makes the file unreadable (:class:`~datagen.meshes.raw.MeshReadError`).
"""

from __future__ import annotations

import re
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
            found = _find_asset(file, [path.parent, path.parent.parent / "images"])  # ShapeNet: <model>/images
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


def _numbers(rows: list[str], width: int, what: str, lines: np.ndarray, pad: bool = False) -> np.ndarray:
    """float64 [N, width]: the first ``width`` numbers of each row (the text after the keyword); errors name the
    line. ``pad`` fills missing trailing values with 0 (``vt u``)."""
    tokens = " ".join(rows).split()
    if len(tokens) == width * len(rows):
        try:  # fast path: every row has exactly ``width`` values; numpy parses them in one call
            return np.array(tokens, np.float64).reshape(-1, width)
        except ValueError:
            pass  # find the offending line below
    out = np.empty((len(rows), width), np.float64)
    for i, row in enumerate(rows):
        vals = row.split()[:width]
        if len(vals) < width and pad and vals:
            vals += ["0"] * (width - len(vals))
        if len(vals) < width:
            raise MeshReadError(f"line {lines[i]}: {what} needs {width} numbers, got {len(vals)}")
        try:
            out[i] = [float(x) for x in vals]
        except ValueError:
            raise MeshReadError(f"line {lines[i]}: {what} {' '.join(vals)!r} is not numeric") from None
    return out


def _slashes_uniform(joined: str, n: int, k: int) -> bool:
    """Whether each of the ``n`` space-separated tokens of ``joined`` has exactly ``k`` slashes."""
    b = np.frombuffer(joined.encode("ascii", errors="replace"), np.uint8)
    slashes = np.concatenate([[0], np.cumsum(b == ord("/"))])
    ends = np.concatenate([np.flatnonzero(b == ord(" ")), [len(b)]])  # one past each token
    if len(ends) != n:
        return False
    per_token = np.diff(np.concatenate([[0], slashes[ends]]))
    return bool((per_token == k).all())


def _corner_text(lines: list[str], f_at: np.ndarray) -> tuple[str, np.ndarray]:
    """(every corner token of the face lines, single-space separated; int64 [P] corners per line)."""
    if not len(f_at):
        return "", np.zeros(0, np.int64)
    body = "\n".join([lines[i][2:] for i in f_at])
    if "  " in body or " \n" in body or "\n " in body or body[:1] == " " or body[-1:] == " ":
        body = re.sub(r" *\n *", "\n", re.sub(" +", " ", body)).strip(" ")
    b = np.frombuffer(body.encode("ascii", errors="replace"), np.uint8)
    line_end = np.append(np.flatnonzero(b == 10), len(b))
    spaces = np.searchsorted(np.flatnonzero(b == 32), line_end)  # spaces before each line's end
    counts = np.diff(np.concatenate([[0], spaces])) + 1
    empty = np.diff(np.concatenate([[-1], line_end])) == 1  # an "f " line with nothing after it
    return body.replace("\n", " "), np.where(empty, 0, counts)


def _raw_corners(joined: str, n: int, owner: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertex index, texture index) int64 [n] of every corner as written (1-based or negative; 0 = none).

    One numpy parse when every corner has the same form (``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn``), else corner
    by corner, naming the line of a corner that is not an index.
    """
    k = joined.count("/") // max(n, 1)
    double = joined.count("//")
    if k <= 2 and double in (0, n) and _slashes_uniform(joined, n, k):
        text = (joined.replace("//", "/0/") if double else joined).replace("/", " ")
        try:
            arr = np.array(text.split(), np.int64)
        except ValueError:
            arr = np.zeros(0, np.int64)
        if arr.size == n * (k + 1):
            arr = arr.reshape(n, k + 1)
            return arr[:, 0], (arr[:, 1] if k >= 1 else np.zeros(n, np.int64))
    v = np.zeros(n, np.int64)
    t = np.zeros(n, np.int64)
    for i, tok in enumerate(joined.split(" ")):
        fields = tok.split("/")
        try:
            v[i] = int(fields[0])
            t[i] = int(fields[1]) if len(fields) > 1 and fields[1] else 0
        except ValueError:
            raise MeshReadError(f"line {lines[owner[i]]}: face corner {tok!r} is not an index") from None
    return v, t


def _resolve(raw: np.ndarray, defined: np.ndarray, what: str, lines: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """0-based indices of 1-based or negative (relative) OBJ indices; ``defined`` [C] counts the elements
    written before each corner's line. Raises naming the first line with an index out of range."""
    idx = np.where(raw > 0, raw - 1, defined + raw)
    bad = (raw == 0) | (idx < 0) | (idx >= defined)
    if bad.any():
        i = int(np.argmax(bad))
        raise MeshReadError(
            f"line {lines[owner[i]]}: face references {what} {int(raw[i])} of {int(defined[i])} defined so far"
        )
    return idx


def _triangulate(joined: str, counts: np.ndarray, info: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fan triangles of the polygons: (vertex int64 [T, 3], texture int64 [T, 3] with -1 where a polygon lacks
    coordinates, polygon int64 [T]).

    Args:
        joined: the corner tokens of all polygons, single-space separated.
        counts: int64 [P] corners per polygon (at least 3).
        info: int64 [P, 3]: line number, vertices and texture coordinates defined before the polygon's line.
    """
    lines, nv, nt = info[:, 0], info[:, 1], info[:, 2]
    owner = np.repeat(np.arange(len(counts)), counts)
    raw_v, raw_t = _raw_corners(joined, int(counts.sum()), owner, lines)
    vi = _resolve(raw_v, nv[owner], "vertex", lines, owner)
    has_t = raw_t != 0
    ti = np.full(len(raw_t), -1, np.int64)
    if has_t.any():
        ti[has_t] = _resolve(raw_t[has_t], nt[owner][has_t], "texture coordinate", lines, owner[has_t])
    start = np.cumsum(counts) - counts
    # a polygon with any corner lacking coordinates has none
    missing = np.minimum.reduceat(ti, start) < 0
    ti[missing[owner]] = -1
    n_tri = counts - 2
    poly = np.repeat(np.arange(len(counts)), n_tri)
    k = np.arange(len(poly)) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    c = np.stack([start[poly], start[poly] + k, start[poly] + k + 1], axis=1)
    return vi[c], ti[c], poly


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

    lines = text.replace("\t", " ").splitlines()
    if any(ln[:1] == " " for ln in lines):
        lines = [ln.lstrip() for ln in lines]
    head = np.array([ln[:2] for ln in lines], dtype="U2")  # statement kinds, classified in bulk
    v_at = np.flatnonzero(head == "v ")
    vt_at = np.flatnonzero(head == "vt")
    f_at = np.flatnonzero(head == "f ")
    state_at = np.flatnonzero(np.isin(head.astype("U1"), ["u", "m", "g", "o"]))

    # material, group and object in force after each state line
    mtllibs: list[str] = []
    mat_names: list[str] = []
    mat_index: dict[str, int] = {}
    g_names: dict[str, int] = {}  # 'g' groups
    o_names: dict[str, int] = {}  # 'o' objects
    cur = [-1, -1, -1]
    changes: list[tuple[int, int, int, int]] = []
    for i in state_at:
        key, _, rest = lines[i].partition(" ")
        name = " ".join(rest.split())
        if key == "usemtl":
            if name not in mat_index:
                mat_index[name] = len(mat_names)
                mat_names.append(name)
            cur[0] = mat_index[name]
        elif key == "mtllib" and name:
            mtllibs.append(name.replace("\\", "/"))
        elif key in ("g", "o"):
            table = g_names if key == "g" else o_names
            name = name or "(unnamed)"
            table.setdefault(name, len(table))
            cur[1 if key == "g" else 2] = table[name]
        else:
            continue
        changes.append((i, *cur))

    joined, counts = _corner_text(lines, f_at)
    short_faces = int((counts < 3).sum())
    if short_faces:
        f_at = f_at[counts >= 3]
        joined, counts = _corner_text(lines, f_at)
    f_pos = f_at
    poly_info = np.stack([f_pos + 1, np.searchsorted(v_at, f_pos), np.searchsorted(vt_at, f_pos)], axis=1)
    table = np.asarray([(-1, -1, -1, -1), *changes], np.int64)
    poly_state = table[np.searchsorted(table[1:, 0], f_pos), 1:]  # [P, 3]: material, g, o

    vertices = _numbers([lines[i][2:] for i in v_at], 3, "vertex", v_at + 1)
    notes: list[str] = []
    if not len(f_pos):  # an empty mesh is the checks' to report, not a read error
        empty = MeshMaterial(DEFAULT_MATERIAL, np.asarray(DEFAULT_COLOR))
        return RawMesh(vertices, np.zeros((0, 3), np.int64), np.zeros(0, np.int32), [empty], notes=notes)
    tri, uv_idx, tri_poly = _triangulate(joined, counts, poly_info)
    state = poly_state[tri_poly]  # [T, 3]: material, g, o
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
    face_mat = state[:, 0].copy()
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
    if len(vt_at) and (uv_idx >= 0).any():
        vt = _numbers([lines[i][3:] for i in vt_at], 2, "texture coordinate", vt_at + 1, pad=True)
        vt[:, 1] = 1.0 - vt[:, 1]  # OBJ: v up from the bottom row -> image convention (v down)
        corner_uv = np.full((len(tri), 3, 2), np.nan, np.float32)
        has = uv_idx[:, 0] >= 0
        corner_uv[has] = vt[uv_idx[has]]
        if not has.all():
            notes.append(f"{int((~has).sum())} of {len(tri)} triangles have no texture coordinates")

    use_g = bool(g_names)
    names = list(g_names if use_g else o_names)
    face_group = state[:, 1 if use_g else 2].astype(np.int32)
    return RawMesh(
        vertices=vertices,
        faces=tri,
        face_material=face_mat.astype(np.int32),
        materials=materials,
        corner_uv=corner_uv,
        face_group=face_group if names else None,
        group_names=names,
        face_polygon=tri_poly,
        notes=notes,
    )
