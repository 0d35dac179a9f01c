"""The SPair-71k animal categories (cat, cow, dog, horse, sheep: presets of the quadruped's parts), their keypoint
maps to SPair-71k and AP-10K, fur appearance, the ``datagen categories`` table and the 18-category data manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from datagen.cli import main
from datagen.families import family_names, get_family

ROOT = Path(__file__).resolve().parents[2]
ANIMALS = ("cat", "cow", "dog", "horse", "sheep")

# SPair-71k's keypoint ids per animal category (GeoAware-SC's SPAIR_FLIP pairs, SPAIR_LR: 1 = left, 2 = right)
SPAIR_N = {"cat": 15, "cow": 21, "dog": 16, "horse": 20, "sheep": 21}
SPAIR_LR = {
    "cat": [2, 1, 2, 1, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0],
    "cow": [2, 1, 2, 1, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1, 2, 1],
    "dog": [2, 1, 2, 1, 2, 1, 0, 0, 0, 2, 1, 2, 1, 0, 0, 0],
    "horse": [2, 1, 2, 1, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1],
    "sheep": [2, 1, 2, 1, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0, 2, 1, 2, 1, 2, 1],
}
SPAIR_PAIRS = {
    "cat": [(0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12)],
    "cow": [(0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12), (15, 16), (17, 18), (19, 20)],
    "dog": [(0, 1), (2, 3), (4, 5), (9, 10), (11, 12)],
    "horse": [(0, 1), (2, 3), (4, 5), (6, 7), (10, 11), (12, 13), (16, 17), (18, 19)],
    "sheep": [(0, 1), (2, 3), (4, 5), (6, 7), (9, 10), (11, 12), (15, 16), (17, 18), (19, 20)],
}
AP10K_PAIRS = [(0, 1), (5, 8), (6, 9), (7, 10), (11, 14), (12, 15), (13, 16)]  # GeoAware-SC's AP10K_FLIP
COVERAGE = {"cat": 12, "cow": 18, "dog": 10, "horse": 16, "sheep": 18}


def _params(name: str, n: int = 40, seed: int = 0) -> list[dict]:
    fam = get_family(name)
    rng = np.random.default_rng(seed)
    return [fam.sample_params(rng) for _ in range(n)]


def _spair(fam) -> dict[str, int]:
    return {k: int(v) for k, v in fam.spair_notes.items() if v.isdigit()}


def test_animals_are_registered_and_share_the_quadrupeds_topology():
    assert set(ANIMALS) | {"quadruped"} <= set(family_names())
    base = [(s.name, s.n_faces, s.part, s.side, s.optional) for s in get_family("quadruped").slots]
    for name in ANIMALS:
        fam = get_family(name)
        assert fam.name == name
        assert [(s.name, s.n_faces, s.part, s.side, s.optional) for s in fam.slots] == base, name


def test_presets_differ_as_the_animals_do():
    legs = {n: [p["leg_len"] / p["body_len"] for p in _params(n)] for n in ANIMALS}
    assert min(legs["horse"]) > max(legs["dog"]) > 0
    assert min(legs["horse"]) > max(legs["cow"]) and min(legs["horse"]) > max(legs["sheep"])
    assert max(legs["cat"]) < min(legs["horse"])
    size = {n: np.median([p["body_len"] for p in _params(n)]) for n in ANIMALS}
    assert size["cat"] < size["dog"] < size["sheep"] < size["horse"] <= size["cow"] * 1.1
    neck = {n: np.median([p["neck_len"] / p["body_len"] for p in _params(n)]) for n in ANIMALS}
    assert neck["horse"] > max(neck[n] for n in ("cat", "cow", "dog", "sheep"))
    tail = {n: np.median([p["tail_len"] / p["body_len"] for p in _params(n)]) for n in ANIMALS}
    assert tail["sheep"] < min(tail[n] for n in ("cat", "cow", "dog", "horse"))
    assert tail["cat"] > tail["dog"]
    droop = {n: [p.get("ear_droop_deg", 0.0) for p in _params(n)] for n in ANIMALS}
    assert max(droop["dog"]) > 90.0 and min(droop["dog"]) < 20.0  # floppy and pointed dogs
    assert max(droop["cat"]) <= 10.0 and max(droop["horse"]) <= 10.0  # pointed, upright


def test_horns_only_on_cows_and_sheep():
    for name in ANIMALS:
        fam = get_family(name)
        horns = [p["horns"] for p in _params(name)]
        has_kp = any("horn" in k for k in fam.keypoint_names)
        if name in ("cow", "sheep"):
            assert any(horns) and not all(horns), name
            assert has_kp
        else:
            assert not any(horns), name
            assert not has_kp
        for p in _params(name, 6):
            inst = fam.build(p, "x")
            present = {fam.slots[s].name for s in np.unique(inst.face_slot)}
            assert ("horn_left" in present) == ("horn_right" in present) == bool(p["horns"])


@pytest.mark.parametrize("name", ANIMALS)
def test_spair_keypoint_map_matches_spairs_set(name):
    fam = get_family(name)
    spair = _spair(fam)
    idx = list(spair.values())
    assert len(idx) == len(set(idx)) == COVERAGE[name]  # one keypoint per SPair id
    assert all(0 <= i < SPAIR_N[name] for i in idx)
    sides = {k.name: k.side for k in fam.keypoints}
    for kp, i in spair.items():  # SPair's left / right / centre label agrees with ours
        assert {"left": 1, "right": 2, "center": 0}[sides[kp]] == SPAIR_LR[name][i], (kp, i)
    assert len(fam.keypoints) <= 40  # loaders.batch.MAX_KEYPOINTS


@pytest.mark.parametrize("name", ANIMALS)
def test_flip_permutation_matches_spair_and_ap10k_flips(name):
    fam = get_family(name)
    perm, names = fam.flip_permutation, fam.keypoint_names
    assert sorted(perm) == list(range(len(names))) and all(perm[perm[i]] == i for i in range(len(perm)))
    for i, k in enumerate(fam.keypoints):
        if k.side == "center":
            assert perm[i] == i
        else:
            assert names[perm[i]] == k.name.replace(k.side, {"left": "right", "right": "left"}[k.side])
    twin = dict(SPAIR_PAIRS[name]) | {b: a for a, b in SPAIR_PAIRS[name]}
    spair = _spair(fam)
    for kp, i in spair.items():
        assert spair.get(names[perm[names.index(kp)]]) == twin.get(i, i), kp
    ap = {k: int(v) for k, v in fam.ap10k_notes.items() if v != "-"}
    assert sorted(ap.values()) == list(range(17))  # every AP-10K keypoint, once
    ap_twin = dict(AP10K_PAIRS) | {b: a for a, b in AP10K_PAIRS}
    for kp, i in ap.items():
        assert ap[names[perm[names.index(kp)]]] == ap_twin.get(i, i), kp
    for g in fam.symmetric_groups:  # groups are closed under the flip
        assert {perm[i] for i in g} == set(g)


@pytest.mark.parametrize("name", ANIMALS)
def test_keypoints_sit_on_every_instance(name):
    fam = get_family(name)
    for p in _params(name, 5, seed=3):
        inst = fam.build(p, "x")
        kp = fam.keypoint_positions(inst)
        present = fam.keypoint_present(inst)
        assert np.isfinite(kp[present]).all()
        assert inst.vertices[:, 1].min() == pytest.approx(0.0, abs=1e-9)


def test_fur_appearance_is_drawn_per_group_and_reproducible():
    from datagen.render.mesh import prepare_mesh

    for name in ANIMALS:
        fam = get_family(name)
        inst = fam.build(_params(name, 1, seed=5)[0], "x")
        groups = prepare_mesh(inst, fam).group_names
        a = fam.sample_appearance(np.random.default_rng(1), groups)
        b = fam.sample_appearance(np.random.default_rng(1), groups)
        assert len(a.materials) == len(groups)
        assert all(m.metallic == 0.0 for m in a.materials)
        assert [m.meta() for m in a.materials] == [m.meta() for m in b.materials]
        coat = a.materials[groups.index("coat")]
        assert coat.texture is not None and coat.texture.dtype == np.uint8


def test_categories_table_lists_all_18_with_coverage(capsys):
    from datagen.commands.categories import SPAIR_CATEGORIES

    assert len(SPAIR_CATEGORIES) == 18
    assert main(["categories"]) == 0
    out = capsys.readouterr().out
    for c in SPAIR_CATEGORIES:
        assert re.search(rf"^{c}\s", out, re.M), c
    for name, n in COVERAGE.items():
        assert re.search(rf"^{name}\s.*\s{n}/{SPAIR_N[name]}\s+17/17", out, re.M), name
    assert re.search(r"^chair\s.*\s14/14\s", out, re.M)
    assert main(["categories", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["category"]: r for r in doc["table"]}
    assert set(SPAIR_CATEGORIES) <= set(rows)
    assert rows["dog"]["spair_mapped"] == 10 and rows["dog"]["spair_keypoints"] == 16
    assert rows["dog"]["ap10k_mapped"] == 17


def test_categories_prints_a_missing_family_instead_of_failing(capsys, monkeypatch):
    import datagen.families as families

    registry = dict(families._REGISTRY)
    for gone in ("cat", "bicycle"):
        registry.pop(gone, None)
    monkeypatch.setattr(families, "_REGISTRY", registry)
    assert main(["categories"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^cat\s+MISSING: none yet\s.*0/15", out, re.M)
    assert re.search(r"^bicycle\s+MISSING", out, re.M)
    assert main(["categories", "cat"]) == 2
    assert "without a family yet" in capsys.readouterr().err


def test_spair18_manifest_mixes_every_category_and_the_recipe_reads_it():
    import yaml

    from datagen.commands.categories import SPAIR_CATEGORIES
    from training.train.manifest import load_run_manifest

    path = ROOT / "manifests" / "data" / "spair18.yaml"
    doc = yaml.safe_load(path.read_text())
    assert list(doc["sources"]) == list(SPAIR_CATEGORIES)
    assert all(s == {"path": f"synthetic/{c}", "weight": 1.0} for c, s in doc["sources"].items())
    header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert all(c in header for c in SPAIR_CATEGORIES) and "--out data/synthetic/$c" in header
    m = load_run_manifest(ROOT / "manifests" / "runs" / "vggt1b_spair.yaml")
    assert m.data.sources["synthetic"].path == "manifests/data/spair18.yaml"
    assert all("synthetic" in stage.data for stage in m.stages)
