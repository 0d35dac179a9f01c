"""The parent side of the Blender worker: start it, send view requests, read replies, stop it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from datagen.photoreal import require_photoreal
from datagen.photoreal.protocol import read_message, write_message

__all__ = ["PhotorealWorker", "WorkerError"]


class WorkerError(RuntimeError):
    """The worker failed a request or died (the message carries its traceback or the tail of its log)."""


class PhotorealWorker:
    """One ``python -m datagen.photoreal.worker`` process, started on first use.

    Use one per shard (``with PhotorealWorker() as w: ...``): Blender's state and memory do not carry from one
    shard to the next. ``threads`` > 0 fixes Cycles' CPU threads (pixels do not depend on it).
    """

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        self._proc: subprocess.Popen | None = None
        self._log: Any = None
        self.requests = 0

    def __enter__(self) -> PhotorealWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        require_photoreal()
        self._log = tempfile.NamedTemporaryFile(prefix="photoreal-worker-", suffix=".log", delete=False)  # noqa: SIM115
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "datagen.photoreal.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        return self._proc

    def _log_tail(self, n: int = 3000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-n:]

    def render(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request (:func:`datagen.photoreal.scene.view_request`) and return the worker's reply."""
        proc = self._proc or self._start()
        request = {**request, "settings": {**request["settings"], "threads": self.threads}}
        try:
            write_message(proc.stdin, request)
            reply = read_message(proc.stdout)
        except (BrokenPipeError, EOFError) as e:
            raise WorkerError(f"the Blender worker died ({e}); its log ends:\n{self._log_tail()}") from e
        if reply is None:
            code = proc.poll()
            raise WorkerError(f"the Blender worker exited (code {code}); its log ends:\n{self._log_tail()}")
        if not reply.get("ok"):
            raise WorkerError(f"the Blender worker failed: {reply.get('error')}\n{reply.get('traceback', '')}")
        self.requests += 1
        return reply

    def close(self) -> None:
        """Stop the worker (closing its stdin ends it) and remove its log."""
        if self._proc is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None
