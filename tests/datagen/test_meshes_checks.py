"""Every outcome of the intake checks on a small file written here: rejections (unreadable, empty, degenerate,
NaN/inf), repairs (zero-area and duplicate faces, inconsistent winding, inward components, decimation, unused
NaN vertices) and handling (duplicate vertices, multi-body, open surfaces two-sided), each with its reason."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from meshes_files import box, sphere, textured_box, write_obj

from datagen.meshes.checks import Surface, make_winding_consistent
from datagen.meshes.intake import IntakeOptions, intake_file

OPTS = IntakeOptions(target_diagonal_m=1.0)


def intake(path, **kw):
    return intake_file(path, path.stem, IntakeOptions(**{"target_diagonal_m": 1.0, **kw}))


def signed_volume(vertices, faces) -> float:
    tri = vertices[faces]
    return float(np.einsum("nd,nd->n", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def texts(result) -> str:
    return " | ".join(n.text for n in result.notes)


# ---- rejections ---------------------------------------------------------------------------------------------


def test_unreadable_files_are_rejected_with_the_readers_reason(tmp_path):
    (tmp_path / "garbage.obj").write_bytes(bytes(range(256)) * 4)
    r = intake(tmp_path / "garbage.obj")
    assert r.status == "rejected" and r.reason == "unreadable: binary data, not a text OBJ file" and r.mesh is None
    write_obj(tmp_path / "index.obj", [[0, 0, 0], [1, 0, 0]], [[0, 1, 2]])
    assert intake(tmp_path / "index.obj").reason == "unreadable: line 3: face references vertex 3 of 2 defined so far"
    (tmp_path / "bad.glb").write_bytes(b"not a glb at all")
    r = intake(tmp_path / "bad.glb")
    assert r.status == "rejected" and r.reason.startswith("unreadable: trimesh cannot read it")


@pytest.mark.parametrize("content", ["", "# only a comment\n", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"])
def test_empty_files_are_rejected(tmp_path, content):
    (tmp_path / "e.obj").write_text(content)
    r = intake(tmp_path / "e.obj")
    assert r.status == "rejected" and r.reason.startswith("empty: no faces")


def test_empty_stl_is_rejected(tmp_path):
    (tmp_path / "e.stl").write_text("solid empty\nendsolid empty\n")
    r = intake(tmp_path / "e.stl")
    assert r.status == "rejected" and (r.reason.startswith("empty") or r.reason.startswith("unreadable")), r.reason


def test_degenerate_meshes_are_rejected(tmp_path):
    collinear = write_obj(tmp_path / "line.obj", [[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2], [2, 1, 0]])
    r = intake(collinear)
    assert r.status == "rejected" and r.reason == "degenerate: all 2 faces have zero area"
    point = write_obj(tmp_path / "point.obj", [[1, 1, 1]] * 3, [[0, 1, 2]])
    assert intake(point).reason == "degenerate: all 1 faces collapse to one point (no area)"


def test_nan_and_inf_vertices_in_faces_reject_unused_ones_are_dropped(tmp_path):
    m = box()
    V = np.vstack([m.vertices, [[np.nan, 0, 0]]])
    write_obj(tmp_path / "unused.obj", V, m.faces)
    r = intake(tmp_path / "unused.obj")
    assert r.status == "repaired" and "dropped 1 unused vertices with NaN/inf coordinates" in r.repairs
    V = m.vertices.copy()
    V[3] = [np.inf, 0, 0]
    write_obj(tmp_path / "used.obj", V, m.faces)
    r = intake(tmp_path / "used.obj")
    assert r.status == "rejected" and r.reason == "non-finite: 1 of 8 vertices used by faces are NaN or inf"


# ---- repairs ------------------------------------------------------------------------------------------------


def test_clean_closed_box_is_accepted_without_notes(tmp_path):
    m = box((0.4, 0.9, 0.5))
    write_obj(tmp_path / "b.obj", m.vertices, m.faces)
    r = intake(tmp_path / "b.obj")
    assert r.status == "accepted" and r.notes == [] and not r.mesh.two_sided
    assert signed_volume(r.mesh.vertices, r.mesh.faces) > 0


def test_duplicate_vertices_merged_unreferenced_dropped_is_not_a_repair(tmp_path):
    m = box()
    V = m.vertices[m.faces].reshape(-1, 3)  # STL-like: three own vertices per face
    V = np.vstack([V, [[5, 5, 5]]])  # and one nobody uses
    write_obj(tmp_path / "soup.obj", V, np.arange(36).reshape(-1, 3))
    r = intake(tmp_path / "soup.obj")
    assert r.status == "accepted", texts(r)
    assert "merged 28 duplicate vertices" in texts(r) and "dropped 1 unreferenced vertices" in texts(r)
    assert len(r.mesh.vertices) == 8 and not r.mesh.two_sided  # merged back into a closed box


def test_zero_area_and_duplicate_faces_removed(tmp_path):
    m = box()
    F = np.vstack([m.faces, [[0, 0, 1]], m.faces[:2][:, [1, 2, 0]]])  # a sliver, two repeated faces
    write_obj(tmp_path / "dup.obj", m.vertices, F)
    r = intake(tmp_path / "dup.obj")
    assert r.status == "repaired"
    assert "removed 1 zero-area faces" in r.repairs
    assert "removed 2 duplicate faces (same three vertices)" in r.repairs
    assert r.mesh.n_faces == 12 and not r.mesh.two_sided


def test_inconsistent_winding_made_consistent(tmp_path):
    m = sphere(2)
    F = m.faces.copy()
    F[::7] = F[::7][:, ::-1]  # every 7th face reversed
    write_obj(tmp_path / "w.obj", m.vertices, F)
    r = intake(tmp_path / "w.obj")
    n_bad = len(F[::7])
    assert r.status == "repaired"
    assert f"winding made consistent: {n_bad} of {len(F)} faces reversed to agree with their neighbours" in r.repairs
    assert trimesh.Trimesh(r.mesh.vertices, r.mesh.faces, process=False).is_winding_consistent
    assert signed_volume(r.mesh.vertices, r.mesh.faces) > 0


def test_winding_consistency_keeps_the_majority_per_component():
    m = sphere(1)
    s = Surface(m.vertices.copy(), m.faces[:, ::-1].copy(), np.zeros(len(m.faces), np.int32))
    s.faces[0] = s.faces[0][::-1]  # one face disagrees with the (inward) rest
    assert make_winding_consistent(s)[0].text.startswith("winding made consistent: 1 of")
    assert signed_volume(s.vertices, s.faces) < 0  # the majority's inward winding is kept; orient() fixes it


def test_inward_closed_components_flipped_with_the_mirror_warning(tmp_path):
    a, b = box(center=(-1, 0, 0)), box(center=(1, 0, 0))
    V = np.vstack([a.vertices, b.vertices])
    F = np.vstack([a.faces, b.faces[:, ::-1] + 8])  # the second box wound inward
    write_obj(tmp_path / "two.obj", V, F)
    r = intake(tmp_path / "two.obj")
    assert r.status == "repaired"
    (note,) = [t for t in r.repairs if "wound inward" in t]
    assert note.startswith("1 of 2 closed components wound inward (negative signed volume): faces reversed")
    assert "naive mirror (x -> -x)" in note
    assert "multi-body: 2 connected components (kept)" in texts(r)
    assert signed_volume(r.mesh.vertices, r.mesh.faces) > 0
    inside_out = box()
    write_obj(tmp_path / "inv.obj", inside_out.vertices, inside_out.faces[:, ::-1])
    r = intake(tmp_path / "inv.obj")
    assert r.repairs[0].startswith("the mesh wound inward")


def test_naive_mirror_turns_winding_inward_and_is_repaired(tmp_path):
    m = box((0.5, 1.0, 0.3))
    write_obj(tmp_path / "mirror.obj", m.vertices * [-1, 1, 1], m.faces)
    r = intake(tmp_path / "mirror.obj")
    assert any("wound inward" in t and "mirror" in t for t in r.repairs)


def test_boxes_touching_along_an_edge_stay_closed(tmp_path):
    """An edge shared by four faces (two closed parts touching) is non-manifold but bounds no hole."""
    a, b = box(center=(0.5, 0.5, 0.5)), box(center=(1.5, 1.5, 0.5))
    write_obj(tmp_path / "touch.obj", np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + 8]))
    r = intake(tmp_path / "touch.obj")
    assert r.status == "accepted" and not r.mesh.two_sided, texts(r)
    assert "1 non-manifold edges (shared by more than two faces) kept" in texts(r)
    assert "multi-body" not in texts(r)  # one component through the shared edge


def test_open_surface_is_kept_two_sided(tmp_path):
    m = sphere(2)
    keep = m.triangles_center[:, 1] < 0.2  # a bowl
    write_obj(tmp_path / "bowl.obj", m.vertices, m.faces[keep])
    r = intake(tmp_path / "bowl.obj")
    assert r.status == "accepted" and r.mesh.two_sided
    assert "open surface (not watertight:" in texts(r) and "rendered two-sided" in texts(r)


def test_large_mesh_decimated_with_attributes_carried(tmp_path):
    mesh = textured_box()
    mesh = mesh.subdivide().subdivide()  # 192 faces, texture coordinates interpolated
    mesh.export(tmp_path / "big.obj")
    side = tmp_path / "big.labels.txt"
    side.write_text("\n".join("top" if c[1] > 0.25 else "rest" for c in mesh.triangles_center) + "\n")
    r = intake(tmp_path / "big.obj", max_faces=60)
    assert r.status == "repaired", texts(r)
    assert "decimated from 192 to 60 faces (--max-faces 60)" in r.repairs
    um = r.mesh
    assert um.n_faces <= 60 and um.corner_uv is not None and um.face_part is not None
    assert set(um.part_names) == {"rest", "top"}
    # labels follow the geometry: faces high up are "top"
    centre_y = um.vertices[um.faces].mean(1)[:, 1]
    top = um.face_part == um.part_names.index("top")
    assert centre_y[top].min() > centre_y[~top].max() - 0.2
    # coordinates still inside the box's charts
    assert np.isfinite(um.corner_uv).all() and um.corner_uv.min() > -0.3 and um.corner_uv.max() < 1.3
    assert not um.two_sided


def test_textured_faces_without_coordinates_fall_back_to_the_mean_colour(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(tmp_path / "t.png")
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd t.png\n")
    m = box()
    lines = ["mtllib m.mtl", "usemtl a", *(f"v {x} {y} {z}" for x, y, z in m.vertices)]
    lines += ["f " + " ".join(str(i + 1) for i in f) for f in m.faces]
    (tmp_path / "m.obj").write_text("\n".join(lines))
    r = intake(tmp_path / "m.obj")
    assert r.mesh.materials[0].texture is None
    np.testing.assert_allclose(r.mesh.materials[0].base_color, 200 / 255)
    assert "12 faces have no texture coordinates; the texture's mean colour is used there" in texts(r)
