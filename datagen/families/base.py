"""The contract of a procedural category family and the instances it builds.

A family is a fixed list of *part slots*. Every slot has a template mesh of fixed topology (the same number of
vertices and faces, in the same order, for every instance); shape parameters only move vertices, and optional
parts are slots an instance may leave out. A surface point is therefore ``(slot, local face, barycentric)``
and the cross-instance map Φ of docs/design.md §5 is exact: the point with the same slot, local face and
barycentric coordinates on the other instance, or no counterpart when that instance lacks the slot.

All coordinates are in the category canonical frame (docs/design.md §3): right-handed, metres, y up, the object's
front faces +z, the object's own left side is +x.

Repeated parts whose count varies (back slats, windows) should use slot names that carry the count
(``back_slat_2of5``), so slats only correspond between instances with the same count (a part that is not
semantically the same has no counterpart), unless the family defines a better-founded pairing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["Side", "SlotSpec", "KeypointSpec", "Instance", "Family", "face_map", "surface_points"]

Side = Literal["left", "right", "center"]


@dataclass(frozen=True)
class SlotSpec:
    """One part slot of a family: its name, template topology size and semantic part label."""

    name: str  # unique within the family, e.g. "leg_front_left", "back_slat_2of5"
    n_faces: int  # faces of the slot's template mesh; identical for every instance
    part: str  # semantic part label shared by slots of one kind, e.g. "leg", "seat", "wheel"
    side: Side = "center"
    optional: bool = False  # some instances leave the slot out (optional parts, count-tagged repeats, variants)


@dataclass(frozen=True)
class KeypointSpec:
    """A named semantic keypoint: a fixed surface point on one slot's template."""

    name: str
    slot: str
    local_face: int
    bary: tuple[float, float, float]
    side: Side = "center"


@dataclass
class Instance:
    """One built instance of a family, in the canonical frame.

    Attributes:
        category: family name.
        instance_id: stable id string (family name + parameter hash or index).
        params: the shape parameters that built it (JSON-serialisable).
        vertices: float64 [V, 3], metres, canonical frame.
        faces: int32 [F, 3], counter-clockwise seen from outside (outward normals).
        face_slot: int32 [F], index of the face's slot in ``Family.slots``.
        face_local: int32 [F], index of the face within its slot's template.
        material_groups: optional appearance grouping, slot name -> material group name (slots sharing a
            group get one material, e.g. all legs); a slot not listed is its own group.
        uv: optional float32 [V, 2] texture coordinates for procedural textures.
    """

    category: str
    instance_id: str
    params: dict[str, Any]
    vertices: np.ndarray
    faces: np.ndarray
    face_slot: np.ndarray
    face_local: np.ndarray
    material_groups: dict[str, str] = field(default_factory=dict)
    uv: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])


