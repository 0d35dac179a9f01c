"""Cameras: OpenCV look-at, intrinsics, projection, framing and view/pair sampling on exact cases."""

import math

import numpy as np
import pytest

from datagen.camera import (
    admissible_pair,
    azimuth_gap_deg,
    camera_center,
    framing_distance,
    inside_image,
    intrinsics_from_fov,
    look_at,
    pixel_rays_cam,
    project,
    sample_views,
    unproject,
)
from datagen.config import CameraConfig


def test_look_at_axes_follow_opencv():
    # camera on +z looking at the origin with y up: world +x is image right, world +y is image up (-y_cam)
    T = look_at([0.0, 0.0, 5.0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(T @ [0, 0, 0, 1], [0, 0, 5, 1], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ [0, 1, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(camera_center(T), [0, 0, 5], atol=1e-12)
    # 90 degrees of (clockwise) roll turns world +x from image right to image down
    Tr = look_at([0.0, 0.0, 5.0], [0.0, 0.0, 0.0], roll_deg=90.0)
    np.testing.assert_allclose(Tr[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_intrinsics_pixel_centre_convention():
    K = intrinsics_from_fov(60.0, width=8, height=6)
    assert K[0, 2] == 3.5 and K[1, 2] == 2.5  # centre of an 8x6 image in the (c, r) pixel-centre convention
    # a ray at half the vertical fov above the axis lands on the top edge of the image, y = -0.5
    T = np.eye(4)
    xy, z = project(np.array([[0.0, -math.tan(math.radians(30.0)), 1.0]]), K, T)
    np.testing.assert_allclose(xy, [[3.5, -0.5]], atol=1e-12)
    assert inside_image(np.array([[-0.5, -0.5], [7.49, 5.49], [7.5, 0.0], [0.0, -0.51]]), 6, 8).tolist() == [
        True,
        True,
        False,
        False,
    ]


def test_project_unproject_roundtrip_and_rays():
    rng = np.random.default_rng(0)
    K = intrinsics_from_fov(45.0, 64, 48)
    T = look_at([1.0, 2.0, 3.0], [0.1, 0.0, -0.2], roll_deg=7.0)
    pts = rng.uniform(-0.5, 0.5, (100, 3))
    xy, z = project(pts, K, T)
    np.testing.assert_allclose(unproject(xy, z, K, T), pts, atol=1e-12)
    r = pixel_rays_cam(xy, K)
    np.testing.assert_allclose(r[:, 2], 1.0)


def test_framing_distance_spans_the_fill_fraction():
    K = intrinsics_from_fov(40.0, 100, 100)
    d = framing_distance(0.5, 40.0, 0.6)
    # the tangent ray to the sphere makes angle asin(r / d); its image lies 0.6 * 50 px from the centre
    alpha = math.asin(0.5 / d)
    assert math.isclose(K[1, 1] * math.tan(alpha), 0.6 * 50.0, rel_tol=1e-12)


def test_sample_views_ranges_and_determinism():
    cfg = CameraConfig()
    a = sample_views(np.random.default_rng(3), cfg, np.zeros(3), 0.5, 64, 64, 6, anchor_azimuth_deg=170.0)
    b = sample_views(np.random.default_rng(3), cfg, np.zeros(3), 0.5, 64, 64, 6, anchor_azimuth_deg=170.0)
    for va, vb in zip(a, b):
        np.testing.assert_array_equal(va.T_cam_from_world, vb.T_cam_from_world)
    for v in a:
        assert azimuth_gap_deg(v.azimuth_deg, 170.0) <= cfg.max_pair_azimuth_gap_deg / 2 + 1e-9
        assert cfg.elevation_deg[0] <= v.elevation_deg <= cfg.elevation_deg[1]
        assert abs(v.roll_deg) <= cfg.roll_deg
        # the object (bounding sphere centre, jittered by <= 10% of the radius) is in front and inside the frame
        xy, z = project(np.zeros((1, 3)), v.K, v.T_cam_from_world)
        assert z[0] > 0 and inside_image(xy, 64, 64)[0]
    assert all(azimuth_gap_deg(x.azimuth_deg, y.azimuth_deg) <= cfg.max_pair_azimuth_gap_deg for x in a for y in a)
    assert admissible_pair(a[0], a[0], cfg)
    assert azimuth_gap_deg(-170.0, 170.0) == pytest.approx(20.0)
