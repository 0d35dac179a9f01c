"""Numpy shading of exact surface points: the CPU backend's lit pass.

A simple physically-flavoured model (Lambert diffuse + Blinn-Phong specular, metallic tints the highlight,
sRGB in and out) that reads the same materials, textures and lights as the GL pass. Textures are sampled at the
nearest texel, repeated outside [0, 1] (``v`` down, row 0 at ``v = 0``, as the GL pass uploads them). A
``two_sided`` mesh flips the shading normal of faces seen from their back (as the GL pass does with
``gl_FrontFacing``); other meshes flip any normal facing away from the eye.
"""

from __future__ import annotations

import numpy as np

from datagen.camera import camera_center
from datagen.render.appearance import Appearance, Lighting
from datagen.render.mesh import RenderMesh

__all__ = ["shade"]


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def shade(
    mesh: RenderMesh,
    appearance: Appearance,
    lighting: Lighting,
    T_cam_from_world: np.ndarray,
    face: np.ndarray,
    bary: np.ndarray,
    points_world: np.ndarray,
) -> np.ndarray:
    """Colours of surface points.

    Args:
        mesh, appearance, lighting: what to draw.
        T_cam_from_world: [4, 4] the camera (for the view direction).
        face: int [N]; bary: float [N, 3]; points_world: float [N, 3].

    Returns:
        uint8 [N, 3] sRGB.
    """
    n = np.einsum("nk,nkd->nd", bary, mesh.corner_normals[face].astype(np.float64))
    n /= np.maximum(np.linalg.norm(n, axis=1), 1e-12)[:, None]
    to_eye = camera_center(T_cam_from_world)[None] - points_world
    to_eye /= np.maximum(np.linalg.norm(to_eye, axis=1), 1e-12)[:, None]
    if getattr(mesh, "two_sided", False):  # open surface: a face seen from its back is lit as its front
        tri = mesh.vertices[mesh.faces[face]]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        back = np.einsum("nd,nd->n", fn, to_eye) < 0
    else:  # double-sided: flip the normals that face away from the eye
        back = np.einsum("nd,nd->n", n, to_eye) < 0
    n = np.where(back[:, None], -n, n)
    uv = np.einsum("nk,nkd->nd", bary, mesh.corner_uv[face].astype(np.float64))

    group = mesh.face_group[face]
    albedo = np.zeros((len(face), 3))
    metallic = np.zeros(len(face))
    rough = np.zeros(len(face))
    for g, mat in enumerate(appearance.materials):
        sel = group == g
        if not sel.any():
            continue
        if mat.texture is not None:
            t = mat.texture
            tx = np.floor(np.mod(uv[sel, 0], 1.0) * t.shape[1]).astype(np.int64) % t.shape[1]
            ty = np.floor(np.mod(uv[sel, 1], 1.0) * t.shape[0]).astype(np.int64) % t.shape[0]
            albedo[sel] = t[ty, tx] / 255.0
        else:
            albedo[sel] = mat.base_color
        metallic[sel], rough[sel] = mat.metallic, mat.roughness
    albedo = _srgb_to_linear(albedo)

    color = albedo * np.asarray(lighting.ambient)[None]
    spec_color = 0.04 * (1 - metallic[:, None]) + albedo * metallic[:, None]
    shininess = np.clip(2.0 / np.maximum(rough, 0.05) ** 4 - 2.0, 1.0, 2000.0)
    for light in lighting.lights:
        to_light = -np.asarray(light.direction_world, np.float64)
        ndl = np.clip(n @ to_light, 0.0, None)
        h = to_eye + to_light[None]
        h /= np.maximum(np.linalg.norm(h, axis=1), 1e-12)[:, None]
        spec = np.clip(np.einsum("nd,nd->n", n, h), 0.0, None) ** shininess * (shininess + 8) / (8 * np.pi)
        radiance = light.intensity * np.asarray(light.color)[None]
        color += radiance * ndl[:, None] * (albedo * (1 - metallic[:, None]) / np.pi + spec_color * spec[:, None])
    return np.clip(np.rint(np.clip(color, 0, 1) ** (1 / 2.2) * 255.0), 0, 255).astype(np.uint8)
