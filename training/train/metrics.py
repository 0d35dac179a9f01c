"""Metric records of a run: one JSON object per line in ``metrics.jsonl`` and the same scalars in TensorBoard.

Only rank 0 writes. Each record carries ``step`` (global), ``split`` (``train``/``eval``/``baseline``/...),
``stage``, a wall-clock ``time`` (seconds since the run started) and the scalar values.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "read_metrics"]


class MetricsLogger:
    """Append-only metrics sink.

    Args:
        run_dir: the run folder (``metrics.jsonl`` and ``tb/`` go there).
        enabled: False on every rank but 0.
        tensorboard: also write TensorBoard event files.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.start = time.time()
        self.path = Path(run_dir) / "metrics.jsonl"
        self._tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")  # noqa: SIM115 (kept open for the run)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def log(self, step: int, split: str, values: dict[str, Any], **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"step": step, "split": split, "time": round(time.time() - self.start, 3), **fields}
        for k, v in values.items():
            v = float(v)
            record[k] = v if math.isfinite(v) else str(v)
            if self._tb is not None and math.isfinite(v):
                self._tb.add_scalar(f"{split}/{k}", v, step)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def read_metrics(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (optionally one split only)."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in records if split is None or r.get("split") == split]