class Family:
    """Base class of a procedural category family. Subclasses fill the class attributes and ``build``."""

    name: str = ""
    description: str = ""
    slots: Sequence[SlotSpec] = ()
    keypoints: Sequence[KeypointSpec] = ()
    # Geometry-aware groups of symmetric or repeated keypoints (indices into ``keypoints``), as SPair-71k's.
    symmetric_groups: Sequence[Sequence[int]] = ()
    # The family's camera elevation range in degrees, where it differs from CameraConfig's default. ``datagen
    # render`` writes it into the config it records; a RenderConfig built in Python passes it in ``camera``.
    camera_elevation_deg: tuple[float, float] | None = None

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw one instance's shape parameters (JSON-serialisable)."""
        raise NotImplementedError

    def build(self, params: Mapping[str, Any], instance_id: str) -> Instance:
        """Build the instance mesh for ``params``; a pure function of its arguments."""
        raise NotImplementedError

    # ---- derived, shared by every family -------------------------------------------------------------------
    def slot_index(self, name: str) -> int:
        for i, s in enumerate(self.slots):
            if s.name == name:
                return i
        raise KeyError(f"{self.name}: no slot {name!r}")

    @property
    def slot_offsets(self) -> np.ndarray:
        """int64 [n_slots + 1]: start of each slot in the family's canonical face index space."""
        return np.concatenate([[0], np.cumsum([s.n_faces for s in self.slots])]).astype(np.int64)

    @property
    def keypoint_names(self) -> list[str]:
        return [k.name for k in self.keypoints]

    @property
    def flip_permutation(self) -> list[int]:
        """perm[i] = index of the keypoint that keypoint i becomes under a left-right mirror."""
        names = self.keypoint_names
        perm = []
        for k in self.keypoints:
            if k.side == "center":
                perm.append(names.index(k.name))
                continue
            a, b = ("left", "right") if k.side == "left" else ("right", "left")
            twin = k.name.replace(a, b)
            if twin not in names:
                raise ValueError(f"{self.name}: keypoint {k.name!r} has no mirror twin {twin!r}")
            perm.append(names.index(twin))
        return perm

    def mirror_slot(self, name: str) -> str:
        """The slot that ``name`` becomes under the left-right mirror x -> -x (itself for a centre slot).

        Twins are named by swapping the words ``left`` and ``right`` (as keypoints, see ``flip_permutation``).
        """
        side = self.slots[self.slot_index(name)].side
        if side == "center":
            return name
        words = name.split("_")
        twin = "_".join({"left": "right", "right": "left"}.get(w, w) for w in words)
        self.slot_index(twin)  # raises KeyError when the family lacks the twin
        return twin

    def present_slots(self, inst: Instance) -> np.ndarray:
        """bool [n_slots]: which slots ``inst`` has."""
        present = np.zeros(len(self.slots), bool)
        present[np.unique(inst.face_slot)] = True
        return present

    def keypoint_present(self, inst: Instance) -> np.ndarray:
        """bool [K]: which keypoints ``inst`` has (a keypoint on an absent slot has none)."""
        present = self.present_slots(inst)
        return np.array([present[self.slot_index(k.slot)] for k in self.keypoints], bool)

    def keypoint_faces(self, inst: Instance) -> np.ndarray:
        """int64 [K]: the face of ``inst`` carrying each keypoint, -1 where the keypoint's slot is absent."""
        lut = np.full(int(self.slot_offsets[-1]), -1, np.int64)
        lut[self.canonical_face(inst)] = np.arange(inst.n_faces)
        offs = self.slot_offsets
        return np.array([lut[offs[self.slot_index(k.slot)] + k.local_face] for k in self.keypoints], np.int64)

    def keypoint_positions(self, inst: Instance) -> np.ndarray:
        """float64 [K, 3]: keypoints of ``inst`` in its canonical frame, NaN where absent."""
        face = self.keypoint_faces(inst)
        out = np.full((len(self.keypoints), 3), np.nan)
        ok = face >= 0
        if ok.any():
            bary = np.array([k.bary for k in self.keypoints], np.float64)
            out[ok] = surface_points(inst, face[ok], bary[ok])
        return out

    def canonical_face(self, inst: Instance) -> np.ndarray:
        """int64 [F]: each face's id in the family's canonical face index space."""
        return self.slot_offsets[inst.face_slot] + inst.face_local


def face_map(family: Family, a: Instance, b: Instance) -> np.ndarray:
    """The exact map Φ on faces: int64 [F_a], the face of ``b`` with the same slot and local index, -1 if absent."""
    lut = np.full(int(family.slot_offsets[-1]), -1, np.int64)
    lut[family.canonical_face(b)] = np.arange(b.n_faces)
    return lut[family.canonical_face(a)]


def surface_points(inst: Instance, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """float64 [N, 3] points of ``inst`` at faces [N] with barycentrics [N, 3]."""
    tri = inst.vertices[inst.faces[face]]  # [N, 3, 3]
    return np.einsum("nk,nkd->nd", np.asarray(bary, np.float64), tri)
