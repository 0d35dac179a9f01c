"""Occluder shapes: what an occluder is, its mesh, and how it is recorded so that a checker can rebuild it.

An occluder is a mesh in a *local* frame normalised to its bounding sphere (the bounding box's circumscribed
sphere centred at the origin with radius 1), placed in a view's world frame (the instance's canonical frame,
docs/design.md §3) by a similarity ``x -> scale * rotation @ x + center``: ``scale`` is its bounding radius in metres.
Kinds (:data:`datagen.config.OCCLUDER_KINDS`):

* ``box``, ``cylinder``, ``sphere``: primitives (trimesh's closed meshes, outward normals) with random proportions;
* ``instance``: another instance of the view's own category (one of its group's instances);
* ``family``: an instance of another built-in family, built from drawn shape parameters.

Every occluder carries the seed of its random appearance. :meth:`OccluderSpec.meta` is plain JSON holding all of
this exactly (floats at full precision), and :func:`occluder_geometry` rebuilds the world-frame triangles from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.render.appearance import Appearance, sample_appearance
from datagen.render.mesh import RenderMesh, prepare_geometry, prepare_mesh, transform_mesh

__all__ = [
    "OccluderSpec",
    "LocalMeshes",
    "PRIMITIVES",
    "draw_shape",
    "draw_rotation",
    "local_mesh",
    "normalised_mesh",
    "shape_key",
    "world_mesh",
    "occluder_appearance",
    "occluder_geometry",
    "plain",
]

PRIMITIVES = ("box", "cylinder", "sphere")
_SPHERE_SUBDIVISIONS = 2  # 320 faces
_CYLINDER_SECTIONS = 24

LocalMeshes = dict[str, RenderMesh]  # cache: shape key -> local mesh


def plain(x: Any) -> Any:
    """A JSON round trip of ``x`` (numpy scalars and arrays become floats, ints and lists): the form in which shape
    parameters are recorded, so a rebuild from the record builds exactly what was rendered."""
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


@dataclass(frozen=True)
class OccluderSpec:
    """One occluder of one view.

    Attributes:
        kind: one of :data:`datagen.config.OCCLUDER_KINDS`.
        shape: primitive proportions (``extents`` [3] of a box, ``radius`` and ``height`` of a cylinder, nothing for
            a sphere), or ``family``, ``params`` and ``instance_id`` of a family instance (plain JSON).
        rotation: float64 [3, 3] world-from-local rotation.
        scale: metres per local unit (the bounding radius in metres).
        center: float64 [3] world position of the local origin (the bounding sphere's centre).
        appearance_seed: seed of its random appearance.
    """

    kind: str
    shape: dict[str, Any]
    rotation: np.ndarray
    scale: float
    center: np.ndarray
    appearance_seed: int

    def meta(self) -> dict[str, Any]:
        """Plain JSON holding the occluder exactly (see :meth:`from_meta`)."""
        return {
            "kind": self.kind,
            "shape": plain(self.shape),
            "rotation": np.asarray(self.rotation, np.float64).tolist(),
            "scale": float(self.scale),
            "center": np.asarray(self.center, np.float64).tolist(),
            "appearance_seed": int(self.appearance_seed),
        }

    @classmethod
    def from_meta(cls, d: Mapping[str, Any]) -> OccluderSpec:
        return cls(
            kind=str(d["kind"]),
            shape=dict(d["shape"]),
            rotation=np.asarray(d["rotation"], np.float64),
            scale=float(d["scale"]),
            center=np.asarray(d["center"], np.float64),
            appearance_seed=int(d["appearance_seed"]),
        )


def shape_key(kind: str, shape: Mapping[str, Any]) -> str:
    """The key of a shape's local mesh in a :data:`LocalMeshes` cache (family instances by family and id)."""
    if kind in ("instance", "family"):
        return f"family:{shape['family']}:{shape['instance_id']}"
    return f"{kind}:{json.dumps(plain(shape), sort_keys=True)}"


def normalised_mesh(mesh: RenderMesh) -> RenderMesh:
    """The mesh moved and scaled so that its bounding sphere is the unit sphere at the origin."""
    center, radius = mesh.bounding_sphere
    return transform_mesh(mesh, np.eye(3), 1.0 / radius, -center / radius)


def _primitive(kind: str, shape: Mapping[str, Any]) -> RenderMesh:
    import trimesh

    if kind == "box":
        tm = trimesh.creation.box(extents=shape["extents"])
    elif kind == "cylinder":
        tm = trimesh.creation.cylinder(radius=shape["radius"], height=shape["height"], sections=_CYLINDER_SECTIONS)
    elif kind == "sphere":
        tm = trimesh.creation.icosphere(subdivisions=_SPHERE_SUBDIVISIONS)
    else:
        raise ValueError(f"unknown primitive {kind!r}; primitives are {', '.join(PRIMITIVES)}")
    return prepare_geometry(np.asarray(tm.vertices, np.float64), np.asarray(tm.faces), kind)


def local_mesh(kind: str, shape: Mapping[str, Any], cache: LocalMeshes | None = None) -> RenderMesh:
    """The occluder's mesh in its local frame (unit bounding sphere at the origin), built or taken from ``cache``.

    Family instances are rebuilt from ``shape`` (``family``, ``params``, ``instance_id``) with their material groups.
    """
    key = shape_key(kind, shape)
    if cache is not None and key in cache:
        return cache[key]
    if kind in PRIMITIVES:
        mesh = _primitive(kind, shape)
    elif kind in ("instance", "family"):
        from datagen.families import get_family

        family = get_family(shape["family"])
        mesh = prepare_mesh(family.build(shape["params"], shape["instance_id"]), family)
    else:
        raise ValueError(f"unknown occluder kind {kind!r}")
    mesh = normalised_mesh(mesh)
    if cache is not None:
        cache[key] = mesh
    return mesh


def world_mesh(spec: OccluderSpec, cache: LocalMeshes | None = None) -> RenderMesh:
    """The occluder's render mesh in the world frame."""
    return transform_mesh(local_mesh(spec.kind, spec.shape, cache), spec.rotation, spec.scale, spec.center)


_MATERIALS = 2  # distinct random materials per occluder, shared out over its material groups


def occluder_appearance(spec: OccluderSpec, mesh: RenderMesh) -> Appearance:
    """Its random appearance, drawn from ``spec.appearance_seed``: up to :data:`_MATERIALS` materials, group ``g``
    of ``mesh`` taking material ``g mod`` that many (procedural textures cost a few ms each to draw)."""
    n = len(mesh.group_names)
    drawn = sample_appearance(np.random.default_rng(spec.appearance_seed), min(n, _MATERIALS)).materials
    return Appearance([drawn[g % len(drawn)] for g in range(n)])


def occluder_geometry(meta: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """World-frame ``vertices`` float64 [V, 3] and ``faces`` int64 [F, 3] of a recorded occluder (its
    :meth:`OccluderSpec.meta`): what a checker ray-casts, independent of the renderer."""
    mesh = world_mesh(OccluderSpec.from_meta(meta))
    return mesh.vertices, mesh.faces.astype(np.int64)


def draw_shape(
    rng: np.random.Generator,
    kind: str,
    category: str,
    group_instances: list[tuple[str, dict[str, Any]]],
    family_choices: list[str],
    build: Callable[[str, dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Draw an occluder's shape.

    Args:
        rng: the view's scene generator.
        kind: the occluder kind.
        category: the view's own category (for ``instance``).
        group_instances: ``(instance_id, params)`` of the group's procedural instances (``instance`` picks one; with
            none, it builds a fresh instance of ``category``'s family).
        family_choices: families an occluder of kind ``family`` is drawn from (another category than the view's).
        build: ``(family, params) -> instance_id`` (the pipeline's id scheme); default: a digest of the params.

    Returns:
        The ``shape`` dict of an :class:`OccluderSpec`.
    """
    if kind == "box":
        e = rng.uniform(0.15, 1.0, 3)
        return {"extents": (e / np.linalg.norm(e) * 2.0).tolist()}
    if kind == "cylinder":
        aspect = rng.uniform(3.0, 10.0)  # height / radius: poles and bars
        return {"radius": 1.0 / aspect, "height": 1.0}
    if kind == "sphere":
        return {}
    if kind == "instance" and group_instances:
        instance_id, params = group_instances[int(rng.integers(len(group_instances)))]
        return {"family": category, "params": plain(params), "instance_id": instance_id}
    if kind in ("instance", "family"):  # an instance kind with no group instance to copy: a fresh one
        from datagen.families import get_family

        name = category if kind == "instance" else str(family_choices[int(rng.integers(len(family_choices)))])
        params = plain(get_family(name).sample_params(rng))
        instance_id = build(name, params) if build is not None else _digest_id(name, params)
        return {"family": name, "params": params, "instance_id": instance_id}
    raise ValueError(f"unknown occluder kind {kind!r}")


def _digest_id(name: str, params: Mapping[str, Any]) -> str:
    import hashlib

    return f"{name}-{hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]}"


def draw_rotation(rng: np.random.Generator, kind: str) -> np.ndarray:
    """float64 [3, 3] world-from-local rotation of an occluder (world y is up, docs/design.md §3).

    Boxes stand on a random yaw with a small tilt; cylinders are upright posts or level bars; spheres spin at random;
    instances stand upright (their own y up) at a random yaw.
    """
    yaw = rng.uniform(-math.pi, math.pi)
    Ry = _rot(1, yaw)
    if kind == "box":
        return Ry @ _rot(0, rng.uniform(-0.25, 0.25))
    if kind == "cylinder":  # trimesh's axis is local z
        upright = rng.random() < 0.5
        return Ry @ (_rot(0, -math.pi / 2) if upright else np.eye(3))
    if kind == "sphere":
        return Ry @ _rot(0, rng.uniform(-math.pi, math.pi))
    return Ry


def _rot(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R
