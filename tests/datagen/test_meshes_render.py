"""User meshes rendered with their own look, in both backends: a checker-textured OBJ shows both checker
colours, texture rows land the right way up on odd-sized textures, two-sided lighting trusts the winding (GL
``gl_FrontFacing`` and the CPU face test agree), and prepare_user_mesh's appearance options."""

from __future__ import annotations

import numpy as np
import pytest
from meshes_files import BLUE, RED, textured_box, write_obj
from PIL import Image

from datagen.camera import View, intrinsics_from_fov, look_at
from datagen.meshes.intake import IntakeOptions, intake_file
from datagen.meshes.types import MeshMaterial, UserMesh
from datagen.render import get_renderer
from datagen.render.appearance import Appearance, Light, Lighting, Material
from datagen.render.mesh import RenderMesh, prepare_user_mesh

BACKENDS = ("pyrender", "embree")


def _headlight(eye: np.ndarray, target=(0.0, 0.0, 0.0), intensity: float = 3.0, ambient: float = 0.05) -> Lighting:
    d = np.asarray(target, float) - eye
    return Lighting([Light(d / np.linalg.norm(d), np.ones(3), intensity)], np.full(3, ambient))


def _lit(backend: str, mesh: RenderMesh, appearance: Appearance, view: View, lighting: Lighting):
    r = get_renderer(backend)
    handle = r.prepare(mesh, appearance)
    try:
        return r.render_lit(handle, view, lighting)
    finally:
        r.release(handle)


