"""Render backends and exact surface points on analytic scenes (a plane and a box at known poses), raster vs
embree agreement, visibility statuses computed by hand, and the no-GL error message."""

import sys

import numpy as np
import pytest
import trimesh

from datagen.camera import View, intrinsics_from_fov, look_at
from datagen.families import Instance
from datagen.gt import MeshRaycaster, correspondence, view_surface, visibility
from datagen.render import get_renderer
from datagen.render import gl as glmod
from datagen.render.appearance import sample_appearance, sample_lighting
from datagen.render.mesh import prepare_mesh
from loaders.schema import Status

BACKENDS = ("pyrender", "embree")


def _instance(V, F, name="test"):
    F = np.asarray(F, np.int32)
    return Instance("test", name, {}, np.asarray(V, np.float64), F, np.zeros(len(F), np.int32), np.arange(len(F)))


def _render(backend, inst, view, lit=False):
    r = get_renderer(backend)
    mesh = prepare_mesh(inst)
    handle = r.prepare(mesh, sample_appearance(np.random.default_rng(0), len(mesh.group_names)))
    try:
        ids = r.render_face_ids(handle, view)
        if lit:
            return ids, r.render_lit(handle, view, sample_lighting(np.random.default_rng(1), view.T_cam_from_world))
        return ids
    finally:
        r.release(handle)


A = 0.6  # half side of the plane square, metres
PLANE = _instance([[-A, -A, 2.0], [A, -A, 2.0], [A, A, 2.0], [-A, A, 2.0]], [[0, 1, 2], [0, 2, 3]], "plane")
N = 64
K64 = intrinsics_from_fov(60.0, N, N)


@pytest.mark.parametrize("backend", BACKENDS)
def test_plane_face_ids_depth_and_barycentrics_exact(backend):
    view = View(K64, np.eye(4), N, N)  # world = camera: the plane z = 2 faces the camera
    ids = _render(backend, PLANE, view)
    surf = view_surface(PLANE.vertices, PLANE.faces, view, ids)
    f = K64[0, 0]
    r, c = np.mgrid[0:N, 0:N]
    X, Y = (c - K64[0, 2]) * 2.0 / f, (r - K64[1, 2]) * 2.0 / f
    inside = (np.abs(X) < A) & (np.abs(Y) < A)
    np.testing.assert_array_equal(ids >= 0, inside)  # silhouette: no pixel centre lies on the square's border
    expect_face = np.where(Y < X, 0, 1)
    off_diagonal = inside & (r != c)  # pixel centres on the shared diagonal are ties
    np.testing.assert_array_equal(ids[off_diagonal], expect_face[off_diagonal])
    np.testing.assert_allclose(surf.depth[inside], 2.0, rtol=0, atol=1e-6)
    # barycentrics by hand: triangle 0 = (-A,-A), (A,-A), (A,A); triangle 1 = (-A,-A), (A,A), (-A,A)
    px, py = X.ravel()[surf.pix], Y.ravel()[surf.pix]
    u0, v0 = (px - py) / (2 * A), (py + A) / (2 * A)
    u1, v1 = (px + A) / (2 * A), (py - px) / (2 * A)
    expect = np.where(
        (surf.face == 0)[:, None],
        np.stack([1 - u0 - v0, u0, v0], 1),
        np.stack([1 - u1 - v1, u1, v1], 1),
    )
    np.testing.assert_allclose(surf.bary, expect, atol=1e-12)
    np.testing.assert_allclose(surf.points_world[:, 2], 2.0, atol=1e-12)


def _box_scene():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    center = np.array([0.0, 0.0, 3.0])
    inst = _instance(np.asarray(box.vertices) + center, box.faces, "box")
    T = look_at([1.2, 0.9, 0.5], center)
    return inst, center, View(intrinsics_from_fov(50.0, N, N), T, N, N)


