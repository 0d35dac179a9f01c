"""Scene requests for the Blender worker and the per-view agreement check (plain numpy: no ``bpy`` here).

Every random choice (the PBR variation of each material group, the sky and sun, the ground plane) is drawn here
from an explicit generator, so it is recorded with the sample and the worker only executes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from datagen.camera import View
from datagen.config import PhotorealConfig
from datagen.render.appearance import Appearance
from datagen.render.mesh import RenderMesh

__all__ = [
    "OBJECT_INDEX",
    "OCCLUDER_INDEX",
    "GROUND_INDEX",
    "srgb_to_linear",
    "material_specs",
    "world_spec",
    "ground_spec",
    "view_request",
    "agreement",
    "agrees",
]

OBJECT_INDEX, OCCLUDER_INDEX, GROUND_INDEX = 1, 2, 3  # Blender object pass indices
_GROUND_CLEARANCE_M = 0.05  # a ground plane only when the camera is at least this far above it


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] to linear light."""
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def material_specs(appearance: Appearance, rng: np.random.Generator) -> list[dict[str, Any]]:
    """One Principled-BSDF recipe per material group: the group's colour or texture (as the raster path shows it)
    varied by object-space noise (albedo, roughness, bump), with a random specular level, coat and sheen."""
    specs = []
    for m in appearance.materials:
        r = float(m.roughness)
        specs.append(
            {
                "base_color_linear": [float(x) for x in srgb_to_linear(m.base_color)],
                "texture": None if m.texture is None else np.asarray(m.texture, np.uint8),
                "metallic": float(m.metallic),
                "roughness": [
                    float(np.clip(r - rng.uniform(0, 0.25), 0.05, 1)),
                    float(np.clip(r + rng.uniform(0, 0.25), 0.05, 1)),
                ],
                "noise_scale": float(rng.uniform(2.0, 30.0)),
                "noise_detail": float(rng.uniform(1.0, 6.0)),
                "albedo_variation": float(rng.uniform(0.0, 0.35)),
                "bump": float(rng.uniform(0.0, 0.3)),
                "specular": float(rng.uniform(0.3, 0.7)),
                "coat": float(rng.uniform(0.2, 1.0)) if rng.random() < 0.2 else 0.0,
                "sheen": float(rng.uniform(0.2, 1.0)) if rng.random() < 0.2 else 0.0,
            }
        )
    return specs


def world_spec(rng: np.random.Generator) -> dict[str, Any]:
    """A procedural Nishita sky and a sun lamp in the same direction (angles in radians)."""
    warm = rng.uniform(0.0, 0.15)
    return {
        "sun_elevation": float(np.radians(rng.uniform(12.0, 70.0))),
        "sun_rotation": float(rng.uniform(0.0, 2 * np.pi)),
        "air": float(rng.uniform(0.5, 2.0)),
        "dust": float(rng.uniform(0.0, 3.0)),
        "sky_strength": float(rng.uniform(0.6, 1.2)),
        "sun_strength": float(rng.uniform(1.5, 4.0)),
        "sun_angle": float(np.radians(rng.uniform(0.5, 8.0))),
        "sun_color": [1.0, float(1.0 - warm / 2), float(1.0 - warm)],
        "exposure": float(rng.uniform(-0.2, 0.5)),
        "backdrop": {
            "color0_linear": [float(x) for x in srgb_to_linear(rng.uniform(0.05, 0.95, 3))],
            "color1_linear": [float(x) for x in srgb_to_linear(rng.uniform(0.05, 0.95, 3))],
            "scale": float(rng.uniform(0.5, 8.0)),
            "detail": float(rng.uniform(0.0, 8.0)),
        },
    }


