"""Template registration of user meshes and the ground truth through it: accuracy against the exact answer,
orientation fixes, rejections, left/right, and `datagen render --meshes` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from datagen.canonical import ProceduralSurface, RegisteredSurface, counterparts
from datagen.cli import main
from datagen.families import face_map, get_family
from datagen.meshes.accuracy import exact_registration, smooth_warp
from datagen.meshes.proximity import SurfaceIndex, closest_on_triangles
from datagen.meshes.register import ORIENTATIONS, fit_template
from datagen.meshes.sampling import rest_shift, sample_surface


def _instance(category: str, seed: int):
    fam = get_family(category)
    return fam, fam.build(fam.sample_params(np.random.default_rng(seed)), f"{category}-{seed}")


def _canonical_error(fam, inst, vertices, reg) -> np.ndarray:
    """Distance (fraction of the bbox diagonal) between points of the mesh and where their canonical coordinates
    through the fitted template put them on the mesh's own instance (the exact answer)."""
    pts, _, _ = sample_surface(vertices, inst.faces, 3000, np.random.default_rng(1))
    tmpl = reg.instance()
    f_t, b_t, _, _ = SurfaceIndex(reg.template_vertices, tmpl.faces).closest(pts)
    g = face_map(fam, tmpl, inst)[f_t]
    ok = g >= 0
    back = np.einsum("nk,nkd->nd", b_t[ok], vertices[inst.faces[g[ok]]])
    return np.linalg.norm(back - pts[ok], axis=1) / np.linalg.norm(np.ptp(vertices, axis=0))


def test_closest_on_triangles_matches_analytic_cases():
    tri = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]] * 4)
    p = np.array([[0.2, 0.2, 1.0], [-1.0, -1.0, 0.0], [2.0, 0.0, 0.5], [1.0, 1.0, 0.0]])
    bary, q = closest_on_triangles(p, tri)
    assert np.allclose(q, [[0.2, 0.2, 0], [0, 0, 0], [1, 0, 0], [0.5, 0.5, 0]])
    assert np.allclose(bary.sum(1), 1.0) and np.all(bary >= -1e-12)


def test_surface_index_is_exact_against_brute_force():
    mesh = trimesh.creation.icosphere(3)
    v = mesh.vertices * [1.0, 0.5, 0.3]
    pts = np.random.default_rng(0).normal(size=(300, 3))
    face, _, q, d = SurfaceIndex(v, mesh.faces).closest(pts)
    tri = v[mesh.faces]
    brute = np.array([np.linalg.norm(closest_on_triangles(np.repeat(x[None], len(tri), 0), tri)[1] - x, axis=1).min()
                      for x in pts])  # fmt: skip
    assert np.allclose(d, brute, atol=1e-12)
    assert np.allclose(np.linalg.norm(q - pts, axis=1), d)


def test_a_query_facing_a_plates_top_finds_the_top_even_from_below_the_bottom():
    """A thin plate (a 1 x 1 slab, 0.05 thick) and query points just under its bottom that lie on surfaces facing
    up (a misfit template's screen behind the mesh's): the nearest samples are all on the bottom, yet the answer is
    the top, the closest face facing the same way; with no normals it is the bottom."""
    box = trimesh.creation.box([1.0, 0.05, 1.0])
    index = SurfaceIndex(box.vertices, box.faces, spacing=0.01)
    xz = np.random.default_rng(0).uniform(-0.4, 0.4, size=(50, 2))
    below = np.column_stack([xz[:, 0], np.full(50, -0.035), xz[:, 1]])
    up = np.tile([0.0, 1.0, 0.0], (50, 1))
    face, _, q, d = index.closest(below, normals=up)
    assert np.all(index.face_normals[face] @ [0, 1, 0] > 0.99)  # the top
    assert np.allclose(q[:, 1], 0.025) and np.allclose(d, 0.06)
    face_any, _, q_any, _ = index.closest(below)
    assert np.allclose(q_any[:, 1], -0.025)  # the bottom, nearer
    down = -up
    face_down, _, _, d_down = index.closest(below, normals=down)
    assert np.allclose(d_down, 0.01)  # agreeing nearest: the bottom itself


