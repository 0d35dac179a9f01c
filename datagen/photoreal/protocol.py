"""The worker's wire format: length-prefixed pickles over a byte stream (a pipe between two trusted processes)."""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

__all__ = ["read_message", "write_message"]

_HEADER = struct.Struct("<Q")


def write_message(stream: IO[bytes], message: Any) -> None:
    """Write one message (any picklable object) and flush."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    """Read one message; None when the stream ends (or carried None)."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    n = _HEADER.unpack(head)[0]
    data = stream.read(n)
    if len(data) < n:
        raise EOFError(f"the stream ended {n - len(data)} bytes into a {n}-byte message")
    return pickle.loads(data)
