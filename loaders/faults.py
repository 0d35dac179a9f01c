"""Damaged copies of a shard, for fault-injection checks of everything that reads shards.

A *fault* rewrites one tar shard the way storage, transfers or bugs damage data: bytes of one member overwritten,
a member cut short or left out (the tar itself stays well-formed, so only the sample decoder can notice), or the
file cut at some byte or a tar header byte overwritten (the tar reader must notice). Each fault is a pure function
of the shard and a seed, so a failing case can be replayed exactly.

Usage::

    for fault, data in member_faults(path, "dense.bin", sample=1, seed=0):
        damaged.write_bytes(data)
        ...  # read it; expect a SchemaError / ShardError naming the shard (and the sample), or nothing at all
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["Fault", "read_members", "write_members", "member_faults", "file_faults", "sample_keys"]


@dataclass(frozen=True)
class Fault:
    """One damage: ``kind`` (``flip``, ``truncate``, ``drop``, ``cut``, ``header``), the member it hits
    (``key.field``; None for file-level damage) and what exactly was done."""

    kind: str
    member: str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.member or 'file'}: {self.detail}"


def read_members(path: str | Path | IO[bytes]) -> list[tuple[str, bytes]]:
    """The shard's ``(name, bytes)`` members in order (a path or a binary file object)."""
    with tarfile.open(fileobj=path) if hasattr(path, "read") else tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]


def write_members(members: list[tuple[str, bytes]]) -> bytes:
    """A deterministic tar (mtime 0, mode 0o444) of ``(name, bytes)`` members, as bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sample_keys(path: str | Path) -> list[str]:
    """The sample keys of a shard in order (the WebDataset key: the name up to the first dot)."""
    keys: list[str] = []
    for name, _ in read_members(path):
        folder, _, base = name.rpartition("/")
        key = (folder + "/" if folder else "") + base.split(".", 1)[0]
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def member_faults(
    path: str | Path, field: str, sample: int, seed: int = 0, flips: int = 12, cuts: int = 8
) -> Iterator[tuple[Fault, bytes]]:
    """Damaged copies of a shard, each with member ``field`` of sample ``sample`` (its index in the shard) damaged:
    ``flips`` copies with 1, 4 or 16 random bytes overwritten, ``cuts`` copies cut short (at 0 bytes, then at
    random lengths), and one without the member. The tar around it stays well-formed.

    Yields:
        ``(fault, shard bytes)``.
    """
    members = read_members(path)
    key = sample_keys(path)[sample]
    (at,) = [i for i, (name, _) in enumerate(members) if name == f"{key}.{field}"]
    name, data = members[at]
    rng = np.random.default_rng([seed, sample, sum(field.encode())])

    def replaced(new: bytes | None) -> bytes:
        out = list(members)
        if new is None:
            del out[at]
        else:
            out[at] = (name, new)
        return write_members(out)

    for i in range(flips):
        k = (1, 4, 16)[i % 3]
        pos = np.sort(rng.choice(len(data), size=min(k, len(data)), replace=False))
        buf = bytearray(data)
        for p in pos:
            buf[p] = (buf[p] + int(rng.integers(1, 256))) % 256  # always a different byte
        yield Fault("flip", name, f"{len(pos)} byte(s) at {pos.tolist()[:6]}"), replaced(bytes(buf))
    for i in range(cuts):
        keep = 0 if i == 0 else int(rng.integers(1, len(data)))
        yield Fault("truncate", name, f"kept {keep} of {len(data)} bytes"), replaced(data[:keep])
    yield Fault("drop", name, "member left out"), replaced(None)


def file_faults(path: str | Path, seed: int = 0, cuts: int = 24, headers: int = 8) -> Iterator[tuple[Fault, bytes]]:
    """Damaged copies of a whole shard file: ``cuts`` copies cut at random byte offsets (some on 512-byte block
    boundaries, where tar members start) and ``headers`` copies with one byte of a member's tar header (name,
    size or checksum field) overwritten.

    Yields:
        ``(fault, shard bytes)``.
    """
    data = Path(path).read_bytes()
    rng = np.random.default_rng([seed, len(data)])
    blocks = len(data) // 512
    for i in range(cuts):
        at = int(rng.integers(1, blocks)) * 512 if i % 3 == 0 else int(rng.integers(1, len(data) - 1))
        yield Fault("cut", None, f"file cut at byte {at} of {len(data)}"), data[:at]
    with tarfile.open(path) as tar:
        starts = [m.offset for m in tar]  # where each member's 512-byte header starts
    fields = {"name": (0, 100), "size": (124, 136), "checksum": (148, 156)}
    for i in range(headers):
        start = starts[int(rng.integers(len(starts)))]
        field = list(fields)[i % 3]
        lo, hi = fields[field]
        p = start + int(rng.integers(lo, hi))
        buf = bytearray(data)
        buf[p] = (buf[p] + int(rng.integers(1, 256))) % 256
        yield Fault("header", None, f"{field} byte {p} of the header at {start}"), bytes(buf)