@pytest.mark.slow
@pytest.mark.parametrize("category,warp", [("chair", 0.0), ("table", 0.05)])
def test_registration_puts_points_where_the_exact_map_does(category, warp):
    """A procedural instance (plain, or bent off the family's shapes) fitted like a user's mesh: its points'
    canonical coordinates land within the issue's bounds of the exact ones."""
    fam, inst = _instance(category, 7)
    v = smooth_warp(inst.vertices, np.random.default_rng(3), warp) if warp else np.asarray(inst.vertices, float)
    v = v + rest_shift(v)
    reg = fit_template("m", v, inst.faces, category)
    assert not reg.quality.problems() and reg.orientation == "as given"
    err = _canonical_error(fam, inst, v, reg)
    assert len(err) > 0.8 * 3000  # the template found the mesh's parts
    assert np.median(err) < 0.02 and np.percentile(err, 90) < 0.05, (np.median(err), np.percentile(err, 90))


@pytest.mark.slow
@pytest.mark.parametrize("category,wrong", [("chair", "front/back flipped"), ("table", "upside down")])
def test_a_mesh_turned_the_wrong_way_is_found_and_turned_back(category, wrong):
    fam, inst = _instance(category, 11)
    R = ORIENTATIONS[wrong]
    v = inst.vertices @ R.T
    v = v + rest_shift(v)
    reg = fit_template("m", v, inst.faces, category)
    fixed = reg.rotation @ R  # what the fix does to the original: upright, and facing front unless symmetric
    assert fixed[1, 1] == 1.0, reg.orientation
    if category == "chair":  # a table's front and back look alike: either turn is right
        assert reg.orientation == wrong and np.allclose(fixed, np.eye(3))
    assert reg.quality.chamfer_best < 0.75 * reg.quality.chamfer_as_given


@pytest.mark.slow
def test_a_mesh_of_another_category_is_rejected_with_its_reason():
    sphere = trimesh.creation.icosphere(3)
    v = sphere.vertices * [0.3, 0.3, 0.3] + [0, 0.3, 0]
    reg = fit_template("ball", v, sphere.faces, "chair")
    problems = reg.quality.problems()
    assert problems and any("covers" in p or "90 %" in p for p in problems), problems


@pytest.mark.slow
def test_fitted_and_exact_ground_truth_agree_between_two_meshes():
    """Φ between two registered meshes against Φ through their exact registrations (3D, per point)."""
    fam, a = _instance("chair", 21)
    _, b = _instance("chair", 22)
    surfaces = []
    for inst in (a, b):
        v = inst.vertices + rest_shift(inst.vertices)
        reg = fit_template(inst.instance_id, v, inst.faces, "chair")
        shift = np.eye(4)
        shift[:3, 3] = rest_shift(inst.vertices)
        exact = exact_registration(inst.instance_id, fam, inst, inst.vertices, shift)
        surfaces.append((RegisteredSurface(fam, v, inst.faces, reg), RegisteredSurface(fam, v, inst.faces, exact)))
    (fa, ea), (fb, eb) = surfaces
    pts, _, face = sample_surface(fa.vertices, fa.faces, 2000, np.random.default_rng(0))
    bary = closest_on_triangles(pts, fa.vertices[fa.faces[face]])[0]
    f_fit, p_fit = counterparts(fa, fb, face, bary, pts)
    f_ex, p_ex = counterparts(ea, eb, face, bary, pts)
    both = (f_fit >= 0) & (f_ex >= 0)
    assert both.mean() > 0.7
    err = np.linalg.norm(p_fit[both] - p_ex[both], axis=1) / np.linalg.norm(np.ptp(fb.vertices, axis=0))
    assert np.median(err) < 0.02 and np.percentile(err, 90) < 0.06
    # the exact registration reproduces the procedural map itself (but where parts interpenetrate: a point of
    # one part buried in another may take the other's coordinates; such points are never seen in a render)
    pa, pb = ProceduralSurface(fam, a), ProceduralSurface(fam, b)
    f_pr, p_pr = counterparts(pa, pb, face, bary, pts - rest_shift(a.vertices))
    same = (f_pr >= 0) & (f_ex >= 0)
    close = np.linalg.norm(p_pr[same] + rest_shift(b.vertices) - p_ex[same], axis=1) < 1e-6
    assert same.mean() > 0.9 and close.mean() > 0.97, (same.mean(), close.mean())