def ground_spec(rng: np.random.Generator, object_vertices: np.ndarray, view: View) -> dict[str, Any] | None:
    """A checkered floor under the object (at its lowest point, y up), or None when the camera is not clearly above
    it (a floor seen from below would hide the object)."""
    floor = float(np.min(object_vertices[:, 1]))
    cam_y = float(-(view.T_cam_from_world[:3, :3].T @ view.T_cam_from_world[:3, 3])[1])
    if cam_y < floor + _GROUND_CLEARANCE_M:
        return None
    c0 = rng.uniform(0.05, 0.9, 3)
    c1 = np.clip(c0 * rng.uniform(0.5, 1.2, 3), 0, 1)
    return {
        "height": floor - 1e-4,  # just below the feet: no coplanar fight with a flat base
        "half_size": 50.0,
        "checker_scale": float(rng.uniform(1.0, 40.0)),
        "color0_linear": [float(x) for x in srgb_to_linear(c0)],
        "color1_linear": [float(x) for x in srgb_to_linear(c1)],
        "roughness": float(rng.uniform(0.3, 1.0)),
        "pass_index": GROUND_INDEX,
    }


def _mesh_spec(name: str, mesh: RenderMesh, materials: list[dict[str, Any]], pass_index: int) -> dict[str, Any]:
    return {
        "name": name,
        "vertices": mesh.vertices,
        "faces": mesh.faces,
        "face_group": mesh.face_group,
        "corner_normals": mesh.corner_normals,
        "corner_uv": mesh.corner_uv,
        "materials": materials,
        "pass_index": pass_index,
    }


def view_request(
    meshes: Sequence[tuple[str, RenderMesh, list[dict[str, Any]], int]],
    view: View,
    seed: int,
    world: dict[str, Any],
    ground: dict[str, Any] | None,
    settings: PhotorealConfig,
    clip: tuple[float, float],
    background: str,
) -> dict[str, Any]:
    """The worker's request for one view: ``meshes`` as ``(name, mesh, material specs, pass index)``."""
    return {
        "meshes": [_mesh_spec(*m) for m in meshes],
        "K": np.asarray(view.K, np.float64),
        "T_cam_from_world": np.asarray(view.T_cam_from_world, np.float64),
        "height": view.height,
        "width": view.width,
        "seed": int(seed),
        "world": world,
        "ground": ground,
        "background": background,
        "clip": (float(clip[0]), float(clip[1])),
        "settings": {
            "samples": settings.samples,
            "denoise": settings.denoise,
            "device": settings.device,
            "max_bounces": settings.max_bounces,
        },
    }


def agreement(
    exact_depth: np.ndarray, exact_mask: np.ndarray, depth: np.ndarray, index: np.ndarray
) -> dict[str, float | int]:
    """How Cycles' object mask and z-depth compare with the exact ones.

    Args:
        exact_depth: float32 [H, W] the exact path's z-depth (metres) on object pixels.
        exact_mask: bool [H, W] the exact object mask (occluded pixels excluded).
        depth: float32 [H, W] Cycles' z-depth at the pixel centres, 0 where nothing is hit.
        index: int [H, W] Cycles' object pass index (:data:`OBJECT_INDEX` on the object).

    Returns:
        ``mask_iou`` (1 when both masks are empty), ``depth_median_m``, ``depth_p99_m`` and ``depth_max_m`` of
        |difference| on the pixels both call object (0 when none), and the pixel counts ``object_px`` (exact) and
        ``mask_mismatch_px``.
    """
    mask = index == OBJECT_INDEX
    both, either = exact_mask & mask, exact_mask | mask
    iou = float(both.sum() / either.sum()) if either.any() else 1.0
    diff = np.abs(depth[both].astype(np.float64) - exact_depth[both].astype(np.float64))
    return {
        "mask_iou": round(iou, 6),
        "depth_median_m": float(np.median(diff)) if diff.size else 0.0,
        "depth_p99_m": float(np.percentile(diff, 99)) if diff.size else 0.0,
        "depth_max_m": float(diff.max()) if diff.size else 0.0,
        "object_px": int(exact_mask.sum()),
        "mask_mismatch_px": int((either & ~both).sum()),
    }


def agrees(record: dict[str, Any], settings: PhotorealConfig) -> bool:
    """Whether a view's :func:`agreement` is within the config's tolerances."""
    return record["mask_iou"] >= settings.min_mask_iou and record["depth_median_m"] <= settings.max_depth_error_m
