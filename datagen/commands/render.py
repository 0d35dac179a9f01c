"""``datagen render``: render a category's pairs into WebDataset shards plus ``dataset.json``.

Examples::

    datagen render --category chair --n 50000                  # -> data/chair, all cores
    datagen render --category car --n 2000 --size 256 --out /scratch/car --workers 8
    datagen render --category chair --n 50000 --shards 10:20    # only shards 10..19 (cluster fan-out)
    datagen render --category chair --n 50000 --resume          # finish a killed run
    datagen render --category chair --n 5000 --meshes ~/ShapeNet/03001627   # a user's meshes (ingested once)
    datagen render --category car --n 2000 --truncation 0.5 --occluders 0.5   # harder pairs
    datagen render --category car --n 2000 --truncation 0 --occluders 0       # whole, unoccluded views only
    datagen render --category chair --n 50000 --ray             # one Ray task per shard, a local Ray instance
    datagen render --category chair --n 50000 --ray auto --out /shared/chair   # the cluster `ray start` made

Shard ``i`` is a pure function of the content settings (category, n, size, shard size, seed, backend, ...), so
runs with ``--shards`` on different machines into one shared folder add up to the same dataset as one run.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from datagen.shards import WriteReport

    Runner = Callable[..., WriteReport]

__all__ = ["register", "run", "parse_shards", "ray_runner"]

PROG = "datagen render"


class UsageError(ValueError):
    """Bad command-line input: reported as one line, exit code 2."""


class BackendError(RuntimeError):
    """The render backend cannot run on this machine (the message says how to get one)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render pairs of a category into shards",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]).replace("``", "").replace("::", ":"),
    )
    p.add_argument("--category", default="chair", help="category family (see `datagen categories`); default chair")
    p.add_argument("--n", type=int, default=1000, help="number of pairs; default 1000")
    p.add_argument("--out", type=Path, default=None, help="output folder; default data/<category>")
    p.add_argument("--size", type=int, default=518, help="image side in pixels; default 518")
    p.add_argument("--workers", type=int, default=None, help="worker processes; default all cores")
    p.add_argument("--seed", type=int, default=0, help="root seed; default 0")
    p.add_argument("--shard-size", type=int, default=100, help="pairs per shard; default 100")
    p.add_argument("--shards", default=None, metavar="I:J", help="make only shards I..J-1 (a Python slice, e.g. 0:10)")
    p.add_argument("--resume", action="store_true", help="keep complete shards of this dataset, make the rest")
    p.add_argument("--backend", default="pyrender", choices=("pyrender", "embree"), help="GT backend")
    p.add_argument("--same-instance-fraction", type=float, default=0.0, help="fraction of same-instance pairs")
    p.add_argument(
        "--max-azimuth-gap",
        type=float,
        default=None,
        metavar="DEG",
        help="largest azimuth difference between a pair's two views, degrees; default 120",
    )
    p.add_argument(
        "--max-elevation-gap",
        type=float,
        default=None,
        metavar="DEG",
        help="largest elevation difference between a pair's two views, degrees; default 40",
    )
    p.add_argument(
        "--meshes",
        type=Path,
        default=None,
        metavar="DIR",
        help="a user's meshes of the category: a folder (ShapeNet layout, mesh files or a CSV; intake and template "
        "registration are cached under <out>/.datagen/meshes) or a library made by `datagen meshes ingest`",
    )
    p.add_argument(
        "--mesh-fraction", type=float, default=1.0, help="with --meshes: share of user meshes among the instances"
    )
    p.add_argument(
        "--mesh-appearance",
        default="auto",
        choices=("auto", "file", "random"),
        help="with --meshes: the file's materials and textures, a random look, or the file's where it has one",
    )
    p.add_argument(
        "--truncation",
        type=float,
        default=None,
        metavar="F",
        help="share of views framed so that part of the object leaves the image; default 0.3",
    )
    p.add_argument(
        "--occluders",
        type=float,
        default=None,
        metavar="F",
        help="share of views with other objects between the camera and the object; default 0.3",
    )
    p.add_argument(
        "--renderer",
        default="pyrender",
        choices=("pyrender", "blenderproc"),
        help="where the RGB comes from: the GT backend's lit pass (default) or Cycles path tracing through Blender "
        '(the photoreal extra: pip install -e ".[photoreal]"); the ground truth is exact with both',
    )
    p.add_argument("--samples", type=int, default=32, help="blenderproc: Cycles samples per pixel; default 32")
    p.add_argument("--no-denoise", action="store_true", help="blenderproc: no OpenImageDenoise pass")
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "gpu"), help="blenderproc: OptiX/CUDA when found (auto)"
    )
    p.add_argument(
        "--camera-noise", type=float, default=0.0, metavar="SIGMA", help="blenderproc: sensor noise, up to SIGMA levels"
    )
    p.add_argument("--camera-blur", type=float, default=0.0, metavar="PX", help="blenderproc: blur, sigma up to PX")
    p.add_argument(
        "--backgrounds",
        type=Path,
        default=None,
        metavar="PATH",
        help="real photographs as backgrounds (both renderers): a folder of your images (e.g. COCO, SUN) or a list "
        "file of image paths; each view gets a seeded random crop of one. Default: procedural backgrounds",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="render with one Ray task per shard (the cluster extra): alone, on a local Ray instance with --workers "
        "CPUs; with ADDRESS (auto, HOST:6379, ray://HOST:10001), on that cluster, into a folder all its nodes see. "
        "A task whose worker dies is retried (scripts/ray_render.py sets retries and CPUs per task)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--past-end-ok", action="store_true", help="exit 0 when --shards starts past the last shard (job arrays)"
    )
    p.set_defaults(func=run)


