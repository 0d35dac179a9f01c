"""The one config layer: parsed YAML/JSON into typed dataclasses, strictly, with errors naming file and key path.

Every configuration of the project goes through :func:`from_dict` (or :func:`check_value` for a single value):
run manifests (``training.train.manifest``), data manifests (``loaders.data_manifest``), render configs
(``datagen.config.RenderConfig.from_dict``) and loss parameters (``training.losses.objective``). Unknown keys,
missing required keys, wrong types and a dataclass's own checks all raise :class:`ConfigError`, whose message
starts with the file and the key path::

    manifests/runs/x.yaml: stages[1].losses.cycle.weight: expected a number, got 'abc'
    manifests/data/mixed.yaml: sources.chair: unknown key 'wieght' (allowed here: path, weight, ...)

It lives in ``loaders`` because that is the package both others already import (datagen writes the schema that
``loaders.schema`` defines, training reads through the loaders) and it imports neither, so no cycle is possible.

Supported field types: ``int``, ``float`` (ints accepted, and numeric strings, which YAML 1.1 makes of ``1e-4``),
``str``, ``bool``, ``Any``, ``X | None`` and other unions, ``list[X]``, ``tuple[X, ...]`` / ``tuple[X, Y]``,
``dict[str, X]`` and nested dataclasses. A dataclass may define:

* ``validate(self)``: cross-field checks after construction; a ``ValueError`` it raises (or one raised by
  ``__post_init__``) becomes a :class:`ConfigError` at the dataclass's key path, or at ``path.key`` when it is a
  ``ConfigError(message, key=...)``;
* ``__shorthand__ = "field"``: a scalar written where the mapping is expected means ``{field: scalar}``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, TypeVar, Union

__all__ = ["ConfigError", "check_value", "from_dict", "to_dict"]

T = TypeVar("T")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A configuration is malformed or names something that does not exist; the message names file and key path.

    Args:
        message: the whole message (``"file: key.path: what is wrong"``), or, inside a dataclass's ``validate``,
            what is wrong with field ``key``.
        key: the field at fault, relative to the dataclass being validated (:func:`from_dict` prefixes the path).
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _at(where: str, path: str, message: str) -> ConfigError:
    return ConfigError(": ".join([p for p in (where, path) if p] + [message]))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_value(value: Any, tp: Any, where: str, path: str, exact_numbers: bool = False) -> Any:
    """Check (and convert) one value against a type.

    Args:
        value: the parsed value.
        tp: its declared type (see the module docstring for the supported ones).
        where: the file (or other origin) the value came from, the first word of every error ("" for none).
        path: the value's key path inside ``where``.
        exact_numbers: keep an int given for a ``float`` as an int (records whose hash must not change, such as
            a dataset's render config); otherwise it becomes a float.

    Raises:
        ConfigError: the value does not fit the type.
    """
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
                return check_value(value, arg, where, path, exact_numbers)
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        raise _at(where, path, f"{value!r} is not {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, path, exact_numbers=exact_numbers)
    if origin is list:
        if not isinstance(value, list):
            raise _at(where, path, f"expected a list, got {type(value).__name__}")
        return [check_value(v, args[0], where, _join(path, i), exact_numbers) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _at(where, path, f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(v, args[0], where, _join(path, i), exact_numbers) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _at(where, path, f"expected {len(args)} values, got {len(value)}")
        return tuple(
            check_value(v, a, where, _join(path, i), exact_numbers) for i, (v, a) in enumerate(zip(value, args))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise _at(where, path, f"expected a mapping, got {type(value).__name__}")
        return {str(k): check_value(v, args[1], where, _join(path, str(k)), exact_numbers) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _at(where, path, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _at(where, path, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _at(where, path, f"expected a number, got {value!r}")
        return value if exact_numbers and isinstance(value, int) else float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _at(where, path, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config field type {tp!r} at {path}")  # a bug in the schema, not the file


def from_dict(cls: type[T], data: Any, where: str, path: str = "", *, exact_numbers: bool = False) -> T:
    """Build dataclass ``cls`` from a parsed mapping, strictly.

    Args:
        cls: the dataclass.
        data: the parsed YAML/JSON (a dict; ``None`` means an empty mapping; a scalar when ``cls`` has a
            ``__shorthand__``).
        where: the file the data came from (first word of every error).
        path: the key path of ``data`` inside the file.
        exact_numbers: see :func:`check_value`.

    Raises:
        ConfigError: unknown key, missing required key, wrong type, or the dataclass's own checks failing.
    """
    if data is None:
        data = {}
    shorthand = getattr(cls, "__shorthand__", None)
    if shorthand is not None and not isinstance(data, dict):
        data = {shorthand: data}
    if not isinstance(data, dict):
        raise _at(where, path, f"expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise _at(where, path, f"unknown key {key!r} (allowed here: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = check_value(data[name], hints[name], where, _join(path, name), exact_numbers)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _at(where, _join(path, name), "required key is missing")
    try:
        obj = cls(**kwargs)  # __post_init__ checks run here
        check = getattr(obj, "validate", None)
        if check is not None:
            check()
    except ValueError as e:
        key = getattr(e, "key", None)
        raise _at(where, _join(path, key) if key else path, str(e)) from e
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain dicts/lists (tuples become lists), for writing a resolved config as YAML."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