def _slab(view, center, half=0.5):
    """Analytic ray-box hits for every pixel centre: z-depth (inf = miss) and hit-face normal."""
    r, c = np.mgrid[0:N, 0:N]
    rays = np.stack([c.ravel(), r.ravel(), np.ones(N * N)], 1) @ np.linalg.inv(view.K).T  # z = 1
    R, t = view.T_cam_from_world[:3, :3], view.T_cam_from_world[:3, 3]
    o, d = -R.T @ t, rays @ R  # world origin, world directions (t along them = z-depth)
    with np.errstate(divide="ignore"):
        t1, t2 = (center - half - o) / d, (center + half - o) / d
    tn, tf = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, axis = tn.max(1), tn.argmax(1)
    hit = t_near <= tf.min(1)
    normal = np.zeros((N * N, 3))
    normal[np.arange(N * N), axis] = -np.sign(d[np.arange(N * N), axis])
    # pixels whose ray passes within 1e-9 of an edge are ties between two faces
    second = np.sort(tn, 1)[:, -2]
    tie = np.abs(t_near - second) < 1e-9
    return np.where(hit, t_near, np.inf).reshape(N, N), normal, tie


@pytest.mark.parametrize("backend", BACKENDS)
def test_box_depth_and_faces_match_analytic_ray_box(backend):
    inst, center, view = _box_scene()
    ids = _render(backend, inst, view)
    surf = view_surface(inst.vertices, inst.faces, view, ids)
    depth, normal, tie = _slab(view, center)
    hit = np.isfinite(depth)
    np.testing.assert_array_equal(ids >= 0, hit)
    assert hit.sum() > 400
    np.testing.assert_allclose(surf.depth[hit], depth[hit], rtol=1e-6)  # float32 storage of exact float64 depths
    np.testing.assert_allclose(surf.points_cam[:, 2], depth.ravel()[surf.pix], rtol=1e-12)
    tri = inst.vertices[inst.faces[surf.face]]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)
    ok = ~tie[surf.pix]
    np.testing.assert_allclose(fn[ok], normal[surf.pix][ok], atol=1e-9)
    assert (surf.bary >= -1e-9).all() and (surf.bary <= 1 + 1e-9).all()


def _face_containing(inst, p):
    tri = inst.vertices[inst.faces]
    b = trimesh.triangles.points_to_barycentric(tri, np.repeat(p[None], len(tri), 0))
    on_plane = np.abs(np.einsum("fk,fkd->fd", b, tri) - p).max(1) < 1e-9
    return int(np.flatnonzero(on_plane & (b >= -1e-9).all(1))[0])


