"""``semmatch train MANIFEST [key=value ...]``: run a training manifest (directly or under torchrun)."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]

EPILOG = """examples:
  semmatch train manifests/runs/smoke_cpu.yaml
  semmatch train manifests/runs/chair_cpu_demo.yaml stages.dense.steps=100 data.workers=0
  semmatch train manifests/runs/chair_cpu_demo.yaml --resume
  torchrun --nproc-per-node 8 -m training train manifests/runs/vggt1b_spair.yaml model.weights=/ckpt/model.pt
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a matcher from a run manifest",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("manifest", help="run manifest YAML (manifests/runs/*.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. stages.0.steps=10")
    p.add_argument("--resume", action="store_true", help="continue the run in out_dir from its latest checkpoint")
    p.add_argument("--check", action="store_true", help="validate the manifest and its files, then exit")
    p.add_argument("--stop-at", type=int, default=None, metavar="STEP", help="stop after this global step")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, extra_overrides=True)


def run(args: argparse.Namespace) -> int:
    import logging
    import os
    import sys

    from training.train.hooks import default_hooks
    from training.train.manifest import ConfigError, load_run_manifest, manifest_to_yaml
    from training.train.preflight import preflight

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides) + (["resume=true"] if args.resume else [])
    rank = int(os.environ.get("RANK", "0"))
    try:
        manifest = load_run_manifest(args.manifest, overrides)
        hooks = default_hooks()
        preflight(manifest, hooks, where=args.manifest)
    except (ConfigError, FileNotFoundError) as e:
        if rank == 0:
            print(f"semmatch train: {e}", file=sys.stderr)
        return 2
    if args.check:
        if rank == 0:
            print(manifest_to_yaml(manifest), end="")
            print(f"# {args.manifest}: OK ({manifest.total_steps} steps in {len(manifest.stages)} stages)")
        return 0
    from loaders.schema import SchemaError
    from loaders.sources import ShardError
    from training.train.distributed import Terminated
    from training.train.trainer import Trainer

    try:
        Trainer(manifest, hooks, progress=not args.no_progress, stop_at_step=args.stop_at).run()
    except (ShardError, SchemaError) as e:  # bad data met mid-run (data.skip_bad=true skips and counts it instead)
        print(f"semmatch train: rank {rank}: {e}", file=sys.stderr)
        return 2
    except Terminated as e:
        print(
            f"semmatch train: rank {rank}: stopped by SIGTERM; continue from the last checkpoint with --resume",
            file=sys.stderr,
        )
        return int(e.code)
    return 0
