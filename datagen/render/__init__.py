"""Render backends behind one interface (:class:`~datagen.render.base.Renderer`).

``get_renderer("pyrender")`` (EGL, else OSMesa) or ``get_renderer("embree")`` (CPU ray casting) returns the
process's single instance of that backend: GL contexts are not re-created (pyrender#223).
"""

from __future__ import annotations

from datagen.render.base import Renderer
from datagen.render.gl import GLUnavailable

__all__ = ["BACKENDS", "Renderer", "GLUnavailable", "get_renderer"]

BACKENDS = ("pyrender", "embree")
_INSTANCES: dict[str, Renderer] = {}


def get_renderer(backend: str) -> Renderer:
    """The process-wide renderer of ``backend``.

    Raises:
        ValueError: unknown backend name.
        GLUnavailable: ``pyrender`` without a usable EGL or OSMesa (the message says how to get one).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend not in _INSTANCES:
        if backend == "pyrender":
            from datagen.render.pyrender_backend import PyrenderBackend

            _INSTANCES[backend] = PyrenderBackend()
        else:
            from datagen.render.embree_backend import EmbreeBackend

            _INSTANCES[backend] = EmbreeBackend()
    return _INSTANCES[backend]
