"""Pictures of the procedural families: instances rendered headless (pyrender, flat colour per material group) with
their keypoints, one sheet per category and one gallery of every SPair-71k category.

Used by ``datagen categories --preview DIR`` and ``scripts/show_families.py``. The object's left (+x) is on the
picture's right when seen from the front (azimuth 0); keypoint dots are red = left, blue = right, green = centre,
hollow where the object hides them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datagen.families.base import Family, Instance

__all__ = ["Tile", "look_at", "render_tile", "draw_tile", "instances", "category_sheet", "gallery"]

SIDE_COLOURS = {"left": "red", "right": "blue", "center": "green"}


@dataclass
class Tile:
    """One rendered instance: ``rgb`` uint8 [S, S, 3]; keypoints ``kp_uv`` float [K, 2] in pixels (NaN where the
    instance lacks the keypoint) and ``kp_visible`` bool [K] (not hidden by the object)."""

    rgb: np.ndarray
    kp_uv: np.ndarray
    kp_visible: np.ndarray


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 OpenGL camera pose (the camera looks along its -z) at ``eye`` towards ``target``, y up."""
    z = np.asarray(eye, np.float64) - target
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, np.cross(z, x), z, eye
    return T


def _setup_gl() -> None:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    if not hasattr(np, "infty"):  # pyrender 0.1.45 uses np.infty, removed in numpy 2
        np.infty = np.inf  # type: ignore[attr-defined]


def render_tile(fam: Family, inst: Instance, azim: float = 35.0, elev: float = 20.0, size: int = 400) -> Tile:
    """Render ``inst`` with pyrender (flat shading, one tab20 colour per material group) from azimuth ``azim``
    (0: from the front, +: from the object's left) and elevation ``elev`` (degrees), framing its bounding box."""
    _setup_gl()
    import matplotlib
    import pyrender
    import trimesh

    groups = sorted({inst.material_groups.get(s.name, s.name) for s in fam.slots})
    cmap = matplotlib.colormaps["tab20"]
    colours = {g: np.array(cmap(i % 20)) for i, g in enumerate(groups)}
    vcol = np.zeros((inst.vertices.shape[0], 4))
    for s in np.unique(inst.face_slot):
        vcol[inst.faces[inst.face_slot == s].ravel()] = colours[
            inst.material_groups.get(fam.slots[s].name, fam.slots[s].name)
        ]
    mesh = trimesh.Trimesh(inst.vertices, inst.faces, vertex_colors=(vcol * 255).astype(np.uint8), process=False)
    scene = pyrender.Scene(bg_color=[1.0, 1.0, 1.0, 1.0], ambient_light=[0.35, 0.35, 0.35])
    scene.add(pyrender.Mesh.from_trimesh(mesh, smooth=False))
    lo, hi = inst.vertices.min(0), inst.vertices.max(0)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    a, e = np.radians(azim), np.radians(elev)
    direction = np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    yfov = np.radians(35.0)
    dist = radius / np.sin(yfov / 2) * 1.05
    pose = look_at(centre + dist * direction, centre)
    scene.add(pyrender.PerspectiveCamera(yfov=yfov, znear=0.05 * dist, zfar=3 * dist), pose=pose)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=look_at(centre + dist * np.array([0.5, 1.0, 0.8]), centre))
    scene.add(pyrender.DirectionalLight(intensity=1.0), pose=pose)
    r = pyrender.OffscreenRenderer(size, size)
    try:
        colour, depth = r.render(scene)
    finally:
        r.delete()
    f = (size / 2) / np.tan(yfov / 2)
    kp = fam.keypoint_positions(inst)
    cam = (np.linalg.inv(pose) @ np.concatenate([kp, np.ones((kp.shape[0], 1))], 1).T).T[:, :3]
    zc = -cam[:, 2]
    uv = np.stack([size / 2 + f * cam[:, 0] / zc, size / 2 - f * cam[:, 1] / zc], 1)
    vis = np.zeros(len(kp), bool)
    for k in np.flatnonzero(~np.isnan(kp[:, 0])):
        iu, iv = (int(np.clip(c, 0, size - 1)) for c in uv[k])
        vis[k] = depth[iv, iu] > 0 and abs(depth[iv, iu] - zc[k]) < 0.01 * radius + 0.005
    return Tile(np.asarray(colour[..., :3], np.uint8), uv, vis)


def draw_tile(ax, fam: Family, tile: Tile, label: bool = False, dot: float = 14.0) -> None:
    """Show ``tile`` on the matplotlib axes ``ax`` with its keypoints (named when ``label``)."""
    ax.imshow(tile.rgb)
    for k, spec in enumerate(fam.keypoints):
        if np.isnan(tile.kp_uv[k, 0]):
            continue
        c = SIDE_COLOURS[spec.side]
        u, v = tile.kp_uv[k]
        ax.scatter([u], [v], s=dot, facecolors=c if tile.kp_visible[k] else "none", edgecolors=c, linewidths=0.8)
        if label:
            ax.text(u + 3, v - 3, spec.name, fontsize=4.5, color=c)
    ax.set_axis_off()


def instances(fam: Family, n: int, seed: int = 0) -> list[Instance]:
    """``n`` instances of ``fam`` drawn from ``default_rng(seed)`` (the same ones every time)."""
    rng = np.random.default_rng(seed)
    return [fam.build(fam.sample_params(rng), f"{fam.name}_{i:03d}") for i in range(n)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def category_sheet(name: str, out: Path, n: int = 4, seed: int = 0, size: int = 240) -> Path:
    """A PNG of ``n`` instances of category ``name`` in one row (keypoints named on the first); returns ``out``."""
    from datagen.families import get_family

    plt = _pyplot()
    fam = get_family(name)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.4), dpi=110, squeeze=False)
    for i, inst in enumerate(instances(fam, n, seed)):
        draw_tile(axes[0, i], fam, render_tile(fam, inst, size=size), label=i == 0)
    fig.suptitle(f"{name}: {fam.description}", fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def gallery(names: Sequence[str], out: Path, n: int = 3, seed: int = 0, size: int = 200, cols: int = 6) -> Path:
    """One figure with a cell per category in ``names``: ``n`` instances side by side (keypoint dots, no names);
    a category without a registered family is a grey cell saying so. Returns ``out``."""
    from datagen.families import family_names, get_family

    plt = _pyplot()
    rows = int(np.ceil(len(names) / cols))
    fig = plt.figure(figsize=(cols * n * 1.15, rows * 1.45), dpi=130)
    grid = fig.add_gridspec(rows, cols, wspace=0.06, hspace=0.3)
    known = set(family_names())
    for c, name in enumerate(names):
        cell = grid[c // cols, c % cols].subgridspec(1, n, wspace=0.0)
        if name not in known:
            ax = fig.add_subplot(cell[0, :])
            ax.set_facecolor("0.92")
            ax.text(0.5, 0.5, "no family yet", ha="center", va="center", fontsize=7, color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=8, color="0.4")
            continue
        fam = get_family(name)
        for i, inst in enumerate(instances(fam, n, seed)):
            ax = fig.add_subplot(cell[0, i])
            draw_tile(ax, fam, render_tile(fam, inst, size=size), dot=3.0)
            if i == n // 2:
                ax.set_title(name, fontsize=8)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return Path(out)
