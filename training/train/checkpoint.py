"""Checkpoints: model weights (safetensors), optimiser, scheduler, trainer position, and per-rank RNG and
data-stream state, written atomically so a crash never leaves a half checkpoint that resume would pick up.

Layout of ``<run>/checkpoints/``::

    step_000100/
        model.safetensors      full model state (every rank's weights are identical; FSDP shards are gathered)
        model_config.json      how to rebuild the model (the matcher's own format, for load_matcher)
        optimizer.pt           full optimiser state keyed by parameter name
        trainer.pt             global/stage step, stage index, scheduler, skipped-step count, manifest digest
        rank_00000.pt ...      python/numpy/torch/cuda RNG and the data stream's position, one per rank
    latest                     text: the name of the newest complete checkpoint

A checkpoint is assembled in ``step_000100.partial/`` (every rank writes its own file there; the folder must be
on a file system all ranks share) and renamed by rank 0 after a barrier; ``latest`` is replaced atomically.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from training.train.distributed import DistEnv, barrier

__all__ = ["capture_rng", "restore_rng", "CheckpointManager", "write_text_atomic", "step_dir_name"]

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


def capture_rng() -> dict[str, Any]:
    """This process's RNG states: python, numpy (legacy global), torch CPU and every CUDA device."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _torch_save_synced(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointManager:
    """Writes, finds and restores checkpoints under ``root`` (``<run>/checkpoints``).

    Args:
        root: the checkpoints folder.
        env: this process's distributed environment.
        keep: the newest ``keep`` checkpoints are kept (0: all).
    """

    def __init__(self, root: str | Path, env: DistEnv, keep: int = 3):
        self.root, self.env, self.keep = Path(root), env, keep

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        path = self.root / pointer.read_text().strip()
        if not (path / "trainer.pt").is_file():
            raise FileNotFoundError(f"{pointer} names {path.name}, which is not a complete checkpoint")
        return path

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        trainer_state: dict[str, Any],
        rank_state: dict[str, Any],
        model_config: dict[str, Any] | None = None,
        extra_files: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write a checkpoint (a collective call: every rank must call it with its own ``rank_state``).

        Args:
            step: the global step just completed.
            model: the (possibly DDP/FSDP wrapped) model.
            optimizer: the stage's optimiser.
            trainer_state: position and scheduler (identical on every rank; rank 0 writes it).
            rank_state: this rank's RNG and data-stream state.
            model_config: written as ``model_config.json`` (the matcher's rebuild recipe).
            extra_files: called by rank 0 with the partial folder to add more files.

        Returns:
            The final checkpoint folder.
        """
        name = step_dir_name(step)
        final, partial = self.root / name, self.root / f"{name}.partial"
        model_sd = get_model_state_dict(model, options=_FULL)  # collective under FSDP
        optim_sd = get_optimizer_state_dict(model, optimizer, options=_FULL)
        if self.env.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
        barrier(self.env)
        _torch_save_synced(rank_state, partial / f"rank_{self.env.rank:05d}.pt")
        if self.env.is_main:
            tensors = {k: v.detach().contiguous().clone() for k, v in model_sd.items()}
            save_file(tensors, str(partial / "model.safetensors"), metadata={"format": "pt", "step": str(step)})
            if model_config is not None:
                (partial / "model_config.json").write_text(json.dumps(model_config, indent=1))
            _torch_save_synced(optim_sd, partial / "optimizer.pt")
            _torch_save_synced({**trainer_state, "world_size": self.env.world_size}, partial / "trainer.pt")
            if extra_files is not None:
                extra_files(partial)
        barrier(self.env)
        if self.env.is_main:
            _fsync_dir(partial)
            if final.exists():
                shutil.rmtree(final)
            os.replace(partial, final)
            write_text_atomic(self.root / "latest", name + "\n")
            self._prune(keep_name=name)
        barrier(self.env)
        return final

    def _prune(self, keep_name: str) -> None:
        if self.keep <= 0:
            return
        done = sorted(p for p in self.root.glob("step_*") if p.is_dir() and not p.name.endswith(".partial"))
        for old in done[: -self.keep]:
            if old.name != keep_name:
                shutil.rmtree(old, ignore_errors=True)

    def load_trainer_state(self, path: Path) -> dict[str, Any]:
        state = torch.load(path / "trainer.pt", map_location="cpu", weights_only=False)
        if state.get("world_size", self.env.world_size) != self.env.world_size:
            raise RuntimeError(
                f"{path}: written by {state['world_size']} ranks, resumed with {self.env.world_size}; exact resume "
                "needs the same world size (each rank's data stream and RNG were saved)"
            )
        return state

    def load_model(self, path: Path, model: nn.Module) -> None:
        """Load the checkpoint's weights into the (possibly wrapped) model, strictly."""
        sd = load_file(str(path / "model.safetensors"))
        set_model_state_dict(model, sd, options=StateDictOptions(full_state_dict=True, strict=True))

    def load_optimizer(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        sd = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
        set_optimizer_state_dict(model, optimizer, sd, options=StateDictOptions(full_state_dict=True))

    def load_rank_state(self, path: Path) -> dict[str, Any]:
        return torch.load(path / f"rank_{self.env.rank:05d}.pt", map_location="cpu", weights_only=False)
