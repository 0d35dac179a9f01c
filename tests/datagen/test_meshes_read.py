"""Mesh readers: OBJ (face order, polygons, negative indices, groups, MTL colours and textures, v flip), the
trimesh-backed formats (GLB with a texture and factor, PLY face colours, OFF, STL, node transforms), and part
labels from sidecar files and groups."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from meshes_files import BLUE, RED, checker, textured_box, write_obj
from PIL import Image

from datagen.meshes.labels import part_labels
from datagen.meshes.raw import MeshReadError
from datagen.meshes.read import read_mesh

SQUARE = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]


def test_obj_polygons_negative_indices_groups_and_order(tmp_path):
    text = "\n".join(
        [
            "v 0 0 0",
            "v 1 0 0",
            "v 1 1 0",
            "v 0 1 0",
            "v 2 0 0",
            "g seat",
            "f 1 2 3 4",  # a quad: triangles (0,1,2), (0,2,3)
            "g leg",
            "f -4 -1 -3",  # relative: vertices 2, 5, 3 (1-based)
            "l 1 2",  # lines are ignored
        ]
    )
    path = tmp_path / "m.obj"
    path.write_text(text)
    raw = read_mesh(path)
    np.testing.assert_array_equal(raw.faces, [[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    np.testing.assert_array_equal(raw.face_polygon, [0, 0, 1])
    assert raw.group_names == ["seat", "leg"]
    np.testing.assert_array_equal(raw.face_group, [0, 0, 1])
    assert raw.corner_uv is None and len(raw.materials) == 1


def test_obj_whitespace_and_short_faces(tmp_path):
    """Tabs, runs of spaces, leading and trailing blanks, CRLF and short face lines read like plain ones."""
    text = "v 0 0 0\r\n  v\t1 0 0\r\nv 1  1 0 \r\nv 0 1 0\r\nf 1 2\r\nf  1\t2   3 \r\n\tf 1 3 4\r\nf \r\n"
    (tmp_path / "w.obj").write_bytes(text.encode())
    raw = read_mesh(tmp_path / "w.obj")
    np.testing.assert_array_equal(raw.faces, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_array_equal(raw.vertices[2], [1, 1, 0])
    assert raw.notes == ["2 face lines with fewer than 3 corners skipped"]


@pytest.mark.parametrize("mixed", [False, True])
def test_obj_corner_forms_fast_and_slow_paths_agree(tmp_path, mixed):
    """``v//vn`` corners have no texture coordinates; a file mixing corner forms takes the corner-by-corner path
    and reads the same triangles; a polygon with any corner lacking coordinates has none."""
    head = ["v 0 0 0", "v 1 0 0", "v 1 1 0", "v 0 1 0", "vt 0 0", "vt 1 0", "vt 1 1", "vn 0 0 1"]
    faces = ["f 1/1/1 2/2/1 3/3/1", "f 1//1 3//1 4//1"] if not mixed else ["f 1/1 2/2 3/3", "f 1/1 3 4//1"]
    (tmp_path / "c.obj").write_text("\n".join(head + faces))
    raw = read_mesh(tmp_path / "c.obj")
    np.testing.assert_array_equal(raw.faces, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(raw.corner_uv[0], [[0, 1], [1, 1], [1, 0]])
    assert np.isnan(raw.corner_uv[1]).all()


@pytest.mark.parametrize(
    "body, message",
    [
        ("v 0 0 0\nv 1 0 0\nf 1 2 3\n", "line 3: face references vertex 3 of 2"),
        ("v 0 0 zero\nf 1 1 1\n", "line 1: vertex '0 0 zero' is not numeric"),
        ("v 0 0 0\nf 1 a 1\n", "line 2: face corner 'a' is not an index"),
    ],
)
def test_obj_errors_name_the_line(tmp_path, body, message):
    path = tmp_path / "bad.obj"
    path.write_text(body)
    with pytest.raises(MeshReadError, match=message):
        read_mesh(path)


def test_obj_binary_garbage_is_unreadable(tmp_path):
    path = tmp_path / "garbage.obj"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(MeshReadError, match="binary data"):
        read_mesh(path)


def test_obj_mtl_texture_and_v_flip(tmp_path):
    """Texture rows: OBJ's v = 1 is the image's top row (row 0), so converted v = 1 - v_obj."""
    image = np.zeros((4, 2, 3), np.uint8)
    image[:2] = RED  # top half red
    image[2:] = BLUE
    (tmp_path / "tex").mkdir()
    Image.fromarray(image).save(tmp_path / "tex" / "top_red.png")
    (tmp_path / "m.mtl").write_text(
        "newmtl painted\nKd 0.2 0.4 0.6\nmap_Kd -s 1 1 1 tex\\top_red.png\nnewmtl plain\nKd 1 0 0\n"
    )
    obj = "\n".join(
        ["mtllib m.mtl", *(f"v {x} {y} {z}" for x, y, z in SQUARE), "vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1"]
        + ["usemtl painted", "f 1/1 2/2 3/3", "usemtl plain", "f 1 3 4", "usemtl missing", "f 1 2 4"]
    )
    (tmp_path / "m.obj").write_text(obj)
    raw = read_mesh(tmp_path / "m.obj")
    names = [m.name for m in raw.materials]
    assert names == ["painted", "plain", "missing"]
    np.testing.assert_array_equal(raw.face_material, [0, 1, 2])
    np.testing.assert_array_equal(raw.materials[0].texture, image)
    np.testing.assert_allclose(raw.materials[0].base_color, [0.2, 0.4, 0.6])
    assert raw.materials[1].texture is None and raw.materials[1].base_color.tolist() == [1, 0, 0]
    np.testing.assert_allclose(raw.corner_uv[0], [[0, 1], [1, 1], [1, 0]])  # v flipped
    assert np.isnan(raw.corner_uv[1]).all()  # faces without vt
    assert any("'missing' is used but not defined" in n for n in raw.notes)


def test_obj_missing_texture_is_a_note_not_a_failure(tmp_path):
    (tmp_path / "m.mtl").write_text("newmtl a\nKd 0.5 0.5 0.5\nmap_Kd nowhere.png\n")
    write_obj(tmp_path / "m.obj", SQUARE, [[0, 1, 2]], extra="")
    text = (tmp_path / "m.obj").read_text()
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nusemtl a\n" + text)
    raw = read_mesh(tmp_path / "m.obj")
    assert raw.materials[0].texture is None
    assert any("texture 'nowhere.png' not found" in n for n in raw.notes)


def test_obj_texture_in_shapenet_images_folder_with_a_foreign_path(tmp_path):
    """ShapeNet keeps textures in <model>/images; an MTL may name them by a path from the author's machine."""
    models, images = tmp_path / "model" / "models", tmp_path / "model" / "images"
    images.mkdir(parents=True)
    Image.fromarray(checker(8, 4)).save(images / "texture0.jpg", quality=95)
    (models / "model_normalized.mtl").parent.mkdir(parents=True)
    (models / "model_normalized.mtl").write_text("newmtl a\nmap_Kd C:\\Users\\x\\texture0.jpg\n")
    body = ["mtllib model_normalized.mtl", "usemtl a", *(f"v {x} {y} {z}" for x, y, z in SQUARE)]
    (models / "model_normalized.obj").write_text("\n".join([*body, "vt 0 0", "f 1/1 2/1 3/1"]))
    raw = read_mesh(models / "model_normalized.obj")
    assert raw.materials[0].texture is not None and raw.materials[0].texture.shape == (8, 8, 3)
    assert not raw.notes


