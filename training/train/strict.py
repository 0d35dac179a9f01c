"""Strict conversion of parsed YAML into typed dataclasses: unknown keys, missing required keys and wrong types
are errors that name the file and the key path (``run.yaml: stages[1].losses.dense_epe.weight: ...``).

Supported field types: ``int``, ``float`` (ints accepted), ``str``, ``bool``, ``Any``, ``X | None``,
``list[X]``, ``tuple[X, ...]`` / ``tuple[X, Y]``, ``dict[str, X]`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, TypeVar, Union

__all__ = ["ManifestError", "from_dict", "to_dict"]

T = TypeVar("T")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ManifestError(ValueError):
    """A run manifest is malformed or names something that does not exist; the message names file and key."""


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where, path)
            except ManifestError as e:
                errors.append(str(e))
        raise ManifestError(errors[0] if len(errors) == 1 else f"{where}: {path}: {value!r} is not {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, path)
    if origin is list:
        if not isinstance(value, list):
            raise ManifestError(f"{where}: {path}: expected a list, got {type(value).__name__}")
        return [_convert(v, args[0], where, _join(path, i)) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ManifestError(f"{where}: {path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], where, _join(path, i)) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ManifestError(f"{where}: {path}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, where, _join(path, i)) for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: {path}: expected a mapping, got {type(value).__name__}")
        return {str(k): _convert(v, args[1], where, _join(path, str(k))) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ManifestError(f"{where}: {path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(f"{where}: {path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ManifestError(f"{where}: {path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ManifestError(f"{where}: {path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported manifest field type {tp!r} at {path}")  # a bug in the schema, not the file


def from_dict(cls: type[T], data: Any, where: str, path: str = "") -> T:
    """Build dataclass ``cls`` from a parsed mapping, strictly.

    Args:
        cls: the dataclass.
        data: the parsed YAML (a dict; ``None`` means an empty mapping).
        where: the file the data came from (first word of every error).
        path: the key path of ``data`` inside the file.

    Raises:
        ManifestError: unknown key, missing required key, wrong type, or the dataclass's own ``validate`` failing.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: {path or '<top level>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            allowed = ", ".join(fields)
            raise ManifestError(f"{where}: {_join(path, str(key))}: unknown key (allowed here: {allowed})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], where, _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ManifestError(f"{where}: {_join(path, name)}: required key is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise ManifestError(f"{where}: {path or '<top level>'}: {e}") from e
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain dicts/lists (tuples become lists), for writing the resolved manifest as YAML."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
