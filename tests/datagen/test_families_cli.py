"""``datagen categories``: text and JSON listings of the families."""

from __future__ import annotations

import json

from datagen.cli import main
from datagen.families import family_names, get_family


def test_categories_json_lists_every_family(capsys):
    assert main(["categories", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in doc["families"]] == family_names()
    for f in doc["families"]:
        fam = get_family(f["name"])
        assert [k["name"] for k in f["keypoints"]] == fam.keypoint_names
        assert f["flip_permutation"] == fam.flip_permutation
        assert len(f["slots"]) == len(fam.slots)
        assert any(s["optional"] for s in f["slots"])
        sides = {k["side"] for k in f["keypoints"]}
        assert sides <= {"left", "right", "center"} and {"left", "right"} <= sides


def test_categories_text_and_unknown_name(capsys):
    assert main(["categories", "chair", "--slots"]) == 0
    out = capsys.readouterr().out
    assert "seat_front_left" in out and "SPair 1" in out and "back_slat_n4_left_2" in out
    assert main(["categories", "no_such_family"]) == 2
    assert "unknown category no_such_family" in capsys.readouterr().err