def _closest(rgb: np.ndarray, colours) -> np.ndarray:
    """int [N]: index of the reference colour each pixel's hue is closest to (compared after normalising)."""
    c = rgb.astype(float) / np.maximum(rgb.max(1, keepdims=True), 1)
    ref = np.asarray(colours, float) / np.asarray(colours, float).max(1, keepdims=True)
    return np.linalg.norm(c[:, None] - ref[None], axis=2).argmin(1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_textured_obj_renders_both_checker_colours(tmp_path, backend):
    textured_box(extents=(1.0, 1.0, 1.0)).export(tmp_path / "cube.obj")
    um = intake_file(tmp_path / "cube.obj", "cube", IntakeOptions(target_diagonal_m=1.0)).mesh
    mesh, app = prepare_user_mesh(um)
    assert app.materials[0].kind == "file" and app.materials[0].texture is not None
    K = intrinsics_from_fov(45.0, 128, 128)
    eye = np.array([1.0, 1.2, 1.4])
    view = View(K, look_at(eye, np.array([0.0, 0.3, 0.0])), 128, 128)
    rgb, alpha = _lit(backend, mesh, app, view, _headlight(eye, (0, 0.3, 0)))
    obj = rgb[alpha == 255]
    assert len(obj) > 2000
    bright = obj[obj.max(1) > 40]
    share = np.bincount(_closest(bright, [RED, BLUE]), minlength=2) / len(bright)
    assert share.min() > 0.3, share  # a checker: about half each (a grey base colour would be all one class)


@pytest.mark.parametrize("backend", BACKENDS)
def test_texture_rows_the_right_way_up_on_an_odd_sized_texture(tmp_path, backend):
    """A quad facing +z with OBJ v = 1 at its top: the image's top rows (red) must appear at the quad's top."""
    image = np.zeros((6, 5, 3), np.uint8)  # odd width, rows not 4-byte aligned
    image[:3] = RED
    image[3:] = BLUE
    Image.fromarray(image).save(tmp_path / "t.png")
    (tmp_path / "q.mtl").write_text("newmtl m\nKd 1 1 1\nmap_Kd t.png\n")
    obj = [
        "mtllib q.mtl",
        "usemtl m",
        "v -1 0 0",
        "v 1 0 0",
        "v 1 2 0",
        "v -1 2 0",
        "vt 0 0",
        "vt 1 0",
        "vt 1 1",
        "vt 0 1",
        "f 1/1 2/2 3/3 4/4",
    ]
    (tmp_path / "q.obj").write_text("\n".join(obj))
    um = intake_file(tmp_path / "q.obj", "q", IntakeOptions(target_diagonal_m=2.0 * np.sqrt(2))).mesh
    assert um.two_sided  # a single quad is open
    mesh, app = prepare_user_mesh(um)
    eye = np.array([0.0, 1.0, 3.0])
    view = View(intrinsics_from_fov(60.0, 64, 64), look_at(eye, np.array([0.0, 1.0, 0.0])), 64, 64)
    rgb, alpha = _lit(backend, mesh, app, view, _headlight(eye, (0, 1, 0), ambient=0.3))
    rows = np.nonzero((alpha == 255).any(1))[0]
    top, bottom = rgb[rows[2], 32], rgb[rows[-3], 32]
    assert top[0] > 2 * top[2] and bottom[2] > 2 * bottom[0], (top, bottom)


def _sheet(two_sided: bool, normal_sign: float) -> RenderMesh:
    """A square in z = 0 wound counter-clockwise seen from +z, shading normals ``normal_sign * +z``."""
    V = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    F = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    cn = np.tile(np.array([0, 0, normal_sign], np.float32), (2, 3, 1))
    return RenderMesh(V, F, cn, np.zeros((2, 3, 2), np.float32), np.zeros(2, np.int32), ["m"], two_sided)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_sided_lighting_follows_the_winding(backend):
    """With shading normals that disagree with the winding, a two-sided mesh trusts the winding (seen from the
    front the normal stays as given, facing away from the light: dark) while the default rule flips any normal
    that faces away from the eye (bright). Seen from the back, a two-sided face is lit like a front face."""
    app = Appearance([Material("plain", np.array([0.8, 0.8, 0.8]), 0.0, 0.9)])
    K = intrinsics_from_fov(50.0, 32, 32)

    def centre(mesh: RenderMesh, side: float) -> float:
        eye = np.array([0.0, 0.0, 4.0 * side])
        rgb, alpha = _lit(backend, mesh, app, View(K, look_at(eye, np.zeros(3)), 32, 32), _headlight(eye))
        assert alpha[16, 16] == 255
        return float(rgb[16, 16].mean())

    lit, ambient_only = centre(_sheet(False, +1), +1), 0.05 ** (1 / 2.2) * 0.8 * 255
    assert lit > 150
    assert centre(_sheet(True, -1), +1) < ambient_only + 40  # winding says front; the given normal faces away
    assert centre(_sheet(False, -1), +1) == pytest.approx(lit, abs=3)  # default: flipped towards the eye
    assert centre(_sheet(True, +1), -1) == pytest.approx(lit, abs=3)  # the back of an open sheet is lit


def _user_mesh(with_parts: bool, named: bool) -> UserMesh:
    V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    mats = [MeshMaterial("wood" if named else "default", np.array([0.5, 0.3, 0.1]))]
    return UserMesh(
        "t",
        "t.obj",
        V,
        F,
        np.zeros(4, np.int32),
        mats,
        face_part=np.array([0, 0, 1, -1]) if with_parts else None,
        part_names=["seat", "leg"] if with_parts else [],
    )


def test_prepare_user_mesh_appearance_options():
    rng = np.random.default_rng(0)
    mesh, app = prepare_user_mesh(_user_mesh(False, True), "auto", rng)
    assert [m.kind for m in app.materials] == ["file"] and mesh.group_names == ["wood"]
    np.testing.assert_allclose(app.materials[0].base_color, [0.5, 0.3, 0.1])
    mesh, app = prepare_user_mesh(_user_mesh(True, False), "auto", rng)  # nothing of its own: random, per part
    assert mesh.group_names == ["seat", "leg", "unlabelled"] and mesh.face_group.tolist() == [0, 0, 1, 2]
    assert len(app.materials) == 3 and all(m.kind != "file" for m in app.materials)
    np.testing.assert_allclose(np.linalg.norm(mesh.corner_normals, axis=2), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="needs rng"):
        prepare_user_mesh(_user_mesh(False, False), "random")
    with pytest.raises(ValueError, match="unknown appearance"):
        prepare_user_mesh(_user_mesh(False, False), "pretty")


def test_user_mesh_from_a_library_file_keeps_two_sided(tmp_path):
    path = write_obj(tmp_path / "tri.obj", [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    um = intake_file(path, "tri", IntakeOptions(target_diagonal_m=1.0)).mesh
    mesh, _ = prepare_user_mesh(um)
    assert um.two_sided and mesh.two_sided
