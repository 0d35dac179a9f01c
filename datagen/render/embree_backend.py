"""The CPU backend: embree ray casting (trimesh + embreex) for face ids, numpy shading for the lit pass.

It is the reference for the exact pass (pixel-centre rays, no rasterisation rules) and lets the whole pipeline
run without OpenGL. No anti-aliasing: coverage is 0 or 1. A scene of several meshes (an instance and its occluders)
is cast against one intersector over all of them, built when the scene is first drawn and kept for its next pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.camera import View, camera_center, pixel_rays_cam
from datagen.render.appearance import Appearance, Lighting
from datagen.render.base import Renderer
from datagen.render.mesh import RenderMesh
from datagen.render.shading import shade

__all__ = ["EmbreeBackend"]


@dataclass
class _Handle:
    mesh: RenderMesh
    appearance: Appearance
    intersector: Any
    cache_key: Any = None
    cache: Any = None


class EmbreeBackend(Renderer):
    name = "embree"

    def __init__(self):
        try:
            from trimesh.ray.ray_pyembree import RayMeshIntersector  # noqa: F401
        except ImportError as e:  # pragma: no cover - embreex is a hard dependency
            raise RuntimeError(f"the embree backend needs embreex (pip install embreex): {e}") from e
        self._scene: tuple[tuple[int, ...], _Handle] | None = None  # the last multi-mesh scene, as one handle

    @property
    def settings(self) -> dict[str, Any]:
        return {"backend": self.name, "lit_msaa_samples": 0, "shading": "numpy lambert + blinn-phong"}

    def prepare(self, mesh: RenderMesh, appearance: Appearance) -> _Handle:
        import trimesh
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
        return _Handle(mesh, appearance, RayMeshIntersector(tm))

    def release(self, handle: _Handle) -> None:
        handle.intersector = None
        handle.cache = None
        if self._scene is not None and id(handle) in self._scene[0]:
            self._scene = None

    def _combined(self, handles: Sequence[_Handle]) -> _Handle:
        """One handle over the scene's meshes (faces numbered across them in order; its appearance is unused)."""
        if len(handles) == 1:
            return handles[0]
        key = tuple(id(h) for h in handles)
        if self._scene is None or self._scene[0] != key:
            import trimesh
            from trimesh.ray.ray_pyembree import RayMeshIntersector

            from datagen.render.mesh import concat_meshes

            mesh = concat_meshes([h.mesh for h in handles])
            tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
            self._scene = (key, _Handle(mesh, handles[0].appearance, RayMeshIntersector(tm)))
        return self._scene[1]

    def _cast(self, handle: _Handle, view: View) -> np.ndarray:
        key = (view.T_cam_from_world.tobytes(), view.K.tobytes(), view.height, view.width)
        if handle.cache_key != key:
            H, W = view.height, view.width
            yy, xx = np.mgrid[0:H, 0:W]
            xy = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
            d = pixel_rays_cam(xy, view.K) @ view.T_cam_from_world[:3, :3]  # camera -> world directions
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            o = np.broadcast_to(camera_center(view.T_cam_from_world), d.shape)
            ids = handle.intersector.intersects_first(np.ascontiguousarray(o), d)
            handle.cache_key, handle.cache = key, ids.reshape(H, W).astype(np.int32)
        return handle.cache

    def render_scene_face_ids(self, handles: Sequence[_Handle], view: View) -> np.ndarray:
        return self._cast(self._combined(handles), view).copy()

    def render_scene_lit(
        self, handles: Sequence[_Handle], view: View, lighting: Lighting
    ) -> tuple[np.ndarray, np.ndarray]:
        from datagen.gt import view_surface

        scene = self._combined(handles)
        surf = view_surface(scene.mesh.vertices, scene.mesh.faces, view, self._cast(scene, view))
        rgb = np.zeros((view.height * view.width, 3), np.uint8)
        first = 0
        for h in handles:  # each mesh shaded with its own appearance
            own = (surf.face >= first) & (surf.face < first + h.mesh.n_faces)
            rgb[surf.pix[own]] = shade(h.mesh, h.appearance, lighting, view.T_cam_from_world, surf.face[own] - first,
                                       surf.bary[own], surf.points_world[own])  # fmt: skip
            first += h.mesh.n_faces
        alpha = np.zeros(view.height * view.width, np.uint8)
        alpha[surf.pix] = 255
        return rgb.reshape(view.height, view.width, 3), alpha.reshape(view.height, view.width)
