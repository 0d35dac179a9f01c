"""Small mesh files for the ``test_meshes_*`` tests, written with trimesh's exporters (and by hand where a file
must be broken in a particular way)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def checker(n: int = 64, cell: int = 8, c0=RED, c1=BLUE) -> np.ndarray:
    """uint8 [n, n, 3] checkerboard of two colours."""
    yy, xx = np.mgrid[0:n, 0:n]
    odd = ((xx // cell + yy // cell) % 2).astype(bool)
    return np.where(odd[..., None], np.asarray(c1), np.asarray(c0)).astype(np.uint8)


def textured_box(extents=(1.0, 1.0, 1.0), image: np.ndarray | None = None) -> trimesh.Trimesh:
    """A box with one planar [0, 1]^2 chart per side (unshared corners), textured with ``image``."""
    m = trimesh.creation.box(extents=extents)
    tri = m.vertices[m.faces]  # [F, 3, 3]
    axis = np.abs(m.face_normals).argmax(1)
    keep = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    uv = np.take_along_axis(tri, keep[:, None, :].repeat(3, 1), axis=2) / np.asarray(extents)[keep][:, None] + 0.5
    V = tri.reshape(-1, 3)
    F = np.arange(len(V)).reshape(-1, 3)
    image = checker() if image is None else image
    visual = trimesh.visual.TextureVisuals(uv=uv.reshape(-1, 2), image=Image.fromarray(image))
    return trimesh.Trimesh(V, F, visual=visual, process=False)


def write_obj(path: Path, vertices, faces, extra: str = "") -> Path:
    """A minimal OBJ by hand: ``v`` and ``f`` lines (1-based), plus ``extra`` text appended."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in np.asarray(vertices, float)]
    lines += ["f " + " ".join(str(int(i) + 1) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def box(extents=(1.0, 1.0, 1.0), center=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    m = trimesh.creation.box(extents=extents)
    m.apply_translation(center)
    return m


def sphere(subdivisions: int = 3, radius: float = 0.5) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
