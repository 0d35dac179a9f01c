"""A view's scene: its instance plus the occluders placed in front of it.

Face numbering (the face-id pass, :mod:`datagen.gt`): the instance's faces are ``[0, F)``, the occluders' follow in
order, ``[F, F + F_occ)``. The occluders of one view are drawn as one render mesh whose material groups (and
appearance) are those of its parts, concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datagen.camera import View, camera_center, pixel_rays_cam
from datagen.gt import MeshRaycaster
from datagen.occluders.placement import Placement
from datagen.occluders.shapes import LocalMeshes, occluder_appearance, world_mesh
from datagen.render.appearance import Appearance
from datagen.render.mesh import RenderMesh, concat_meshes

__all__ = ["ViewOccluders", "build_occluders", "scene_geometry", "hidden_share"]


@dataclass
class ViewOccluders:
    """The occluders of one view, ready to render.

    Attributes:
        placement: what was drawn.
        mesh: all of them in one world-frame render mesh (faces in the order of ``placement.specs``).
        appearance: their materials, indexed by ``mesh.face_group``.
    """

    placement: Placement
    mesh: RenderMesh
    appearance: Appearance

    @property
    def n_faces(self) -> int:
        return self.mesh.n_faces


def build_occluders(placement: Placement, cache: LocalMeshes | None = None) -> ViewOccluders | None:
    """The render mesh and appearance of a placement; None when it holds no occluder."""
    if not placement.specs:
        return None
    meshes = [world_mesh(spec, cache) for spec in placement.specs]
    materials = [m for spec, mesh in zip(placement.specs, meshes) for m in occluder_appearance(spec, mesh).materials]
    return ViewOccluders(placement, concat_meshes(meshes), Appearance(materials))


def scene_geometry(
    vertices: np.ndarray, faces: np.ndarray, occluders: ViewOccluders | None
) -> tuple[np.ndarray, np.ndarray]:
    """The scene's ``vertices`` float64 [V', 3] and ``faces`` int64 [F', 3]: the instance's first, then the
    occluders' (the face-id numbering)."""
    V, F = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    if occluders is None:
        return V, F
    occ = occluders.mesh
    return np.concatenate([V, occ.vertices]), np.concatenate([F, occ.faces.astype(np.int64) + len(V)])


def hidden_share(
    view: View,
    face_id: np.ndarray,
    n_object_faces: int,
    instance: MeshRaycaster,
    object_box: tuple[float, float, float, float] | None = None,
) -> tuple[float, int]:
    """How much of the object the occluders hide in a rendered view.

    The rays through the pixel centres that see an occluder (face id ``>= n_object_faces``) are cast at the
    instance alone: where one hits it, the object would be seen there without the occluders. With ``object_box``
    (``x0, y0, x1, y1`` pixels of the instance's whole projection, :func:`datagen.camera.projected_box`) only the
    pixels inside it are cast: no ray outside it can meet the instance.

    Returns:
        ``share`` = hidden / (hidden + visible object pixels), and the number of hidden pixels.
    """
    H, W = face_id.shape
    candidates = face_id >= n_object_faces
    if object_box is not None:
        x0, y0, x1, y1 = object_box
        yy, xx = np.ogrid[0:H, 0:W]
        candidates &= (xx >= np.floor(x0)) & (xx <= np.ceil(x1)) & (yy >= np.floor(y0)) & (yy <= np.ceil(y1))
    occ = np.flatnonzero(candidates.ravel())
    visible = int(((face_id >= 0) & (face_id < n_object_faces)).sum())
    if occ.size == 0:
        return 0.0, 0
    xy = np.stack([occ % W, occ // W], axis=1).astype(np.float64)
    d = pixel_rays_cam(xy, view.K) @ view.T_cam_from_world[:3, :3]
    C = camera_center(view.T_cam_from_world)
    hidden = int((instance.first_face(C, C + d) >= 0).sum())
    return hidden / max(hidden + visible, 1), hidden
