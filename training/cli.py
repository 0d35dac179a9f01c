"""The ``semmatch`` command: one CLI, one module per subcommand under ``training/commands``.

Each command module defines ``register(subparsers) -> None``, which adds its parser and sets ``func`` (called
with the parsed namespace, returning an exit code). Heavy imports stay inside ``func`` so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "eval", "match")


DESCRIPTION = "semmatch: train, evaluate and visualise dense semantic matchers with a VGGT prior."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semmatch", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"training.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