def test_trimesh_obj_export_round_trip(tmp_path):
    """An OBJ + MTL + PNG as trimesh writes it: the texture and every face's coordinates come back."""
    mesh = textured_box()
    mesh.export(tmp_path / "box.obj")
    raw = read_mesh(tmp_path / "box.obj")
    assert raw.n_faces == 12
    tex = [m.texture for m in raw.materials if m.texture is not None]
    assert len(tex) == 1 and np.array_equal(tex[0], checker())
    want = mesh.visual.uv[mesh.faces].copy()
    want[..., 1] = 1 - want[..., 1]
    np.testing.assert_allclose(raw.corner_uv, want, atol=1e-6)


def test_glb_texture_factor_and_node_transforms(tmp_path):
    """Two nodes (one mirrored by its transform): vertices moved, the mirrored node's corners reversed, the
    base-colour factor multiplied into the texture, v converted to the image convention."""
    image = checker()
    a = textured_box(image=image)
    a.visual.material = trimesh.visual.material.PBRMaterial(
        name="half", baseColorTexture=Image.fromarray(image), baseColorFactor=[0.5, 0.5, 0.5, 1.0]
    )
    b = trimesh.creation.box(extents=(1, 1, 1))
    scene = trimesh.Scene()
    scene.add_geometry(
        a, node_name="left", geom_name="a", transform=trimesh.transformations.translation_matrix([2, 0, 0])
    )
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    scene.add_geometry(b, node_name="right", geom_name="b", transform=mirror)
    scene.export(tmp_path / "two.glb")
    raw = read_mesh(tmp_path / "two.glb")
    assert raw.group_names == ["left", "right"]
    left = raw.face_group == 0
    right = raw.face_group == 1
    np.testing.assert_allclose(raw.vertices[np.unique(raw.faces[left])].mean(0), [2, 0, 0], atol=1e-6)
    # the mirrored box keeps outward faces: positive signed volume
    tri = raw.vertices[raw.faces[right]]
    volume = np.einsum("nd,nd->n", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert volume == pytest.approx(1.0, rel=1e-6)
    tex = raw.materials[raw.face_material[left][0]].texture
    np.testing.assert_allclose(tex.astype(float), np.rint(image * 0.5), atol=1)
    want = a.visual.uv[a.faces].copy()
    want[..., 1] = 1 - want[..., 1]
    np.testing.assert_allclose(raw.corner_uv[left], want, atol=1e-5)
    assert np.isnan(raw.corner_uv[right]).all()


def test_ply_face_colours_become_materials_off_and_stl_read(tmp_path):
    m = trimesh.creation.box()
    colors = np.zeros((12, 4), np.uint8)
    colors[:, 3] = 255
    colors[:6, 0] = 255  # 6 red faces, 6 black
    m.visual.face_colors = colors
    m.export(tmp_path / "b.ply")
    raw = read_mesh(tmp_path / "b.ply")
    assert len(raw.materials) == 2
    by_color = {tuple(np.round(raw.materials[k].base_color, 3)) for k in raw.face_material[:6]}
    assert by_color == {(1.0, 0.0, 0.0)}
    for ext in ("off", "stl"):
        trimesh.creation.box().export(tmp_path / f"b.{ext}")
        raw = read_mesh(tmp_path / f"b.{ext}")
        assert raw.n_faces == 12 and raw.materials[0].name == "default"


def test_unsupported_and_corrupt_scene_files(tmp_path):
    (tmp_path / "x.fbx").write_text("nope")
    with pytest.raises(MeshReadError, match="unsupported format '.fbx'"):
        read_mesh(tmp_path / "x.fbx")
    (tmp_path / "x.glb").write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(MeshReadError, match="trimesh cannot read it"):
        read_mesh(tmp_path / "x.glb")


def test_part_labels_sidecar_per_polygon_per_triangle_mismatch_and_groups(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text(
        "\n".join([*(f"v {x} {y} {z}" for x, y, z in SQUARE), "v 2 0 0", "g a", "f 1 2 3 4", "g b", "f 2 5 3"])
    )
    raw = read_mesh(path)
    fp, names, src, notes = part_labels(raw, path, "auto")  # no sidecar: groups
    assert src == "groups" and names == ["a", "b"] and fp.tolist() == [0, 0, 1]
    side = tmp_path / "m.labels.txt"
    side.write_text("seat\nleg\n")  # per polygon (2 polygons, 3 triangles)
    fp, names, src, _ = part_labels(raw, path, "auto")
    assert src == "sidecar" and names == ["leg", "seat"] and fp.tolist() == [1, 1, 0]
    side.write_text("seat\n-\nleg\n")  # per triangle, one unlabelled
    fp, names, src, _ = part_labels(raw, path, "sidecar")
    assert fp.tolist() == [1, -1, 0]
    side.write_text("seat\n")
    fp, names, src, notes = part_labels(raw, path, "auto")
    assert fp is None and "has 1 labels but the mesh has 3 triangles (2 polygons)" in notes[0]
    assert part_labels(raw, path, "none")[0] is None
