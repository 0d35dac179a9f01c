"""Occluders: other objects between the camera and the instance, so that occluded pixels come from real occlusion.

* :mod:`~datagen.occluders.shapes`: what an occluder is (primitive or family instance, similarity placement,
  appearance seed), its meshes, and its exact JSON record;
* :mod:`~datagen.occluders.placement`: where occluders go in a view and how large they are;
* :mod:`~datagen.occluders.scene`: a view's scene (instance faces first, then occluders), and the share of the
  object the occluders actually hide.

Settings: :class:`datagen.config.OccluderConfig`.
"""

from datagen.occluders.placement import GRID, Placement, place_occluders, silhouette_rays
from datagen.occluders.scene import ViewOccluders, build_occluders, hidden_share, scene_geometry
from datagen.occluders.shapes import (
    PRIMITIVES,
    OccluderSpec,
    draw_rotation,
    draw_shape,
    local_mesh,
    occluder_appearance,
    occluder_geometry,
    world_mesh,
)

__all__ = [
    "GRID",
    "PRIMITIVES",
    "OccluderSpec",
    "Placement",
    "ViewOccluders",
    "build_occluders",
    "draw_rotation",
    "draw_shape",
    "hidden_share",
    "local_mesh",
    "occluder_appearance",
    "occluder_geometry",
    "place_occluders",
    "scene_geometry",
    "silhouette_rays",
    "world_mesh",
]
