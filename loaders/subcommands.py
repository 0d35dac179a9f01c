"""The one-command-many-subcommands pattern shared by the ``datagen`` and ``semmatch`` CLIs.

Each subcommand is a module ``<package>.<name>`` defining ``register(subparsers) -> None``, which adds its parser
and sets ``func`` (called with the parsed namespace, returning an exit code). Heavy imports stay inside ``func``
so ``--help`` is fast. It lives in ``loaders`` for the reason :mod:`loaders.strict` does: datagen and training
both import this package, and it imports neither.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["command_parser"]


def command_parser(prog: str, description: str, package: str, commands: tuple[str, ...]) -> argparse.ArgumentParser:
    """The top-level parser of ``prog``, with one subparser per module ``package.<name>`` of ``commands``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"{package}.{name}").register(sub)
    return parser
