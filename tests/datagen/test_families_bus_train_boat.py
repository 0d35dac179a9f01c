"""The bus, train and boat families: SPair-71k keypoint tables, orientation, sizes, variants, exact maps."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from datagen.families import get_family
from datagen.families.distortion import family_distortion
from datagen.real.tables import spair_table

NAMES = ("bus", "train", "boat")
SPAIR_IDS = {"bus": [*range(8), *range(10, 30)], "train": list(range(18)), "boat": list(range(14))}


@functools.cache
def _insts(name: str, n: int = 40) -> tuple:
    fam = get_family(name)
    rng = np.random.default_rng(77)
    return fam, [fam.build(fam.sample_params(rng), str(i)) for i in range(n)]


def _kp(fam, inst, name: str) -> np.ndarray:
    return fam.keypoint_positions(inst)[fam.keypoint_names.index(name)]


def _has(fam, inst, slot: str) -> bool:
    return bool(fam.present_slots(inst)[fam.slot_index(slot)])


def _slot_vertices(fam, inst, slot: str) -> np.ndarray:
    return inst.vertices[np.unique(inst.faces[inst.face_slot == fam.slot_index(slot)])]


@pytest.mark.parametrize("name", NAMES)
def test_spair_index_map_agrees_with_the_benchmark_tables(name):
    """Every used SPair id is mapped once, with SPair's side; flips and symmetric groups are SPair's."""
    fam = get_family(name)
    table = spair_table(name)
    ids = {}
    for k in fam.keypoints:
        i = int(fam.spair_notes[k.name])
        assert i not in ids, f"SPair id {i} used twice"
        ids[i] = k
        assert table.sides[i] == k.side, (k.name, i, table.sides[i])
    assert sorted(ids) == SPAIR_IDS[name]
    by_name = {k.name: i for i, k in ids.items()}
    perm = fam.flip_permutation
    ours = {i: by_name[fam.keypoints[perm[fam.keypoint_names.index(k.name)]].name] for i, k in ids.items()}
    assert ours == {i: table.flip_perm[i] for i in SPAIR_IDS[name]}
    groups = {tuple(sorted(by_name[fam.keypoint_names[j]] for j in g)) for g in fam.symmetric_groups}
    assert groups == {tuple(sorted(g)) for g in table.sym_groups}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_slot_keeps_its_map_exact(name):
    """The issue's exactness rule: no slot has more than 0.5 % of its area stretched beyond 10x between instances."""
    fam = get_family(name)
    for slot, d in family_distortion(fam, n_pairs=30, seed=3).items():
        assert d["area_frac_outside"] <= 0.005, (slot, d)


@pytest.mark.slow
def test_bus_sizes_orientation_and_parts():
    fam, insts = _insts("bus")
    kinds = {i.params["kind"] for i in insts}
    assert kinds == {"city", "coach", "minibus", "double"}
    for inst in insts:
        p = inst.params
        size = np.ptp(inst.vertices, axis=0)
        assert 5.4 < size[2] < 14.5 and 1.9 < size[0] < 3.4 and 2.3 < size[1] < 4.6, size
        assert inst.vertices[:, 1].min() == pytest.approx(0.0, abs=1e-9)
        # the front is +z: headlights, the front plate and the windshield at the front, taillights at the back
        assert (
            _kp(fam, inst, "headlight_left")[2] > 0.4 * size[2] and _kp(fam, inst, "taillight_left")[2] < -0.4 * size[2]
        )
        assert _kp(fam, inst, "plate_front")[2] > 0 > _kp(fam, inst, "plate_rear")[2]
        assert _kp(fam, inst, "windshield_top_left")[2] > 0 > _kp(fam, inst, "rear_window_top_left")[2]
        top, bottom = _kp(fam, inst, "windshield_top_left"), _kp(fam, inst, "windshield_bottom_left")
        assert top[1] > bottom[1] and top[0] > 0 and bottom[0] > 0
        # the wheels stand on the ground, the front wheel is ahead of the rear one; its arch ends straddle it
        fw, rw = _kp(fam, inst, "front_wheel_left"), _kp(fam, inst, "rear_wheel_left")
        assert fw[1] == pytest.approx(p["wheel_r"], abs=1e-6) and fw[2] > rw[2]
        a0, a1 = _kp(fam, inst, "front_arch_front_left"), _kp(fam, inst, "front_arch_back_left")
        assert a0[2] > fw[2] > a1[2] and a0[0] > p["width"] / 2
        # mirrors stick out beyond the body on their own side
        assert _kp(fam, inst, "mirror_left")[0] > p["width"] / 2 and _kp(fam, inst, "mirror_right")[0] < -p["width"] / 2
        # windows: count-tagged, front to back, the upper row only on double-deckers
        n = p["n_windows"]
        zs = [_slot_vertices(fam, inst, f"window_n{n}_left_{i}").mean(0)[2] for i in range(1, n + 1)]
        assert np.all(np.diff(zs) < 0)
        assert _has(fam, inst, f"upper_window_n{n}_left_1") == (p["kind"] == "double")
        assert _has(fam, inst, "windshield_upper") == (p["kind"] == "double")
        if p["kind"] == "double":
            assert size[1] > 4.1


