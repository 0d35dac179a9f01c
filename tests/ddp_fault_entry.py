"""``torchrun`` entry of the DDP fault tests: ``semmatch train`` with a fault injected on one rank.

Usage: ``torchrun ... tests/ddp_fault_entry.py FAIL_RANK FAIL_STEP STATUS_DIR [semmatch train arguments]``

Rank ``FAIL_RANK`` raises ``RuntimeError`` in training step ``FAIL_STEP`` (``-1``: no fault). Every rank writes
``STATUS_DIR/rank_<r>.json`` with the status it exits with, on every way out Python sees (return, exception,
SIGTERM turned into ``Terminated``), so a test can tell how each rank ended; a rank that is killed writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    fail_rank, fail_step, status_dir = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    rank = int(os.environ.get("RANK", "0"))
    from training.cli import main as cli
    from training.train.trainer import Trainer

    if rank == fail_rank:
        original = Trainer._train_step

        def failing(self, *args, **kwargs):
            if self.global_step + 1 == fail_step:
                raise RuntimeError(f"injected fault on rank {rank} in step {fail_step}")
            return original(self, *args, **kwargs)

        Trainer._train_step = failing
    status: int | str = "unknown"
    try:
        status = cli(["train", *sys.argv[4:]])
        return status
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
        raise
    except BaseException as e:
        status = f"{type(e).__name__}: {e}"
        raise
    finally:
        status_dir.mkdir(parents=True, exist_ok=True)
        record = {"rank": rank, "status": status, "time": time.time()}
        (status_dir / f"rank_{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    sys.exit(main())
