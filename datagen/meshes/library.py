"""A mesh library on disk, and :class:`MeshLibrary` to read it.

Layout of ``LIB/``::

    library.json                  category, the intake options, reference size (what every mesh was made with)
    intake.json                   the report: every source file with status, reason, notes (rewritten per run)
    meshes/<mesh_id>.npz          an accepted mesh (arrays + a JSON header, see save_mesh)
    meshes/<mesh_id>.tex<k>.png   its textures (sRGB, row 0 at the top)
    records/<mesh_id>.<stage>.json  one per mesh and stage: the stage's outcome; its presence marks it done

Every file is written to a temporary name in its folder and renamed into place, so a killed run leaves either
the whole file or none (a stage's record is written last, after the stage's own files).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datagen.meshes.types import MeshMaterial, UserMesh

__all__ = [
    "FORMAT_VERSION",
    "MeshLibrary",
    "LibraryError",
    "atomic_write_bytes",
    "atomic_write_json",
    "read_json",
    "save_mesh",
    "load_mesh",
    "mesh_path",
    "record_path",
    "LIBRARY_FILE",
    "INTAKE_FILE",
]

FORMAT_VERSION = 1
LIBRARY_FILE = "library.json"
INTAKE_FILE = "intake.json"
TMP_PREFIX = ".tmp-"


class LibraryError(ValueError):
    """A folder is not a mesh library, or not the one asked for; the message names the folder and the problem."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def mesh_path(lib_dir: Path, mesh_id: str) -> Path:
    return Path(lib_dir) / "meshes" / f"{mesh_id}.npz"


def record_path(lib_dir: Path, mesh_id: str, stage: str) -> Path:
    return Path(lib_dir) / "records" / f"{mesh_id}.{stage}.json"


def _png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def save_mesh(lib_dir: Path, mesh: UserMesh) -> list[Path]:
    """Write ``meshes/<id>.npz`` (last) and its texture PNGs (first), atomically; returns the files.

    The npz holds ``vertices`` float64 [V, 3], ``faces`` int32 [F, 3], ``face_material`` int32 [F], ``transform``
    float64 [4, 4], optionally ``corner_uv`` float32 [F, 3, 2] and ``face_part`` int32 [F], and ``header``: a
    uint8 array of UTF-8 JSON (mesh id, source, materials with their texture files, part names, two-sided,
    notes, format version). Identical textures are stored once.
    """
    folder = Path(lib_dir) / "meshes"
    files: list[Path] = []
    textures: dict[bytes, str] = {}
    mats = []
    for m in mesh.materials:
        entry: dict[str, Any] = {"name": m.name, "base_color": [float(c) for c in m.base_color], "texture": None}
        if m.texture is not None:
            key = m.texture.tobytes() + bytes(str(m.texture.shape), "ascii")
            if key not in textures:
                name = f"{mesh.mesh_id}.tex{len(textures)}.png"
                atomic_write_bytes(folder / name, _png_bytes(m.texture))
                files.append(folder / name)
                textures[key] = name
            entry["texture"] = textures[key]
        mats.append(entry)
    header = {
        "format_version": FORMAT_VERSION,
        "mesh_id": mesh.mesh_id,
        "source_path": mesh.source_path,
        "materials": mats,
        "part_names": list(mesh.part_names),
        "two_sided": bool(mesh.two_sided),
        "notes": list(mesh.notes),
    }
    arrays = {
        "vertices": mesh.vertices.astype(np.float64),
        "faces": mesh.faces.astype(np.int32),
        "face_material": mesh.face_material.astype(np.int32),
        "transform": mesh.transform.astype(np.float64),
        "header": np.frombuffer(json.dumps(header).encode(), np.uint8),
    }
    if mesh.corner_uv is not None:
        arrays["corner_uv"] = mesh.corner_uv.astype(np.float32)
    if mesh.face_part is not None:
        arrays["face_part"] = mesh.face_part.astype(np.int32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(mesh_path(lib_dir, mesh.mesh_id), buf.getvalue())
    files.append(mesh_path(lib_dir, mesh.mesh_id))
    return files


def load_mesh(lib_dir: Path, mesh_id: str) -> UserMesh:
    """Read ``meshes/<mesh_id>.npz`` and its textures back into a :class:`UserMesh`.

    Raises:
        LibraryError: no such mesh in the library, or its file is from another format version.
    """
    path = mesh_path(lib_dir, mesh_id)
    if not path.is_file():
        raise LibraryError(f"{lib_dir}: no mesh {mesh_id!r} (no {path.relative_to(lib_dir)})")
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["header"]).decode())
        if header.get("format_version") != FORMAT_VERSION:
            raise LibraryError(f"{path}: format version {header.get('format_version')}, expected {FORMAT_VERSION}")
        arrays = {k: z[k] for k in z.files if k != "header"}
    folder = path.parent
    cache: dict[str, np.ndarray] = {}
    materials = []
    for m in header["materials"]:
        tex = None
        if m["texture"] is not None:
            if m["texture"] not in cache:
                with Image.open(folder / m["texture"]) as im:
                    cache[m["texture"]] = np.asarray(im.convert("RGB"), np.uint8).copy()
            tex = cache[m["texture"]]
        materials.append(MeshMaterial(m["name"], np.asarray(m["base_color"]), tex))
    return UserMesh(
        mesh_id=header["mesh_id"],
        source_path=header["source_path"],
        vertices=arrays["vertices"],
        faces=arrays["faces"],
        face_material=arrays["face_material"],
        materials=materials,
        corner_uv=arrays.get("corner_uv"),
        face_part=arrays.get("face_part"),
        part_names=header["part_names"],
        two_sided=header["two_sided"],
        transform=arrays["transform"],
        notes=header["notes"],
    )


