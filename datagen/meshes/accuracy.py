"""How accurate is the ground truth of user meshes? Measured on meshes whose exact answer is known.

Procedural instances are exported to OBJ (their parametrisation thrown away), optionally bent by a smooth random
warp (so they leave the family's shape space), and taken through the intake and the template registration like
any user's files. Every such mesh also has an *exact* registration: its own instance, moved by the same warp and
the intake's transform, whose canonical coordinates are exact. Views of pairs of these meshes are then rendered
once and their dense ground truth computed twice, through the fitted templates and through the exact ones:

* ``err3d``: the distance between the two counterparts on the other mesh, as a fraction of its bbox diagonal,
  over pixels both give a counterpart;
* ``err2d``: the distance between the two projections in the other view, as a fraction of the diagonal of the
  object's box there, over pixels both call matched;
* ``matchability``: the share of object pixels on which both agree whether the pixel is matched;
* ``keypoints``: the share of keypoints placed by the fitted template within 0.05 of the mesh's longer bbox side of
  the exact keypoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datagen.canonical import RegisteredSurface
from datagen.families import Family, Instance
from datagen.meshes.register import Quality, Registration

__all__ = ["smooth_warp", "export_instances", "exact_registration", "PairErrors", "pair_errors", "summarise"]


def smooth_warp(vertices: np.ndarray, rng: np.random.Generator, amplitude: float = 0.05) -> np.ndarray:
    """A smooth random deformation of a shape: four Gaussian bumps (width 0.3 of the bbox diagonal) displacing
    points by up to ``amplitude`` of the diagonal, in random directions. Keeps no symmetry of the family's."""
    v = np.asarray(vertices, np.float64)
    diag = float(np.linalg.norm(np.ptp(v, axis=0)))
    out = v.copy()
    for _ in range(4):
        c = v[rng.integers(len(v))]
        d = rng.normal(size=3)
        d *= amplitude * diag / np.linalg.norm(d)
        out += np.exp(-np.sum((v - c) ** 2, axis=1) / (2 * (0.3 * diag) ** 2))[:, None] * d
    return out


def export_instances(
    family: Family, folder: Path, n: int, seed: int, warp: float = 0.0
) -> dict[str, tuple[Instance, np.ndarray]]:
    """Write ``n`` random instances of ``family`` as OBJ files into ``folder`` (``<family>_<i>.obj``), bent by
    :func:`smooth_warp` when ``warp`` > 0. Returns mesh id -> (instance, the vertices written)."""
    import trimesh

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        inst = family.build(family.sample_params(rng), f"{family.name}-{i}")
        v = smooth_warp(inst.vertices, rng, warp) if warp > 0 else np.asarray(inst.vertices, np.float64)
        mesh_id = f"{family.name}_{i:03d}"
        trimesh.Trimesh(v, inst.faces, process=False).export(folder / f"{mesh_id}.obj")
        out[mesh_id] = (inst, v)
    return out


def exact_registration(
    mesh_id: str, family: Family, inst: Instance, written: np.ndarray, transform: np.ndarray
) -> Registration:
    """The registration whose template is the mesh's own instance, as written and moved by the intake's
    ``transform`` (file -> canonical, [4, 4]): canonical coordinates with no error."""
    v = np.asarray(written, np.float64) @ transform[:3, :3].T + transform[:3, 3]
    return Registration(
        mesh_id=mesh_id,
        category=family.name,
        params=inst.params,
        template_vertices=v,
        slot_present=family.present_slots(inst),
        rotation=np.eye(3),
        orientation="as given",
        quality=Quality(),
    )


@dataclass
class PairErrors:
    """Errors of one direction of one pair (see the module docstring); ``n_*`` the pixels or keypoints behind."""

    err3d: np.ndarray
    err2d: np.ndarray
    agree: int
    n_object: int
    kp_ok: int
    n_kp: int
    confusion: np.ndarray  # [5, 5] object pixels by (exact status, fitted status), loaders.schema.Status codes


def pair_errors(
    fitted: tuple[RegisteredSurface, RegisteredSurface],
    exact: tuple[RegisteredSurface, RegisteredSurface],
    src_view,
    dst_view,
) -> PairErrors:
    """Compare the ground truth of view ``src_view`` (a :class:`datagen.gt.ViewSurface` of surface 0's mesh) into
    ``dst_view`` (surface 1's) through the fitted and the exact registrations."""
    from datagen.canonical import counterparts
    from datagen.gt import correspondence
    from loaders.schema import Status

    s = src_view
    results = []
    for a, b in (fitted, exact):
        f, pts = counterparts(a, b, s.face, s.bary, s.points_world)
        status, corr = correspondence(s, dst_view, f, pts)
        results.append((f, pts, status.ravel()[s.pix], corr.reshape(-1, 2)[s.pix]))
    (f_r, p_r, st_r, c_r), (f_e, p_e, st_e, c_e) = results
    diag3 = float(np.linalg.norm(np.ptp(fitted[1].vertices, axis=0)))
    both = (f_r >= 0) & (f_e >= 0)
    err3d = np.linalg.norm(p_r[both] - p_e[both], axis=1) / diag3
    matched = (st_r == Status.MATCHED) & (st_e == Status.MATCHED)
    mask = dst_view.face_id >= 0
    ys, xs = np.nonzero(mask)
    diag2 = float(np.hypot(np.ptp(xs) + 1, np.ptp(ys) + 1)) if len(xs) else 1.0
    err2d = np.linalg.norm(c_r[matched].astype(np.float64) - c_e[matched], axis=1) / diag2
    agree = int(((st_r == Status.MATCHED) == (st_e == Status.MATCHED)).sum())
    kp_r, _ = fitted[0].keypoints()
    kp_e, _ = exact[0].keypoints()
    ok = np.isfinite(kp_r).all(1) & np.isfinite(kp_e).all(1)
    longer = float(np.ptp(fitted[0].vertices, axis=0).max())
    kp_ok = int((np.linalg.norm(kp_r[ok] - kp_e[ok], axis=1) <= 0.05 * longer).sum())
    confusion = np.zeros((5, 5), np.int64)
    np.add.at(confusion, (st_e.astype(np.int64), st_r.astype(np.int64)), 1)
    return PairErrors(err3d, err2d, agree, len(s.pix), kp_ok, int(ok.sum()), confusion)


def summarise(rows: list[PairErrors]) -> dict[str, float]:
    """Pooled figures over pairs: median and 90th percentile of both errors, matchability agreement, keypoints."""
    e3 = np.concatenate([r.err3d for r in rows]) if rows else np.zeros(0)
    e2 = np.concatenate([r.err2d for r in rows]) if rows else np.zeros(0)
    n_obj = sum(r.n_object for r in rows)
    n_kp = sum(r.n_kp for r in rows)
    return {
        "err3d_median": float(np.median(e3)) if e3.size else float("nan"),
        "err3d_p90": float(np.percentile(e3, 90)) if e3.size else float("nan"),
        "err2d_median": float(np.median(e2)) if e2.size else float("nan"),
        "err2d_p90": float(np.percentile(e2, 90)) if e2.size else float("nan"),
        "matchability": sum(r.agree for r in rows) / max(n_obj, 1),
        "keypoints": sum(r.kp_ok for r in rows) / max(n_kp, 1),
        "n_pixels": int(e3.size),
        "confusion": sum((r.confusion for r in rows), np.zeros((5, 5), np.int64)).tolist(),
        "n_keypoints": n_kp,
    }
