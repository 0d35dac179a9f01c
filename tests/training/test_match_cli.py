"""``semmatch match`` draws a picture of a matcher's matches; the drawing helpers are exact."""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.cli import main
from training.viz import checkerboard, position_colours, warp_into


def test_warp_into_and_checkerboard_are_exact():
    rng = np.random.default_rng(0)
    b = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:10, 0:12]
    corr = np.stack([xx + 5.0, yy + 3.0], -1)  # A pixel (x, y) -> B pixel (x + 5, y + 3)
    warped, inside = warp_into(b, corr)
    assert inside.all() and (warped == b[3:13, 5:17]).all()
    _, inside = warp_into(b, corr + [20.0, 0.0])
    assert not inside[:, -1].any() and inside[:, 0].all()  # x + 25 runs past the 30-px-wide B
    a = np.zeros_like(warped)
    board = checkerboard(a, warped, cells=2)
    assert (board[:6, :6] == 0).all() and (board[:6, 6:12] == warped[:6, 6:12]).all()
    c = position_colours(np.array([[0.0, 0.0], [11.0, 9.0]]), (10, 12))
    assert c[0, 0] < c[1, 0] and c[0, 1] < c[1, 1]  # red grows to the right, green downwards


def test_semmatch_match_writes_a_picture(tmp_path, capsys):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (60, 80, 3)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.jpg")
    Image.fromarray(np.roll(img, 4, axis=1)).save(tmp_path / "b.jpg")
    out = tmp_path / "pics" / "match.png"
    rc = main(["match", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "--checkpoint", "sift", "--size", "84",
               "--out", str(out), "--points", "20"])  # fmt: skip
    assert rc == 0 and str(out) in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size[0] >= 1000 and im.size[1] >= 800
        assert np.asarray(im.convert("L")).std() > 10  # not a blank canvas
    assert main(["match", str(tmp_path / "missing.jpg"), str(tmp_path / "b.jpg"), "--checkpoint", "sift"]) == 2
    assert "missing.jpg" in capsys.readouterr().err
