"""Headless OpenGL: choosing a platform (EGL, else OSMesa), one context per process, exact face-id pass.

``PYOPENGL_PLATFORM`` decides which library PyOpenGL binds at its first import and cannot change afterwards, so
:func:`select_platform` probes EGL with plain ``ctypes`` *before* anything imports OpenGL, and falls back to
OSMesa when EGL has no usable device. Re-creating GL contexts is flaky (pyrender#223), so the process keeps one
context for its whole life (:func:`gl_context`).

The face-id pass draws each mesh's shared vertices with a shader that writes ``offset + gl_PrimitiveID + 1`` into a
single-sample ``R32UI`` target (``offset`` = the faces of the meshes drawn before it, so ids run across a scene):
no multisampling, no blending, no colour quantisation, so the id is exactly the triangle whose coverage test the
pixel centre passed.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import sys

import numpy as np

__all__ = ["GLUnavailable", "select_platform", "gl_context", "projection_matrix", "FaceIdPass", "GLMesh"]


class GLUnavailable(RuntimeError):
    """No usable headless OpenGL platform."""


_HELP = (
    "install Mesa's EGL (apt-get install libegl1 libegl-mesa0) or OSMesa (apt-get install libosmesa6), "
    "or render on the CPU with --backend embree"
)


def _probe_egl() -> str | None:
    """None if an EGL device display initialises, else the reason (no PyOpenGL involved)."""
    try:
        lib = ctypes.CDLL("libEGL.so.1")
    except OSError as e:
        return f"libEGL.so.1 cannot be loaded ({e})"
    get_proc = lib.eglGetProcAddress
    get_proc.restype, get_proc.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    q_addr, d_addr = get_proc(b"eglQueryDevicesEXT"), get_proc(b"eglGetPlatformDisplayEXT")
    if not q_addr or not d_addr:
        return "EGL lacks eglQueryDevicesEXT/eglGetPlatformDisplayEXT"
    query = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int))(q_addr)
    n = ctypes.c_int(0)
    if not query(0, None, ctypes.byref(n)) or n.value == 0:
        return "eglQueryDevicesEXT found no device"
    devices = (ctypes.c_void_p * n.value)()
    query(n.value, devices, ctypes.byref(n))
    index = int(os.environ.get("EGL_DEVICE_ID", "0"))
    if not 0 <= index < n.value:
        return f"EGL_DEVICE_ID={index} but only {n.value} EGL devices exist"
    get_display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)(d_addr)
    display = get_display(0x313F, devices[index], None)  # EGL_PLATFORM_DEVICE_EXT
    if not display:
        return "eglGetPlatformDisplayEXT returned no display"
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    if not lib.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)):
        return "eglInitialize failed"
    return None


def _probe_osmesa() -> str | None:
    name = ctypes.util.find_library("OSMesa")
    try:
        ctypes.CDLL(name or "libOSMesa.so.8")
    except OSError as e:
        return f"libOSMesa cannot be loaded ({e})"
    return None


def select_platform() -> str:
    """Pick and export ``PYOPENGL_PLATFORM`` ("egl" or "osmesa") before OpenGL is imported.

    An explicit ``PYOPENGL_PLATFORM=osmesa`` is honoured as is; otherwise EGL is tried first.

    Raises:
        GLUnavailable: naming why each platform failed and how to get one.
    """
    requested = os.environ.get("PYOPENGL_PLATFORM")
    if "OpenGL" in sys.modules and requested in ("egl", "osmesa"):
        return requested  # already bound; nothing can change it now
    order = ["osmesa"] if requested == "osmesa" else ["egl", "osmesa"]
    reasons = []
    for platform in order:
        reason = _probe_egl() if platform == "egl" else _probe_osmesa()
        if reason is None:
            os.environ["PYOPENGL_PLATFORM"] = platform
            return platform
        reasons.append(f"{platform.upper()} failed ({reason})")
    raise GLUnavailable(f"no usable OpenGL backend: {', '.join(reasons)}; {_HELP}")


_CONTEXT = None


def gl_context():
    """The process's one pyrender platform object (context current on this thread), created on first use."""
    global _CONTEXT
    if _CONTEXT is not None:
        _CONTEXT.make_current()
        return _CONTEXT
    platform = select_platform()
    if not hasattr(np, "infty"):  # pyrender 0.1.45 uses np.infty, removed in numpy 2
        np.infty = np.inf
    try:
        if platform == "egl":
            from pyrender.platforms import egl

            ctx = egl.EGLPlatform(8, 8, device=egl.get_device_by_index(int(os.environ.get("EGL_DEVICE_ID", "0"))))
        else:
            from pyrender.platforms.osmesa import OSMesaPlatform

            ctx = OSMesaPlatform(8, 8)
        ctx.init_context()
        ctx.make_current()
    except Exception as e:  # the probe passed but the context did not come up
        reason = f"{platform.upper()} failed ({type(e).__name__}: {e})"
        if platform == "osmesa" and "OSMesaCreateContextAttribs" in str(e):
            reason += "; this PyOpenGL is too old for OSMesa (needs 3.1.4 or newer; scripts/setup.sh installs 3.1.10)"
        raise GLUnavailable(f"no usable OpenGL backend: {reason}; {_HELP}") from e
    _CONTEXT = ctx
    atexit.register(_close_context)
    return ctx


