"""Finding the meshes of a collection: ShapeNet layout, a folder of mesh files, or a CSV listing.

- **ShapeNetCore v2**: ``[<synset>/]<model_id>/models/model_normalized.obj`` (+ ``.mtl``, textures under
  ``<model_id>/images``). The mesh id is the model folder name, so reports name the folder; a model folder
  without ``model_normalized.obj`` is listed (and rejected) too. The layout is recognised when the folder holds
  at least one ``*/models/model_normalized.obj``; its default axes are ShapeNet's (up +y, front -z).
- **A folder of mesh files** (searched recursively, hidden folders skipped): ``.obj .glb .gltf .ply .off .stl``.
  The id is the file stem; stems that clash get the extension appended (``chair_obj``, ``chair_glb``), and any
  remaining clash a counter, deterministically in sorted path order.
- **A CSV file** with columns ``path, category[, up, front, scale]`` (a header row naming them, or that column
  order without one); paths are relative to the CSV's folder; empty cells take the command-line defaults.
  ``scale`` is metres per file unit (then the mesh keeps its size instead of the category's reference size).
  Rows of another category, missing files and malformed cells are listed with their reason.

Ids are made filesystem-safe (characters other than letters, digits, ``. _ -`` become ``_``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from datagen.meshes.axes import canonical_rotation
from datagen.meshes.read import MESH_FORMATS

__all__ = ["Source", "Collection", "discover", "DiscoveryError", "SHAPENET_AXES"]

SHAPENET_AXES = ("+y", "-z")
_SHAPENET_FILE = Path("models") / "model_normalized.obj"
_CSV_COLUMNS = ("path", "category", "up", "front", "scale")


class DiscoveryError(ValueError):
    """The collection cannot be listed at all (missing folder, unreadable CSV, no mesh files)."""


@dataclass(frozen=True)
class Source:
    """One mesh file of a collection.

    Attributes:
        mesh_id: its id in the library.
        path: the file (absolute).
        name: what reports call it: the model folder (ShapeNet), the path relative to the collection, or the CSV
            path cell.
        up, front: its axes when the CSV gives them (None: the collection's defaults).
        scale: metres per file unit when the CSV gives it.
        error: why it cannot be taken in at all (wrong category, missing file, malformed row), else "".
    """

    mesh_id: str
    path: Path
    name: str
    up: str | None = None
    front: str | None = None
    scale: float | None = None
    error: str = ""

    def to_json(self) -> dict:
        return {"path": str(self.path), "name": self.name, "up": self.up, "front": self.front, "scale": self.scale}


@dataclass(frozen=True)
class Collection:
    """What :func:`discover` found: the layout (``shapenet``, ``folder``, ``csv``), its default axes, the sources."""

    layout: str
    root: Path
    default_up: str
    default_front: str
    sources: list[Source]


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip(".") or "mesh"


def _unique_ids(stems: list[tuple[str, str]]) -> list[str]:
    """Ids for (stem, extension) pairs in a fixed order: the stem, ``stem_ext`` on clashes, then a counter."""
    safe = [(_safe_id(s), e.lstrip(".").lower()) for s, e in stems]
    count: dict[str, int] = {}
    for s, _ in safe:
        count[s.lower()] = count.get(s.lower(), 0) + 1
    out: list[str] = []
    taken: set[str] = set()
    for s, e in safe:
        cand = s if count[s.lower()] == 1 else f"{s}_{e}"
        base, k = cand, 2
        while cand.lower() in taken:  # case-insensitive: ids become file names
            cand, k = f"{base}_{k}", k + 1
        taken.add(cand.lower())
        out.append(cand)
    return out


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _shapenet(root: Path) -> Collection | None:
    found = [p for p in sorted(root.glob(f"**/{_SHAPENET_FILE.as_posix()}")) if not _is_hidden(p, root)]
    if not found:
        return None
    depth = len(found[0].relative_to(root).parts)
    folders = sorted(
        {p.parent for p in root.glob("**/models") if p.is_dir() and len(p.relative_to(root).parts) == depth - 1}
    )
    folders = [f for f in folders if not _is_hidden(f, root)]
    ids = _unique_ids([(f.name, f.parent.name) for f in folders])
    sources = []
    for mesh_id, folder in zip(ids, folders):
        obj = folder / _SHAPENET_FILE
        name = folder.relative_to(root).as_posix() if folder != root else folder.name
        error = "" if obj.is_file() else f"missing: no {_SHAPENET_FILE.as_posix()} in the model folder"
        sources.append(Source(mesh_id, obj.resolve(), name, error=error))
    return Collection("shapenet", root, *SHAPENET_AXES, sources)


def _folder(root: Path) -> Collection:
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in MESH_FORMATS and p.is_file() and not _is_hidden(p, root)
    )
    ids = _unique_ids([(p.stem, p.suffix) for p in files])
    sources = [Source(i, p.resolve(), p.relative_to(root).as_posix()) for i, p in zip(ids, files)]
    return Collection("folder", root, "+y", "+z", sources)


def _csv(path: Path, category: str) -> Collection:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    except (OSError, UnicodeError, csv.Error) as e:
        raise DiscoveryError(f"{path}: cannot read the CSV ({e})") from None
    columns = list(_CSV_COLUMNS)
    if rows and rows[0][0].strip().lower() == "path":
        columns = [c.strip().lower() for c in rows[0]]
        unknown = [c for c in columns if c not in _CSV_COLUMNS]
        if unknown:
            raise DiscoveryError(f"{path}: unknown columns {unknown}; expected {', '.join(_CSV_COLUMNS)}")
        rows = rows[1:]
    entries = []
    for row in rows:
        cells = {c: (row[i].strip() if i < len(row) else "") for i, c in enumerate(columns)}
        entries.append(cells)
    paths = [Path(e["path"]) for e in entries]
    ids = _unique_ids([(p.stem, p.suffix) for p in paths])
    sources = []
    for mesh_id, cells, rel in zip(ids, entries, paths):
        file = (path.parent / rel).resolve()
        error = ""
        up, front, scale = cells.get("up") or None, cells.get("front") or None, None
        if cells.get("category") and cells["category"] != category:
            error = f"other category: listed as {cells['category']!r}, this library is {category!r}"
        elif not cells["path"]:
            error = "malformed row: empty path"
        elif not file.is_file():
            error = f"missing: {rel.as_posix()} does not exist"
        elif file.suffix.lower() not in MESH_FORMATS:
            error = f"unsupported format {file.suffix!r}; supported: {', '.join(MESH_FORMATS)}"
        if not error and (up or front):
            try:
                canonical_rotation(up or "+y", front or "+z")
            except ValueError as e:
                error = f"malformed row: {e}"
        if not error and cells.get("scale"):
            try:
                scale = float(cells["scale"])
                if not scale > 0 or scale == float("inf"):
                    raise ValueError
            except ValueError:
                error = f"malformed row: scale {cells['scale']!r} is not a positive number of metres per unit"
                scale = None
        sources.append(Source(mesh_id, file, rel.as_posix(), up, front, scale, error))
    return Collection("csv", path.parent, "+y", "+z", sources)


def discover(path: Path, category: str) -> Collection:
    """List the collection at ``path`` (a folder, or a ``.csv`` file).

    Raises:
        DiscoveryError: ``path`` does not exist, the CSV is unreadable, or no mesh file is found.
    """
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        collection = _csv(path.resolve(), category)
    elif path.is_dir():
        root = path.resolve()
        collection = _shapenet(root) or _folder(root)
    elif path.exists():
        raise DiscoveryError(f"{path}: not a folder or a .csv listing")
    else:
        raise DiscoveryError(f"{path}: no such folder or file")
    if not collection.sources:
        raise DiscoveryError(f"{path}: no mesh files ({' '.join(MESH_FORMATS)}) found")
    return collection
