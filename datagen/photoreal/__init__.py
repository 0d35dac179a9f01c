"""The ``blenderproc`` renderer: photoreal RGB from Cycles over the project's exact ground truth.

Nothing here imports ``bpy`` (GPL-3): :mod:`datagen.photoreal.worker` does, in a process of its own that
:class:`~datagen.photoreal.client.PhotorealWorker` starts once per shard and talks to over a pipe. The scene (meshes,
cameras) is the exact path's; Cycles' own z-depth and object mask are read back per view and compared with the exact
ones (:func:`~datagen.photoreal.scene.agreement`); a view that disagrees is not used.
"""

from __future__ import annotations

import importlib.util

__all__ = ["INSTALL_HINT", "PhotorealUnavailable", "photoreal_available", "require_photoreal"]

INSTALL_HINT = (
    "the blenderproc renderer needs the photoreal extra (Blender as a Python module, bpy 4.2, Python 3.11 only): "
    'pip install -e ".[photoreal]"   (or: pip install "bpy==4.2.0"; a 519 MB wheel, about 1.4 GB installed)'
)


class PhotorealUnavailable(RuntimeError):
    """The ``photoreal`` extra is not installed (or cannot be used on this Python)."""


def photoreal_available() -> bool:
    """Whether ``bpy`` can be found (without importing it: that happens only in the worker process)."""
    return importlib.util.find_spec("bpy") is not None


def require_photoreal() -> None:
    """Raise :class:`PhotorealUnavailable` with :data:`INSTALL_HINT` when ``bpy`` is missing."""
    if not photoreal_available():
        raise PhotorealUnavailable(INSTALL_HINT)
