"""The backend-free render interface.

A backend draws a prepared instance (:class:`~datagen.render.mesh.RenderMesh` + appearance) from a
:class:`~datagen.camera.View` and returns two passes:

* the lit pass: premultiplied RGB (object over transparent black) and coverage alpha, composited over a
  background by the caller;
* the exact pass: the index of the triangle that each pixel *centre* sees (-1 for background). Depth and
  barycentrics are not read from the backend; :mod:`datagen.gt` computes them in float64 from the pixel-centre
  ray and the triangle, so the two backends agree wherever their face ids agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from datagen.camera import View
from datagen.render.appearance import Appearance, Lighting
from datagen.render.mesh import RenderMesh

__all__ = ["Renderer", "clip_planes"]


def clip_planes(mesh: RenderMesh, view: View) -> tuple[float, float]:
    """(near, far) in metres enclosing the mesh's bounding sphere seen from ``view``, with margin."""
    center, radius = mesh.bounding_sphere
    z = float((view.T_cam_from_world[:3, :3] @ center + view.T_cam_from_world[:3, 3])[2])
    near = max(0.5 * (z - radius), 1e-3)
    far = 2.0 * (z + radius) + 1e-3
    return near, far


class Renderer(ABC):
    """A render backend. One per process; not thread-safe."""

    name: str = ""

    @property
    def settings(self) -> dict[str, Any]:
        """What determines its output (recorded in each sample's meta)."""
        return {"backend": self.name}

    @abstractmethod
    def prepare(self, mesh: RenderMesh, appearance: Appearance) -> Any:
        """Upload an instance; the handle is valid until :meth:`release`."""

    @abstractmethod
    def release(self, handle: Any) -> None:
        """Free what :meth:`prepare` allocated."""

    @abstractmethod
    def render_face_ids(self, handle: Any, view: View) -> np.ndarray:
        """int32 [H, W]: the triangle seen at each pixel centre, -1 on background."""

    @abstractmethod
    def render_lit(self, handle: Any, view: View, lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
        """(rgb uint8 [H, W, 3] premultiplied by coverage, alpha uint8 [H, W])."""
