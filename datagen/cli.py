"""The ``datagen`` command: one CLI, one module per subcommand under ``datagen/commands``
(the pattern: :mod:`loaders.subcommands`).
"""

from __future__ import annotations

import argparse
import sys

from loaders.subcommands import command_parser

COMMANDS = ("render", "verify", "preview", "categories", "real", "meshes", "explore")


DESCRIPTION = (
    "datagen: render and check dense semantic-correspondence datasets (procedural categories, real benchmark pairs)."
)


def build_parser() -> argparse.ArgumentParser:
    return command_parser("datagen", DESCRIPTION, "datagen.commands", COMMANDS)


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
