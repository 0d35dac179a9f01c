"""The parametric fit (datagen/meshes/fit.py) and the whole-piece slot labels of a registered mesh
(datagen/canonical.py: RegisteredSurface._whole_pieces)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from datagen.canonical import RegisteredSurface
from datagen.families import get_family
from datagen.meshes.accuracy import exact_registration
from datagen.meshes.fit import parametric_fit
from datagen.meshes.proximity import SurfaceIndex
from datagen.meshes.sampling import rest_shift, sample_surface
from datagen.meshes.search import axis_scale, build_candidate, chamfer, make_target, with_param

pytestmark = pytest.mark.slow  # ~55 s together: templates built and fitted (kept out of the quick tier)


def _target(v: np.ndarray, faces: np.ndarray):
    pts, _, sample_face = sample_surface(v, faces, 4000, np.random.default_rng(0))
    return make_target((pts, cKDTree(pts), pts.min(0), pts.max(0)), v, faces, np.eye(3), np.zeros(3), 0, sample_face)


def test_a_bent_elbow_and_a_short_foot_are_fitted_back_to_the_mesh():
    """A person's own export as the mesh; the start has its left elbow bent 35 degrees further, its feet 20 %
    shorter. The search's sampled distance hardly tells them apart (1500 template samples are ~3 cm apart on a
    person), the surface distance does: the fit brings the elbow back within 5 degrees, the foot within 5 % and
    the surface distance under a fifth of the start's."""
    fam = get_family("person")
    params = fam.sample_params(np.random.default_rng(3))
    params = {**params, "kind": "stand"}
    params = with_param(params, ("pose", "left", "arm", 2), 10.0)
    inst = fam.build(params, "mesh")
    v = inst.vertices + rest_shift(inst.vertices)
    target = _target(v, inst.faces)
    start = with_param(params, ("pose", "left", "arm", 2), 45.0)
    start = {**start, "foot_len": 0.8 * params["foot_len"]}
    cand = build_candidate(fam, start)
    fitted = parametric_fit(fam, cand, target, SurfaceIndex(v, inst.faces), *axis_scale(cand, v.min(0), v.max(0)))
    assert fitted.distance < 0.2 * fitted.start_distance, (fitted.distance, fitted.start_distance)
    assert abs(fitted.candidate.params["pose"]["left"]["arm"][2] - 10.0) < 5.0
    assert abs(fitted.candidate.params["foot_len"] / params["foot_len"] - 1) < 0.05
    # the sampled chamfer the search uses moved by much less than the surface distance did
    few = target.samples[:2000]
    before = chamfer(few, cKDTree(few), cand.samples * axis_scale(cand, target.lo, target.hi)[0]
                     + axis_scale(cand, target.lo, target.hi)[1])  # fmt: skip
    assert fitted.start_distance < 0.6 * before


def test_the_fit_keeps_what_already_fits_and_the_pool_range():
    """Started at the mesh's own parameters, the fit finds nothing to gain: the parameters stay within 1 % of
    their range and inside the pool's range."""
    fam = get_family("chair")
    params = fam.sample_params(np.random.default_rng(5))
    inst = fam.build(params, "mesh")
    v = inst.vertices + rest_shift(inst.vertices)
    cand = build_candidate(fam, params)
    fitted = parametric_fit(fam, cand, _target(v, inst.faces), SurfaceIndex(v, inst.faces),
                            *axis_scale(cand, v.min(0), v.max(0)))  # fmt: skip
    assert fitted.distance <= fitted.start_distance
    for key in ("seat_h", "back_h", "seat_w"):
        assert fitted.candidate.params[key] == pytest.approx(params[key], rel=0.02)


def _bicycle_with_a_rim_half_labelled_tyre():
    fam = get_family("bicycle")
    inst = fam.build(fam.sample_params(np.random.default_rng(0)), "bike")
    v = inst.vertices + rest_shift(inst.vertices)
    reg = exact_registration("bike", fam, inst, v, np.eye(4))
    names = [s.name for s in fam.slots]
    rim, tyre = names.index("rim_front"), names.index("tyre_front")
    surface = RegisteredSurface(fam, v, inst.faces, reg)
    label = inst.face_slot.astype(np.int64).copy()
    rim_faces = np.flatnonzero(label == rim)
    label[rim_faces[::2]] = tyre  # what nearness alone gave: a rim nested in its tyre's inner edge splits
    return fam, inst, v, reg, surface, label, rim, tyre


def test_a_rim_split_with_its_tyre_is_labelled_rim_as_a_whole_piece():
    _, inst, _, _, surface, label, rim, tyre = _bicycle_with_a_rim_half_labelled_tyre()
    out = surface._whole_pieces(label)
    assert np.all(out[inst.face_slot == rim] == rim)
    assert np.all(out[inst.face_slot == tyre] == tyre)
    untouched = (inst.face_slot != rim) & (inst.face_slot != tyre)
    assert np.array_equal(out[untouched], label[untouched])


def test_a_piece_that_merges_rim_and_tyre_keeps_its_faces_votes():
    """Welded into one piece, rim and tyre match no single slot both ways: the faces' own votes stand."""
    fam, inst, v, reg, _, label, rim, tyre = _bicycle_with_a_rim_half_labelled_tyre()
    faces = inst.faces.copy()
    rim_face = np.flatnonzero(inst.face_slot == rim)[0]
    tyre_face = np.flatnonzero(inst.face_slot == tyre)[0]
    faces = np.vstack([faces, [[faces[rim_face][0], faces[tyre_face][0], faces[tyre_face][1]]]])  # a bridge
    surface = RegisteredSurface(fam, v, faces, reg)
    out = surface._whole_pieces(np.append(label, tyre))
    assert np.array_equal(out[:-1][inst.face_slot == rim], label[inst.face_slot == rim])