@pytest.mark.slow
def test_keypoints_keep_their_side_on_a_registered_mesh():
    """Left keypoints land on the +x (object-left) side and right ones on -x: the canonical frame is oriented and
    registration happens in it, so a mirrored copy cannot swap them."""
    fam, inst = _instance("quadruped", 5)
    for mirrored in (False, True):
        v = inst.vertices * ([-1.0, 1.0, 1.0] if mirrored else 1.0)
        faces = inst.faces[:, [0, 2, 1]] if mirrored else inst.faces  # a proper mirror keeps the faces outward
        v = v + rest_shift(v)
        surface = RegisteredSurface(fam, v, faces, fit_template("m", v, faces, "quadruped"))
        kp, kp_face = surface.keypoints()
        centre = 0.5 * (v[:, 0].min() + v[:, 0].max())
        for spec, x, f in zip(fam.keypoints, kp[:, 0], kp_face):
            if f < 0 or spec.side == "center":
                continue
            assert (x - centre > 0) == (spec.side == "left"), (spec.name, mirrored)


@pytest.mark.integration
def test_render_with_meshes_end_to_end(tmp_path, capsys):
    """`datagen render --meshes FOLDER` on a raw folder: intake + registration cached under the output, pairs
    with their ground truth through the canonical surface, a second run (--resume) reuses the library, verify
    passes with the user-mesh limits."""
    fam = get_family("chair")
    rng = np.random.default_rng(2)
    src = tmp_path / "objs"
    src.mkdir()
    for i in range(3):
        inst = fam.build(fam.sample_params(rng), f"c{i}")
        trimesh.Trimesh(inst.vertices, inst.faces, process=False).export(src / f"chair_{i}.obj")
    out = tmp_path / "out"
    args = ["render", "--category", "chair", "--n", "8", "--size", "96", "--meshes", str(src), "--out", str(out)]
    assert main([*args, "--workers", "1", "--no-progress"]) == 0
    lib = out / ".datagen" / "meshes"
    intake = json.loads((lib / "intake.json").read_text())
    assert intake["counts"]["accepted"] + intake["counts"]["repaired"] == 3
    records = sorted(lib.glob("records/*.register.json"))
    stamps = [r.stat().st_mtime_ns for r in records]
    assert main([*args, "--workers", "1", "--no-progress", "--resume"]) == 0
    assert [r.stat().st_mtime_ns for r in records] == stamps  # nothing registered again
    capsys.readouterr()
    assert main(["verify", str(out), "--samples", "8", "--no-progress", "--workers", "1"]) == 0, capsys.readouterr().out
    import webdataset as wds

    from loaders.members import decode_sample

    meta = [decode_sample(m)["meta"] for m in wds.WebDataset(str(next(out.glob("*.tar"))), shardshuffle=False)]
    assert all(m["source"] == "meshes" and m["mesh_library"] == str(lib) for m in meta)
    assert {i for m in meta for i in m["instance_ids"]} <= {"chair_0", "chair_1", "chair_2"}


