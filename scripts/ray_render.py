#!/usr/bin/env python
"""Render a dataset on a Ray cluster: ``datagen render --ray`` with the per-task CPUs and retries as options.

Takes the options of ``datagen render`` plus the Ray ones below; ``--address A`` is ``datagen render --ray A``
and no ``--address`` a local Ray instance (``--ray``). The result is byte for byte the dataset ``datagen render``
makes with the same options.

Usage::

    EXTRAS=cluster bash scripts/setup.sh            # ray, pinned (or: pip install -e ".[cluster]")
    ray start --head                                # on the head node; `ray start --address=HEAD:6379` on others
    python scripts/ray_render.py --category chair --n 50000 --out /shared/data/chair --address auto
    python scripts/ray_render.py --category chair --n 50000 --out /shared/data/chair --address auto --resume
    datagen verify /shared/data/chair

Every node needs this package installed and the output folder mounted at the same path.
"""

from __future__ import annotations

import argparse
import sys

from datagen.commands import render as render_cmd


def main(argv: list[str] | None = None) -> int:
    ray_opts = argparse.ArgumentParser(add_help=False)
    ray_opts.add_argument("--address", default="", help="Ray cluster address ('auto' joins a running cluster)")
    ray_opts.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs reserved per shard task")
    ray_opts.add_argument("--max-retries", type=int, default=3, help="retries of a task whose worker died")
    ray_args, rest = ray_opts.parse_known_args(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    render_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["render", *rest, "--ray", ray_args.address])
    try:
        runner = render_cmd.ray_runner(ray_args.address, ray_args.cpus_per_task, ray_args.max_retries)
    except RuntimeError as e:  # RayUnavailable
        print(f"ray_render: error: {e}", file=sys.stderr)
        return 2
    return render_cmd.run(args, runner=runner)


if __name__ == "__main__":
    sys.exit(main())
