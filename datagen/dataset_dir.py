"""A dataset folder being written: claiming it, owning shards, receipts and the manifest.

Any number of writers (local worker processes, Slurm array tasks, Ray tasks on a shared filesystem) may add
shards to one folder at once. Each shard is a pure function of the dataset's config and its index, so the only
thing to coordinate is bookkeeping, and the design keeps shared mutable state out of the critical path:

* **Receipts are the truth.** The writer of shard ``i`` renames its finished tar into place and then writes a
  small receipt ``.datagen/receipts/pairs-{i:06d}.json`` (index, samples, bytes, sha256, fingerprint), itself
  atomically. A receipt has exactly one writer, so concurrent writers can never lose one another's entries.
* **``dataset.json`` is a view.** After every shard the writer rebuilds the manifest from all receipts (a
  stat per shard, no hashing) and replaces it atomically, under an ``flock`` on ``.datagen/lock`` so rebuilds
  are serialised: the last rebuild sees every receipt written before it. Where ``flock`` is unsupported or
  only node-local (some Lustre mounts), a racing rebuild can at worst leave an entry out of ``dataset.json``
  until the next rebuild; the receipt is still there, and ``--resume`` (or any later shard) repairs it.
* **One owner per shard.** Making shard ``i`` holds a non-blocking ``flock`` on ``.datagen/locks/{i}.lock``.
  The kernel drops it when its process dies (even on SIGKILL), so temp files of shard ``i`` found while
  holding the lock belong to a dead writer and are removed; a shard whose lock is held is skipped.

Layout::

    DIR/dataset.json  DIR/pairs-000000.tar ...
    DIR/.datagen/{lock, locks/, receipts/, tmp/}

Temp files live in ``.datagen/tmp`` (same filesystem, so the final rename is atomic) and are never listed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loaders.dataset_manifest import (
    MANIFEST_NAME,
    DatasetManifest,
    ManifestError,
    ShardEntry,
    sha256_file,
    shard_name,
)

__all__ = ["INTERNAL_DIR", "OutputFolderError", "DatasetExistsError", "DatasetDir", "file_lock"]

INTERNAL_DIR = ".datagen"
_UNSUPPORTED_LOCK_ERRNOS = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL}


class OutputFolderError(ValueError):
    """The output folder cannot take this dataset (another dataset, unrelated files, not writable)."""


class DatasetExistsError(OutputFolderError):
    """The folder already holds some of the requested shards of this same dataset (``--resume`` keeps them)."""


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing).

    Yields:
        True while the lock is held; False when ``blocking`` is off and another process holds it. On a
        filesystem without ``flock`` it warns once and yields True (the receipts design stays correct).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError as e:
            if e.errno not in _UNSUPPORTED_LOCK_ERRNOS:
                raise
            warnings.warn(f"{path}: file locks unsupported here ({e.strerror}); writing without them", stacklevel=3)
        yield True
    finally:
        os.close(fd)  # closing drops the lock


def _atomic_write_json(path: Path, data: Mapping[str, Any], tmp_dir: Path) -> None:
    """Replace ``path`` atomically (temp file in ``tmp_dir``, fsync, rename), readable by others per the umask."""
    tmp = tmp_dir / f"{path.name}.{socket.gethostname()}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _describe_config_difference(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    ours = json.loads(json.dumps(ours))  # tuples -> lists, as read back from JSON
    keys = sorted(set(ours) | set(theirs))
    diffs = [f"{k} {theirs.get(k)!r} there vs {ours.get(k)!r} here" for k in keys if ours.get(k) != theirs.get(k)]
    return "; ".join(diffs[:6]) + (" ..." if len(diffs) > 6 else "")


class DatasetDir:
    """The folder of one dataset (identified by its generator fingerprint) that shards are written into.

    Args:
        root: the dataset folder (created on :meth:`claim`).
        generator: the manifest's ``generator`` record; must hold ``fingerprint`` (equal fingerprints mean
            identical datasets), and usually ``name``, ``version`` and ``config``.
        root_seed: recorded in the manifest.
        n_shards: shards of the complete dataset.
    """

    def __init__(self, root: str | Path, generator: Mapping[str, Any], root_seed: int, n_shards: int):
        if "fingerprint" not in generator:
            raise ValueError("the generator record needs a 'fingerprint'")
        self.root = Path(root).absolute()
        self.generator = dict(generator)
        self.root_seed = int(root_seed)
        self.n_shards = int(n_shards)
        self.internal = self.root / INTERNAL_DIR

    @property
    def fingerprint(self) -> str:
        return self.generator["fingerprint"]

    def shard_path(self, index: int) -> Path:
        return self.root / shard_name(index)

    def receipt_path(self, index: int) -> Path:
        return self.internal / "receipts" / shard_name(index).replace(".tar", ".json")

    def temp_path(self, index: int) -> Path:
        """A temp name unique to this process (``.datagen/tmp/pairs-000003.tar.<host>.<pid>.tmp``)."""
        return self.internal / "tmp" / f"{shard_name(index)}.{socket.gethostname()}.{os.getpid()}.tmp"

    # ----------------------------------------------------------------------------------------------------------
    # before writing

    def check(self, shards: Sequence[int], resume: bool) -> None:
        """Refuse, without touching anything, a folder that cannot take the requested shards.

        Raises:
            OutputFolderError: not a folder, not writable, holds unrelated files or a different dataset.
            DatasetExistsError: without ``resume``, when some requested shards of this dataset already exist.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise OutputFolderError(f"{root} exists and is not a folder")
        existing = root if root.exists() else next(p for p in root.parents if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK):
            what = "is not writable" if existing == root else f"cannot be created: {existing} is not writable"
            raise OutputFolderError(f"{root} {what}; choose another --out")
        if not root.exists():
            return
        if not (root / MANIFEST_NAME).exists():
            others = sorted(p.name for p in root.iterdir() if p.name != INTERNAL_DIR)
            if others:
                shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                raise OutputFolderError(
                    f"{root} is not empty and holds no {MANIFEST_NAME} (found {shown}); "
                    "choose an empty or new folder with --out"
                )
            return
        self._check_same_dataset(self._load_manifest())
        if resume:
            return
        present = [i for i in shards if self.shard_path(i).exists() or self.receipt_path(i).exists()]
        if present:
            raise DatasetExistsError(
                f"{root} already holds {len(present)} of the {len(shards)} requested shards of this dataset; "
                "pass --resume to keep them and make the missing ones"
            )

    def _load_manifest(self) -> DatasetManifest:
        try:
            return DatasetManifest.load(self.root)
        except ManifestError as e:
            raise OutputFolderError(f"{e}; refusing to write into {self.root}") from None

    def _check_same_dataset(self, manifest: DatasetManifest) -> None:
        theirs = manifest.generator
        if theirs.get("fingerprint") == self.fingerprint and theirs.get("version") == self.generator.get("version"):
            return
        if theirs.get("fingerprint") == self.fingerprint:
            diff = f"made by version {theirs.get('version')}, this is {self.generator.get('version')}"
        else:
            diff = _describe_config_difference(self.generator.get("config", {}), theirs.get("config", {}))
        raise OutputFolderError(
            f"{self.root} holds a different dataset ({diff or 'different generator'}); "
            "choose another --out, or remove that folder to replace it"
        )

    def claim(self) -> None:
        """Create the folder and its manifest, or join a folder that holds this same dataset.

        Raises:
            OutputFolderError: the folder cannot be created or written (``/proc``, ``/sys``, a read-only mount,
                a full disk), naming it and the system's reason; or it holds another dataset.
        """
        try:
            for sub in ("locks", "receipts", "tmp"):
                (self.internal / sub).mkdir(parents=True, exist_ok=True)
            with file_lock(self.internal / "lock"):
                if (self.root / MANIFEST_NAME).exists():
                    self._check_same_dataset(self._load_manifest())
                self._rebuild_manifest()
        except OSError as e:
            where = e.filename if e.filename else self.root
            raise OutputFolderError(
                f"{self.root}: cannot write the dataset here ({e.strerror or e} at {where}); choose another --out"
            ) from None

    # ----------------------------------------------------------------------------------------------------------
    # shards

    def read_receipt(self, index: int) -> ShardEntry | None:
        """The receipt of shard ``index`` when it exists, belongs to this dataset and matches the file's size."""
        try:
            record = json.loads(self.receipt_path(index).read_text())
            entry = ShardEntry(**{k: record[k] for k in ("index", "name", "samples", "bytes", "sha256")})
            entry.dropped = int(record.get("dropped", 0))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        path = self.shard_path(index)
        if record.get("fingerprint") != self.fingerprint or entry.index != index or entry.name != path.name:
            return None
        try:
            return entry if path.stat().st_size == entry.bytes else None
        except OSError:
            return None

    def completed(self, shards: Sequence[int], checksums: bool) -> dict[int, ShardEntry]:
        """Shards among ``shards`` that are complete (receipt + file of the right size, and sha256 if asked)."""
        done = {}
        for i in shards:
            entry = self.read_receipt(i)
            if entry is not None and (not checksums or sha256_file(self.shard_path(i)) == entry.sha256):
                done[i] = entry
        return done

    @contextlib.contextmanager
    def own_shard(self, index: int) -> Iterator[bool]:
        """Own shard ``index`` for writing; yields False when another live process is making it.

        While owned, temp files of this shard left by dead writers are removed.
        """
        with file_lock(self.internal / "locks" / f"{index:06d}.lock", blocking=False) as held:
            if held:  # the shard's tar and receipt temps of a dead writer (the only other possible owner)
                for pattern in (f"{shard_name(index)}.*.tmp", f"{self.receipt_path(index).name}.*.tmp"):
                    for stale in (self.internal / "tmp").glob(pattern):
                        stale.unlink(missing_ok=True)
            yield held

    def commit_shard(
        self, index: int, tmp: Path, samples: int, nbytes: int, sha256: str, dropped: int = 0
    ) -> ShardEntry:
        """Publish a finished temp shard: rename it into place, write its receipt, refresh the manifest.
        ``dropped`` counts pairs the generator did not write (photoreal renders that disagreed with the GT)."""
        entry = ShardEntry(
            index=index, name=shard_name(index), samples=samples, bytes=nbytes, sha256=sha256, dropped=dropped
        )
        self.receipt_path(index).unlink(missing_ok=True)  # a remade shard must never pair with an old receipt
        os.replace(tmp, self.shard_path(index))
        _fsync_dir(self.root)
        _atomic_write_json(
            self.receipt_path(index), {**asdict(entry), "fingerprint": self.fingerprint}, self.internal / "tmp"
        )
        self.sync_manifest()
        return entry

    # ----------------------------------------------------------------------------------------------------------
    # manifest

    def sync_manifest(self) -> DatasetManifest:
        """Rebuild ``dataset.json`` from the receipts (under the folder lock) and return it."""
        with file_lock(self.internal / "lock"):
            return self._rebuild_manifest()

    def _rebuild_manifest(self) -> DatasetManifest:
        """Write ``dataset.json`` from the receipts; the caller holds the folder lock."""
        for stale in (self.internal / "tmp").glob(f"{MANIFEST_NAME}.*.tmp"):  # only a lock holder writes one
            stale.unlink(missing_ok=True)
        entries = [e for i in range(self.n_shards) if (e := self.read_receipt(i)) is not None]
        manifest = DatasetManifest(
            generator=self.generator, root_seed=self.root_seed, n_shards=self.n_shards, shards=entries
        )
        path = self.root / MANIFEST_NAME
        try:
            unchanged = json.loads(path.read_text()) == manifest.to_dict()
        except (OSError, ValueError):
            unchanged = False
        if not unchanged:  # same bytes as DatasetManifest.save, but world-readable like the shards
            _atomic_write_json(path, manifest.to_dict(), self.internal / "tmp")
        return manifest
