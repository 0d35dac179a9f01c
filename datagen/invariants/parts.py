"""What each pixel of a rendered pair sees: the instance meshes rebuilt from a sample's meta (with each view's
occluders, for visibility), and a part label per pixel (by an embree ray through the pixel centre), so the checks
can be reported per part."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.invariants.common import cams

__all__ = ["SampleMesh", "instance_mesh", "occluder_mesh", "join_meshes", "scene_mesh", "sample_mesh", "pixel_parts"]


@dataclass
class SampleMesh:
    """One view's instance: vertices float64 [V, 3] (its canonical frame), faces int [F, 3], the part index of
    every face int [F] into ``part_names``."""

    vertices: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray
    part_names: list[str]


def sample_mesh(meta: Mapping[str, Any], view: int) -> SampleMesh | None:
    """Rebuild view ``view``'s instance from a procedural sample's meta (family + shape parameters), or None when
    the sample is not procedural, its family is unknown here, or another generator version made it (the same
    parameters may build another mesh there). Part names are the family's part labels."""
    from datagen import __version__

    if meta.get("source") != "procedural" or "shape_params" not in meta:
        return None
    if meta.get("generator_version", __version__) != __version__:
        return None
    from datagen.families import get_family

    try:
        family = get_family(meta["category"])
    except KeyError:
        return None
    inst = family.build(meta["shape_params"][view], meta["instance_ids"][view])
    names = list(dict.fromkeys(s.part for s in family.slots))
    slot_part = np.array([names.index(s.part) for s in family.slots], np.int64)
    return SampleMesh(np.asarray(inst.vertices, np.float64), np.asarray(inst.faces), slot_part[inst.face_slot], names)


def instance_mesh(meta: Mapping[str, Any], view: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, faces) of :func:`sample_mesh`, or None."""
    m = sample_mesh(meta, view)
    return None if m is None else (m.vertices, m.faces)


def occluder_mesh(meta: Mapping[str, Any], view: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, faces) of the occluders recorded in ``meta["views"][view]["occluders"]``, rebuilt exactly
    (:func:`datagen.occluders.occluder_geometry`; they are primitives or procedural instances, so this works for a
    user's meshes too), or None when the view has none."""
    views = meta.get("views") or []
    records = (views[view].get("occluders") or []) if view < len(views) else []
    if not records:
        return None
    from datagen.occluders import occluder_geometry

    V, F, n = [], [], 0
    for record in records:
        v, f = occluder_geometry(record)
        V.append(v)
        F.append(f + n)
        n += len(v)
    return np.concatenate(V), np.concatenate(F)


def join_meshes(*meshes: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """One (vertices, faces) of the given meshes in order (None entries skipped; None when all are)."""
    parts = [m for m in meshes if m is not None]
    if not parts:
        return None
    offsets = np.cumsum([0] + [len(v) for v, _ in parts])
    return (np.concatenate([np.asarray(v, np.float64) for v, _ in parts]),
            np.concatenate([np.asarray(f, np.int64) + o for (_, f), o in zip(parts, offsets)]))  # fmt: skip


def scene_mesh(meta: Mapping[str, Any], view: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, faces) of everything view ``view`` shows: its instance (:func:`instance_mesh`) followed by its
    occluders (:func:`occluder_mesh`), or None when the instance cannot be rebuilt."""
    mesh = instance_mesh(meta, view)
    return None if mesh is None else join_meshes(mesh, occluder_mesh(meta, view))


def pixel_parts(sample: Mapping[str, Any]) -> tuple[tuple[np.ndarray, np.ndarray], list[str]] | None:
    """Part index per pixel of both views (int [H, W], -1 on background or where the ray misses) and the part
    names, or None when the sample's meshes cannot be rebuilt."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    out = []
    names: list[str] = []
    for v in (0, 1):
        m = sample_mesh(sample["meta"], v)
        if m is None:
            return None
        names = m.part_names
        mask = sample.get(f"mask{v}")
        depth = sample.get(f"depth{v}")
        seen = np.asarray(mask if mask is not None else depth > 0, bool)
        H, W = seen.shape
        ys, xs = np.nonzero(seen)
        K, T = cams(sample, v)
        rays = np.concatenate([np.stack([xs, ys], 1).astype(np.float64), np.ones((len(xs), 1))], 1)
        rays = rays @ np.linalg.inv(K).T @ T[:3, :3]  # world directions
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        centre = -T[:3, :3].T @ T[:3, 3]
        mesh = trimesh.Trimesh(m.vertices, m.faces, process=False, validate=False)
        origins = np.ascontiguousarray(np.broadcast_to(centre, rays.shape))
        tri = np.asarray(RayMeshIntersector(mesh).intersects_first(origins, rays), np.int64)
        lab = np.full((H, W), -1, np.int64)
        lab[ys, xs] = np.where(tri >= 0, m.face_part[np.maximum(tri, 0)], -1)
        out.append(lab)
    return (out[0], out[1]), names