class MeshLibrary:
    """A mesh library made by ``datagen meshes ingest`` (read-only view).

    Attributes:
        path: the library folder.
        info: ``library.json`` (category, intake options, reference size).
    """

    def __init__(self, path: str | os.PathLike, stages: list[str] | None = None):
        """Open ``path``. ``stages`` names the stages a mesh must have passed to be listed in :attr:`ids`
        (default: every stage of :data:`datagen.meshes.stages.STAGES`)."""
        self.path = Path(path)
        info_file = self.path / LIBRARY_FILE
        if not info_file.is_file():
            raise LibraryError(
                f"{self.path}: not a mesh library (no {LIBRARY_FILE}); make one with datagen meshes ingest"
            )
        self.info: dict[str, Any] = read_json(info_file)
        if stages is None:
            from datagen.meshes.stages import STAGES

            stages = [s.name for s in STAGES]
        self.stages = list(stages)

    @property
    def category(self) -> str:
        return str(self.info["category"])

    @property
    def reference_size_m(self) -> float | None:
        return self.info.get("reference_size_m")

    @property
    def records(self) -> dict[str, dict[str, dict]]:
        """mesh id -> stage name -> that stage's record, for every record on disk."""
        out: dict[str, dict[str, dict]] = {}
        folder = self.path / "records"
        if not folder.is_dir():
            return out
        for f in sorted(folder.glob("*.json")):
            if f.name.startswith(TMP_PREFIX):
                continue
            mesh_id, _, stage = f.stem.rpartition(".")
            out.setdefault(mesh_id, {})[stage] = read_json(f)
        return out

    @property
    def ids(self) -> list[str]:
        """Sorted ids of the meshes that passed every stage (none rejected, none missing)."""
        good = []
        for mesh_id, recs in self.records.items():
            if all(s in recs and recs[s].get("status") in ("accepted", "repaired") for s in self.stages):
                good.append(mesh_id)
        return sorted(good)

    def record(self, mesh_id: str, stage: str = "intake") -> dict:
        path = record_path(self.path, mesh_id, stage)
        if not path.is_file():
            raise LibraryError(f"{self.path}: no {stage} record of mesh {mesh_id!r}")
        return read_json(path)

    def load(self, mesh_id: str) -> UserMesh:
        """The mesh ``mesh_id`` (canonical frame, metres)."""
        return load_mesh(self.path, mesh_id)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"MeshLibrary({str(self.path)!r}, category={self.category!r}, {len(self)} meshes)"
