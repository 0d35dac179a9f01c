"""The pottedplant and tvmonitor families: SPair-71k keypoint tables, orientation, sizes, variants, exact outlines."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from datagen.families import get_family
from datagen.families.distortion import STRETCH_LIMIT, family_distortion
from datagen.families.pottedplant import HABITS, _pot_profile
from datagen.families.tvmonitor import _inner, _outer, _screen_half
from datagen.real.tables import spair_table


@functools.cache
def _insts(name: str, n: int = 40) -> tuple:
    fam = get_family(name)
    rng = np.random.default_rng(2024)
    return fam, [fam.build(fam.sample_params(rng), str(i)) for i in range(n)]


def _kp(fam, inst, name: str) -> np.ndarray:
    return fam.keypoint_positions(inst)[fam.keypoint_names.index(name)]


def _has(fam, inst, slot: str) -> bool:
    return bool(fam.present_slots(inst)[fam.slot_index(slot)])


def _slot_vertices(fam, inst, slot: str) -> np.ndarray:
    return inst.vertices[np.unique(inst.faces[inst.face_slot == fam.slot_index(slot)])]


@pytest.mark.parametrize("name,n_spair", [("tvmonitor", 16), ("pottedplant", 9)])
def test_spair_index_map_agrees_with_the_benchmark_tables(name, n_spair):
    """Every SPair id is covered once, with SPair's side; flips and symmetric groups are SPair's."""
    fam = get_family(name)
    table = spair_table(name)
    assert table.n == n_spair
    ids = {}
    for k in fam.keypoints:
        note = fam.spair_notes[k.name]
        if note in ("", "-"):
            continue
        i = int(note)
        assert i not in ids, f"SPair id {i} used twice"
        ids[i] = k
        assert table.sides[i] == k.side, (k.name, i, table.sides[i])
    assert sorted(ids) == list(range(n_spair))
    # the family's flip permutation, read in SPair ids, is SPair's flip
    by_name = {k.name: i for i, k in ids.items()}
    perm = fam.flip_permutation
    ours = {}
    for i, k in ids.items():
        twin = fam.keypoints[perm[fam.keypoint_names.index(k.name)]].name
        ours[i] = by_name[twin]
    assert ours == dict(enumerate(table.flip_perm))
    groups = {tuple(sorted(by_name[fam.keypoint_names[j]] for j in g)) for g in fam.symmetric_groups}
    assert groups == {tuple(sorted(g)) for g in table.sym_groups}


def test_tvmonitor_orientation_and_outlines():
    fam, insts = _insts("tvmonitor")
    for inst in insts:
        p = inst.params
        scr = _kp(fam, inst, "screen_center")
        body = _slot_vertices(fam, inst, "body").mean(0)
        assert scr[2] > body[2], "the screen faces +z"
        for ring in ("outer", "inner"):
            tl, tr = _kp(fam, inst, f"{ring}_top_left"), _kp(fam, inst, f"{ring}_top_right")
            bl = _kp(fam, inst, f"{ring}_bottom_left")
            assert tl[0] > 0 > tr[0] and tl[1] > bl[1]
            np.testing.assert_allclose(tl * [-1, 1, 1], tr, atol=1e-9)
            assert abs(_kp(fam, inst, f"{ring}_top")[0]) < 1e-9
            assert _kp(fam, inst, f"{ring}_side_left")[1] < tl[1]
        # the inner corner is the screen outline's 45-degree point: on a sharp rectangle, the corner itself
        hu, hv, r, _ = _inner(p)
        tl, bl = _kp(fam, inst, "inner_top_left"), _kp(fam, inst, "inner_bottom_left")
        cut = r * (1 - 1 / np.sqrt(2)) * 1.5
        assert hu - cut <= tl[0] <= hu + 1e-9 and abs((tl[1] - bl[1]) / 2 - hv) <= cut
        # the inner outline lies inside the outer one by the bezel widths
        ou, ov, _, _ = _outer(p)
        assert _kp(fam, inst, "outer_side_left")[0] - _kp(fam, inst, "inner_side_left")[0] == pytest.approx(
            p["bezel_side"], abs=1e-9
        )
        top_gap = _kp(fam, inst, "outer_top")[1] - _kp(fam, inst, "inner_top")[1]
        assert top_gap == pytest.approx(p["bezel_top"], abs=1e-9)
        w, h = _screen_half(p)
        assert w / h == pytest.approx(p["aspect"]) and 2 * np.hypot(w, h) == pytest.approx(p["diag"])
        depth = np.ptp(inst.vertices[:, 2])
        if p["crt"]:
            assert _has(fam, inst, "crt_tube") and depth > 0.2
        else:
            assert not _has(fam, inst, "crt_tube") and depth < 0.35


def test_tvmonitor_variants_occur():
    fam, insts = _insts("tvmonitor")
    params = [i.params for i in insts]
    assert {p["stand"] for p in params} == {"pedestal", "feet", "none"}
    assert any(p["crt"] for p in params) and not all(p["crt"] for p in params)
    flat = [p["aspect"] for p in params if not p["crt"]]
    assert min(flat) < 1.4 and max(flat) > 2.2  # 4:3 to 21:9
    for inst in insts:
        if inst.params["stand"] == "none":
            lo = _kp(fam, inst, "outer_bottom")[1]
            assert lo < 0.02  # wall-mounted: the panel itself is the lowest thing


@pytest.mark.slow
def test_pottedplant_pot_keypoints_and_orientation():
    fam, insts = _insts("pottedplant")
    for inst in insts:
        p = inst.params
        pot = _slot_vertices(fam, inst, "pot")
        rim_l, rim_r = _kp(fam, inst, "rim_left"), _kp(fam, inst, "rim_right")
        rim_f, rim_b = _kp(fam, inst, "rim_front"), _kp(fam, inst, "rim_back")
        assert rim_l[1] == pytest.approx(pot[:, 1].max(), abs=1e-9)  # the rim is the pot's top
        r_rim = p["r_top"] + p["lip_w"] - 0.35 * (p["lip_w"] + p["wall"])  # on the rim's flat top
        assert rim_l[0] == pytest.approx(r_rim, abs=1e-9)  # left is +x
        np.testing.assert_allclose(rim_l * [-1, 1, 1], rim_r, atol=1e-9)
        # build() centres the bounding box (foliage included) in z: the pot's axis is where the rim says
        axis_z = 0.5 * (rim_f[2] + rim_b[2])
        assert rim_f[2] - rim_b[2] == pytest.approx(2 * r_rim) and abs(rim_l[2] - axis_z) < 1e-9
        base_l, base_f = _kp(fam, inst, "base_left"), _kp(fam, inst, "base_front")
        assert 0 < base_l[1] - pot[:, 1].min() < 0.08 * p["pot_h"] and base_f[2] > axis_z
        wall = _kp(fam, inst, "wall_left")
        assert base_l[1] < wall[1] < rim_l[1] and wall[0] > 0
        if p["saucer"]:
            assert pot[:, 1].min() > 1e-3  # the pot stands in the saucer
        soil = _kp(fam, inst, "soil_center")
        assert base_l[1] < soil[1] < rim_l[1] + p["mound"] + 1e-9


def test_pottedplant_square_and_round_pots_correspond_by_angle():
    fam = get_family("pottedplant")
    p = fam.template_params()
    sq = dict(p, corner=0.2)
    a, b = fam.build(p, "round"), fam.build(sq, "square")
    np.testing.assert_array_equal(a.faces[a.face_slot == 0], b.faces[b.face_slot == 0])
    # the rim's front point is the middle of a square pot's front side, the 45-degree vertex its corner
    rs, _ = _pot_profile(sq)
    pot = _slot_vertices(fam, b, "pot")
    assert _kp(fam, b, "rim_front")[2] - _kp(fam, b, "rim_back")[2] == pytest.approx(2 * rs[11])
    assert np.abs(pot[:, 0]).max() == pytest.approx(pot[:, 2].max())


@pytest.mark.slow
def test_pottedplant_habits_and_sides():
    fam, insts = _insts("pottedplant", 60)
    assert {i.params["habit"] for i in insts} == set(HABITS)
    for inst in insts:
        habit = inst.params["habit"]
        soil_y = _kp(fam, inst, "soil_center")[1] - inst.params["mound"]
        for s, spec in enumerate(fam.slots):
            if not fam.present_slots(inst)[s] or spec.part in ("pot", "soil", "saucer"):
                continue
            v = _slot_vertices(fam, inst, spec.name)
            if spec.side == "left":
                assert v[:, 0].mean() > 0, spec.name
            elif spec.side == "right":
                assert v[:, 0].mean() < 0, spec.name
            if spec.part == "vine":
                # a trailing stem ends outside and below the rim
                rim = _kp(fam, inst, "rim_left")
                tip = v[np.argmin(v[:, 1])]
                assert tip[1] < rim[1] - 0.02 and np.hypot(tip[0], tip[2]) > rim[0] * 0.98
            elif spec.part != "vine":
                assert v[:, 1].max() > soil_y, spec.name  # foliage grows above the soil
        n_foliage = sum(1 for s, on in zip(fam.slots, fam.present_slots(inst)) if on and s.part not in
                        ("pot", "soil", "saucer"))  # fmt: skip
        assert n_foliage >= {"leafy": 8, "bushy": 5, "trailing": 6, "cactus": 1, "palm": 9}[habit]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pottedplant", "tvmonitor"])
def test_no_slot_collapses_over_many_pairs(name):
    report = family_distortion(get_family(name), n_pairs=40, seed=11)
    bad = {s: r for s, r in report.items() if r["area_frac_outside"] > 0.005}
    assert not bad, f"slots leaving {STRETCH_LIMIT}x of their scale: {bad}"
