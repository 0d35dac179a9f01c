"""The lit pass as our own GL program: Lambert diffuse + normalised Blinn-Phong specular, textured, MSAA.

It draws the same shading model as the CPU backend (:mod:`datagen.render.shading`: albedo / π diffuse, a specular
lobe whose exponent follows the roughness, metallic tints the highlight, linear light, ``1 / 2.2`` gamma out), so
the two backends' images agree in look. On llvmpipe it costs a fraction of pyrender's metallic-roughness shader,
which evaluates a full PBR BRDF per light per sample.

Per instance the corners are uploaded once, sorted by material group, as one interleaved buffer (position, shading
normal, texture coordinates) with one draw call per group. Textures are sRGB (``GL_SRGB8``, decoded to linear by
the sampler), tiled (``GL_REPEAT``) and mip-mapped. The target is a multisampled RGBA8 colour + depth buffer
cleared to transparent black and resolved into a single-sample one before read-back, so the read colour is
premultiplied by coverage and alpha is the coverage.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from datagen.render.appearance import Appearance, Lighting
from datagen.render.gl import GLUnavailable, opaque_depth_state
from datagen.render.mesh import RenderMesh

__all__ = ["LitPass", "LitMesh", "MAX_LIGHTS", "shininess"]

MAX_LIGHTS = 4
# Our projection (datagen.render.gl.projection_matrix) keeps counter-clockwise-from-outside triangles
# counter-clockwise in window space, so GL's gl_FrontFacing (GL_CCW) is true when a face is seen from outside.
FRONT_FACING_IS_OUTSIDE = True

_VERT = """#version 330 core
layout(location = 0) in vec3 position;
layout(location = 1) in vec3 normal;
layout(location = 2) in vec2 uv;
uniform mat4 clip_from_world;
out vec3 v_position;
out vec3 v_normal;
out vec2 v_uv;
void main() {
    v_position = position;
    v_normal = normal;
    v_uv = uv;
    gl_Position = clip_from_world * vec4(position, 1.0);
}
"""

_FRAG = f"""#version 330 core
in vec3 v_position;
in vec3 v_normal;
in vec2 v_uv;
uniform vec3 eye_world;
uniform vec3 to_light[{MAX_LIGHTS}];   // unit, world frame, towards the light
uniform vec3 radiance[{MAX_LIGHTS}];   // colour * intensity; zero for unused slots
uniform vec3 ambient;
uniform vec3 base_color;               // linear
uniform bool textured;
uniform sampler2D albedo_map;          // sRGB texture: sampled as linear
uniform float metallic;
uniform float shininess;
uniform bool two_sided;                // the mesh is open: flip the normal of faces seen from their back
uniform bool front_is_ccw;             // whether gl_FrontFacing means "seen from the outside" (winding)
out vec4 frag_color;
void main() {{
    vec3 albedo = textured ? texture(albedo_map, v_uv).rgb : base_color;
    vec3 n = normalize(v_normal);
    vec3 v = normalize(eye_world - v_position);
    if (two_sided)
        n = gl_FrontFacing == front_is_ccw ? n : -n;  // open surface: a back face is lit as a front face
    else
        n = dot(n, v) < 0.0 ? -n : n;      // double-sided
    vec3 diffuse = albedo * ((1.0 - metallic) / 3.14159265);
    vec3 specular = mix(vec3(0.04), albedo, metallic) * ((shininess + 8.0) / (8.0 * 3.14159265));
    vec3 c = albedo * ambient;
    for (int i = 0; i < {MAX_LIGHTS}; ++i) {{
        float ndl = max(dot(n, to_light[i]), 0.0);
        float ndh = max(dot(n, normalize(v + to_light[i])), 0.0);
        c += radiance[i] * (ndl * (diffuse + specular * pow(ndh, shininess)));
    }}
    frag_color = vec4(pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
}}
"""


def shininess(roughness: float) -> float:
    """Blinn-Phong exponent of a roughness in [0, 1] (the CPU backend's mapping)."""
    return float(np.clip(2.0 / max(roughness, 0.05) ** 4 - 2.0, 1.0, 2000.0))


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@dataclass
class _Group:
    first: int  # first corner
    count: int  # corners
    base_color: np.ndarray  # float32 [3] linear
    texture: int | None
    metallic: float
    shininess: float


@dataclass
class LitMesh:
    """GPU buffers of one instance for the lit pass."""

    vao: int
    vbo: int
    groups: list[_Group]
    two_sided: bool = False


class LitPass:
    """Draws prepared instances lit, with ``samples``× MSAA. Needs the process's GL context current."""

    def __init__(self, samples: int = 4):
        from OpenGL import GL
        from OpenGL.GL import shaders

        self.GL = GL
        self.samples = int(samples)
        self.program = shaders.compileProgram(
            shaders.compileShader(_VERT, GL.GL_VERTEX_SHADER), shaders.compileShader(_FRAG, GL.GL_FRAGMENT_SHADER)
        )
        names = ("clip_from_world", "eye_world", "to_light", "radiance", "ambient", "base_color", "textured")
        names += ("albedo_map", "metallic", "shininess", "two_sided", "front_is_ccw")
        self.loc = {n: GL.glGetUniformLocation(self.program, n) for n in names}
        self.size = (0, 0)
        self.fbos: list[int] = []
        self.rbos: list[int] = []

    # ------------------------------------------------------------------------------------------------------------
    # instances

    def upload(self, mesh: RenderMesh, appearance: Appearance) -> LitMesh:
        """Upload an instance's corners (sorted by material group) and its textures."""
        GL = self.GL
        order = np.argsort(mesh.face_group, kind="stable")
        corners = np.concatenate(
            [
                mesh.vertices[mesh.faces[order]].astype(np.float32),  # [F, 3, 3]
                mesh.corner_normals[order],
                mesh.corner_uv[order],
            ],
            axis=2,
        )  # [F, 3, 8]
        vao = GL.glGenVertexArrays(1)
        vbo = GL.glGenBuffers(1)
        GL.glBindVertexArray(vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, np.ascontiguousarray(corners), GL.GL_STATIC_DRAW)
        stride = 8 * 4
        for loc, (offset, n) in enumerate(((0, 3), (3, 3), (6, 2))):
            GL.glEnableVertexAttribArray(loc)
            GL.glVertexAttribPointer(loc, n, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(4 * offset))
        GL.glBindVertexArray(0)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

        counts = np.bincount(mesh.face_group, minlength=len(appearance.materials))
        starts = np.concatenate([[0], np.cumsum(counts)])
        groups = []
        uploaded: dict[int, int] = {}  # id(texture array) -> GL texture: materials sharing an image share it
        for g, mat in enumerate(appearance.materials):
            if counts[g] == 0:
                continue
            tex = None
            if mat.texture is not None:
                if id(mat.texture) not in uploaded:
                    uploaded[id(mat.texture)] = self._texture(mat.texture)
                tex = uploaded[id(mat.texture)]
            color = _srgb_to_linear(mat.base_color).astype(np.float32)
            groups.append(
                _Group(3 * int(starts[g]), 3 * int(counts[g]), color, tex, mat.metallic, shininess(mat.roughness))
            )
        return LitMesh(vao, vbo, groups, bool(getattr(mesh, "two_sided", False)))

    def _texture(self, image: np.ndarray) -> int:
        """Upload an sRGB texture of any size (uint8 [H, W, 3]; grey [H, W] and RGBA are taken too)."""
        GL = self.GL
        image = np.asarray(image, np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = np.ascontiguousarray(image[..., :3])
        h, w = image.shape[:2]
        tex = GL.glGenTextures(1)
        GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_SRGB8, w, h, 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, image)
        GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_REPEAT)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_REPEAT)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR_MIPMAP_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        return int(tex)

    def release(self, mesh: LitMesh) -> None:
        GL = self.GL
        GL.glDeleteVertexArrays(1, [mesh.vao])
        GL.glDeleteBuffers(1, [mesh.vbo])
        textures = sorted({g.texture for g in mesh.groups if g.texture is not None})
        if textures:
            GL.glDeleteTextures(textures)

    # ------------------------------------------------------------------------------------------------------------
    # drawing

    def _framebuffer(self, height: int, width: int) -> None:
        """(Re)allocate the multisampled target and its single-sample resolve target at this size."""
        GL = self.GL
        if self.size == (height, width):
            return
        if self.fbos:
            GL.glDeleteFramebuffers(len(set(self.fbos)), list(set(self.fbos)))
            GL.glDeleteRenderbuffers(len(self.rbos), self.rbos)
        self.rbos = [int(r) for r in GL.glGenRenderbuffers(3 if self.samples else 2)]
        targets = [(self.samples, self.rbos[:2])] + ([(0, self.rbos[2:])] if self.samples else [])
        fbos = []
        for samples, rbs in targets:
            fbo = int(GL.glGenFramebuffers(1))
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rbs[0])
            GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, GL.GL_RGBA8, width, height)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, rbs[0])
            if len(rbs) > 1:
                GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rbs[1])
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, GL.GL_DEPTH_COMPONENT24, width, height)
                GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, rbs[1])
            status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
            if status != GL.GL_FRAMEBUFFER_COMPLETE:
                raise GLUnavailable(f"lit framebuffer incomplete (status {status:#x})")
            fbos.append(fbo)
        self.fbos = fbos if self.samples else fbos * 2  # (draw target, read target)
        self.size = (height, width)

    def draw(
        self,
        meshes: LitMesh | list[LitMesh],
        clip_from_world: np.ndarray,
        eye_world: np.ndarray,
        lighting: Lighting,
        height: int,
        width: int,
    ) -> np.ndarray:
        """Draw one view.

        Args:
            meshes: an uploaded instance, or several (a scene: the instance and its occluders; depth-tested together).
            clip_from_world: float [4, 4] (:func:`datagen.render.gl.projection_matrix` @ ``T_cam_from_world``).
            eye_world: [3] the camera centre in the world frame.
            lighting: at most :data:`MAX_LIGHTS` directional lights and the ambient term.
            height, width: image size.

        Returns:
            uint8 [H, W, 4]: RGB premultiplied by coverage, alpha = coverage; row 0 is the image's top.
        """
        GL = self.GL
        meshes = [meshes] if isinstance(meshes, LitMesh) else list(meshes)
        if len(lighting.lights) > MAX_LIGHTS:
            raise ValueError(f"the lit pass takes at most {MAX_LIGHTS} lights, got {len(lighting.lights)}")
        self._framebuffer(height, width)
        ms, resolved = self.fbos
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, ms)
        GL.glViewport(0, 0, width, height)
        if self.samples:
            GL.glEnable(GL.GL_MULTISAMPLE)
        opaque_depth_state(GL)
        GL.glClearColor(0.0, 0.0, 0.0, 0.0)
        GL.glClearDepth(1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)

        to_light = np.zeros((MAX_LIGHTS, 3), np.float32)
        radiance = np.zeros((MAX_LIGHTS, 3), np.float32)
        for i, light in enumerate(lighting.lights):
            to_light[i] = -np.asarray(light.direction_world, np.float64)
            radiance[i] = light.intensity * np.asarray(light.color, np.float64)
        loc = self.loc
        GL.glUseProgram(self.program)
        GL.glUniformMatrix4fv(loc["clip_from_world"], 1, GL.GL_TRUE, np.ascontiguousarray(clip_from_world, np.float32))
        GL.glUniform3fv(loc["eye_world"], 1, np.asarray(eye_world, np.float32))
        GL.glUniform3fv(loc["to_light"], MAX_LIGHTS, to_light)
        GL.glUniform3fv(loc["radiance"], MAX_LIGHTS, radiance)
        GL.glUniform3fv(loc["ambient"], 1, np.asarray(lighting.ambient, np.float32))
        GL.glUniform1i(loc["albedo_map"], 0)
        GL.glUniform1i(loc["front_is_ccw"], int(FRONT_FACING_IS_OUTSIDE))
        GL.glActiveTexture(GL.GL_TEXTURE0)
        for mesh in meshes:
            GL.glUniform1i(loc["two_sided"], int(mesh.two_sided))
            GL.glBindVertexArray(mesh.vao)
            for g in mesh.groups:
                GL.glUniform3fv(loc["base_color"], 1, g.base_color)
                GL.glUniform1i(loc["textured"], int(g.texture is not None))
                GL.glUniform1f(loc["metallic"], g.metallic)
                GL.glUniform1f(loc["shininess"], g.shininess)
                GL.glBindTexture(GL.GL_TEXTURE_2D, g.texture or 0)
                GL.glDrawArrays(GL.GL_TRIANGLES, g.first, g.count)
        GL.glBindVertexArray(0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glUseProgram(0)

        if ms != resolved:
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, ms)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, resolved)
            GL.glBlitFramebuffer(0, 0, width, height, 0, 0, width, height, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, resolved)
        GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
        buf = GL.glReadPixels(0, 0, width, height, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return np.frombuffer(buf, np.uint8).reshape(height, width, 4)[::-1]

    def delete(self) -> None:
        if self.fbos:
            self.GL.glDeleteFramebuffers(len(set(self.fbos)), list(set(self.fbos)))
            self.GL.glDeleteRenderbuffers(len(self.rbos), self.rbos)
            self.fbos, self.rbos, self.size = [], [], (0, 0)