def test_visibility_statuses_by_hand():
    inst, center, view = _box_scene()
    surf = view_surface(inst.vertices, inst.faces, view, _render("embree", inst, view))
    # the front point seen at the image centre pixel, and the back face point on the same ray
    k = int(np.argmin(np.abs(surf.pix - (N // 2 * N + N // 2))))
    p_front = surf.points_world[k]
    depth, _, _ = _slab(view, center)
    R, t = view.T_cam_from_world[:3, :3], view.T_cam_from_world[:3, 3]
    eye = -R.T @ t
    d = p_front - eye
    d /= np.linalg.norm(d)
    with np.errstate(divide="ignore"):
        t_exit = np.min(np.maximum((center - 0.5 - eye) / d, (center + 0.5 - eye) / d))
    p_back = eye + t_exit * d
    f_back = _face_containing(inst, p_back)
    xy, st = visibility(surf, np.array([surf.face[k], f_back]), np.stack([p_front, p_back]))
    pix = surf.pix[k]
    np.testing.assert_allclose(xy[0], [pix % N, pix // N], atol=1e-9)  # it projects back onto its pixel centre
    np.testing.assert_allclose(xy[1], xy[0], atol=1e-9)  # same ray
    assert st.tolist() == [Status.MATCHED, Status.OCCLUDED]
    # a narrow camera on the same axis sees only the middle: the box corners project outside its image
    narrow = View(intrinsics_from_fov(5.0, N, N), view.T_cam_from_world, N, N)
    nsurf = view_surface(inst.vertices, inst.faces, narrow, _render("embree", inst, narrow))
    corner = inst.vertices[0]
    f_corner = int(np.flatnonzero((inst.faces == 0).any(1))[0])
    _, st = visibility(nsurf, np.array([f_corner]), corner[None])
    assert st.tolist() == [Status.OUTSIDE]
    # Φ with a missing part: faces mapped to -1 give NO_COUNTERPART, the rest the same-instance statuses
    fmap = np.arange(inst.n_faces)
    fmap[surf.face[k]] = -1
    f = fmap[surf.face]
    pts = np.where((f >= 0)[:, None], surf.points_world, np.nan)
    status, corr = correspondence(surf, surf, f, pts)
    assert status.ravel()[pix] == Status.NO_COUNTERPART and np.isnan(corr.ravel()[2 * pix])
    same = (surf.face != surf.face[k]) & (surf.face != -1)
    assert (status.ravel()[surf.pix[same]] == Status.MATCHED).all()  # a view sees all of its own surface
    yy, xx = np.divmod(surf.pix[same], N)
    np.testing.assert_allclose(corr.reshape(-1, 2)[surf.pix[same]], np.stack([xx, yy], 1), atol=1e-4)
    assert (status[surf.face_id < 0] == Status.BACKGROUND).all()


def test_raster_and_embree_agree_on_meshes():
    """Face ids of the GL rasteriser and embree agree except at edge ties between neighbouring faces."""
    sphere = trimesh.creation.icosphere(3)
    rng = np.random.default_rng(0)
    V = np.asarray(sphere.vertices) * (1 + 0.05 * rng.standard_normal((len(sphere.vertices), 1)))
    meshes = [_instance(V, sphere.faces, "noisy_sphere"), _box_scene()[0]]
    for inst in meshes:
        center = inst.vertices.mean(0)
        view = View(intrinsics_from_fov(40.0, 96, 96), look_at(center + [0.7, 0.5, 2.6], center), 96, 96)
        r = get_renderer("pyrender")
        mesh = prepare_mesh(inst)
        handle = r.prepare(mesh, sample_appearance(rng, 1))
        ids_gl, depth_gl = r.render_face_ids(handle, view, read_depth=True)
        r.release(handle)
        ids_rt = _render("embree", inst, view)
        obj = (ids_gl >= 0) | (ids_rt >= 0)
        differ = obj & (ids_gl != ids_rt)
        assert differ.sum() <= 0.005 * obj.sum(), (inst.instance_id, differ.sum(), obj.sum())
        both = differ & (ids_gl >= 0) & (ids_rt >= 0)
        shared = [len(set(inst.faces[a]) & set(inst.faces[b])) > 0 for a, b in zip(ids_gl[both], ids_rt[both])]
        assert all(shared)  # disagreements are between faces that touch
        surf = view_surface(inst.vertices, inst.faces, view, ids_gl)
        m = ids_gl >= 0
        assert np.median(np.abs(depth_gl[m] - surf.depth[m]) / surf.depth[m]) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_lit_pass_covers_the_object_and_is_not_black(backend):
    inst, _, view = _box_scene()
    ids, (rgb, alpha) = _render(backend, inst, view, lit=True)
    assert rgb.shape == (N, N, 3) and rgb.dtype == np.uint8 and alpha.shape == (N, N)
    interior = (ids >= 0) & (np.abs(np.diff(ids, axis=1, prepend=-2)) == 0)
    assert (alpha[interior] > 200).mean() > 0.95 and (alpha[ids < 0] < 60).mean() > 0.95
    assert rgb[ids >= 0].mean() > 10


def test_no_gl_backend_error_names_both_and_the_fix(monkeypatch):
    monkeypatch.setattr(glmod, "_probe_egl", lambda: "eglQueryDevicesEXT found no device")
    monkeypatch.setattr(glmod, "_probe_osmesa", lambda: "libOSMesa cannot be loaded (not found)")
    monkeypatch.delitem(sys.modules, "OpenGL")
    monkeypatch.setenv("PYOPENGL_PLATFORM", "egl")
    with pytest.raises(glmod.GLUnavailable) as e:
        glmod.select_platform()
    msg = str(e.value)
    assert "no usable OpenGL backend" in msg and "EGL failed (eglQueryDevicesEXT" in msg and "OSMesa" in msg
    assert "libosmesa6" in msg and "--backend embree" in msg
    # EGL unusable but OSMesa present: falls back and exports the platform
    monkeypatch.setattr(glmod, "_probe_osmesa", lambda: None)
    assert glmod.select_platform() == "osmesa"


def _bar_and_plane(x_px, width_px, f):
    """The plane at z = 2 (facing the camera) plus a box bar at z = 1.5 spanning the image vertically, centred on
    pixel column ``x_px`` and ``width_px`` pixels wide in a camera at the origin looking down +z (cx = 31.5)."""
    bar = trimesh.creation.box(extents=[width_px / f * 1.5, 2 * A, 0.05])
    bar.apply_translation([(x_px - K64[0, 2]) / f * 1.5, 0.0, 1.5])
    V = np.concatenate([PLANE.vertices, bar.vertices])
    F = np.concatenate([PLANE.faces[:, ::-1], np.asarray(bar.faces) + 4])  # the plane faces the camera (-z)
    return _instance(V, F, "bar+plane")


def test_ray_cast_visibility_near_thin_occluders_and_back_faces():
    view = View(K64, np.eye(4), N, N)  # camera at the origin looking down +z
    f = K64[0, 0]
    # a bar 0.8 px wide over columns [31.8, 32.6]: it covers pixel centres of column 32 only
    inst = _bar_and_plane(32.2, 0.8, f)
    ids = _render("embree", inst, view)
    rows = slice(20, 44)
    assert (ids[rows, 32] >= 2).all() and (ids[rows, 31] < 2).all() and (ids[rows, 33] < 2).all()
    # plane points behind the bar at x = 32.55 px: their nearest pixel centre (column 33) sees the plane
    ys = np.arange(20, 44, dtype=np.float64)
    pts = np.stack(
        [np.full_like(ys, (32.55 - K64[0, 2]) / f * 2.0), (ys - K64[1, 2]) / f * 2.0, np.full_like(ys, 2.0)], 1
    )
    faces = np.array([_face_containing(inst, p) for p in pts])
    raster_only = view_surface(inst.vertices, inst.faces, view, ids)
    exact = view_surface(inst.vertices, inst.faces, view, ids, MeshRaycaster(inst.vertices, inst.faces))
    _, st_raster = visibility(raster_only, faces, pts)
    xy, st_exact = visibility(exact, faces, pts)
    np.testing.assert_allclose(xy[:, 0], 32.55, atol=1e-9)
    assert (st_raster == Status.MATCHED).all()  # the nearest pixel sees the plane: the raster tests are fooled
    assert (st_exact == Status.OCCLUDED).all()  # the ray cast is not
    # plane points beside the bar (x = 33.2 px, the 2x2 block sees only the plane) stay visible on both paths
    p = pts.copy()
    p[:, 0] = (33.2 - K64[0, 2]) / f * 2.0
    fp = np.array([_face_containing(inst, q) for q in p])
    assert (visibility(exact, fp, p)[1] == Status.MATCHED).all()
    assert (visibility(raster_only, fp, p)[1] == Status.MATCHED).all()
    # the bar's far face (facing +z, away from the camera) is hidden by the bar itself, on both paths
    far = inst.vertices[4:][inst.vertices[4:, 2] > 1.5].mean(0)
    f_far = _face_containing(inst, far)
    assert visibility(exact, np.array([f_far]), far[None])[1].tolist() == [Status.OCCLUDED]
    assert visibility(raster_only, np.array([f_far]), far[None])[1].tolist() == [Status.OCCLUDED]
