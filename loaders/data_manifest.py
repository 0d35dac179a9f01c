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
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loaders.sources import ShardRef, expand_spec

__all__ = ["DataManifestError", "SourceSpec", "Source", "DataManifest", "expand_env"]

VERIFY_MODES = ("none", "size", "sha256")
_TOP_KEYS = {"version", "data_root", "verify", "sources"}
_SOURCE_KEYS = {"path", "weight", "samples_per_shard", "verify"}
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class DataManifestError(ValueError):
    """A data manifest is malformed; the message names the file and the offending key."""


def expand_env(text: str, where: str) -> str:
    """Expand ``${VAR}`` / ``${VAR:-default}``; an unset variable without a default is an error naming ``where``."""

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise DataManifestError(f"{where}: environment variable {name} is not set (or write ${{{name}:-default}})")
        return default

    return _ENV_RE.sub(sub, text)


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
            raise DataManifestError(f"{where}: no such data manifest") from None
        except yaml.YAMLError as e:
            raise DataManifestError(f"{where}: not valid YAML ({e})") from None
        return cls.from_dict(raw, where=where, base=path.parent, data_root=data_root)

    @classmethod
    def from_dict(
        cls, raw: Any, where: str = "data manifest", base: str | Path = ".", data_root: str | Path | None = None
    ) -> DataManifest:
        if not isinstance(raw, dict):
            raise DataManifestError(f"{where}: the top level must be a mapping")
        unknown = sorted(set(raw) - _TOP_KEYS)
        if unknown:
            raise DataManifestError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(_TOP_KEYS)})")
        if raw.get("version", 1) != 1:
            raise DataManifestError(f"{where}: version: {raw.get('version')!r} is not supported (this code reads 1)")
        verify = _verify(raw.get("verify", "none"), f"{where}: verify")
        if data_root is None:
            root_text = raw.get("data_root")
            if root_text is None:
                root_text = os.environ.get("DATA_ROOT", ".")
            if not isinstance(root_text, str):
                raise DataManifestError(f"{where}: data_root must be a string")
            data_root = expand_env(root_text, f"{where}: data_root")
        root = Path(data_root)
        if not root.is_absolute():
            root = Path(base) / root
        sources_raw = raw.get("sources")
        if not isinstance(sources_raw, dict) or not sources_raw:
            raise DataManifestError(f"{where}: sources must be a non-empty mapping of name -> source")
        sources = [_source(name, s, f"{where}: sources.{name}") for name, s in sources_raw.items()]
        return cls(sources=sources, data_root=str(root), verify=verify, path=where, raw=raw)

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


def _verify(value: Any, where: str) -> str:
    if value is None or value is False:
        return "none"
    if value not in VERIFY_MODES:
        raise DataManifestError(f"{where}: must be one of {VERIFY_MODES}, got {value!r}")
    return value


def _source(name: Any, raw: Any, where: str) -> SourceSpec:
    if not isinstance(name, str) or not name:
        raise DataManifestError(f"{where}: a source name must be a non-empty string")
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        raise DataManifestError(f"{where}: must be a mapping (path, weight, ...) or a path string")
    unknown = sorted(set(raw) - _SOURCE_KEYS)
    if unknown:
        raise DataManifestError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(_SOURCE_KEYS)})")
    specs = raw.get("path")
    if isinstance(specs, str):
        specs = [specs]
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) and s for s in specs):
        raise DataManifestError(f"{where}.path: must be a path/URL string or a non-empty list of them")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise DataManifestError(f"{where}.weight: must be a positive number, got {weight!r}")
    sps = raw.get("samples_per_shard")
    if sps is not None and (isinstance(sps, bool) or not isinstance(sps, int) or sps < 0):
        raise DataManifestError(f"{where}.samples_per_shard: must be a non-negative integer, got {sps!r}")
    verify = _verify(raw["verify"], f"{where}.verify") if "verify" in raw else None
    return SourceSpec(name=name, specs=specs, weight=float(weight), samples_per_shard=sps, verify=verify)
