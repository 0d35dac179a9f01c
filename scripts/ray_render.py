#!/usr/bin/env python
"""Render a dataset on a Ray cluster: one Ray task per shard, into a folder every node can see.

Takes the options of ``datagen render`` (category, n, size, seed, shard size, shards, resume, backend) plus the
Ray ones below; the result is byte for byte the dataset ``datagen render`` makes with the same options.

Usage::

    pip install "ray>=2.9"                          # or: pip install -e ".[cluster]"
    ray start --head                                # on the head node; `ray start --address=HEAD:6379` on others
    python scripts/ray_render.py --category chair --n 50000 --out /shared/data/chair --address auto
    python scripts/ray_render.py --category chair --n 50000 --out /shared/data/chair --address auto --resume
    datagen verify /shared/data/chair

Without ``--address`` it starts a local Ray instance (handy to try it on one machine). Every node needs this
package installed and the output folder mounted at the same path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from datagen.commands import render as render_cmd  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    render_cmd.register(parser.add_subparsers(dest="command"))
    ray_opts = argparse.ArgumentParser(add_help=False)
    ray_opts.add_argument("--address", default=None, help="Ray cluster address ('auto' joins a running cluster)")
    ray_opts.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs reserved per shard task")
    ray_opts.add_argument("--max-retries", type=int, default=2, help="retries of a task whose worker died")
    ray_args, rest = ray_opts.parse_known_args(argv)
    args = parser.parse_args(["render", *rest])
    from datagen.cluster import RayUnavailable, import_ray

    try:
        import_ray()
    except RayUnavailable as e:
        print(f"ray_render: error: {e}", file=sys.stderr)
        return 2
    return render_cmd.run(args, runner=ray_runner(ray_args))


def ray_runner(ray_args: argparse.Namespace):
    def run(config, out, shards, resume, progress, workers):
        from datagen.cluster import ray_write_shards

        return ray_write_shards(
            config, out, shards, resume=resume, address=ray_args.address, cpus_per_task=ray_args.cpus_per_task,
            max_retries=ray_args.max_retries, progress=progress,
        )  # fmt: skip

    return run


if __name__ == "__main__":
    sys.exit(main())