def test_train_shapes_and_windshield_corners():
    fam, insts = _insts("train")
    assert {i.params["kind"] for i in insts} == {"loco", "highspeed", "tram"}
    for inst in insts:
        p = inst.params
        size = np.ptp(inst.vertices, axis=0)
        assert 9.9 < size[2] < 26.5 and 2.2 < size[0] < 3.2, size
        ft, fb = _kp(fam, inst, "front_top_left"), _kp(fam, inst, "front_bottom_left")
        bt, bb = _kp(fam, inst, "back_top_left"), _kp(fam, inst, "back_bottom_left")
        assert ft[1] > fb[1] and bt[1] > bb[1] and ft[2] > bt[2] and fb[2] > bb[2]
        assert fb[2] == pytest.approx(_slot_vertices(fam, inst, "body")[:, 2].max(), abs=1e-6)  # front face
        # the high-speed nose runs far ahead of the roof's end; a locomotive's front is nearly flat
        run = fb[2] - ft[2]
        assert run > 4.0 if p["kind"] == "highspeed" else run < 2.5
        to, bo = _kp(fam, inst, "window_corner_top_outer_left"), _kp(fam, inst, "window_corner_bottom_outer_left")
        ti, bi = _kp(fam, inst, "window_corner_top_inner_left"), _kp(fam, inst, "window_corner_bottom_inner_left")
        assert to[0] > ti[0] > 0 and bo[0] > bi[0] > 0  # outer corners at the body side, inner at the pillar
        assert to[1] > bo[1] and ti[1] > bi[1]  # top above bottom
        assert ti[0] == pytest.approx(bi[0] * (ti[0] / bi[0]))  # both on the same pane
        gap = 2 * min(ti[0], bi[0])
        assert gap >= 0.9 * p["pillar"]
        light = _kp(fam, inst, "light_left")
        assert light[2] > fb[2] - 1e-6 and light[1] < ft[1]
        if p["pantograph"]:
            assert _slot_vertices(fam, inst, "pantograph")[:, 1].max() > ft[1] + 0.5
        assert _has(fam, inst, "buffer_left") == p["buffers"]


def test_train_sections_have_flat_sides_and_a_vertex_at_the_corner_keypoints():
    """The train's own section ring: side and roof exactly flat, mirror symmetric, the corner arc's middle point
    at the corner keypoints (``section_point`` at +-pi/4)."""
    from datagen.families.train import _section_ring, _stations
    from datagen.families.vehicle_parts import section_point

    fam, insts = _insts("train")
    for inst in insts:
        for st in _stations(inst.params):
            z, hw, y0, y1, r = st
            ring = _section_ring(st)
            assert ring.shape == (32, 3) and np.allclose(ring[:, 2], z)
            x, y = ring[:, 0], ring[:, 1]
            assert np.allclose(x[[0, 1, 2]], hw) and np.allclose(y[[6, 7, 8, 9, 10]], y1)  # flat side, flat roof
            assert np.allclose(x[[14, 15, 16, 17, 18]], -hw) and np.allclose(y[[22, 23, 24, 25, 26]], y0)
            assert np.allclose(ring[(np.arange(32) * -1 + 16) % 32] * [-1, 1, 1], ring)  # mirror in x = 0
            if r < 0.9 * min(hw, (y1 - y0) / 2):  # (rounder corners are clipped to keep 10 % of each flat)
                assert np.allclose(ring[4], section_point(st, np.pi / 4))
                assert np.allclose(ring[28], section_point(st, -np.pi / 4))
            assert x.max() == pytest.approx(hw) and y.max() == pytest.approx(y1) and y.min() == pytest.approx(y0)


def test_boat_hull_rests_on_the_keel_and_points_forward():
    fam, insts = _insts("boat", 60)
    assert {i.params["kind"] for i in insts} == {"dinghy", "sailboat", "motorboat", "ship"}
    for inst in insts:
        p = inst.params
        hull = _slot_vertices(fam, inst, "hull")
        assert hull[:, 1].min() == pytest.approx(0.0, abs=1e-9)  # the keel on y = 0
        bow, stern = _kp(fam, inst, "bow"), _kp(fam, inst, "stern")
        assert bow[2] == pytest.approx(hull[:, 2].max()) and stern[2] == pytest.approx(hull[:, 2].min())
        assert abs(bow[0]) < 1e-9 and abs(stern[0]) < 1e-9
        assert hull[:, 2].max() - hull[:, 2].min() == pytest.approx(p["length"])
        assert 0.97 * p["beam"] < np.ptp(hull[:, 0]) <= p["beam"] + 1e-9  # the widest station is near max_at
        for part in ("front", "side", "back"):
            up, lo = _kp(fam, inst, f"upper_{part}_left"), _kp(fam, inst, f"lower_{part}_left")
            assert up[1] > lo[1] and up[0] > 0 and lo[0] > 0
        zs = [_kp(fam, inst, f"upper_{k}_left")[2] for k in ("back", "side", "front")]
        assert np.all(np.diff(zs) > 0)
        assert _has(fam, inst, "sail") <= _has(fam, inst, "mast") and _has(fam, inst, "mast") == (
            p["kind"] == "sailboat"
        )
        if _has(fam, inst, "mast"):
            assert _slot_vertices(fam, inst, "mast")[:, 1].max() > 0.9 * p["length"]
        if p["kind"] == "ship":
            assert p["length"] >= 30 and not _has(fam, inst, "motor")
        if _has(fam, inst, "window_n2_left_1") or _has(fam, inst, "window_n3_left_1"):
            assert _has(fam, inst, "deckhouse") or _has(fam, inst, "superstructure")
