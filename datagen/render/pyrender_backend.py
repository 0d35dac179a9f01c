"""The GL backend: pyrender's headless platform (EGL, else OSMesa) with our own two GL programs.

* the lit pass (:class:`~datagen.render.lit.LitPass`): Lambert + Blinn-Phong with textures, 4× MSAA;
* the exact face-id pass (:class:`~datagen.render.gl.FaceIdPass`): single-sample, ``gl_PrimitiveID``.

Both render into framebuffers we own and read back only the colour they need. pyrender supplies the context
(:func:`datagen.render.gl.gl_context`); its scene graph and metallic-roughness shader are not used: on llvmpipe
that shader cost ~3× our lit pass per view (docs/bench/datagen.md). The backend keeps the name ``pyrender``
(datasets and configs name it so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.camera import View, camera_center
from datagen.render.appearance import Appearance, Lighting
from datagen.render.base import Renderer, clip_planes
from datagen.render.gl import FaceIdPass, GLMesh, gl_context, projection_matrix
from datagen.render.lit import LitMesh, LitPass
from datagen.render.mesh import RenderMesh

__all__ = ["PyrenderBackend"]


@dataclass
class _Handle:
    lit: LitMesh
    glmesh: GLMesh
    mesh: RenderMesh


class PyrenderBackend(Renderer):
    """Headless GL (EGL, else OSMesa). Create through :func:`datagen.render.get_renderer`."""

    name = "pyrender"

    def __init__(self, msaa_samples: int = 4):
        self._ctx = gl_context()
        from OpenGL import GL

        self.msaa_samples = int(msaa_samples)
        self._lit = LitPass(self.msaa_samples)
        self._faces = FaceIdPass()
        self.gl_renderer = GL.glGetString(GL.GL_RENDERER).decode()
        self.gl_version = GL.glGetString(GL.GL_VERSION).decode()

    @property
    def settings(self) -> dict[str, Any]:
        import os

        return {
            "backend": self.name,
            "gl_platform": os.environ.get("PYOPENGL_PLATFORM"),
            "gl_renderer": self.gl_renderer,
            "lit_msaa_samples": self.msaa_samples,
            "face_id_msaa_samples": 0,
            "shading": "GLSL lambert + blinn-phong",
        }

    def prepare(self, mesh: RenderMesh, appearance: Appearance) -> _Handle:
        self._ctx.make_current()
        return _Handle(self._lit.upload(mesh, appearance), self._faces.upload(mesh.vertices, mesh.faces), mesh)

    def release(self, handle: _Handle) -> None:
        self._ctx.make_current()
        self._lit.release(handle.lit)
        self._faces.release(handle.glmesh)

    def _clip_from_world(self, handles: Sequence[_Handle], view: View) -> tuple[np.ndarray, float, float]:
        near, far = clip_planes([h.mesh for h in handles], view)
        return projection_matrix(view.K, view.height, view.width, near, far) @ view.T_cam_from_world, near, far

    def render_face_ids(self, handle: _Handle, view: View, read_depth: bool = False):
        return self.render_scene_face_ids([handle], view, read_depth)

    def render_scene_face_ids(self, handles: Sequence[_Handle], view: View, read_depth: bool = False):
        """Face ids int32 [H, W] of the scene and, with ``read_depth``, the GL z-depth float64 [H, W] (metres, 0 on
        background; for agreement checks)."""
        self._ctx.make_current()
        clip_from_world, near, far = self._clip_from_world(handles, view)
        meshes = [h.glmesh for h in handles]
        ids, depth = self._faces.draw(meshes, clip_from_world, view.height, view.width, read_depth)
        if not read_depth:
            return ids
        # window depth -> z-depth (metres) for agreement checks
        ndc = 2.0 * depth.astype(np.float64) - 1.0
        z = 2.0 * far * near / (far + near - ndc * (far - near))
        return ids, np.where(ids >= 0, z, 0.0)

    def render_scene_lit(
        self, handles: Sequence[_Handle], view: View, lighting: Lighting
    ) -> tuple[np.ndarray, np.ndarray]:
        self._ctx.make_current()
        clip_from_world, _, _ = self._clip_from_world(handles, view)
        eye = camera_center(view.T_cam_from_world)
        rgba = self._lit.draw([h.lit for h in handles], clip_from_world, eye, lighting, view.height, view.width)
        return rgba[..., :3], rgba[..., 3]
