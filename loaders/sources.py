"""Shard URLs: expanding specs into shard lists, opening byte streams, and reading tar shards sample by sample.

A *spec* names shards in one of these ways (relative paths resolve against ``base``):

* a local tar file, ``file://`` path, or a brace pattern (``pairs-{000000..000009}.tar``) or glob (``*.tar``);
* a dataset folder with a ``dataset.json`` (:mod:`loaders.dataset_manifest`), or the ``dataset.json`` itself,
  local or ``http(s)://``: the shards it lists, with their sample counts, sizes and sha256;
* an ``http(s)://`` URL (read with the standard library, retried) or a ``pipe:`` shell command writing the tar
  to stdout (``pipe:aws s3 cp s3://bucket/pairs-000000.tar -``); brace patterns expand inside both;
* any other scheme that ``webdataset.gopen`` knows (``gs://``, ``hf://``, ...).

Shards are read in order with :class:`ShardReader`; a sample is the run of consecutive tar members sharing a key
(the WebDataset rule: the key is the path up to the first dot of the file name). Errors name the shard and,
where known, the sample.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import braceexpand

from loaders.dataset_manifest import MANIFEST_NAME, DatasetManifest, ManifestError

__all__ = [
    "ShardRef",
    "ShardError",
    "expand_spec",
    "open_stream",
    "ShardReader",
    "count_samples",
    "verify_shards",
    "is_remote",
]

_KEY_RE = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")
HTTP_RETRIES = 3


class ShardError(RuntimeError):
    """A shard cannot be opened or read (missing, truncated, corrupted, checksum mismatch); names the shard."""


@dataclass(frozen=True)
class ShardRef:
    """One shard: where it is and what its dataset manifest says about it (``None`` where unknown)."""

    url: str
    samples: int | None = None
    nbytes: int | None = None
    sha256: str | None = None


def is_remote(url: str) -> bool:
    """True for anything that is not a local path (``http(s)://``, ``pipe:``, ``gs://``, ...)."""
    return url.startswith("pipe:") or "://" in url and not url.startswith("file://")


def _local(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def expand_spec(spec: str, base: str | Path | None = None) -> list[ShardRef]:
    """Expand one spec (see the module doc) into shard references, in order.

    Raises:
        ShardError: a local pattern matches nothing, or a folder has no ``dataset.json``.
        ManifestError: a ``dataset.json`` is malformed.
    """
    spec = spec.strip()
    if spec.startswith("pipe:"):
        return [ShardRef(u) for u in braceexpand.braceexpand(spec)]
    if is_remote(spec):
        if spec.endswith(MANIFEST_NAME):
            return _from_remote_manifest(spec)
        return [ShardRef(u) for u in braceexpand.braceexpand(spec)]
    path = _local(spec)
    if base is not None and not os.path.isabs(path):
        path = os.path.join(str(base), path)
    if os.path.isdir(path):
        return _from_manifest(Path(path))
    if path.endswith(MANIFEST_NAME) and os.path.isfile(path):
        return _from_manifest(Path(path).parent)
    refs = []
    for p in braceexpand.braceexpand(path):
        matches = sorted(glob.glob(p)) if glob.has_magic(p) else ([p] if os.path.exists(p) else [])
        if not matches:
            raise ShardError(f"{p}: no such shard or dataset folder (from spec {spec!r})")
        refs += [ShardRef(m) for m in matches]
    return refs


def _refs(manifest: DatasetManifest, prefix: str) -> list[ShardRef]:
    return [
        ShardRef(prefix + s.name, samples=s.samples, nbytes=s.bytes, sha256=s.sha256)
        for s in sorted(manifest.shards, key=lambda s: s.index)
    ]


def _from_manifest(directory: Path) -> list[ShardRef]:
    if not (directory / MANIFEST_NAME).is_file():
        raise ShardError(f"{directory}: a shard folder needs a {MANIFEST_NAME} (is this a datagen output folder?)")
    return _refs(DatasetManifest.load(directory), str(directory) + os.sep)


def _from_remote_manifest(url: str) -> list[ShardRef]:
    with open_stream(url) as f:
        try:
            d = json.loads(f.read())
        except json.JSONDecodeError as e:
            raise ManifestError(f"{url}: not valid JSON ({e})") from e
    return _refs(DatasetManifest.from_dict(d, where=url), url[: -len(MANIFEST_NAME)])


# --------------------------------------------------------------------------------------------------------------
# byte streams


class _PipeStream:
    """stdout of a shell command; closing it checks the exit status (a failed download is an error)."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stdout = self.proc.stdout

    def read(self, n: int = -1) -> bytes:
        return self.stdout.read(n)

    def close(self, check: bool = True) -> None:
        if self.stdout.closed:
            return
        finished = self.proc.poll() is not None or self.stdout.read(1) == b""
        self.stdout.close()
        if not finished:
            self.proc.kill()
        rc = self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace")[-500:]
        self.proc.stderr.close()
        if check and finished and rc != 0:
            raise ShardError(f"pipe:{self.cmd}: exit status {rc}: {err.strip()}")

    def __enter__(self) -> _PipeStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(check=exc[0] is None)


def open_stream(url: str) -> IO[bytes]:
    """Open a shard (or manifest) URL for reading bytes; the caller closes it.

    Raises:
        ShardError: naming the URL when it cannot be opened.
    """
    try:
        if url.startswith("pipe:"):
            return _PipeStream(url[len("pipe:") :])  # type: ignore[return-value]
        if url.startswith(("http://", "https://")):
            for attempt in range(HTTP_RETRIES):
                try:
                    return urllib.request.urlopen(url, timeout=60)
                except urllib.error.HTTPError as e:
                    if e.code < 500 or attempt == HTTP_RETRIES - 1:
                        raise
                except urllib.error.URLError:
                    if attempt == HTTP_RETRIES - 1:
                        raise
                time.sleep(0.5 * 2**attempt)
        if is_remote(url):
            import webdataset

            return webdataset.gopen(url)
        return open(_local(url), "rb")
    except ShardError:
        raise
    except (OSError, ValueError, urllib.error.URLError) as e:
        raise ShardError(f"{url}: cannot open ({type(e).__name__}: {e})") from e


# --------------------------------------------------------------------------------------------------------------
# reading samples


class ShardReader:
    """Iterate a shard's samples in order: ``(index, members)`` with ``members`` = ``{field: bytes}`` plus
    ``__key__``/``__url__``. :meth:`skip` passes samples without keeping their bytes (a seek on local files).

    Raises (while iterating):
        ShardError: naming the shard and the last good sample on a truncated or corrupted tar.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.index = 0  # samples returned or skipped so far
        self.last_key: str | None = None
        self._stream: IO[bytes] | None = None
        self._tar: tarfile.TarFile | None = None
        self._pending: tarfile.TarInfo | None = None
        self._done = False
        self._eof = False

    def _open(self) -> None:
        self._stream = open_stream(self.url)
        mode = "r:" if not is_remote(self.url) else "r|"  # local: random access, skipping seeks over data
        try:
            self._tar = tarfile.open(fileobj=self._stream, mode=mode)  # noqa: SIM115 - lives as long as the reader
        except tarfile.TarError as e:
            if isinstance(self._stream, _PipeStream):
                self._stream.close(check=True)  # a failed command says why (exit status, stderr)
            self.close()
            raise ShardError(f"{self.url}: not a readable tar ({e})") from e

    def _where(self) -> str:
        after = f" after sample {self.last_key!r} (#{self.index - 1})" if self.last_key else " at its start"
        return f"{self.url}{after}"

    def _next_member(self) -> tarfile.TarInfo | None:
        if self._pending is not None:
            m, self._pending = self._pending, None
            return m
        if self._eof:
            return None
        try:
            while True:
                m = self._tar.next()
                if m is None:
                    self._eof = True
                    self._check_end()
                    return None
                if m.isfile():
                    return m
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ShardError(f"{self._where()}: truncated or corrupted tar ({type(e).__name__}: {e})") from e

    def _check_end(self) -> None:
        """tarfile ends quietly at a damaged header or a cut at a member boundary; a whole tar ends with zero
        blocks. Check that (local files: all of the rest; streams: what is left after tarfile's buffer)."""
        if is_remote(self.url):
            rest = self._stream.read()
            if rest.strip(b"\0"):
                raise ShardError(f"{self._where()}: corrupted tar (data after a damaged header)")
            if isinstance(self._stream, _PipeStream):
                self._stream.close(check=True)  # the command must have succeeded
            return
        offset = self._tar.offset
        self._stream.seek(offset)
        rest = self._stream.read()
        if rest.strip(b"\0"):
            raise ShardError(f"{self._where()}: corrupted tar header at byte {offset}")
        if len(rest) < 2 * tarfile.BLOCKSIZE:
            raise ShardError(f"{self._where()}: truncated tar (no end-of-archive marker at byte {offset})")

    def next_sample(self, keep: bool = True) -> dict[str, Any] | None:
        """The next sample's members (``None`` at the end); with ``keep=False`` the bytes are not read."""
        if self._done:
            return None
        if self._tar is None:
            self._open()
        first = self._next_member()
        if first is None:
            self._done = True
            return None
        key = _split(first.name, self.url)[0]
        members: dict[str, Any] = {"__key__": key, "__url__": self.url}
        m: tarfile.TarInfo | None = first
        while m is not None:
            k, field = _split(m.name, self.url)
            if k != key:
                self._pending = m
                break
            if field in members:
                raise ShardError(f"{self.url}: sample {key!r} has two {field!r} members")
            if keep:
                members[field] = self._read(m)
            m = self._next_member()
        self.index += 1
        self.last_key = key
        return members

    def _read(self, m: tarfile.TarInfo) -> bytes:
        try:
            f = self._tar.extractfile(m)
            data = f.read() if f is not None else b""
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ShardError(f"{self._where()}: truncated or corrupted tar ({type(e).__name__}: {e})") from e
        if len(data) != m.size:
            raise ShardError(f"{self._where()}: truncated tar (member {m.name!r} has {len(data)} of {m.size} bytes)")
        return data

    def skip(self, n: int) -> int:
        """Pass over ``n`` samples; returns how many there were (fewer at the end of the shard)."""
        done = 0
        while done < n and self.next_sample(keep=False) is not None:
            done += 1
        return done

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        while (s := self.next_sample()) is not None:
            yield self.index - 1, s

    def close(self) -> None:
        for obj in (self._tar, self._stream):
            if obj is not None:
                with contextlib.suppress(Exception):  # closing a broken stream must not mask the real error
                    obj.close()
        self._tar = self._stream = None
        self._done = True

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _split(name: str, url: str) -> tuple[str, str]:
    m = _KEY_RE.match(name)
    if m is None:
        raise ShardError(f"{url}: member {name!r} has no key.field name (WebDataset naming)")
    return m.group(1), m.group(2).lower()


def count_samples(url: str, tolerant: bool = False) -> int:
    """Number of samples in a shard (reads the tar headers; seeks past the data of local files).

    Args:
        tolerant: on a damaged shard, return the samples before the damage instead of raising.
    """
    with ShardReader(url) as r:
        try:
            return r.skip(1 << 62)
        except ShardError:
            if not tolerant:
                raise
            return max(0, r.index - 1)  # the last one may be cut


def verify_shards(refs: list[ShardRef], mode: str = "sha256", progress: bool = True) -> list[str]:
    """Compare shards with their manifest entries: ``"size"`` (local files only) or ``"sha256"`` (reads every
    byte; remote shards are streamed). Returns the problems found (empty when all agree); shards without a
    manifest entry are not checked."""
    from tqdm import tqdm

    if mode not in ("size", "sha256"):
        raise ValueError(f"verify mode must be 'size' or 'sha256', got {mode!r}")
    problems = []
    todo = [r for r in refs if r.sha256 is not None or r.nbytes is not None]
    for ref in tqdm(todo, desc=f"verify ({mode})", unit="shard", disable=not progress or not todo):
        local = not is_remote(ref.url)
        if local and not os.path.isfile(_local(ref.url)):
            problems.append(f"{ref.url}: missing")
            continue
        if local and ref.nbytes is not None and os.path.getsize(_local(ref.url)) != ref.nbytes:
            problems.append(f"{ref.url}: {os.path.getsize(_local(ref.url))} bytes, manifest says {ref.nbytes}")
            continue
        if mode == "sha256" and ref.sha256 is not None:
            h = hashlib.sha256()
            with open_stream(ref.url) as f:
                while block := f.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != ref.sha256:
                problems.append(f"{ref.url}: sha256 differs from the manifest")
    return problems
