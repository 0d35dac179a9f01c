"""The training loop: stages in order, each with its own losses, data mix, resolution, trainable set and LR.

One :class:`Trainer` runs in every process (``torchrun`` or a plain single process). Per stage it selects the
trainable parameters, wraps the model (DDP, or FSDP2 once for the whole run), builds AdamW with warm-up + cosine,
and streams the stage's data. Each step: forward under bf16 autocast on GPU, the stage's objective in fp32, a
cross-rank guard that skips non-finite losses on every rank together, backward, global-norm clipping, step.
Metrics go to ``metrics.jsonl`` and TensorBoard; held-out evaluation and atomic checkpoints run on schedule.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.baselines.identity import IdentityMatcher
from training.losses import Objective
from training.train.checkpoint import CheckpointManager, capture_rng, restore_rng, write_text_atomic
from training.train.data import BatchStream, build_eval_batches, build_stage_stream, move_batch
from training.train.distributed import (
    DistEnv,
    all_reduce_mean,
    any_rank,
    barrier,
    init_distributed,
    shutdown_distributed,
    terminate_on_sigterm,
    unwrap_model,
    wrap_model,
)
from training.train.evaluate import evaluate
from training.train.hooks import ModelHooks, select_trainable
from training.train.manifest import RunManifest, manifest_to_yaml
from training.train.metrics import MetricsLogger
from training.train.perf import StepMeter
from training.train.runinfo import code_version, environment
from training.train.schedule import build_optimizer, build_scheduler

__all__ = ["Trainer", "seed_everything"]

log = logging.getLogger("semmatch.train")


def _speed_postfix(rates: dict[str, float]) -> dict[str, str]:
    """The progress line's throughput fields from a :meth:`StepMeter.summary`."""
    out = {"pairs/s": f"{rates['pairs_per_s']:.1f}", "wait": f"{100 * rates['data_wait']:.0f}%"}
    if "mfu" in rates:
        out["mfu"] = f"{100 * rates['mfu']:.1f}%"
    if "peak_mem_gib" in rates:
        out["mem"] = f"{rates['peak_mem_gib']:.1f}G"
    return out


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng():
    """Run a block (evaluation) without disturbing the training RNG streams."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


class Trainer:
    """Runs a :class:`RunManifest` in this process.

    Args:
        manifest: the validated run manifest.
        hooks: model-side operations (``training.train.hooks.default_hooks()`` for the real matcher).
        env: a distributed environment; by default one is created from torchrun's variables.
        progress: show a tqdm bar on rank 0.
        stop_at_step: stop once this global step is done (after writing a checkpoint), as a preempted job
            would; ``resume`` continues from there exactly.
    """

    def __init__(
        self,
        manifest: RunManifest,
        hooks: ModelHooks,
        env: DistEnv | None = None,
        progress: bool = True,
        stop_at_step: int | None = None,
    ) -> None:
        self.m = manifest
        self.hooks = hooks
        self._own_env = env is None
        self.env = env or init_distributed(manifest.distributed, manifest.device)
        self.run_dir = manifest.run_dir.resolve()
        self.progress = progress
        self.stop_at_step = stop_at_step
        self.bf16 = manifest.precision == "bf16" and self.env.device.type == "cuda"
        self.global_step = 0
        self.skipped_steps = 0
        self.skipped_samples_before = 0  # bad samples this rank skipped in earlier stages (data.skip_bad)
        self.ckpt = CheckpointManager(self.run_dir / "checkpoints", self.env, keep=manifest.checkpoint.keep)
        self.logger: MetricsLogger | None = None
        self.model: nn.Module | None = None
        self.wrapped: nn.Module | None = None
        self._fsdp_done = False
        self._eval_batches: list[dict] | None = None
        self._baseline_done = False
        self._bar = None
        self._last_saved = -1
        self._last_eval: tuple[int, dict[str, float]] | None = None

    # ------------------------------------------------------------------------------------------------ setup

    def _prepare_run_dir(self, resume_from: Path | None) -> None:
        if self.env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.run_dir / "manifest.resolved.yaml", manifest_to_yaml(self.m))
            info = {
                "code": code_version(),
                "environment": environment(self.env.world_size, self.env.device, self.env.backend),
                "resumed_from": str(resume_from) if resume_from else None,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            name = "run_info.json" if resume_from is None else f"run_info.resume_{self.global_step:06d}.json"
            write_text_atomic(self.run_dir / name, json.dumps(info, indent=1, default=str))
        barrier(self.env)
        self.logger = MetricsLogger(self.run_dir, enabled=self.env.is_main, tensorboard=self.m.log.tensorboard)

    def _resume_point(self) -> Path | None:
        latest = self.ckpt.latest()
        if latest is not None and not self.m.resume:
            raise FileExistsError(
                f"{self.run_dir} already holds checkpoints (latest {latest.name}); pass --resume (resume=true) to "
                "continue it, or choose another out_dir"
            )
        if self.m.resume and latest is None:
            log.warning("resume requested but %s has no checkpoint: starting from scratch", self.run_dir)
        return latest if self.m.resume else None

    def _wrap(self) -> None:
        assert self.model is not None
        if self.m.distributed.strategy == "fsdp" and self.env.distributed:
            if not self._fsdp_done:  # FSDP2 shards in place once; later stages only toggle requires_grad
                wrap_model(self.model, self.env, self.m.distributed, bf16=self.bf16)
                self._fsdp_done = True
            self.wrapped = self.model
            return
        if self.wrapped is not None and self.wrapped is not self.model:
            del self.wrapped  # drop the previous stage's DDP reducer (and its gradient hooks) first
        self.wrapped = wrap_model(self.model, self.env, self.m.distributed)

    # ------------------------------------------------------------------------------------------------ steps

    def _train_step(self, batch: dict, objective: Objective, optimizer, scheduler) -> dict[str, float]:
        assert self.wrapped is not None
        batch = move_batch(batch, self.env.device)
        with torch.autocast(self.env.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.wrapped(batch["images"])
        terms = objective(out, batch)
        loss = terms["objective"]
        bad = any_rank(self.env, not bool(torch.isfinite(loss)))
        optimizer.zero_grad(set_to_none=True)
        stats = {k: float(v.detach()) for k, v in terms.items()}
        if bad:  # every rank skips together, so DDP's gradient all-reduce never waits on a missing rank
            self.skipped_steps += 1
            log.warning("step %d: non-finite loss, skipped on all ranks (%s)", self.global_step + 1, stats)
            stats["grad_norm"] = float("nan")
        else:
            loss.backward()
            params = [p for p in self.model.parameters() if p.requires_grad]
            clip = self.m.optim.grad_clip
            norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
            if torch.isfinite(norm):
                optimizer.step()
            else:
                self.skipped_steps += 1
                log.warning("step %d: non-finite gradient norm, update skipped", self.global_step + 1)
            stats["grad_norm"] = float(norm)
        stats["lr"] = optimizer.param_groups[0]["lr"]
        scheduler.step()
        return stats

    def _evaluate(self, stage_name: str) -> dict[str, float]:
        if self.m.eval.source is None:
            return {}
        if self._eval_batches is None:
            self._eval_batches = build_eval_batches(self.m, self.env)
        spec = self.m.eval
        with preserved_rng():
            if spec.baseline and not self._baseline_done and self.hooks.baseline is not None:
                base = self.hooks.baseline(unwrap_model(self.model))
                scores = evaluate(base, self._eval_batches, self.env, spec.alphas, spec.threshold, self.bf16)
                self.logger.log(self.global_step, "baseline", scores, stage=stage_name)
                scores = evaluate(IdentityMatcher(), self._eval_batches, self.env, spec.alphas, spec.threshold)
                self.logger.log(self.global_step, "identity", scores, stage=stage_name)
                self._baseline_done = True
                del base
            scores = evaluate(self.wrapped, self._eval_batches, self.env, spec.alphas, spec.threshold, self.bf16)
        self.logger.log(self.global_step, "eval", scores, stage=stage_name)
        if self._bar is not None:
            self._bar.write(f"[eval step {self.global_step}] " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
        self._last_eval = (self.global_step, scores)
        return scores

    def _save(self, stage_index: int, stage_step: int, optimizer, scheduler, stream: BatchStream) -> None:
        trainer_state = {
            "global_step": self.global_step,
            "stage_index": stage_index,
            "stage_name": self.m.stages[stage_index].name,
            "stage_step": stage_step,
            "scheduler": scheduler.state_dict(),
            "skipped_steps": self.skipped_steps,
        }
        skipped = self.skipped_samples_before + stream.n_skipped  # this rank's bad samples in the run so far
        rank_state = {"rng": capture_rng(), "data": stream.state_dict(), "skipped_samples": skipped}
        config = self.hooks.config(unwrap_model(self.model))
        path = self.ckpt.save(self.global_step, self.wrapped, optimizer, trainer_state, rank_state, config)
        self._last_saved = self.global_step
        if self._bar is not None:
            self._bar.write(f"[checkpoint] {path}")

    # ------------------------------------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        """Train every stage; returns the final evaluation scores (empty without an eval source).

        Every exit path tears down cleanly: on success the ranks meet at a barrier first; after an exception or
        SIGTERM (raised here as ``Terminated``, exit status 143) this rank leaves at once. The wrapped model is
        freed before the process group (``training.train.distributed``: the other order can hang the rank).
        """
        graceful = False
        try:
            with terminate_on_sigterm():
                scores = self._run()
            graceful = True
            return scores
        finally:
            self._close(graceful)

    def _close(self, graceful: bool) -> None:
        if self.logger is not None:
            self.logger.close()
        if self.env.distributed:  # DDP reducers and FSDP states hold the process group: they go first
            self.wrapped = self.model = None
            self._eval_batches = None
        if self._own_env:
            shutdown_distributed(self.env, graceful=graceful)

    def _run(self) -> dict[str, Any]:
        m, env = self.m, self.env
        if m.cpu_threads > 0:
            torch.set_num_threads(m.cpu_threads)
        seed_everything(m.seed)  # identical initial weights on every rank
        resume_from = self._resume_point()
        self.model = self.hooks.build(m.model).to(env.device)
        self.model.train()

        start_stage, start_step, resume_state = 0, 0, None
        if resume_from is not None:
            resume_state = self.ckpt.load_trainer_state(resume_from)
            self.global_step = resume_state["global_step"]
            self.skipped_steps = resume_state["skipped_steps"]
            start_stage, start_step = resume_state["stage_index"], resume_state["stage_step"]
            if start_step >= m.stages[start_stage].steps:  # the checkpoint closed its stage
                start_stage, start_step = start_stage + 1, 0
        else:
            seed_everything(m.seed * 1000 + env.rank)  # per-rank streams from here on
        self._prepare_run_dir(resume_from)
        self._last_saved = self.global_step if resume_from is not None else -1

        from tqdm.auto import tqdm

        self._bar = (
            tqdm(total=m.total_steps, initial=self.global_step, desc=m.name, dynamic_ncols=True)
            if self.progress and env.is_main
            else None
        )
        final_scores: dict[str, Any] = {}
        try:
            if resume_from is not None and start_stage >= len(m.stages):
                self.ckpt.load_model(resume_from, self.model)
                log.info("%s: already complete at step %d", self.run_dir, self.global_step)
            for si in range(start_stage, len(m.stages)):
                first = start_step if si == start_stage else 0
                if not self._run_stage(si, first, resume_from if si == start_stage else None):
                    return {}  # stopped early at stop_at_step
            final_scores = self._finish()
        finally:
            if self._bar is not None:
                self._bar.close()
        return final_scores

    def _run_stage(self, si: int, first_step: int, resume_from: Path | None) -> bool:
        """Run stage ``si`` from ``first_step``; False when stopped early at ``stop_at_step``."""
        m, env = self.m, self.env
        stage = m.stages[si]
        trainable = select_trainable(unwrap_model(self.model), stage.trainable, self.hooks.groups(self.model))
        n_train = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        if self._bar is not None:
            self._bar.write(f"[stage {si} {stage.name}] {len(trainable)} trainable tensors, {n_train:,} parameters")
        self._wrap()
        optimizer = build_optimizer(self.model, stage.lr, m.optim)
        warmup = stage.warmup_steps if stage.warmup_steps is not None else m.optim.warmup_steps
        scheduler = build_scheduler(optimizer, stage.steps, min(warmup, stage.steps), m.optim)
        stream = build_stage_stream(m, si, env)
        objective = Objective(stage.losses, where=f"stages[{si}].losses")
        if resume_from is not None:
            self.ckpt.load_model(resume_from, self.wrapped)
            rank_state = self.ckpt.load_rank_state(resume_from)
            if first_step > 0:  # resuming inside this stage: its optimiser, schedule and stream continue
                self.ckpt.load_optimizer(resume_from, self.wrapped, optimizer)
                scheduler.load_state_dict(self.ckpt.load_trainer_state(resume_from)["scheduler"])
                stream.load_state_dict(rank_state["data"])
            restore_rng(rank_state["rng"])
            skipped = int(rank_state.get("skipped_samples", 0))  # the run's so far; a restored stream holds its own
            self.skipped_samples_before = skipped - (stream.n_skipped if first_step > 0 else 0)
        elif si == 0 and first_step == 0 and m.eval.every > 0:
            self._evaluate(stage.name)  # the untrained model (and the baseline) at step 0

        meter, speed = self._step_meter(stage), {}
        window: dict[str, float] = {}
        n_window, t0 = 0, time.time()
        for step in range(first_step, stage.steps):
            with meter.wait():
                batch = next(stream)
            stats = self._train_step(batch, objective, optimizer, scheduler)
            meter.step()
            self.global_step += 1
            for k, v in stats.items():
                window[k] = window.get(k, 0.0) + v
            n_window += 1
            last = step == stage.steps - 1
            if self._bar is not None:
                self._bar.update(1)
                loss, lr = f"{stats['objective']:.4g}", f"{stats['lr']:.2e}"
                self._bar.set_postfix(stage=stage.name, loss=loss, lr=lr, **speed)
            if self.global_step % m.log.every == 0 or last:
                mean = all_reduce_mean(env, {k: v / n_window for k, v in window.items()})
                mean["steps_per_s"] = n_window / max(time.time() - t0, 1e-9)
                mean["skipped_steps"] = self.skipped_steps
                mean["skipped_samples"] = self._skipped_samples(stream)
                rates = meter.summary()
                speed = _speed_postfix(rates)
                self.logger.log(self.global_step, "train", mean | rates, stage=stage.name)
                window, n_window, t0 = {}, 0, time.time()
                meter.reset()
            do_eval = m.eval.every > 0 and self.global_step % m.eval.every == 0
            stop = self.stop_at_step is not None and self.global_step >= self.stop_at_step
            do_save = self.global_step % m.checkpoint.every == 0 or self.global_step == m.total_steps or stop
            if do_eval or do_save:
                with meter.excluding():  # evaluation and checkpoints stay out of the throughput numbers
                    if do_eval:
                        self._evaluate(stage.name)
                    if do_save:
                        self._save(si, step + 1, optimizer, scheduler, stream)
            if stop and not (last and si == len(m.stages) - 1):
                if self._bar is not None:
                    self._bar.write(f"[stopped] at step {self.global_step}; resume with --resume")
                return False
        if self._last_saved != self.global_step and si < len(m.stages) - 1:
            self._save(si, stage.steps, optimizer, scheduler, stream)  # stage boundaries are resumable points
        self.skipped_samples_before += stream.n_skipped
        return True

    def _skipped_samples(self, stream: BatchStream) -> float:
        """Bad samples skipped so far in the run, over all ranks (``data.skip_bad``; a collective call)."""
        mine = float(self.skipped_samples_before + stream.n_skipped)
        return round(all_reduce_mean(self.env, {"n": mine})["n"] * self.env.world_size)

    def _step_meter(self, stage) -> StepMeter:
        """The log windows' throughput meter of a stage (model FLOPs per step counted once, for the MFU)."""
        from training.model.flops import peak_flops

        batch = stage.batch_size or self.m.data.batch_size
        peak = peak_flops(self.env.device)
        flops = None
        if peak is not None and self.hooks.step_flops is not None:
            flops = self.hooks.step_flops(unwrap_model(self.model), tuple(stage.resolution), batch)
        return StepMeter(self.env.device, batch * self.env.world_size, flops, peak)

    def _rank_digests(self) -> list[str]:
        """sha256 of this rank's local parameters, gathered from every rank (DDP replicas must agree)."""
        h = hashlib.sha256()
        for name, p in sorted(unwrap_model(self.model).named_parameters()):
            local = p.to_local() if hasattr(p, "to_local") else p  # FSDP2 shards: each rank hashes its own
            h.update(name.encode())
            h.update(local.detach().float().cpu().numpy().tobytes())
        if not self.env.distributed:
            return [h.hexdigest()]
        out: list[Any] = [None] * self.env.world_size
        torch.distributed.all_gather_object(out, h.hexdigest())
        return out

    def _finish(self) -> dict[str, Any]:
        """Final evaluation, and ``<run>/model/``: the final weights as a standalone matcher (load_matcher)."""
        scores: dict[str, Any] = {}
        if self.m.eval.source is not None:
            done = self._last_eval is not None and self._last_eval[0] == self.global_step
            scores = self._last_eval[1] if done else self._evaluate(self.m.stages[-1].name)
        digests = self._rank_digests()
        if self.logger is not None:
            sharded = self.m.distributed.strategy == "fsdp" and self.env.distributed  # shards differ by design
            in_sync = float(sharded or len(set(digests)) == 1)
            self.logger.log(self.global_step, "final", {"ranks_in_sync": in_sync}, weights_sha256_by_rank=digests)
            if not in_sync:
                log.error("ranks ended with different weights: %s", digests)
        final = self.ckpt.latest()
        if self.env.is_main and final is not None:
            model_dir = self.run_dir / "model"
            model_dir.mkdir(exist_ok=True)
            for name in ("model.safetensors", "model_config.json"):
                if (final / name).is_file():
                    shutil.copyfile(final / name, model_dir / name)
            if self._bar is not None:
                self._bar.write(f"[done] step {self.global_step}, final matcher in {model_dir}")
        barrier(self.env)
        return scores
