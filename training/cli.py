"""The ``semmatch`` command: one CLI, one module per subcommand under ``training/commands``.

Each command module defines ``register(subparsers) -> None``, which adds its parser and sets ``func`` (called
with the parsed namespace, returning an exit code). Heavy imports stay inside ``func`` so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "eval", "match", "baseline")


DESCRIPTION = "semmatch: train, evaluate and visualise dense semantic matchers with a VGGT prior."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semmatch", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"training.commands.{name}")
        except ModuleNotFoundError as e:  # a command still being written must not break the others
            if e.name != f"training.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
