"""The dataset manifest (``dataset.json``) beside a directory of pair shards (docs/design.md §6).

Written by every ``datagen`` writer (rendered and real pairs), read by the loaders and by ``datagen verify``::

    {
      "format": "semmatch-pairs",
      "schema_version": 1,
      "generator": {"name": "datagen.render", "version": "0.1.0", "config": {...}, "fingerprint": "<sha256>"},
      "root_seed": 0,
      "n_shards": 10,                    # shards the run will have when complete
      "shards": [{"index": 0, "name": "pairs-000000.tar", "samples": 100, "bytes": 104857600, "sha256": "..."}],
      "complete": false                  # true once every shard 0..n_shards-1 is listed
    }

Shards are listed only once complete (written to a temporary name, renamed, then recorded), so the manifest
never names a partial file. The file itself is replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loaders.schema import SCHEMA_VERSION

__all__ = ["MANIFEST_NAME", "FORMAT", "ShardEntry", "DatasetManifest", "shard_name", "sha256_file", "ManifestError"]

MANIFEST_NAME = "dataset.json"
FORMAT = "semmatch-pairs"


class ManifestError(ValueError):
    """A dataset folder's ``dataset.json`` is missing, is not JSON, or is not a ``semmatch-pairs`` manifest of this
    schema version (wrong format, schema version, or fields).

    Not a :class:`loaders.strict.ConfigError`: that is a configuration a person writes (run and data manifests,
    render configs, loss parameters) that fails validation, named by file and key path; this is a dataset on disk
    that the generator wrote (or a file that is not one) and that a reader cannot use, so the fix is to the data
    (re-render, ``--resume``, point at the right folder), not to a setting. Shards that disagree with a readable
    manifest (missing, wrong size or sha256) are listed by :meth:`DatasetManifest.verify_files`, not raised;
    damaged tars raise :class:`loaders.sources.ShardError`, bad samples :class:`loaders.schema.SchemaError`.
    """


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"pairs-{index:06d}.tar"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class ShardEntry:
    index: int
    name: str
    samples: int
    bytes: int
    sha256: str
    dropped: int = 0  # pairs not written: their photoreal render disagreed with the exact GT (others replace them)


def _entry_dict(s: ShardEntry) -> dict[str, Any]:
    """A shard's manifest record; ``dropped`` only where pairs were dropped (older manifests stay as they were)."""
    d = asdict(s)
    if not s.dropped:
        del d["dropped"]
    return d


@dataclass
class DatasetManifest:
    generator: dict[str, Any]
    root_seed: int
    n_shards: int
    shards: list[ShardEntry] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    @property
    def complete(self) -> bool:
        return sorted(s.index for s in self.shards) == list(range(self.n_shards))

    @property
    def n_samples(self) -> int:
        return sum(s.samples for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shards"] = [_entry_dict(s) for s in sorted(self.shards, key=lambda s: s.index)]
        d["complete"] = self.complete
        d["n_samples"] = self.n_samples
        if any(s.dropped for s in self.shards):
            d["n_dropped"] = sum(s.dropped for s in self.shards)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "dataset manifest") -> DatasetManifest:
        try:
            if d.get("format") != FORMAT:
                raise ManifestError(f"{where}: format is {d.get('format')!r}, expected {FORMAT!r}")
            if d.get("schema_version") != SCHEMA_VERSION:
                raise ManifestError(
                    f"{where}: schema_version {d.get('schema_version')} but this code reads {SCHEMA_VERSION}"
                )
            shards = [ShardEntry(**s) for s in d["shards"]]
            return cls(
                generator=d["generator"], root_seed=int(d["root_seed"]), n_shards=int(d["n_shards"]), shards=shards
            )
        except (KeyError, TypeError) as e:
            raise ManifestError(f"{where}: malformed ({type(e).__name__}: {e})") from e

    @classmethod
    def load(cls, directory: str | Path) -> DatasetManifest:
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise ManifestError(f"{path}: no dataset manifest (is this a datagen output folder?)")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from e
        return cls.from_dict(d, where=str(path))

    def save(self, directory: str | Path) -> None:
        """Write ``dataset.json`` atomically (temporary file, fsync, rename)."""
        directory = Path(directory)
        fd, tmp = tempfile.mkstemp(prefix=".dataset.", suffix=".json.tmp", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_dict(), f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, directory / MANIFEST_NAME)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def shard_paths(self, directory: str | Path) -> list[Path]:
        return [Path(directory) / s.name for s in sorted(self.shards, key=lambda s: s.index)]

    def verify_files(self, directory: str | Path, checksums: bool = True) -> list[str]:
        """Problems found comparing the listed shards with the files (empty when all agree)."""
        problems = []
        for s in self.shards:
            p = Path(directory) / s.name
            if not p.is_file():
                problems.append(f"{p}: listed in the manifest but missing")
                continue
            if p.stat().st_size != s.bytes:
                problems.append(f"{p}: {p.stat().st_size} bytes, manifest says {s.bytes}")
            elif checksums and sha256_file(p) != s.sha256:
                problems.append(f"{p}: sha256 differs from the manifest")
        return problems
