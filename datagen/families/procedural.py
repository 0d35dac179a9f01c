"""The machinery shared by the built-in families: slot and keypoint tables, mirror-built twins, assembly.

A family subclass declares ``slot_defs`` (in the family's fixed slot order), ``keypoint_defs`` and
``group_defs`` (by keypoint name), and implements:

- ``sample_params(rng)``: every parameter is drawn on every call (also those of absent parts), so the generator is
  consumed the same way whatever the instance looks like;
- ``template_params()``: one fixed parameter set, used to count each slot's faces and to place keypoints;
- ``slot_present(name, params)``;
- ``build_part(name, params, side)``: the mesh of a left or centre slot in the family's build frame. A right slot
  is never built directly: it is ``build_part(<left twin>, params, side="right").mirrored_x()``, so left and right
  twins share vertex and face order (``parts.PartMesh.mirrored_x``) and ``side`` only selects side-specific
  parameters (an animal's right hind leg pose).

``build`` assembles the present slots, then moves the object so it rests on y = 0 with its bounding box centred
in z; x is never moved, so the symmetry plane of the family stays x = 0.

Keypoints: a ``KeypointDef`` gives a target point in the build frame at ``template_params()``; the keypoint is the
nearest surface point of its slot's template (face, barycentric), found once per family. A left keypoint on a
left slot gets its right twin by the mirror rule (same face, barycentrics (b0, b2, b1)) on the mirror slot; a
left keypoint on a centre slot names its right twin's target explicitly (``twin_target``) or defaults to the
mirror image of its target; both then sit on the template vertices nearest their targets (vertices of a symmetric
centre slot are mirror symmetric, points inside its non-planar quads are not, as quads are split along one
diagonal), so twins are exact mirror images. A centre keypoint is the nearest surface point when that lies on
the symmetry plane x = 0, else the nearest template vertex on that plane.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.families.base import Family, Instance, KeypointSpec, Side, SlotSpec
from datagen.families.parts import PartMesh, concat, nearest_surface_point, nearest_vertex_point

__all__ = ["SlotDef", "KeypointDef", "ProceduralFamily", "uniform", "swap_side"]

Target = Callable[[Mapping[str, Any]], Sequence[float]]


@dataclass(frozen=True)
class SlotDef:
    """A slot in the family's table: name, semantic part label, material group, side, optional or not."""

    name: str
    part: str
    material: str
    side: Side = "center"
    optional: bool = False


@dataclass(frozen=True)
class KeypointDef:
    """A keypoint declared by its target point at the template parameters (build frame, metres).

    Declare centre keypoints and left keypoints only; right twins are derived (see the module docstring).
    ``spair`` notes the SPair-71k keypoint index it corresponds to, when known: ``"1/0"`` for a left keypoint
    (index of the left one / of its right twin), ``"-"`` or ``""`` when SPair has no such keypoint.
    """

    name: str
    slot: str
    target: Target
    side: Side = "center"
    spair: str = ""
    twin_target: Target | None = None


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A JSON-friendly float from U(lo, hi)."""
    return float(rng.uniform(lo, hi))


def swap_side(name: str) -> str:
    """``name`` with the words ``left`` and ``right`` swapped (words separated by ``_``)."""
    return "_".join({"left": "right", "right": "left"}.get(w, w) for w in name.split("_"))


class ProceduralFamily(Family):
    """A family assembled from fixed-topology part templates (``datagen.families.parts``)."""

    slot_defs: Sequence[SlotDef] = ()
    keypoint_defs: Sequence[KeypointDef] = ()
    group_defs: Sequence[Sequence[str]] = ()

    def __init__(self) -> None:
        slots, keypoints, groups, notes = _tables(type(self))
        self.slots = list(slots)
        self.keypoints = list(keypoints)
        self.symmetric_groups = [list(g) for g in groups]
        self.spair_notes = dict(notes)

    # ---- to implement ------------------------------------------------------------------------------------------
    def template_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def slot_present(self, name: str, params: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def build_part(self, name: str, params: Mapping[str, Any], side: Side) -> PartMesh:
        raise NotImplementedError

    def symmetrize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with every right-side parameter set to its left twin's value (identity by default)."""
        return dict(params)

    # ---- derived -----------------------------------------------------------------------------------------------
    @property
    def material_groups(self) -> dict[str, str]:
        return {d.name: d.material for d in self.slot_defs}

    def build_slot(self, name: str, params: Mapping[str, Any]) -> PartMesh:
        """The mesh of slot ``name`` in the build frame (present or not), right slots mirror-built."""
        side = self.slots[self.slot_index(name)].side
        if side == "right":
            return self.build_part(swap_side(name), params, "right").mirrored_x()
        return self.build_part(name, params, side)

    def build(self, params: Mapping[str, Any], instance_id: str) -> Instance:
        parts, slot_ids = [], []
        for i, spec in enumerate(self.slots):
            if not self.slot_present(spec.name, params):
                continue
            mesh = self.build_slot(spec.name, params)
            if mesh.n_faces != spec.n_faces:
                raise RuntimeError(
                    f"{self.name}: slot {spec.name!r} built {mesh.n_faces} faces, template has {spec.n_faces}"
                )
            parts.append(mesh)
            slot_ids.append(i)
        if not parts:
            raise ValueError(f"{self.name}: parameters {dict(params)!r} leave no part present")
        mesh = concat(parts)
        v = mesh.vertices
        lo, hi = v.min(0), v.max(0)
        v = v - np.array([0.0, lo[1], 0.5 * (lo[2] + hi[2])])
        face_slot = np.concatenate([np.full(p.n_faces, s, np.int32) for p, s in zip(parts, slot_ids)])
        face_local = np.concatenate([np.arange(p.n_faces, dtype=np.int32) for p in parts])
        present = {self.slots[s].name for s in slot_ids}
        return Instance(
            category=self.name,
            instance_id=instance_id,
            params=dict(params),
            vertices=np.ascontiguousarray(v, np.float64),
            faces=np.ascontiguousarray(mesh.faces, np.int32),
            face_slot=face_slot,
            face_local=face_local,
            material_groups={k: g for k, g in self.material_groups.items() if k in present},
            uv=np.ascontiguousarray(mesh.uv, np.float32),
        )

    def sample(self, rng: np.random.Generator, instance_id: str) -> Instance:
        """``build(sample_params(rng), instance_id)``."""
        return self.build(self.sample_params(rng), instance_id)

    def mirror_surface_point(self, slot: str, face: int, bary: Sequence[float]) -> tuple[str, int, tuple[float, ...]]:
        """The surface point that (slot, face, bary) becomes under x -> -x, for a left or right slot (mirror-built
        twins share faces; the winding swap permutes the barycentrics)."""
        side = self.slots[self.slot_index(slot)].side
        if side == "center":
            raise ValueError(f"{self.name}: slot {slot!r} is a centre slot; its mirror point is not a fixed face")
        b0, b1, b2 = bary
        return self.mirror_slot(slot), int(face), (b0, b2, b1)

    @property
    def optional_slots(self) -> list[str]:
        return [s.name for s in self.slots if s.optional]


