#!/usr/bin/env python
"""Accuracy of user-mesh ground truth against the exact answer, per family (datagen/meshes/accuracy.py).

Procedural instances are exported to OBJ (plain, and bent by a smooth random warp that leaves the family's shape
space), taken through ``datagen meshes ingest`` (intake + template registration), and pairs of them rendered; each
pair's dense ground truth through the fitted templates is compared with the exact one. Prints a table per family
and variant against the targets of issue 11 (median error <= 2 %, 90th percentile <= 5 % of the bbox diagonal,
matchability agreement >= 90 %, keypoints within 0.05 of the longer side >= 95 %).

Usage::

    python scripts/bench_mesh_gt.py                                   # all families, 8 meshes, 12 pairs, 256 px
    python scripts/bench_mesh_gt.py --families chair,car --meshes 12 --pairs 24 --size 518 --warps 0,0.05
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def measure(family_name: str, n_meshes: int, n_pairs: int, size: int, warp: float, seed: int, workers: int) -> dict:
    import numpy as np

    from datagen.camera import sample_views
    from datagen.canonical import RegisteredSurface
    from datagen.config import CameraConfig
    from datagen.families import get_family
    from datagen.gt import MeshRaycaster, view_surface
    from datagen.meshes.accuracy import exact_registration, export_instances, pair_errors, summarise
    from datagen.meshes.ingest import ingest_collection
    from datagen.meshes.library import MeshLibrary
    from datagen.meshes.register import load_registration
    from datagen.render import get_renderer
    from datagen.render.mesh import prepare_user_mesh

    family = get_family(family_name)
    with tempfile.TemporaryDirectory() as tmp:
        folder, lib_dir = Path(tmp) / "objs", Path(tmp) / "lib"
        made = export_instances(family, folder, n_meshes, seed, warp)
        t0 = time.perf_counter()
        ingest_collection(folder, lib_dir, family_name, workers=workers, progress=False)
        ingest_s = time.perf_counter() - t0
        lib = MeshLibrary(lib_dir)
        reg_s = [lib.record(m, "register")["register_seconds"] for m in lib.ids]
        surfaces = {}
        for mesh_id in lib.ids:
            mesh = lib.load(mesh_id)
            fitted = RegisteredSurface(
                family, mesh.vertices, mesh.faces, load_registration(lib_dir, mesh_id), mesh.two_sided
            )
            inst, written = made[mesh_id]
            exact_reg = exact_registration(mesh_id, family, inst, written, mesh.transform)
            exact = RegisteredSurface(family, mesh.vertices, mesh.faces, exact_reg, mesh.two_sided)
            surfaces[mesh_id] = (mesh, fitted, exact)
        renderer = get_renderer("pyrender")
        cam = CameraConfig(**({"elevation_deg": family.camera_elevation_deg} if family.camera_elevation_deg else {}))
        rng = np.random.default_rng(seed)
        ids = sorted(surfaces)
        rows = []
        for _ in range(n_pairs if len(ids) >= 2 else 0):
            a, b = rng.choice(len(ids), 2, replace=False)
            anchor = float(rng.uniform(-180, 180))
            views = []
            for k in (a, b):
                mesh, fitted, _ = surfaces[ids[k]]
                render_mesh, appearance = prepare_user_mesh(mesh, "random", rng)
                center, radius = render_mesh.bounding_sphere
                (view,) = sample_views(rng, cam, center, radius, size, size, 1, anchor)
                handle = renderer.prepare(render_mesh, appearance)
                face_id = renderer.render_face_ids(handle, view)
                renderer.release(handle)
                caster = MeshRaycaster(render_mesh.vertices, render_mesh.faces)
                views.append(view_surface(render_mesh.vertices, render_mesh.faces, view, face_id, caster,
                                          two_sided=render_mesh.two_sided))  # fmt: skip
            fa, fb = surfaces[ids[a]][1:], surfaces[ids[b]][1:]
            rows.append(pair_errors((fa[0], fb[0]), (fa[1], fb[1]), views[0], views[1]))
            rows.append(pair_errors((fb[0], fa[0]), (fb[1], fa[1]), views[1], views[0]))
        out = summarise(rows)
        out.update(
            family=family_name,
            warp=warp,
            meshes=n_meshes,
            accepted=len(ids),
            pairs=len(rows) // 2,
            register_s_median=float(np.median(reg_s)) if reg_s else float("nan"),
            ingest_s=ingest_s,
        )
        return out


def main() -> int:
    from datagen.families import family_names

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(family_names()))
    ap.add_argument("--meshes", type=int, default=8, help="meshes exported per family and variant")
    ap.add_argument("--pairs", type=int, default=12, help="pairs rendered per family and variant")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--warps", default="0,0.05", help="warp amplitudes (fraction of the bbox diagonal)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--confusion", action="store_true", help="print the status confusion matrix per row")
    args = ap.parse_args()
    rows = []
    head = (f"{'family':<10} {'warp':>5} {'ok/n':>6} {'reg s':>6} {'e3d med':>8} {'e3d p90':>8} {'e2d med':>8} "
            f"{'e2d p90':>8} {'match':>7} {'kp':>7}")  # fmt: skip
    print(head, flush=True)
    for fam in args.families.split(","):
        for warp in (float(w) for w in args.warps.split(",")):
            r = measure(fam, args.meshes, args.pairs, args.size, warp, args.seed, args.workers)
            rows.append(r)
            print(f"{fam:<10} {warp:>5.2f} {r['accepted']:>3}/{r['meshes']:<2} {r['register_s_median']:>6.1f} "
                  f"{r['err3d_median']:>8.2%} {r['err3d_p90']:>8.2%} {r['err2d_median']:>8.2%} {r['err2d_p90']:>8.2%} "
                  f"{r['matchability']:>7.1%} {r['keypoints']:>7.1%}", flush=True)  # fmt: skip
            if args.confusion:
                c = r["confusion"]
                names = ["bg", "matched", "occluded", "outside", "none"]
                print("    exact \\ fitted " + " ".join(f"{n:>9}" for n in names[1:]))
                for i in range(1, 5):
                    print(f"    {names[i]:<16} " + " ".join(f"{c[i][j]:>9}" for j in range(1, 5)))
    print("targets: median <= 2 %, p90 <= 5 % of the bbox diagonal; matchability >= 90 %; keypoints >= 95 %")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
