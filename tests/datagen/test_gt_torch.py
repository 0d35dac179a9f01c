"""The torch correspondence field (:mod:`datagen.gt_torch`) equals the numpy reference (:mod:`datagen.gt`) on the
same views: surfaces from the same face-id rasters, Φ between two procedural chairs, and statuses and projections
in both directions, with the exact ray cast and with the raster plane tests, with an occluder in front, for a
same-instance pair. On CPU torch in the normal suite; on CUDA under the ``gpu`` marker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datagen.camera import View, intrinsics_from_fov, look_at, pixel_rays_cam
from datagen.canonical import ProceduralSurface, counterparts
from datagen.families import get_family
from datagen.gt import MeshRaycaster, correspondence, view_surface
from datagen.gt_torch import (
    correspondence_torch,
    counterparts_torch,
    to_torch_surface,
    view_surface_torch,
)
from loaders.schema import Status

SIZE = 96
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")],
    ),
]


def _raster(V: np.ndarray, F: np.ndarray, view: View) -> np.ndarray:
    """int32 [H, W] face ids through the pixel centres (embree, as the embree backend does)."""
    H, W = view.height, view.width
    xy = np.stack(np.meshgrid(np.arange(W), np.arange(H)), -1).reshape(-1, 2).astype(np.float64)
    R, t = view.T_cam_from_world[:3, :3], view.T_cam_from_world[:3, 3]
    centre = -R.T @ t
    ids = MeshRaycaster(V, F).first_face(centre, (pixel_rays_cam(xy, view.K) - t) @ R)
    return ids.reshape(H, W).astype(np.int32)


def _view(inst, azimuth_deg: float, elevation_deg: float, zoom: float = 1.0) -> View:
    lo, hi = inst.vertices.min(0), inst.vertices.max(0)
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo) / 2)
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    eye = centre + 2.6 * radius * np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    K = intrinsics_from_fov(45.0, SIZE, SIZE)
    K[0, 0] *= zoom
    K[1, 1] *= zoom
    return View(K, look_at(eye, centre), SIZE, SIZE)


@pytest.fixture(scope="module")
def chairs():
    fam = get_family("chair")
    rng = np.random.default_rng(0)
    a, b = (fam.build(fam.sample_params(rng), name) for name in ("a", "b"))
    views = [_view(a, 35.0, 20.0), _view(b, -40.0, 10.0, zoom=1.7)]  # the zoomed view cuts the chair: OUTSIDE
    return fam, a, b, views


def _box(centre: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    box = trimesh.creation.box(extents=[2 * half] * 3)
    return np.asarray(box.vertices) + centre, np.asarray(box.faces)


def _numpy_and_torch(V, F, view, device, raycast: bool, n_object_faces=None):
    ids = _raster(V, F, view)
    rc = MeshRaycaster(V, F) if raycast else None
    ref = view_surface(V, F, view, ids, rc, n_object_faces=n_object_faces)
    got = view_surface_torch(V, F, view, ids, rc, n_object_faces=n_object_faces, device=device)
    return ref, got


def _check_surface(ref, got):
    np.testing.assert_array_equal(got.face_id.cpu().numpy(), ref.face_id)
    np.testing.assert_array_equal(got.pix.cpu().numpy(), ref.pix)
    np.testing.assert_array_equal(got.face.cpu().numpy(), ref.face)
    np.testing.assert_allclose(got.bary.cpu().numpy(), ref.bary, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.points_world.cpu().numpy(), ref.points_world, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.depth.cpu().numpy(), ref.depth, rtol=1e-6, atol=0)


def _check_field(ref_field, got_field, device):
    status, corr = ref_field
    t_status, t_corr = (x.cpu().numpy() for x in got_field)
    differ = t_status != status
    if device == "cpu":  # the same float64 operations in the same order: bit for bit
        np.testing.assert_array_equal(t_status, status)
        np.testing.assert_array_equal(t_corr, corr)
    # on CUDA (fused multiply-adds) only a tie decided by the last bit may differ: at most 1 pixel in 10,000
    assert differ.sum() <= max(1, status.size // 10_000), np.argwhere(differ)[:10]
    np.testing.assert_array_equal(np.isnan(t_corr), np.isnan(corr))
    finite = ~np.isnan(corr)
    np.testing.assert_allclose(t_corr[finite], corr[finite], rtol=0, atol=1e-3)  # stored at 1/16 px
    return status


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("raycast", [True, False], ids=["raycast", "raster"])
def test_cross_instance_field_matches_numpy(chairs, device, raycast):
    fam, a, b, (view0, view1) = chairs
    sa, sb = ProceduralSurface(fam, a), ProceduralSurface(fam, b)
    ref0, got0 = _numpy_and_torch(a.vertices, a.faces, view0, device, raycast)
    ref1, got1 = _numpy_and_torch(b.vertices, b.faces, view1, device, raycast)
    _check_surface(ref0, got0)
    _check_surface(ref1, got1)
    seen = set()
    for (sr, dr, s_surf, d_surf), (sg, dg) in (
        ((ref0, ref1, sa, sb), (got0, got1)),
        ((ref1, ref0, sb, sa), (got1, got0)),
    ):
        f_ref, p_ref = counterparts(s_surf, d_surf, sr.face, sr.bary, sr.points_world)
        f_got, p_got = counterparts_torch(s_surf, d_surf, sg)
        np.testing.assert_array_equal(f_got.cpu().numpy(), f_ref)
        np.testing.assert_allclose(p_got.cpu().numpy(), p_ref, rtol=0, atol=1e-12)
        status = _check_field(correspondence(sr, dr, f_ref, p_ref), correspondence_torch(sg, dg, f_got, p_got), device)
        seen |= set(np.unique(status).tolist())
    assert seen == {int(s) for s in Status}  # every status occurs: every branch ran


@pytest.mark.parametrize("device", DEVICES)
def test_occluded_scene_and_same_instance_pair_match_numpy(chairs, device):
    """View 1's scene has a box between the camera and the chair (faces past the chair's are the occluder's); the
    pair is of one instance, so Φ is the identity, as in the pipeline's same-instance pairs."""
    fam, a, _, (view0, _) = chairs
    view1 = _view(a, 80.0, 25.0)
    lo, hi = a.vertices.min(0), a.vertices.max(0)
    centre = (lo + hi) / 2
    eye = -view1.T_cam_from_world[:3, :3].T @ view1.T_cam_from_world[:3, 3]
    bv, bf = _box(centre + 0.45 * (eye - centre), 0.12 * float(np.linalg.norm(hi - lo)))
    V = np.concatenate([a.vertices, bv])
    F = np.concatenate([a.faces, bf + len(a.vertices)])
    ref0, got0 = _numpy_and_torch(a.vertices, a.faces, view0, device, raycast=True)
    ref1, got1 = _numpy_and_torch(V, F, view1, device, raycast=True, n_object_faces=a.n_faces)
    _check_surface(ref1, got1)
    assert (ref1.depth > 0).sum() > (ref1.object_mask).sum()  # the occluder is in the picture
    status = _check_field(
        correspondence(ref0, ref1, ref0.face, ref0.points_world),
        correspondence_torch(got0, got1, got0.face, got0.points_world),
        device,
    )
    assert (status == Status.OCCLUDED).sum() > 0 and (status == Status.MATCHED).sum() > 0
    # a surface moved over as it is gives the same field as one recomputed on the device
    moved = to_torch_surface(ref1, device)
    _check_field(
        correspondence(ref0, ref1, ref0.face, ref0.points_world),
        correspondence_torch(got0, moved, got0.face, got0.points_world),
        device,
    )
    np.testing.assert_array_equal(got1.to_numpy().face_id, ref1.face_id)
