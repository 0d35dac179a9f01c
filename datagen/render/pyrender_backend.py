"""The pyrender backend: lit PBR pass through pyrender, exact face-id pass through our own GL program.

Both passes render into framebuffers we own, so the same code runs on EGL and OSMesa, the lit pass can keep
4× MSAA while the face-id pass has none, and only the colour we need is read back (pyrender would also read and
linearise depth). This relies on two methods of ``pyrender.Renderer`` 0.1.45 (pinned in pyproject):
``_configure_forward_pass_viewport`` and ``_read_main_framebuffer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.camera import View
from datagen.render.appearance import Appearance, Lighting
from datagen.render.base import Renderer, clip_planes
from datagen.render.gl import FaceIdPass, GLMesh, gl_context, projection_matrix
from datagen.render.mesh import RenderMesh

__all__ = ["PyrenderBackend"]

# OpenCV camera axes -> OpenGL camera axes (y up, looking down -z)
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@dataclass
class _Handle:
    scene: Any
    camera_node: Any
    light_nodes: list
    glmesh: GLMesh
    mesh: RenderMesh


class PyrenderBackend(Renderer):
    """pyrender on a headless GL context (EGL, else OSMesa). Create through :func:`datagen.render.get_renderer`."""

    name = "pyrender"

    def __init__(self, msaa_samples: int = 4):
        self._ctx = gl_context()
        import pyrender
        from OpenGL import GL

        self._pyrender = pyrender
        self.msaa_samples = int(msaa_samples)
        self._lit = _make_lit_renderer(pyrender, self.msaa_samples)
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
            "shading": "pyrender metallic-roughness PBR",
        }

    def prepare(self, mesh: RenderMesh, appearance: Appearance) -> _Handle:
        pr = self._pyrender
        self._ctx.make_current()
        corners = mesh.vertices[mesh.faces].astype(np.float32)  # [F, 3, 3]
        prims = []
        for g, mat in enumerate(appearance.materials):
            sel = mesh.face_group == g
            if not sel.any():
                continue
            kwargs: dict[str, Any] = {
                "metallicFactor": float(mat.metallic),
                "roughnessFactor": float(mat.roughness),
                "doubleSided": True,
            }
            if mat.texture is not None:
                kwargs["baseColorTexture"] = pr.Texture(source=mat.texture, source_channels="RGB")
                kwargs["baseColorFactor"] = [1.0, 1.0, 1.0, 1.0]
            else:
                kwargs["baseColorFactor"] = [*map(float, _srgb_to_linear(mat.base_color)), 1.0]
            prims.append(
                pr.Primitive(
                    positions=corners[sel].reshape(-1, 3),
                    normals=mesh.corner_normals[sel].reshape(-1, 3),
                    texcoord_0=mesh.corner_uv[sel].reshape(-1, 2),
                    material=pr.MetallicRoughnessMaterial(**kwargs),
                    mode=pr.constants.GLTF.TRIANGLES,
                )
            )
        scene = pr.Scene(bg_color=[0.0, 0.0, 0.0, 0.0])
        scene.add(pr.Mesh(prims))
        camera_node = scene.add(_MatrixCamera(pr))
        glmesh = self._faces.upload(mesh.vertices, mesh.faces)
        return _Handle(scene, camera_node, [], glmesh, mesh)

    def release(self, handle: _Handle) -> None:
        self._ctx.make_current()
        self._faces.release(handle.glmesh)
        handle.scene = None  # pyrender frees the primitives' GL objects when the next scene no longer holds them

    def render_face_ids(self, handle: _Handle, view: View, read_depth: bool = False):
        self._ctx.make_current()
        near, far = clip_planes(handle.mesh, view)
        clip_from_world = projection_matrix(view.K, view.height, view.width, near, far) @ view.T_cam_from_world
        ids, depth = self._faces.draw(handle.glmesh, clip_from_world, view.height, view.width, read_depth)
        if not read_depth:
            return ids
        # window depth -> z-depth (metres) for agreement checks
        ndc = 2.0 * depth.astype(np.float64) - 1.0
        z = 2.0 * far * near / (far + near - ndc * (far - near))
        return ids, np.where(ids >= 0, z, 0.0)

    def render_lit(self, handle: _Handle, view: View, lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
        pr = self._pyrender
        self._ctx.make_current()
        scene = handle.scene
        near, far = clip_planes(handle.mesh, view)
        cam = handle.camera_node.camera
        cam.P_gl = projection_matrix(view.K, view.height, view.width, near, far) @ _CV_TO_GL
        cam.znear, cam.zfar = near, far
        scene.set_pose(handle.camera_node, np.linalg.inv(view.T_cam_from_world) @ _CV_TO_GL)
        for node in handle.light_nodes:
            scene.remove_node(node)
        handle.light_nodes = []
        for light in lighting.lights:
            pose = np.eye(4)
            z = -np.asarray(light.direction_world, np.float64)  # a directional light shines along its -z axis
            x = np.cross([0.0, 1.0, 0.0], z)
            if np.linalg.norm(x) < 1e-6:
                x = np.array([1.0, 0.0, 0.0])
            x /= np.linalg.norm(x)
            pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
            node = scene.add(pr.DirectionalLight(color=light.color, intensity=light.intensity), pose=pose)
            handle.light_nodes.append(node)
        scene.ambient_light = np.asarray(lighting.ambient, np.float64)
        self._lit.viewport_width, self._lit.viewport_height = view.width, view.height
        rgba = self._lit.render(scene, pr.RenderFlags.RGBA | pr.RenderFlags.OFFSCREEN)
        return rgba[..., :3], rgba[..., 3]


def _MatrixCamera(pr):
    """A pyrender camera whose projection is a given matrix (set ``P_gl`` before rendering)."""

    class MatrixCamera(pr.IntrinsicsCamera):
        P_gl = np.eye(4)

        def get_projection_matrix(self, width=None, height=None):
            return self.P_gl

    return MatrixCamera(1.0, 1.0, 0.0, 0.0, znear=0.01, zfar=100.0)


def _make_lit_renderer(pr, samples: int):
    """A ``pyrender.Renderer`` that draws into our own (optionally multisampled) framebuffer, reads RGBA only."""
    from OpenGL import GL

    class LitRenderer(pr.Renderer):
        def __init__(self):
            super().__init__(8, 8)
            self._targets = None  # (dims, ms_fbo, resolve_fbo, renderbuffers)

        def _ensure_targets(self):
            dims = (self.viewport_width, self.viewport_height)
            if self._targets is not None and self._targets[0] == dims:
                return
            if self._targets is not None:
                _, ms, rs, rbs = self._targets
                GL.glDeleteFramebuffers(len({ms, rs}), list({ms, rs}))
                GL.glDeleteRenderbuffers(len(rbs), list(rbs))
            w, h = dims
            rbs = list(GL.glGenRenderbuffers(4 if samples else 2))

            def target(color_rb, depth_rb, n):
                GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, color_rb)
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, n, GL.GL_RGBA8, w, h)
                GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, depth_rb)
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, n, GL.GL_DEPTH_COMPONENT24, w, h)
                fbo = GL.glGenFramebuffers(1)
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
                GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, color_rb)
                GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, depth_rb)
                return fbo

            rs = target(rbs[0], rbs[1], 0)
            ms = target(rbs[2], rbs[3], samples) if samples else rs
            self._targets = (dims, ms, rs, rbs)

        def _configure_forward_pass_viewport(self, flags):
            self._ensure_targets()
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._targets[1])
            GL.glViewport(0, 0, self.viewport_width, self.viewport_height)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glDepthFunc(GL.GL_LESS)
            GL.glDepthRange(0.0, 1.0)

        def _read_main_framebuffer(self, scene, flags):
            (w, h), ms, rs, _ = self._targets
            if ms != rs:
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, ms)
                GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, rs)
                GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, rs)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
            buf = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
            return np.frombuffer(buf, np.uint8).reshape(h, w, 4)[::-1].copy()

        def delete(self):
            if self._targets is not None:
                _, ms, rs, rbs = self._targets
                GL.glDeleteFramebuffers(len({ms, rs}), list({ms, rs}))
                GL.glDeleteRenderbuffers(len(rbs), list(rbs))
                self._targets = None
            super().delete()

    return LitRenderer()
