"""Data manifests (``manifests/data/*.yaml``): named shard sources with mixture weights, validated strictly.

Format (every key but ``sources`` is optional; unknown keys are errors naming the file and the key)::

    # python -m loaders stats manifests/data/mixed.yaml
    version: 1
    data_root: ${DATA_ROOT:-../../data}   # relative paths below resolve against it; itself against this file
    verify: size                          # none | size | sha256: check shards against each dataset.json
    sources:
      chair:
        path: synthetic/chair             # a dataset folder, a shard, a brace pattern/glob, a URL, or pipe:...
        weight: 2.0                       # mixture weight (resampled mode draws sources in these proportions)
      spair:
        path: [real/spair-a, real/spair-b]   # a list of specs is concatenated
        weight: 1.0
        samples_per_shard: 500            # only for shards without a dataset.json (exact mode needs counts)
        verify: none                      # per-source override

``${VAR}`` and ``${VAR:-default}`` expand from the environment in ``data_root`` and ``path``. ``data_root``
defaults to ``$DATA_ROOT`` when set, else the folder holding the manifest.

The file is checked by the project's one config layer (:mod:`loaders.strict`) against :class:`DataManifestFile`
and :class:`DataSourceEntry`; every error is a :class:`~loaders.strict.ConfigError` naming the file and key path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loaders.sources import ShardRef, expand_spec
from loaders.strict import ConfigError, from_dict

__all__ = [
    "ConfigError",
    "DataManifestFile",
    "DataSourceEntry",
    "SourceSpec",
    "Source",
    "DataManifest",
    "expand_env",
]

VERIFY_MODES = ("none", "size", "sha256")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, where: str) -> str:
    """Expand ``${VAR}`` / ``${VAR:-default}``; an unset variable without a default is an error naming ``where``."""

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise ConfigError(f"{where}: environment variable {name} is not set (or write ${{{name}:-default}})")
        return default

    return _ENV_RE.sub(sub, text)


def _check_verify(value: str | None) -> None:
    if value is not None and value not in VERIFY_MODES:
        raise ConfigError(f"must be one of {VERIFY_MODES}, got {value!r}", key="verify")


@dataclass
class DataSourceEntry:
    """One entry of ``sources:`` as written (a bare string is its ``path``)."""

    __shorthand__ = "path"

    path: str | list[str]
    weight: float = 1.0
    samples_per_shard: int | None = None
    verify: str | None = None  # None: the manifest's

    def validate(self) -> None:
        paths = [self.path] if isinstance(self.path, str) else self.path
        if not paths or not all(paths):
            raise ConfigError("must be a path/URL string or a non-empty list of them", key="path")
        if not self.weight > 0:
            raise ConfigError(f"must be a positive number, got {self.weight!r}", key="weight")
        if self.samples_per_shard is not None and self.samples_per_shard < 0:
            got = self.samples_per_shard
            raise ConfigError(f"must be a non-negative integer, got {got!r}", key="samples_per_shard")
        _check_verify(self.verify)


@dataclass
class DataManifestFile:
    """The top level of a data manifest file, as written."""

    sources: dict[str, DataSourceEntry]
    version: int = 1
    data_root: str | None = None
    verify: str = "none"

    def validate(self) -> None:
        if self.version != 1:
            raise ConfigError(f"{self.version!r} is not supported (this code reads 1)", key="version")
        _check_verify(self.verify)
        if not self.sources:
            raise ConfigError("sources must be a non-empty mapping of name -> source")
        if not all(self.sources):
            raise ConfigError("a source name must be a non-empty string", key="sources")


def _null_verify_is_none(raw: Any) -> Any:
    """``verify: null`` / ``verify: false`` (YAML's ``no``) mean ``none``, at the top and per source."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    if "verify" in raw and (raw["verify"] is None or raw["verify"] is False):
        raw["verify"] = "none"
    if isinstance(raw.get("sources"), dict):
        raw["sources"] = {k: _null_verify_is_none(v) if isinstance(v, dict) else v for k, v in raw["sources"].items()}
    return raw


@dataclass
class SourceSpec:
    """One source as written in the manifest (paths not yet expanded)."""

    name: str
    specs: list[str]
    weight: float = 1.0
    samples_per_shard: int | None = None
    verify: str | None = None


@dataclass
class Source:
    """A resolved source: its shards (with counts where known) and mixture weight."""

    name: str
    shards: list[ShardRef]
    weight: float = 1.0
    verify: str = "none"

    @property
    def n_samples(self) -> int | None:
        """Total samples, or ``None`` when some shard's count is unknown."""
        counts = [s.samples for s in self.shards]
        return None if any(c is None for c in counts) else sum(counts)


@dataclass
class DataManifest:
    """A parsed data manifest; :meth:`resolve` expands it into :class:`Source` objects."""

    sources: list[SourceSpec]
    data_root: str
    verify: str = "none"
    path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, data_root: str | Path | None = None) -> DataManifest:
        """Read and validate a YAML data manifest.

        Args:
            path: the YAML file.
            data_root: overrides the manifest's ``data_root``.
        """
        path = Path(path)
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such data manifest") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: not valid YAML ({e})") from None
        return cls.from_dict(raw, where=where, base=path.parent, data_root=data_root)

    @classmethod
    def from_dict(
        cls, raw: Any, where: str = "data manifest", base: str | Path = ".", data_root: str | Path | None = None
    ) -> DataManifest:
        """Validate a parsed data manifest (see the module docstring) against :class:`DataManifestFile`.

        Args:
            raw: the parsed YAML.
            where: the file it came from (the first word of every error).
            base: the folder a relative ``data_root`` resolves against.
            data_root: overrides the manifest's ``data_root``.

        Raises:
            ConfigError: naming ``where`` and the key path.
        """
        f = from_dict(DataManifestFile, _null_verify_is_none(raw), where)
        if data_root is None:
            root_text = f.data_root if f.data_root is not None else os.environ.get("DATA_ROOT", ".")
            data_root = expand_env(root_text, f"{where}: data_root")
        root = Path(data_root)
        if not root.is_absolute():
            root = Path(base) / root
        sources = [
            SourceSpec(
                name=name,
                specs=[e.path] if isinstance(e.path, str) else list(e.path),
                weight=e.weight,
                samples_per_shard=e.samples_per_shard,
                verify=e.verify,
            )
            for name, e in f.sources.items()
        ]
        return cls(sources=sources, data_root=str(root), verify=f.verify, path=where, raw=raw)

    def resolve(self) -> list[Source]:
        """Expand every source's specs into shards (relative paths under ``data_root``)."""
        out = []
        for spec in self.sources:
            shards: list[ShardRef] = []
            for text in spec.specs:
                where = f"{self.path}: sources.{spec.name}.path"
                for ref in expand_spec(expand_env(text, where), base=self.data_root):
                    if ref.samples is None and spec.samples_per_shard is not None:
                        ref = ShardRef(ref.url, spec.samples_per_shard, ref.nbytes, ref.sha256)
                    shards.append(ref)
            out.append(Source(spec.name, shards, spec.weight, spec.verify or self.verify))
        return out
