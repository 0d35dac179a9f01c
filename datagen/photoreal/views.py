"""The pipeline's side of the ``blenderproc`` renderer: one view in, its Cycles image and check record out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from datagen.camera import View
from datagen.config import RenderConfig
from datagen.gt import ViewSurface
from datagen.photoreal.client import PhotorealWorker
from datagen.photoreal.scene import (
    OBJECT_INDEX,
    OCCLUDER_INDEX,
    agreement,
    agrees,
    ground_spec,
    material_specs,
    view_request,
    world_spec,
)
from datagen.render.appearance import Appearance
from datagen.render.base import clip_planes
from datagen.render.mesh import RenderMesh

__all__ = ["PhotorealViews", "material_rng"]

_MATERIAL_STREAM, _WORLD_STREAM, _CAMERA_STREAM = 11, 12, 13


def material_rng(seed: int, shard_index: int, group_index: int, instance_index: int) -> np.random.Generator:
    """The generator of an instance's PBR variation: one per instance, so both views of it look alike."""
    return np.random.default_rng(
        np.random.SeedSequence([seed, shard_index, group_index, instance_index, _MATERIAL_STREAM])
    )


class PhotorealViews:
    """Renders views with Cycles in a worker process (one per instance of this class: one per shard)."""

    def __init__(self, config: RenderConfig, threads: int = 0) -> None:
        self.settings = config.photoreal
        self.worker = PhotorealWorker(threads)
        self._materials: dict[Any, list[dict[str, Any]]] = {}
        self.views_checked = 0
        self.views_rejected = 0
        self.device = ""

    def materials(self, key: Any, appearance: Appearance, rng_factory: Any) -> list[dict[str, Any]]:
        """The material specs of instance ``key`` (drawn once, from ``rng_factory()``)."""
        if key not in self._materials:
            self._materials[key] = material_specs(appearance, rng_factory())
        return self._materials[key]

    def render_view(
        self,
        view: View,
        surface: ViewSurface,
        instance: tuple[RenderMesh, list[dict[str, Any]]],
        occluders: tuple[RenderMesh, Appearance] | None,
        view_seed: int,
        photo: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, Any], bool]:
        """(RGB uint8 [H, W, 3], the view's ``photoreal`` meta record, whether it agrees with the exact GT).

        With ``photo`` (uint8 [H, W, 3]) the film is transparent (a ground plane only catches shadows) and the
        render is composited over the photo."""
        rng = np.random.default_rng(np.random.SeedSequence([view_seed, _WORLD_STREAM]))
        mesh, mats = instance
        world = world_spec(rng)
        use_ground = rng.random() < self.settings.ground_fraction
        ground = ground_spec(rng, mesh.vertices, view) if use_ground else None
        scene: list[tuple[str, RenderMesh, list[dict[str, Any]], int]] = [("object", mesh, mats, OBJECT_INDEX)]
        render_meshes: Sequence[RenderMesh] = [mesh]
        if occluders is not None:
            occ_mesh, occ_app = occluders
            scene.append(("occluders", occ_mesh, material_specs(occ_app, rng), OCCLUDER_INDEX))
            render_meshes = [mesh, occ_mesh]
        near, far = clip_planes(render_meshes, view)
        if ground is not None:
            far = max(far, 500.0)
        background = "photo" if photo is not None else "ground" if ground is not None else "sky"
        seed = int(rng.integers(2**31))
        request = view_request(scene, view, seed, world, ground, self.settings, (near, far), background)
        reply = self.worker.render(request)
        self.device = reply["device"]
        record = agreement(surface.object_depth, surface.object_mask, reply["depth"], reply["index"])
        ok = agrees(record, self.settings)
        self.views_checked += 1
        self.views_rejected += int(not ok)
        meta = {
            "background": background,
            "cycles_seed": seed,
            "device": reply["device"],
            "blender": reply["blender"],
            "agreement": record,
            "used": ok,
            "world": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in world.items()},
        }
        rgba = reply["rgba"]
        out = rgba[..., :3].astype(np.float32)
        if photo is not None:
            a = rgba[..., 3:].astype(np.float32) / 255.0  # straight alpha (PNG)
            out = out * a + photo.astype(np.float32) * (1.0 - a)
        out, meta["camera"] = self._camera_effects(out, view_seed)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), meta, ok

    def _camera_effects(self, img: np.ndarray, view_seed: int) -> tuple[np.ndarray, dict[str, float]]:
        """Blur then sensor noise on the float RGB, drawn from the view's own stream (the GT is untouched)."""
        s = self.settings
        if s.camera_noise <= 0 and s.camera_blur_px <= 0:
            return img, {"noise": 0.0, "blur_px": 0.0}
        rng = np.random.default_rng(np.random.SeedSequence([view_seed, _CAMERA_STREAM]))
        blur, noise = float(rng.uniform(0, s.camera_blur_px)), float(rng.uniform(0, s.camera_noise))
        if blur > 0.05:
            import cv2

            img = cv2.GaussianBlur(img, (0, 0), blur)
        if noise > 0:
            img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
        return img, {"noise": round(noise, 4), "blur_px": round(blur, 4)}

    def close(self) -> None:
        self.worker.close()