def _close_context() -> None:
    """Release the context before interpreter teardown (PyOpenGL's late destructors otherwise print noise)."""
    global _CONTEXT
    if _CONTEXT is None:
        return
    try:
        _CONTEXT.make_current()
        _CONTEXT.delete_context()
    except Exception:  # best effort at exit
        pass
    _CONTEXT = None


def projection_matrix(K: np.ndarray, height: int, width: int, near: float, far: float) -> np.ndarray:
    """float64 [4, 4] clip-from-camera matrix acting on *OpenCV* camera coordinates.

    Chosen so that the GL pixel whose centre is window ``(c + 0.5, H - r - 0.5)`` is our pixel ``(x=c, y=r)``
    after the rows are flipped on read-back: a point projecting to ``(x, y)`` through ``K`` lands at window
    ``(x + 0.5, H - y - 0.5)``.
    """
    fx, s, cx = K[0]
    fy, cy = K[1, 1], K[1, 2]
    P = np.zeros((4, 4))
    P[0, 0], P[0, 1], P[0, 2] = 2 * fx / width, 2 * s / width, 2 * (cx + 0.5) / width - 1
    P[1, 1], P[1, 2] = -2 * fy / height, 1 - 2 * (cy + 0.5) / height
    P[2, 2], P[2, 3] = (far + near) / (far - near), -2 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


_VERT = """#version 330 core
layout(location = 0) in vec3 position;
uniform mat4 clip_from_world;
void main() { gl_Position = clip_from_world * vec4(position, 1.0); }
"""
_FRAG = """#version 330 core
uniform uint face_offset;
out uint face_plus_one;
void main() { face_plus_one = uint(gl_PrimitiveID) + face_offset + 1u; }
"""


def opaque_depth_state(GL) -> None:
    """The fixed-function state of every pass: no blending or culling, depth test LESS over [0, 1], depth writes."""
    GL.glDisable(GL.GL_BLEND)
    GL.glDisable(GL.GL_CULL_FACE)
    GL.glEnable(GL.GL_DEPTH_TEST)
    GL.glDepthMask(GL.GL_TRUE)
    GL.glDepthFunc(GL.GL_LESS)
    GL.glDepthRange(0.0, 1.0)


class GLMesh:
    """GPU buffers of one triangle mesh (shared vertices, index buffer)."""

    def __init__(self, vao: int, buffers: tuple[int, int], n_faces: int):
        self.vao, self.buffers, self.n_faces = vao, buffers, n_faces


