"""The ``semmatch`` command: one CLI, one module per subcommand under ``training/commands``
(the pattern: :mod:`loaders.subcommands`).
"""

from __future__ import annotations

import argparse
import sys

from loaders.subcommands import command_parser

COMMANDS = ("train", "eval", "match")


DESCRIPTION = "semmatch: train, evaluate and visualise dense semantic matchers with a VGGT prior."


def build_parser() -> argparse.ArgumentParser:
    return command_parser("semmatch", DESCRIPTION, "training.commands", COMMANDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives the positional overrides only the words before the first option: `train M --resume a=b`
    # leaves a=b over. Commands that take overrides collect them wherever they stand.
    if extra and getattr(args, "extra_overrides", False) and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
