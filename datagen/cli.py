"""The ``datagen`` command: one CLI, one module per subcommand under ``datagen/commands``.

Each command module defines ``register(subparsers) -> None``, which adds its parser and sets ``func`` (called
with the parsed namespace, returning an exit code). Heavy imports stay inside ``func`` so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("render", "verify", "preview", "categories", "real", "meshes", "explore")


DESCRIPTION = (
    "datagen: render and check dense semantic-correspondence datasets (procedural categories, real benchmark pairs)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datagen", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"datagen.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "render" and getattr(args, "backend", None) == "pyrender":
        from datagen.glcheck import pyopengl_problem

        problem = pyopengl_problem()
        if problem is not None:  # before any work: a later pip install can break the GL stack (see glcheck)
            print(f"datagen render: error: {problem}", file=sys.stderr)
            return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