class FaceIdPass:
    """Per-pixel triangle ids (and optionally GL depth) with multisampling off. Needs :func:`gl_context` current."""

    def __init__(self):
        from OpenGL import GL
        from OpenGL.GL import shaders

        self.GL = GL
        self.program = shaders.compileProgram(
            shaders.compileShader(_VERT, GL.GL_VERTEX_SHADER), shaders.compileShader(_FRAG, GL.GL_FRAGMENT_SHADER)
        )
        self.loc = GL.glGetUniformLocation(self.program, "clip_from_world")
        self.loc_offset = GL.glGetUniformLocation(self.program, "face_offset")
        self.fbo = None
        self.size = (0, 0)

    def _framebuffer(self, height: int, width: int) -> None:
        GL = self.GL
        if self.size == (height, width):
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
            return
        if self.fbo is not None:
            GL.glDeleteFramebuffers(1, [self.fbo])
            GL.glDeleteRenderbuffers(2, list(self.rbos))
        self.rbos = GL.glGenRenderbuffers(2)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.rbos[0])
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_R32UI, width, height)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.rbos[1])
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT32F, width, height)
        self.fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, self.rbos[0])
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self.rbos[1])
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise GLUnavailable(f"face-id framebuffer incomplete (status {status:#x})")
        self.size = (height, width)

    def upload(self, vertices: np.ndarray, faces: np.ndarray) -> GLMesh:
        GL = self.GL
        vao = GL.glGenVertexArrays(1)
        vbo, ebo = GL.glGenBuffers(2)
        GL.glBindVertexArray(vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, np.ascontiguousarray(vertices, np.float32), GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 0, None)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, ebo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, np.ascontiguousarray(faces, np.uint32), GL.GL_STATIC_DRAW)
        GL.glBindVertexArray(0)
        return GLMesh(vao, (vbo, ebo), int(len(faces)))

    def release(self, mesh: GLMesh) -> None:
        self.GL.glDeleteVertexArrays(1, [mesh.vao])
        self.GL.glDeleteBuffers(2, list(mesh.buffers))

    def draw(
        self,
        meshes: GLMesh | list[GLMesh],
        clip_from_world: np.ndarray,
        height: int,
        width: int,
        read_depth: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw one mesh or a scene of meshes (ids numbered across them in order).

        Returns face ids int32 [H, W] (-1 = background) and, if asked, the window depth in [0, 1] float32 [H, W].
        """
        meshes = [meshes] if isinstance(meshes, GLMesh) else list(meshes)
        GL = self.GL
        self._framebuffer(height, width)
        GL.glViewport(0, 0, width, height)
        GL.glDisable(GL.GL_MULTISAMPLE)
        opaque_depth_state(GL)
        GL.glClearBufferuiv(GL.GL_COLOR, 0, np.zeros(4, np.uint32))
        GL.glClearBufferfv(GL.GL_DEPTH, 0, np.ones(1, np.float32))
        GL.glUseProgram(self.program)
        GL.glUniformMatrix4fv(self.loc, 1, GL.GL_TRUE, np.ascontiguousarray(clip_from_world, np.float32))
        offset = 0
        for mesh in meshes:
            GL.glUniform1ui(self.loc_offset, offset)
            GL.glBindVertexArray(mesh.vao)
            GL.glDrawElements(GL.GL_TRIANGLES, 3 * mesh.n_faces, GL.GL_UNSIGNED_INT, None)
            offset += mesh.n_faces
        GL.glBindVertexArray(0)
        GL.glUseProgram(0)
        GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
        buf = GL.glReadPixels(0, 0, width, height, GL.GL_RED_INTEGER, GL.GL_UNSIGNED_INT)
        ids = np.frombuffer(buf, np.uint32).reshape(height, width)[::-1].astype(np.int32) - 1
        depth = None
        if read_depth:
            dbuf = GL.glReadPixels(0, 0, width, height, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT)
            depth = np.frombuffer(dbuf, np.float32).reshape(height, width)[::-1].copy()
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return ids, depth