@pytest.mark.integration
def test_shapenet_folder_with_bad_models_renders_the_good_ones(tmp_path, capsys):
    """ShapeNetCore v2 layout (front -z): two good chairs, an empty and an unreadable model_normalized.obj. The
    render goes ahead with the good ones (registered as given: the layout's axes were remapped), the bad ones are
    reported by folder name, exit code 0."""
    import os

    fam = get_family("chair")
    rng = np.random.default_rng(4)
    syn = tmp_path / "ShapeNetCore.v2" / "03001627"
    turn = np.diag([-1.0, 1.0, -1.0])  # our front (+z) to ShapeNet's (-z)
    for name in ("good_a", "good_b"):
        inst = fam.build(fam.sample_params(rng), name)
        (syn / name / "models").mkdir(parents=True)
        trimesh.Trimesh(inst.vertices @ turn.T, inst.faces, process=False).export(
            syn / name / "models" / "model_normalized.obj"
        )
    (syn / "empty" / "models").mkdir(parents=True)
    (syn / "empty" / "models" / "model_normalized.obj").write_text("")
    (syn / "bad" / "models").mkdir(parents=True)
    (syn / "bad" / "models" / "model_normalized.obj").write_bytes(os.urandom(2048) + b"\x00")
    out = tmp_path / "out"
    args = ["render", "--category", "chair", "--n", "4", "--size", "64", "--meshes", str(syn.parent), "--out", str(out)]
    assert main([*args, "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    rejected = {ln.split()[1] for ln in printed.splitlines() if ln.startswith("rejected")}
    assert rejected == {"03001627/empty", "03001627/bad"}, printed
    lib = out / ".datagen" / "meshes"
    for name in ("good_a", "good_b"):
        record = json.loads((lib / "records" / f"{name}.register.json").read_text())
        assert record["status"] == "accepted" and record["orientation"] == "as given"


def test_nested_float_parameters_are_found_and_set_without_touching_the_rest():
    from datagen.meshes.search import float_paths, get_param, with_param

    params = {"a": 1.0, "n": 3, "flag": True, "pose": {"left": [10.0, 20.0], "right": [5.0, 6.0]}, "s": "x"}
    paths = float_paths(params)
    assert paths == [("a",), ("pose", "left", 0), ("pose", "left", 1), ("pose", "right", 0), ("pose", "right", 1)]
    moved = with_param(params, ("pose", "left", 1), 25.0)
    assert get_param(moved, ("pose", "left", 1)) == 25.0 and moved["pose"]["left"][0] == 10.0
    assert params["pose"]["left"] == [10.0, 20.0]  # the original is not changed
    assert moved["pose"]["right"] is params["pose"]["right"]  # only the containers on the path are copied


def test_balanced_mean_weighs_a_small_part_like_a_large_one():
    from datagen.meshes.search import SLOT_BALANCE, balanced_mean

    d = np.concatenate([np.zeros(99), [1.0]])  # a body of 99 points fitting exactly, an ear of 1 point 1 m off
    group = np.concatenate([np.zeros(99, np.int64), [1]])
    assert balanced_mean(d, None) == pytest.approx(0.01)
    assert balanced_mean(d, group) == pytest.approx((1 - SLOT_BALANCE) * 0.01 + SLOT_BALANCE * 0.5)


@pytest.mark.slow
def test_a_quadrupeds_pose_and_ears_are_fitted_for_its_keypoints():
    """Refinement reaches nested pose angles and small parts. Two of the bench's quadrupeds (scripts/bench_mesh_gt.py,
    seed 0) whose ears, tail and legs the pool's nearest shapes get wrong, counting a keypoint the fit leaves off
    the mesh (a horn the fit did not add) as a miss: before, at most 32 of their 44 keypoints fell within 0.05 of
    the longer side of the exact ones (mesh 3: ear bases 0.09, tail tip 0.17 off); now at least 80 % do (measured
    36 of 44; the misses are the horns and ear tips at 0.06-0.08). The issue's 95 % is a pooled figure over the
    bench's meshes and pairs, measured by the bench, not here."""
    fam = get_family("quadruped")
    rng = np.random.default_rng(0)
    params = [fam.sample_params(rng) for _ in range(6)]
    ok_total = n_total = 0
    for index in (3, 5):
        inst = fam.build(params[index], f"quadruped-{index}")
        v = np.asarray(inst.vertices, float)
        v = v + rest_shift(v)
        reg = fit_template("m", v, inst.faces, "quadruped")
        kp_fit, _ = RegisteredSurface(fam, v, inst.faces, reg).keypoints()
        exact = exact_registration("m", fam, inst, v, np.eye(4))
        kp_exact, _ = RegisteredSurface(fam, v, inst.faces, exact).keypoints()
        has = np.isfinite(kp_exact).all(1)  # a keypoint the fit leaves off the mesh counts as a miss
        err = np.linalg.norm(kp_fit[has] - kp_exact[has], axis=1) / np.ptp(v, axis=0).max()
        ok_total += int((err <= 0.05).sum())
        n_total += int(has.sum())
    assert ok_total >= 0.8 * n_total, (ok_total, n_total)


@pytest.mark.slow
def test_every_count_tagged_window_slot_the_pool_has_is_judged_a_layer():
    """A bus's windows are glass slabs on its body in every count (4-6 per row, both decks): each of those slots
    the template pool contains is a layer slot, however rare (judged on the pool's first dozen instances, the
    upper deck's rarer counts were left out, and the search then preferred a wrong window count)."""
    from datagen.meshes.search import candidate_pool, layer_slots

    fam = get_family("bus")
    in_pool = set()
    for c in candidate_pool("bus"):
        in_pool.update(int(s) for s in np.unique(c.instance.face_slot))
    windows = [i for i, s in enumerate(fam.slots) if "window" in s.name and i in in_pool]
    assert len(windows) >= 40
    is_layer = layer_slots("bus")
    assert all(is_layer[i] for i in windows), [fam.slots[i].name for i in windows if not is_layer[i]]
    assert not is_layer[[s.name for s in fam.slots].index("body")]
