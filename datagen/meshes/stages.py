"""The per-mesh stages of ``datagen meshes ingest``, run in order in a worker for each mesh.

A :class:`Stage` is a name and a function ``(lib_dir, mesh_id, category, options) -> record``. The function
writes the stage's own files under ``lib_dir`` (atomically, e.g. with
:func:`datagen.meshes.library.atomic_write_bytes`) and returns a JSON-serialisable record with at least

- ``status``: ``accepted``, ``repaired`` or ``rejected``;
- ``reason``: why, when rejected (one line, starting with the kind: ``"quality: ..."``);
- ``notes``: list of one-sentence strings (optional).

The driver (:mod:`datagen.meshes.ingest`) writes the record to ``records/<mesh_id>.<stage>.json`` after the
function returns; that file marks the stage done, so a re-run skips it. A rejected mesh runs no later stage and
is left out of :attr:`datagen.meshes.library.MeshLibrary.ids`. An exception in a stage is reported but not
recorded, so the next run retries it.

``options`` is a dict: the library's options (``library.json``: ``category``, ``max_faces``, ``parts``,
``reference_size_m``, ...) plus ``source``: this mesh's source (``path``, ``up``, ``front``, ``scale``).

To add a stage (e.g. template registration): define its function in its own module, at module level (workers
are spawned processes and import it by name), and append ``Stage("register", register_mesh)`` to
:data:`STAGES` below. Libraries made before it existed get it on their next ``ingest`` run (only the missing
stage runs). A later stage reads the mesh with ``load_mesh(lib_dir, mesh_id)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.meshes.intake import IntakeOptions, intake_file
from datagen.meshes.library import record_path, save_mesh

__all__ = ["Stage", "StageFn", "STAGES", "intake_stage", "select_stages"]

StageFn = Callable[[Path, str, str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One per-mesh step: ``run(lib_dir, mesh_id, category, options) -> record``."""

    name: str
    run: StageFn

    def record_path(self, lib_dir: Path, mesh_id: str) -> Path:
        """The stage's record file; it exists once the stage is done for the mesh."""
        return record_path(lib_dir, mesh_id, self.name)


def intake_stage(lib_dir: Path, mesh_id: str, category: str, options: dict[str, Any]) -> dict[str, Any]:
    """Read, check, repair and normalise the mesh's source file; save it as ``meshes/<mesh_id>.npz``."""
    src = options["source"]
    opts = IntakeOptions(
        up=src.get("up") or options.get("up") or "+y",
        front=src.get("front") or options.get("front") or "+z",
        target_diagonal_m=options["reference_size_m"],
        scale_m_per_unit=src.get("scale"),
        max_faces=int(options["max_faces"]),
        parts=options.get("parts", "auto"),
        max_texture_side=int(options.get("max_texture_side", 2048)),
    )
    result = intake_file(Path(src["path"]), mesh_id, opts)
    record: dict[str, Any] = {
        "status": result.status,
        "reason": result.reason,
        "notes": [n.text for n in result.notes if n.kind != "repair"],
        "repairs": result.repairs,
        "faces_in": result.faces_in,
        "up": opts.up,
        "front": opts.front,
        "intake_seconds": round(result.seconds, 4),
    }
    if result.mesh is not None:
        mesh = result.mesh
        files = save_mesh(lib_dir, mesh)
        record.update(
            faces=mesh.n_faces,
            vertices=int(len(mesh.vertices)),
            two_sided=mesh.two_sided,
            materials=len(mesh.materials),
            textures=sum(m.texture is not None for m in mesh.materials),
            parts=list(mesh.part_names),
            part_source=result.part_source,
            bbox_diagonal_m=round(mesh.bbox_diagonal_m, 6),
            transform=[[float(x) for x in row] for row in mesh.transform],
            files=[str(f.relative_to(lib_dir)) for f in files],
        )
    return record


def register_stage(lib_dir: Path, mesh_id: str, category: str, options: dict[str, Any]) -> dict[str, Any]:
    """Fit the category's template to the mesh (:func:`datagen.meshes.register.register_stage`)."""
    from datagen.meshes.register import register_stage as run

    return run(lib_dir, mesh_id, category, options)


STAGES: list[Stage] = [Stage("intake", intake_stage), Stage("register", register_stage)]


def select_stages(names: str | None) -> list[Stage]:
    """The first stages of :data:`STAGES` named in ``names`` (comma-separated; None: all).

    Stages run in order, so the selection must be a leading part of :data:`STAGES` (``intake``, or
    ``intake,register``).

    Raises:
        ValueError: an unknown name, or a selection that skips a stage before a chosen one.
    """
    if names is None:
        return list(STAGES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = [s.name for s in STAGES]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise ValueError(
            f"--stages {names!r}: unknown stage {', '.join(unknown) or '(none)'}; stages: {', '.join(known)}"
        )
    if wanted != known[: len(wanted)]:
        raise ValueError(f"--stages {names!r}: stages run in order; choose a leading part of {', '.join(known)}")
    return list(STAGES[: len(wanted)])