def parse_shards(text: str | None, n_shards: int) -> range:
    """``"i:j"`` (either end optional) or ``"i"`` -> ``range(i, min(j, n_shards))``.

    Like a Python slice, a stop past the end is clamped (so a fixed-size Slurm array task may ask for more than
    is left); a selection with no shard in it is an error.
    """
    if text is None:
        return range(n_shards)
    try:
        if ":" in text:
            a, b = text.split(":")
            start, stop = int(a) if a.strip() else 0, int(b) if b.strip() else n_shards
        else:
            start = int(text)
            stop = start + 1
    except ValueError:
        raise UsageError(f"--shards {text!r}: expected I:J, e.g. 0:10") from None
    stop = min(stop, n_shards)
    if not 0 <= start < stop:
        raise UsageError(f"--shards {text!r} selects no shard; this dataset has shards 0..{n_shards - 1}")
    return range(start, stop)


def _error(message: str) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def _build_config(args: argparse.Namespace):
    from datagen.config import CameraConfig, OccluderConfig, PhotorealConfig, RenderConfig
    from datagen.families import family_names, get_family

    known = family_names()
    if args.category not in known:
        raise UsageError(f"unknown category {args.category!r}; known categories: {', '.join(known) or '(none)'}")
    if args.n <= 0:
        raise UsageError(f"--n must be a positive number of pairs, got {args.n}")
    if args.workers is not None and args.workers <= 0:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    camera = {}
    family_elevation = get_family(args.category).camera_elevation_deg
    if family_elevation is not None:
        camera["elevation_deg"] = tuple(family_elevation)
    if args.max_azimuth_gap is not None:
        camera["max_pair_azimuth_gap_deg"] = args.max_azimuth_gap
    if args.max_elevation_gap is not None:
        camera["max_pair_elevation_gap_deg"] = args.max_elevation_gap
    truncation, occluder_fraction = getattr(args, "truncation", None), getattr(args, "occluders", None)
    if truncation is not None:
        camera["truncation_fraction"] = truncation
    occluders = {} if occluder_fraction is None else {"fraction": occluder_fraction}
    backgrounds = {}
    if getattr(args, "backgrounds", None) is not None:
        from datagen.backgrounds import BackgroundError, PhotoBackgrounds

        try:
            photos = PhotoBackgrounds(args.backgrounds)  # every photo opened once: a bad one is named now
        except BackgroundError as e:
            raise UsageError(str(e)) from None
        backgrounds = {"backgrounds": str(photos.source), "backgrounds_fingerprint": photos.fingerprint()}
    try:
        return RenderConfig(
            camera=CameraConfig(**camera),
            occluders=OccluderConfig(**occluders),
            category=args.category,
            n_pairs=args.n,
            size=args.size,
            shard_size=args.shard_size,
            seed=args.seed,
            backend=args.backend,
            same_instance_fraction=args.same_instance_fraction,
            mesh_fraction=getattr(args, "mesh_fraction", 1.0),
            mesh_appearance=getattr(args, "mesh_appearance", "auto"),
            renderer=getattr(args, "renderer", "pyrender"),
            photoreal=PhotorealConfig(
                samples=getattr(args, "samples", 32),
                denoise=not getattr(args, "no_denoise", False),
                device=getattr(args, "device", "auto"),
                camera_noise=getattr(args, "camera_noise", 0.0),
                camera_blur_px=getattr(args, "camera_blur", 0.0),
            ),
            **backgrounds,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


def _with_meshes(config, args: argparse.Namespace, out: Path):
    """The config with the user's mesh library: ``--meshes`` as given when it is a library, else a library made
    (or finished: the ingest resumes) under ``<out>/.datagen/meshes``; its content fingerprint pinned."""
    import dataclasses

    from datagen.meshes.ingest import ingest_collection
    from datagen.meshes.library import INTAKE_FILE, LIBRARY_FILE, read_json
    from datagen.meshes.report import format_summary
    from datagen.meshes.source import REQUIRED_STAGES, MeshSource, library_fingerprint

    src = args.meshes.expanduser().absolute()
    if not src.exists():
        raise UsageError(f"--meshes {src}: no such file or folder")
    if (src / LIBRARY_FILE).is_file():
        lib = src
    else:
        lib = out / ".datagen" / "meshes"
        print(f"{PROG}: taking the meshes of {src} into {lib} (intake and template registration; resumable)")
        ingest_collection(src, lib, config.category, workers=args.workers, progress=not args.no_progress)
        print(format_summary(read_json(lib / INTAKE_FILE), rows="problems"))
    from datagen.families import get_family

    source = MeshSource(lib, get_family(config.category))  # raises LibraryError: wrong category, nothing usable
    print(
        f"{PROG}: {len(source.ids)} registered {config.category} meshes in {lib} (stages {', '.join(REQUIRED_STAGES)})"
    )
    return dataclasses.replace(config, meshes=str(lib), meshes_fingerprint=library_fingerprint(lib))


def check_backend(backend: str) -> None:
    """Start the backend once here, before any worker: raises :class:`BackendError` saying how to get one.

    With one worker the renderer started here is the one that renders (one per process); spawned workers start
    their own, so no GL context ever crosses a process boundary.
    """
    from datagen.glcheck import pyopengl_problem
    from datagen.render import GLUnavailable, get_renderer

    if backend == "pyrender" and (problem := pyopengl_problem()):  # also for runners that skip the CLI (Ray)
        raise BackendError(problem)
    try:
        get_renderer(backend)
    except (GLUnavailable, ImportError, RuntimeError) as e:
        raise BackendError(str(e)) from e


def check_photoreal() -> None:
    """Raise :class:`BackendError` saying how to install the photoreal extra when ``bpy`` is missing."""
    from datagen.photoreal import PhotorealUnavailable, require_photoreal

    try:
        require_photoreal()
    except PhotorealUnavailable as e:
        raise BackendError(str(e)) from e


def run(args: argparse.Namespace, runner: Runner | None = None) -> int:
    """Validate, check the folder and backend, render, summarise. ``runner`` replaces the local process pool
    (``--ray`` and ``scripts/ray_render.py`` use :func:`ray_runner`; the backend is then checked on the workers,
    and here too only for a local Ray instance)."""
    from datagen.cluster import ClusterError, RayConnectError  # no ray import: only --ray imports it
    from datagen.dataset_dir import OutputFolderError
    from datagen.shards import render_dataset_dir, write_shards

    try:
        config = _build_config(args)
    except UsageError as e:
        return _error(str(e))
    try:
        shards = parse_shards(args.shards, config.n_shards)
    except UsageError as e:
        if args.past_end_ok and config.n_shards <= _start(args.shards):
            print(f"{PROG}: --shards {args.shards}: past the last shard ({config.n_shards - 1}); nothing to do")
            return 0
        return _error(str(e))
    out = (args.out or Path("data") / config.category).expanduser().absolute()
    if getattr(args, "meshes", None) is not None:
        from datagen.meshes.discover import DiscoveryError
        from datagen.meshes.library import LibraryError

        try:
            config = _with_meshes(config, args, out)
        except (UsageError, DiscoveryError, LibraryError) as e:
            return _error(str(e))
    ray_address = getattr(args, "ray", None)
    if runner is None and ray_address is not None:
        try:
            runner = ray_runner(ray_address)
        except RuntimeError as e:  # RayUnavailable: ray is not installed
            return _error(str(e))
    try:
        render_dataset_dir(config, out).check(list(shards), args.resume)  # read-only: refuse before any work
        if runner is None or ray_address == "":  # a local Ray instance renders on this machine too
            check_backend(config.backend)
        if config.renderer == "blenderproc":
            check_photoreal()
    except (OutputFolderError, BackendError) as e:
        return _error(str(e))
    workers = args.workers or min(os.cpu_count() or 1, len(shards))
    how = f"{workers} worker{'s' * (workers > 1)}" if runner is None else "remote workers"
    ray_address = getattr(args, "ray", None)
    if ray_address is not None:
        how = f"Ray tasks on {ray_address}" if ray_address else f"Ray tasks on a local Ray instance with {workers} CPUs"
    print(
        f"{PROG}: {config.n_pairs} {config.category} pairs at {config.size}x{config.size}, "
        f"shards {shards.start}..{shards.stop - 1} of {config.n_shards} ({config.shard_size} pairs each), "
        f"seed {config.seed}, {how}\n  output: {out}",
        flush=True,
    )
    runner = runner or write_shards
    try:
        report = runner(config, out, shards, resume=args.resume, progress=not args.no_progress, workers=workers)
    except (OutputFolderError, RayConnectError) as e:  # e.g. another dataset claimed the folder meanwhile
        return _error(str(e))
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; complete shards are kept. Finish with the same command plus --resume")
        return 130
    except ClusterError as e:  # --ray: a task failed for good
        print(
            f"{PROG}: error: {e}; complete shards are kept. Finish with the same command plus --resume", file=sys.stderr
        )
        return 1
    except BrokenProcessPool:
        print(
            f"{PROG}: error: a worker process died (out of memory, or a crash in the GL driver); complete shards "
            "are kept. Finish with the same command plus --resume (fewer --workers if memory is short)",
            file=sys.stderr,
        )
        return 1
    _print_summary(report)
    return 0


def ray_runner(address: str, cpus_per_task: float = 1.0, max_retries: int = 3) -> Runner:
    """The runner of ``--ray [ADDRESS]`` (``""``: a local instance with ``--workers`` CPUs): one Ray task per shard,
    see :func:`datagen.cluster.ray_write_shards`. Raises ``RayUnavailable`` (a RuntimeError) without ray."""
    from datagen.cluster import import_ray, ray_write_shards

    import_ray()

    def run(config, out, shards, resume, progress, workers):
        return ray_write_shards(
            config, out, shards, resume=resume, address=address or None, num_cpus=workers,
            cpus_per_task=cpus_per_task, max_retries=max_retries, progress=progress,
        )  # fmt: skip

    return run


def _start(text: str) -> int:
    head = text.split(":")[0].strip()
    return int(head) if head.lstrip("-").isdigit() else -1


def _print_summary(report: WriteReport) -> None:
    from datagen.shards import format_bytes

    manifest = report.manifest
    print(
        f"made {len(report.made)} shards ({report.pairs_made} pairs, {format_bytes(report.bytes_made)}) "
        f"in {report.seconds:.1f} s: {report.pairs_per_s:.2f} pairs/s"
    )
    if report.kept:
        print(f"kept {len(report.kept)} complete shards from before (--resume)")
    if report.busy:
        print(f"left {len(report.busy)} shards to other live writers: {report.busy}")
    total = sum(report.timings.values())
    if total > 0:
        parts = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(report.timings.items(), key=lambda kv: -kv[1]))
        print(f"time per stage (worker seconds {total:.1f}): {parts}")
    state = "complete" if manifest.complete else "incomplete"
    print(
        f"dataset: {report.out_dir}  ({state}: {len(manifest.shards)}/{manifest.n_shards} shards, "
        f"{manifest.n_samples} pairs, {format_bytes(sum(s.bytes for s in manifest.shards))})"
    )
