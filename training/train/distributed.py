"""Process-group setup for single-process and ``torchrun`` runs (DDP; FSDP2 ``fully_shard`` when configured).

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them the run is a single process and no
process group is created. The backend is NCCL on GPU and gloo on CPU unless the manifest names one.

Teardown (:func:`shutdown_distributed`) frees the process group in an order that cannot deadlock. gloo's
``~ProcessGroupGloo`` joins its worker threads, and a worker that is still destroying a finished collective's work
object needs the interpreter lock to free the tensors it held. If the last reference to the group belongs to a DDP
``Reducer`` (freed from Python with the lock held), the main thread joins while it holds the lock the worker waits
for: a rank that trained and saved everything hangs at exit. So the model goes first, while the group is still
registered; then the group is destroyed and its last reference dropped through its Python object, whose destructor
releases the lock before joining. A watchdog (``faulthandler``, a C thread that needs no lock) dumps every thread's
stack and exits the rank with status 1 if the teardown still does not finish.
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import gc
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from training.train.manifest import DistributedSpec

__all__ = [
    "DistEnv",
    "init_distributed",
    "shutdown_distributed",
    "wrap_model",
    "unwrap_model",
    "all_reduce_mean",
    "any_rank",
    "barrier",
    "teardown_watchdog",
    "terminate_on_sigterm",
    "Terminated",
    "TEARDOWN_TIMEOUT_S",
]

TEARDOWN_TIMEOUT_S = 60.0  # a rank whose teardown takes longer is stuck: its stacks are dumped and it exits 1


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: no process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _pick_device(preference: str, local_rank: int) -> torch.device:
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for, but no CUDA device is available")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_distributed(spec: DistributedSpec, device: str = "auto", timeout_s: float = 600.0) -> DistEnv:
    """Create the process group when launched by torchrun (one rank too: ``torchrun --nproc-per-node 1`` runs the
    DDP/NCCL path on one GPU, the check before a multi-GPU job), pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return DistEnv(0, 1, 0, dev, None)
    backend = spec.backend if spec.backend != "auto" else ("nccl" if dev.type == "cuda" else "gloo")
    if backend == "nccl" and dev.type != "cuda":
        raise RuntimeError("distributed.backend: nccl needs CUDA devices; use gloo on CPU")
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev, backend)


@contextlib.contextmanager
def teardown_watchdog(timeout_s: float = TEARDOWN_TIMEOUT_S) -> Iterator[None]:
    """Within the block, a stuck process dumps every thread's stack to stderr and exits with status 1 after
    ``timeout_s`` (``faulthandler.dump_traceback_later``: a C thread, so it fires even while a deadlocked main
    thread holds the interpreter lock)."""
    faulthandler.dump_traceback_later(timeout_s, exit=True, file=sys.__stderr__ or sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def shutdown_distributed(env: DistEnv, graceful: bool = True, timeout_s: float = TEARDOWN_TIMEOUT_S) -> None:
    """Destroy the process group (see the module doc for the order). Free every wrapped model first.

    Args:
        env: this process's environment (nothing to do without a process group).
        graceful: every rank finished: meet at a barrier first, so no rank leaves while another still talks to it.
            ``False`` after an error or a signal: leave at once (the others notice the closed connections).
        timeout_s: the watchdog's limit for the whole teardown.
    """
    if not env.distributed or not dist.is_initialized():
        return
    with teardown_watchdog(timeout_s):
        if graceful:
            dist.barrier()
        gc.collect()  # DDP reducers held in reference cycles let go of the group now, while it is registered
        group = dist.group.WORLD  # keeps the group alive through destroy_process_group ...
        dist.destroy_process_group()
        del group  # ... so its last reference goes here, through the destructor that releases the lock


class Terminated(SystemExit):
    """SIGTERM (a scheduler's stop, or torchrun stopping the other ranks after one failed): exit status 143."""


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread, so ``finally`` blocks (process-group teardown,
    closing logs) run; outside the main thread, or when SIGTERM is not the default action, nothing changes."""
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def handler(signum: int, frame) -> None:
        raise Terminated(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def all_reduce_mean(env: DistEnv, values: dict[str, float]) -> dict[str, float]:
    """Average scalar metrics over ranks (identity in a single process)."""
    if not env.distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return {k: float(v) / env.world_size for k, v in zip(keys, t.tolist())}


def any_rank(env: DistEnv, flag: bool) -> bool:
    """True when ``flag`` is True on any rank (every rank gets the same answer)."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _shard_blocks(model: nn.Module, mp_policy) -> None:
    from torch.distributed.fsdp import fully_shard

    # one FSDP unit per transformer block that trains; frozen blocks stay replicated (they hold no optimiser state)
    for module in model.modules():
        is_block = type(module).__name__ == "Block"
        if is_block and any(p.requires_grad for p in module.parameters()):
            fully_shard(module, mp_policy=mp_policy)
    fully_shard(model, mp_policy=mp_policy)


def wrap_model(model: nn.Module, env: DistEnv, spec: DistributedSpec, bf16: bool = False) -> nn.Module:
    """Wrap for data parallelism: DDP (default) or FSDP2 ``fully_shard`` (in place; returns the same module).

    Call after the trainable set is fixed: DDP registers gradient hooks for the parameters that require grad
    at wrap time, so each stage re-wraps.
    """
    if not env.distributed:
        return model
    if spec.strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy

        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
        _shard_blocks(model, policy or MixedPrecisionPolicy())
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [env.device.index] if env.device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=spec.find_unused_parameters)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user module inside a DDP wrapper (FSDP2 shards in place, so it is the module itself)."""
    return (
        model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model
    )