@functools.cache
def _tables(cls: type[ProceduralFamily]) -> tuple[list[SlotSpec], list[KeypointSpec], list[list[int]], dict[str, str]]:
    """Slot specs (face counts from the template), keypoint specs and symmetric groups of a family class."""
    fam = cls.__new__(cls)
    names = [d.name for d in cls.slot_defs]
    if len(set(names)) != len(names):
        raise ValueError(f"{cls.name}: duplicate slot names")
    # provisional specs so build_slot can look sides up
    fam.slots = [SlotSpec(d.name, 0, d.part, d.side, d.optional) for d in cls.slot_defs]
    for d in cls.slot_defs:
        if d.side != "center" and swap_side(d.name) not in names:
            raise ValueError(f"{cls.name}: slot {d.name!r} has no mirror twin {swap_side(d.name)!r}")
    tp = fam.template_params()
    templates = {d.name: fam.build_slot(d.name, tp) for d in cls.slot_defs}
    slots = [SlotSpec(d.name, templates[d.name].n_faces, d.part, d.side, d.optional) for d in cls.slot_defs]
    fam.slots = slots
    kps: list[KeypointSpec] = []
    notes: dict[str, str] = {}
    for k in cls.keypoint_defs:
        slot_side = fam.slots[fam.slot_index(k.slot)].side
        target = np.asarray(k.target(tp), np.float64)
        # a sided keypoint on a centre slot sits on a template vertex, so its twin is its exact mirror image
        # (quads are split along one diagonal, so points inside non-planar quads are not mirror symmetric)
        locate = nearest_vertex_point if (k.side != "center" and slot_side == "center") else nearest_surface_point
        face, bary = locate(templates[k.slot], target)
        if k.side == "center" and slot_side == "center":
            tri = templates[k.slot].vertices[templates[k.slot].faces[face]]
            if abs(float(np.asarray(bary) @ tri[:, 0])) > 1e-9:  # off the symmetry plane: take a vertex on it
                face, bary = nearest_vertex_point(templates[k.slot], target, on_plane_x0=True)
        kps.append(KeypointSpec(k.name, k.slot, face, bary, k.side))
        left_note, _, right_note = k.spair.partition("/")
        notes[k.name] = left_note
        if k.side == "center":
            continue
        if k.side != "left":
            raise ValueError(f"{cls.name}: declare left keypoints only ({k.name!r} is {k.side})")
        twin = swap_side(k.name)
        if slot_side == "left":
            t_slot, t_face, t_bary = fam.mirror_surface_point(k.slot, face, bary)
        else:
            tt = k.twin_target(tp) if k.twin_target is not None else target * np.array([-1.0, 1.0, 1.0])
            t_slot = k.slot
            t_face, t_bary = nearest_vertex_point(templates[k.slot], np.asarray(tt, np.float64))
        kps.append(KeypointSpec(twin, t_slot, t_face, tuple(t_bary), "right"))
        notes[twin] = right_note
    kp_names = [k.name for k in kps]
    if len(set(kp_names)) != len(kp_names):
        raise ValueError(f"{cls.name}: duplicate keypoint names")
    groups = [[kp_names.index(n) for n in g] for g in cls.group_defs]
    return slots, kps, groups, notes
