"""Helpers of scripts/cpu_demo_appearance.sh (issue 13: the effect of appearance on matching, measured).

    python scripts/appearance_bench.py photos --out data/appearance/photos
    python scripts/appearance_bench.py table runs/appearance/eval [--out runs/appearance/table.md]

``photos``: the train and test photo backgrounds, disjoint, from two packages of the ordinary registries (nothing
else is downloaded): Debian's ``mate-backgrounds`` (12 nature photographs, GPL-2+) through ``apt-get download``, and
the images bundled in scikit-image's wheel (``pip download --no-deps``; its real photographs only: no synthetic
test patterns, microscopy or scans). Each source's sorted list is split alternately, so each set gets 6 + 5 = 11
photos, none shared; each is downscaled to at most ``--max-side`` px (a 112 px crop needs no more) and written as
PNG into ``OUT/train`` and ``OUT/test``, with ``OUT/SOURCES.txt`` naming every photo's origin.

``table``: the PCK@0.1 grid from ``EVAL/<model>/<test>/pck.json`` (``semmatch eval`` outputs): one row per trained
model and the identity warp, one column per held-out test set; Markdown on stdout (and ``--out``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MATE_PACKAGE = "mate-backgrounds"
MATE_DIR = "usr/share/backgrounds/mate/nature"
SKIMAGE = "scikit-image==0.26.0"
# the real photographs among scikit-image's bundled data (skimage/data); motorcycle_right is left out: the same
# scene as motorcycle_left
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "motorcycle_left.png",
    "rocket.jpg",
)
EXTS = (".jpg", ".jpeg", ".png")


def _run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch_sources(cache: Path) -> tuple[list[Path], list[Path]]:
    """The MATE nature photos and scikit-image's bundled photographs, fetched into ``cache`` once."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    mate = cache / "mate" / MATE_DIR
    if not mate.is_dir():
        if not list(cache.glob(f"{MATE_PACKAGE}_*.deb")):
            _run(["apt-get", "download", MATE_PACKAGE], cache)
        deb = sorted(cache.glob(f"{MATE_PACKAGE}_*.deb"))[-1]
        _run(["dpkg-deb", "-x", str(deb), str(cache / "mate")], cache)
    skdir = cache / "skimage"
    if not all((skdir / n).is_file() for n in SKIMAGE_PHOTOS):
        if not list(cache.glob("scikit_image-*.whl")):
            _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", SKIMAGE, "-d", str(cache)], cache)
        wheel = sorted(cache.glob("scikit_image-*.whl"))[-1]
        skdir.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for n in SKIMAGE_PHOTOS:
                (skdir / n).write_bytes(z.read(f"skimage/data/{n}"))
    mate_photos = sorted(p for p in mate.iterdir() if p.suffix.lower() in EXTS)
    return mate_photos, [skdir / n for n in SKIMAGE_PHOTOS]


def cmd_photos(args: argparse.Namespace) -> int:
    from PIL import Image

    out = Path(args.out)
    cache = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "semmatch_photo_sources"
    mate, sk = fetch_sources(cache)
    for split in ("train", "test"):
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split).mkdir(parents=True)
    lines = []
    for source, photos in ((f"Debian {MATE_PACKAGE} ({MATE_DIR})", mate), (f"{SKIMAGE} wheel (skimage/data)", sk)):
        for i, p in enumerate(photos):
            split = "train" if i % 2 == 0 else "test"
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((args.max_side, args.max_side), Image.Resampling.LANCZOS)
                im.save(out / split / f"{p.stem}.png")
            lines.append(f"{split}\t{p.stem}.png\t{source}: {p.name}")
    (out / "SOURCES.txt").write_text("\n".join(lines) + "\n")
    for split in ("train", "test"):
        names = sorted(q.name for q in (out / split).iterdir())
        print(f"{split}: {len(names)} photos: {', '.join(names)}")
    return 0


def _pck(path: Path, alpha: float) -> tuple[float, int, int, float | None]:
    rec = json.loads(path.read_text())
    s = rec["summary"]
    o = s["overall"]
    i = [round(a, 6) for a in s["alphas"]].index(round(alpha, 6))
    epe = rec.get("dense", {}).get("all", {}).get("epe_mean")
    return 100 * o["pck"][i], o["pairs"], o["keypoints"], epe


def cmd_table(args: argparse.Namespace) -> int:
    root = Path(args.eval_dir)
    models = args.models or sorted(p.name for p in root.iterdir() if p.is_dir())
    tests = args.tests or sorted({q.name for m in models for q in (root / m).iterdir() if q.is_dir()})
    head = f"| model \\ held-out test set | {' | '.join(tests)} |"
    rows = [head, "|---|" + "---:|" * len(tests)]
    epe_rows = [head.replace("model \\", "dense EPE px: model \\"), rows[1]]
    counts = {}
    for m in models:
        cells, epes = [], []
        for t in tests:
            f = root / m / t / "pck.json"
            if not f.is_file():
                cells.append("–")
                epes.append("–")
                continue
            pck, pairs, kps, epe = _pck(f, args.alpha)
            counts[t] = (pairs, kps)
            cells.append(f"{pck:.1f}")
            epes.append("–" if epe is None else f"{epe:.2f}")
        rows.append(f"| {m} | {' | '.join(cells)} |")
        epe_rows.append(f"| {m} | {' | '.join(epes)} |")
    note = "; ".join(f"{t}: {p} pairs, {k} keypoints" for t, (p, k) in counts.items())
    text = (
        f"PCK@{args.alpha:g} ({args.threshold} threshold), scored on: {note}\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(epe_rows)
        + "\n"
    )
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("photos", help="fetch and split the train / test photo backgrounds")
    p.add_argument("--out", required=True)
    p.add_argument("--cache", default=None, help="where the packages are downloaded (default: a temp folder)")
    p.add_argument("--max-side", type=int, default=512)
    p.set_defaults(func=cmd_photos)
    t = sub.add_parser("table", help="the PCK grid of EVAL/<model>/<test>/pck.json")
    t.add_argument("eval_dir")
    t.add_argument("--models", nargs="*", default=None, help="row order (default: every folder, sorted)")
    t.add_argument("--tests", nargs="*", default=None, help="column order (default: every test folder, sorted)")
    t.add_argument("--alpha", type=float, default=0.1)
    t.add_argument("--threshold", default="bbox", help="the label of the threshold (the evals' own)")
    t.add_argument("--out", default=None)
    t.set_defaults(func=cmd_table)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
