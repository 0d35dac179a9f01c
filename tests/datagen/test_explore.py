"""The correspondence explorer (``datagen explore``, ``semmatch match/eval --html``): the page's encoding, and the
pages themselves in a headless Chromium, hovered pixel by pixel against the shards' ground truth."""

from __future__ import annotations

import re
import time
import zlib
from base64 import b64decode
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datagen.explore import encode_field, keypoint_sides, pair_record, read_pairs, write_page
from datagen.explore.browser import browser_problem, hover_pixel, launch, open_page
from loaders.codec import decode_plane
from loaders.schema import CORR_STEP_PX, Status
from loaders.synthetic import synthetic_pair

PROBLEM = browser_problem()
needs_browser = pytest.mark.skipif(PROBLEM is not None, reason=f"no headless browser: {PROBLEM}")
STATUS_NAMES = {0: "background", 1: "matched", 2: "occluded", 3: "outside", 4: "no counterpart"}


def _decode(enc: dict) -> np.ndarray:
    """Python mirror of the page's decoder (tests the encoding without a browser)."""
    h, w, c = enc["shape"]
    plane = np.frombuffer(zlib.decompress(b64decode(enc["plane"])), np.uint8)
    esc = np.frombuffer(zlib.decompress(b64decode(enc["esc"])), "<i4")
    q = decode_plane(plane, esc[: len(esc) // 2], esc[len(esc) // 2 :], (h, w, c), enc["base"])
    return np.asarray(q, np.float64) * enc["step"]


def test_encoded_fields_are_the_shards_values_exactly():
    s = synthetic_pair(96, np.random.default_rng(0), "k")
    stored = np.isin(s["status_0to1"], [1, 2, 3])
    enc = encode_field(s["corr_0to1"], stored, CORR_STEP_PX)
    back = _decode(enc)
    want = np.rint(s["corr_0to1"][stored] / CORR_STEP_PX) * CORR_STEP_PX
    np.testing.assert_array_equal(back[stored], want)
    assert encode_field(s["corr_0to1"], np.zeros((96, 96), bool), 1.0) is None


def test_keypoint_sides_from_names_and_mirror():
    names = ["seat_front_left", "seat_front_right", "seat_center", "LeftEye", "r_paw"]
    assert keypoint_sides(names) == ["L", "R", "", "L", "R"]
    assert keypoint_sides(["a_left", "b"], flip_perm=[0, 1]) == ["", ""]


@pytest.mark.slow
def test_a_518_pair_fits_the_size_budget():
    """≤ 2 MB per 518² pair in the page, photo-like images and a prediction included (worst case)."""
    rng = np.random.default_rng(1)
    s = synthetic_pair(518, rng, "k", photo=True)
    yy, xx = np.mgrid[0:518, 0:518].astype(np.float64)
    noisy = np.stack([xx, yy], -1) + rng.normal(0, 2.0, (518, 518, 2))  # a rough predicted field
    conf = rng.uniform(0, 1, (518, 518))
    rec = pair_record(s, {"corr_0to1": noisy, "conf0": conf, "corr_1to0": noisy, "conf1": conf})
    size = len(write_page_text([rec]))
    assert size < 2_000_000, size


def write_page_text(records: list[dict]) -> str:
    from datagen.explore import build_page

    return build_page(records, "t")


# ------------------------------------------------------------------------------------------------ browser tests


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """A small rendered chair dataset (every status occurs at 96²)."""
    from datagen.cli import main

    root = tmp_path_factory.mktemp("explore") / "chair"
    args = ["render", "--category", "chair", "--n", "6", "--size", "96", "--out", str(root), "--workers", "1"]
    assert main(args) == 0
    return root


@pytest.fixture(scope="module")
def page_file(rendered) -> Path:
    from datagen.cli import main

    out = rendered.parent / "explore.html"
    assert main(["explore", str(rendered), "--out", str(out), "--pairs", "6"]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    if PROBLEM is not None:
        pytest.skip(f"no headless browser: {PROBLEM}")
    with launch() as b:
        yield b


def _pick_pixels(status: np.ndarray, rng: np.random.Generator, per_status: int = 3) -> list[tuple[int, int]]:
    out = []
    for code in range(5):
        ys, xs = np.nonzero(status == code)
        for k in rng.choice(len(xs), size=min(per_status, len(xs)), replace=False) if len(xs) else []:
            out.append((int(xs[k]), int(ys[k])))
    return out


@pytest.mark.slow
@needs_browser
def test_hover_shows_the_shards_ground_truth_both_ways(rendered, page_file, browser):
    samples = list(read_pairs(rendered))
    rng = np.random.default_rng(0)
    seen = set()
    with open_page(browser, page_file) as (page, errors):
        for i in (0, 2):
            page.evaluate(f"explorer.select({i})")
            page.wait_for_function(f"document.body.dataset.pair === '{i}'")
            s = samples[i]
            for v, d in ((0, "0to1"), (1, "1to0")):
                status, corr = s[f"status_{d}"], s[f"corr_{d}"]
                for x, y in _pick_pixels(status, rng):
                    r = hover_pixel(page, v, x, y)
                    assert (int(r["view"]), int(r["x"]), int(r["y"])) == (v, x, y)
                    code = int(status[y, x])
                    assert r["status"] == STATUS_NAMES[code]
                    seen.add(code)
                    if code in (1, 2, 3):
                        shown = np.array([float(r["gtX"]), float(r["gtY"])])
                        assert np.abs(shown - corr[y, x]).max() <= 0.5, (v, x, y, shown, corr[y, x])
                        assert np.abs(shown - corr[y, x]).max() <= CORR_STEP_PX  # in fact: the stored value
                    else:
                        assert r["gtX"] == ""
                    if code:
                        assert abs(float(r["depth"]) - s[f"depth{v}"][y, x]) < 1e-3
        # a click pins the read-out: moving elsewhere does not change it until the next click
        r = hover_pixel(page, 0, 40, 40, click=True)
        page.mouse.move(5, 5)
        assert page.evaluate("document.getElementById('readout').dataset.x") == r["x"]
        # arrow keys step one pixel, and the read-out follows the shard
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        r = page.evaluate("Object.assign({}, document.getElementById('readout').dataset)")
        assert (int(r["x"]), int(r["y"])) == (41, 41)
        s = samples[2]
        assert r["status"] == STATUS_NAMES[int(s["status_0to1"][41, 41])]
        if r["gtX"]:
            assert abs(float(r["gtX"]) - s["corr_0to1"][41, 41, 0]) <= 0.5
        assert not errors, errors
    assert seen >= {0, 1, 2, 4}, seen  # background, matched, occluded, no counterpart were all hovered


def _canvas_digest(page, view: int, which: str = "base") -> int:
    return page.evaluate(
        f"""(() => {{ const c = document.querySelector(".view[data-v='{view}'] canvas.{which}");
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 0;
        for (let k = 0; k < d.length; k += 7) h = (h * 31 + d[k]) >>> 0; return h; }})()"""
    )


@pytest.mark.slow
@needs_browser
def test_toggles_change_what_is_drawn(page_file, browser):
    with open_page(browser, page_file) as (page, errors):
        digests = {}
        for layer in ("none", "status", "canonical", "field"):
            page.check(f"input[name=layer][value={layer}]")
            digests[layer] = (_canvas_digest(page, 0), _canvas_digest(page, 1))
        assert len(set(digests.values())) == 4, digests
        # the canonical layer is the same colour code on both views: both differ from the plain image
        assert digests["canonical"][1] != digests["none"][1]
        top = _canvas_digest(page, 0, "top")
        page.uncheck("#names")
        no_names = _canvas_digest(page, 0, "top")
        page.uncheck("#kps")
        no_kps = _canvas_digest(page, 0, "top")
        assert len({top, no_names, no_kps}) == 3
        page.locator("#alpha").fill("20")
        assert _canvas_digest(page, 0) != digests["field"][0]
        page.select_option("#zoom", "3")
        assert page.locator(".view[data-v='0'] canvas.base").bounding_box()["width"] == 3 * 96
        assert not errors, errors


@pytest.mark.slow
@needs_browser
def test_pair_list_sorts_and_filters(rendered, page_file, browser):
    samples = list(read_pairs(rendered))
    valid = [float((s["status_0to1"] == 1).sum() / max((s["status_0to1"] > 0).sum(), 1)) for s in samples]
    with open_page(browser, page_file) as (page, errors):
        order = lambda: [int(i) for i in page.get_attribute("#list", "data-order").split(",") if i]  # noqa: E731
        assert order() == list(range(6))
        page.click("#list th[data-k='valid_0to1']")
        assert order() == sorted(range(6), key=lambda i: valid[i])
        page.click("#list th[data-k='valid_0to1']")
        assert order() == sorted(range(6), key=lambda i: -valid[i])
        limit = round((sorted(valid)[2] + sorted(valid)[3]) / 2, 4)
        page.fill("#filter", f"valid_0to1<{limit}")
        assert sorted(order()) == sorted(i for i in range(6) if valid[i] < limit)
        page.fill("#filter", samples[4]["__key__"])
        assert order() == [4]
        page.click("#list tbody tr[data-i='4']")
        page.wait_for_function("document.body.dataset.pair === '4'")
        assert not errors, errors


@pytest.mark.slow
@needs_browser
def test_fifty_pairs_at_518_open_and_answer_a_hover_within_a_second(tmp_path, browser):
    rng = np.random.default_rng(2)
    distinct = [pair_record(synthetic_pair(518, rng, f"p{k}", photo=True)) for k in range(5)]
    records = [{**distinct[k % 5], "key": f"pair{k:02d}"} for k in range(50)]
    html = write_page(tmp_path / "fifty.html", records, "fifty")
    per_pair = html.stat().st_size / 50
    assert per_pair < 2_000_000
    errors: list[str] = []
    times = []
    for _ in range(3):  # best of three opens: the machine running the tests may be shared
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        r = hover_pixel(page, 0, 259, 259)
        times.append((time.perf_counter() - t0, float(r["t"]) / 1000))  # wall, and in page since navigation start
        page.close()
    print(
        f"50 pairs at 518²: {html.stat().st_size / 1e6:.1f} MB ({per_pair / 1e6:.2f} MB/pair), open + hover "
        + ", ".join(f"{w * 1000:.0f} ms (in page {p * 1000:.0f})" for w, p in times)
    )
    assert min(w for w, _ in times) < 1.0
    assert not errors, errors


@pytest.mark.slow
@needs_browser
def test_semmatch_match_html(tmp_path, browser):
    from training.cli import main

    rng = np.random.default_rng(3)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / name)
    out = tmp_path / "m.html"
    rc = main(["match", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--checkpoint", "identity", "--size", "56",
               "--out", str(tmp_path / "m.png"), "--html", str(out), "--device", "cpu"])  # fmt: skip
    assert rc == 0 and out.is_file()
    with open_page(browser, out) as (page, errors):
        for v, (x, y) in ((0, (10, 20)), (1, (70, 5))):
            r = hover_pixel(page, v, x, y)
            assert abs(float(r["predX"]) - x) < 0.05 and abs(float(r["predY"]) - y) < 0.05  # identity, same size
            assert r["gtX"] == "" and 0.0 <= float(r["conf"]) <= 1.0
        page.check("input[name=layer][value=conf]")
        assert not errors, errors


@pytest.mark.slow
@needs_browser
def test_semmatch_eval_html_report(rendered, tmp_path, browser):
    from training.cli import main

    out = tmp_path / "report.html"
    rc = main(["eval", "--checkpoint", "identity", "--shards", str(rendered), "--size", "56", "--device", "cpu",
               "--out", str(tmp_path / "ev"), "--html", str(out), "--html-pairs", "6"])  # fmt: skip
    assert rc == 0 and out.is_file()
    samples = {s["__key__"]: s for s in read_pairs(rendered)}
    with open_page(browser, out) as (page, errors):
        assert page.locator("#pcktable").count() == 1 and page.locator("#pckcurve").count() == 1
        overall = page.locator("#pcktable tr").nth(1).inner_text()
        assert overall.startswith("overall")
        # worst pairs first: the list's PCK column does not decrease
        pcks = [c.inner_text() for c in page.locator("#list tbody tr td:nth-child(2)").all()]
        values = [float(p.rstrip("%")) for p in pcks if p != "–"]
        assert values == sorted(values)
        key = page.locator("#list tbody tr").first.locator("td").first.inner_text()
        s = samples[key]
        ys, xs = np.nonzero(s["status_0to1"] == Status.MATCHED)
        x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
        r = hover_pixel(page, 0, x, y)
        assert np.abs(np.array([float(r["gtX"]), float(r["gtY"])]) - s["corr_0to1"][y, x]).max() <= 0.5
        assert abs(float(r["predX"]) - x) < 0.05 and abs(float(r["predY"]) - y) < 0.05  # identity on equal sizes
        assert re.search(r"error \d+\.\d+ px", page.inner_text("#readout"))
        assert page.locator("#kptable").count() == 1
        for layer in ("conf", "error"):
            page.check(f"input[name=layer][value={layer}]")
        assert not errors, errors


def test_the_page_is_self_contained(page_file):
    text = page_file.read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:|//)", text) and "fetch(" not in text and "import(" not in text


def test_explore_cli_errors(tmp_path, capsys):
    from datagen.cli import main

    assert main(["explore", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.html")]) == 2
    assert "datagen explore: error" in capsys.readouterr().err
    assert main(["explore", str(tmp_path), "--pairs", "0"]) == 2


@pytest.mark.slow
def test_semmatch_eval_html_on_a_real_benchmark(tmp_path, request):
    """Real pairs (no dense ground truth): the worst pairs of the split by PCK, keypoints scored, no dense fields."""
    import json

    from test_real_formats import write_spair

    from training.cli import main

    spair = write_spair(tmp_path / "SPair-71k")
    out = tmp_path / "report.html"
    rc = main(["eval", "--checkpoint", "identity", "--dataset", "spair", "--root", str(spair), "--size", "56",
               "--device", "cpu", "--out", str(tmp_path / "ev"), "--html", str(out), "--html-pairs", "2"])  # fmt: skip
    assert rc == 0
    text = out.read_text()
    blocks = re.findall(r'<script type="application/json" id="pair-\d+">(.*?)</script>', text)
    assert len(blocks) == 2
    recs = [json.loads(b) for b in blocks]
    assert all("status" not in v for r in recs for v in r["views"]) and all("kp" in r["pred"] for r in recs)
    rows = [json.loads(line) for line in (tmp_path / "ev" / "pairs.jsonl").read_text().splitlines()]
    assert {r["key"] for r in recs} <= {r["pair_id"] for r in rows}
    if PROBLEM is None:
        with open_page(request.getfixturevalue("browser"), out) as (page, errors):
            r = hover_pixel(page, 0, 3, 4)
            assert r["status"] == "" and r["predX"] != ""
            assert page.locator("#kptable").count() == 1
            assert not errors, errors
