"""Process-group setup for single-process and ``torchrun`` runs (DDP; FSDP2 ``fully_shard`` when configured).

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them the run is a single process and no
process group is created. The backend is NCCL on GPU and gloo on CPU unless the manifest names one.
"""

from __future__ import annotations

import datetime
import os
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
]


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
    """Create the process group when launched by torchrun (``WORLD_SIZE > 1``), pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    if world <= 1:
        return DistEnv(0, 1, 0, dev, None)
    backend = spec.backend if spec.backend != "auto" else ("nccl" if dev.type == "cuda" else "gloo")
    if backend == "nccl" and dev.type != "cuda":
        raise RuntimeError("distributed.backend: nccl needs CUDA devices; use gloo on CPU")
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev, backend)


def shutdown_distributed(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


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
