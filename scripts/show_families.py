"""Draw a grid of sampled instances per procedural family, with keypoints, into PNG files; and the gallery of
every SPair-71k category for the README.

    .venv/bin/python scripts/show_families.py --out docs/figures/families --n 8 --seed 0 [chair car ...]
    .venv/bin/python scripts/show_families.py --gallery      (docs/figures/families/gallery.png only)

``--gallery`` draws one figure with a cell per SPair-71k category (3 instances each, keypoint dots; a category
whose family is not registered yet is a grey "no family yet" cell), see ``datagen.gallery.gallery``.

Writes ``<out>/<family>.png``: ``--n`` instances seen from the front-left and above (the object's left, +x, is on
the picture's right), rendered headless with pyrender (EGL; ``--backend mpl`` draws with matplotlib instead), faces
coloured by material group, keypoints as dots (red = left, blue = right, green = centre; hollow = hidden), named
on the first instance. Titles give the size (x, y, z in metres), face count, counts and absent optional parts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _draw(ax, fam, inst, azim: float, elev: float, label_kps: bool) -> None:
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    groups = sorted({inst.material_groups.get(s.name, s.name) for s in fam.slots})
    cmap = __import__("matplotlib").colormaps["tab20"]
    colours = {g: np.array(cmap(i % 20)[:3]) for i, g in enumerate(groups)}
    tri = inst.vertices[inst.faces]
    # matplotlib's 3D axes are z-up: show canonical (x, y, z) as (x, -z, y) so y is up and front faces the viewer
    to_plot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    tri_p = tri @ to_plot.T
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    light = np.array([0.4, 0.8, 0.45])
    light /= np.linalg.norm(light)
    shade = 0.35 + 0.65 * np.clip(n @ light, 0.0, 1.0)
    base = np.array([colours[inst.material_groups.get(fam.slots[s].name, fam.slots[s].name)] for s in inst.face_slot])
    # back-face culling (also a visual check of outward normals: inverted faces would vanish)
    a, e = np.radians(azim), np.radians(elev)
    eye = np.array([np.cos(e) * np.cos(a), np.sin(e), -np.cos(e) * np.sin(a)])
    front = n @ eye > 0
    coll = Poly3DCollection(tri_p[front], facecolors=(base * shade[:, None])[front], edgecolors="none", linewidths=0)
    ax.add_collection3d(coll)
    kp = fam.keypoint_positions(inst) @ to_plot.T
    side_col = {"left": "red", "right": "blue", "center": "green"}
    for k, spec in enumerate(fam.keypoints):
        if np.isnan(kp[k, 0]):
            continue
        ax.scatter(*kp[k], color=side_col[spec.side], s=9, depthshade=False, zorder=10)
        if label_kps:
            ax.text(*kp[k], spec.name, fontsize=4, color=side_col[spec.side], zorder=11)
    lo, hi = tri_p.reshape(-1, 3).min(0), tri_p.reshape(-1, 3).max(0)
    c, r = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(c[0] - r, c[0] + r)
    ax.set_ylim(c[1] - r, c[1] + r)
    ax.set_zlim(c[2] - r, c[2] + r)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()


def _summary(fam, inst) -> str:
    size = inst.vertices.max(0) - inst.vertices.min(0)
    present = fam.present_slots(inst)
    absent = sorted(
        {s.part for s, p in zip(fam.slots, present) if s.optional and not p}
        - {s.part for s, p in zip(fam.slots, present) if p}
    )
    counts = {k: v for k, v in inst.params.items() if k.startswith("n_")}
    txt = f"{inst.instance_id}  {size[0]:.2f}x{size[1]:.2f}x{size[2]:.2f} m  F={inst.n_faces}"
    if counts:
        txt += "\n" + " ".join(f"{k}={v}" for k, v in counts.items())
    if absent:
        txt += "\nno " + ",".join(absent)
    return txt


def main(argv: list[str] | None = None) -> int:
    from datagen.families import family_names, get_family
    from datagen.gallery import draw_tile, render_tile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("families", nargs="*", help="families to draw (default: all)")
    ap.add_argument("--out", type=Path, default=Path("docs/figures/families"))
    ap.add_argument("--n", type=int, default=8, help="instances per family")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--azim", type=float, default=35.0, help="camera azimuth, degrees (0: from the front, +: from the left)"
    )
    ap.add_argument("--elev", type=float, default=20.0, help="camera elevation, degrees")
    ap.add_argument("--size", type=int, default=400, help="rendered tile size, pixels")
    ap.add_argument(
        "--backend", choices=("gl", "mpl"), default="gl", help="pyrender offscreen (gl) or matplotlib 3D (mpl)"
    )
    ap.add_argument("--gallery", action="store_true", help="only the gallery of the 18 SPair categories")
    args = ap.parse_args(argv)
    if args.gallery:
        from datagen.commands.categories import SPAIR_CATEGORIES
        from datagen.gallery import gallery

        args.out.mkdir(parents=True, exist_ok=True)
        print(gallery(args.families or list(SPAIR_CATEGORIES), args.out / "gallery.png", seed=args.seed))
        return 0
    import os

    import matplotlib

    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    if not hasattr(np, "infty"):  # pyrender 0.1.45 uses np.infty, removed in numpy 2
        np.infty = np.inf
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    names = args.families or family_names()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        fam = get_family(name)
        rng = np.random.default_rng(args.seed)
        cols = min(4, args.n)
        rows = int(np.ceil(args.n / cols))
        fig = plt.figure(figsize=(4 * cols, 4 * rows), dpi=110)
        for i in tqdm(range(args.n), desc=name):
            inst = fam.build(fam.sample_params(rng), f"{name}_{i:03d}")
            if args.backend == "gl":
                ax = fig.add_subplot(rows, cols, i + 1)
                draw_tile(ax, fam, render_tile(fam, inst, args.azim, args.elev, args.size), label=i == 0)
            else:
                ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
                _draw(ax, fam, inst, -90.0 - args.azim, args.elev, label_kps=i == 0)
            ax.set_title(_summary(fam, inst), fontsize=7)
        fig.suptitle(f"{name}: {fam.description}", fontsize=10)
        fig.tight_layout()
        path = args.out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
