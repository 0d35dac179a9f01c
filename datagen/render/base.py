"""The backend-free render interface.

A backend draws a scene of prepared meshes (each a :class:`~datagen.render.mesh.RenderMesh` + appearance: the
instance, and any occluders in front of it) from a :class:`~datagen.camera.View` and returns two passes:

* the lit pass: premultiplied RGB (object over transparent black) and coverage alpha, composited over a
  background by the caller;
* the exact pass: the index of the triangle that each pixel *centre* sees (-1 for background), numbered across
  the scene's meshes in order (mesh ``k``'s face ``j`` is ``F_0 + ... + F_{k-1} + j``). Depth and
  barycentrics are not read from the backend; :mod:`datagen.gt` computes them in float64 from the pixel-centre
  ray and the triangle, so the two backends agree wherever their face ids agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from datagen.camera import View
from datagen.render.appearance import Appearance, Lighting
from datagen.render.mesh import RenderMesh

__all__ = ["Renderer", "clip_planes"]


def clip_planes(meshes: RenderMesh | Sequence[RenderMesh], view: View) -> tuple[float, float]:
    """(near, far) in metres enclosing the meshes' bounding spheres seen from ``view``, with margin."""
    near, far = np.inf, 0.0
    for mesh in [meshes] if isinstance(meshes, RenderMesh) else meshes:
        center, radius = mesh.bounding_sphere
        z = float((view.T_cam_from_world[:3, :3] @ center + view.T_cam_from_world[:3, 3])[2])
        near = min(near, max(0.5 * (z - radius), 1e-3))
        far = max(far, 2.0 * (z + radius) + 1e-3)
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
    def render_scene_face_ids(self, handles: Sequence[Any], view: View) -> np.ndarray:
        """int32 [H, W]: the triangle seen at each pixel centre among all ``handles``' meshes (numbered across them
        in order), -1 on background."""

    @abstractmethod
    def render_scene_lit(self, handles: Sequence[Any], view: View, lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
        """All ``handles``' meshes lit together (nearest surface wins): (rgb uint8 [H, W, 3] premultiplied by
        coverage, alpha uint8 [H, W])."""

    def render_face_ids(self, handle: Any, view: View) -> np.ndarray:
        """int32 [H, W]: the triangle of one prepared mesh seen at each pixel centre, -1 on background."""
        return self.render_scene_face_ids([handle], view)

    def render_lit(self, handle: Any, view: View, lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
        """One prepared mesh lit: (rgb uint8 [H, W, 3] premultiplied by coverage, alpha uint8 [H, W])."""
        return self.render_scene_lit([handle], view, lighting)
