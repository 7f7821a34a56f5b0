"""The optimisation loop every vqtok training run shares: device and bf16 autocast, torchrun/DDP,
progress, metrics log, checkpoints, Ctrl-C and resume.

A run is a :class:`TrainingLoop` subclass that says what a batch is, what it stores and how it saves:
:class:`vqtok.train.Trainer` (the autoencoder) and :class:`vqtok.prior.train.PriorTrainer` (the
prior over its codes). Only rank 0 logs, saves and shows progress. Batches are a pure function of
``(seed, step)`` and the checkpoint holds model, optimizer and RNG state, so ``--resume`` reaches the
same result as a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .. import distributed
from ..config import TrainConfig
from ..console import stderr_console
from ..errors import UsageError, VqtokError
from ..files.atomic import atomic_path
from ..files.checkpoint import checkpoint_extra, load_checkpoint, save_checkpoint
from ..files.model import model_stem
from ..models.base import TrainStep
from .loader import LoaderDied, batch_stream, resolve_workers
from .runlock import exclusive
from .speed import as_channels_last, compile_networks, wants_channels_last


@dataclass
class RunPaths:
    """Files a run writes beside its model file ``x.safetensors``."""

    model: Path
    checkpoint: Path  # x.ckpt.safetensors, removed when the run completes
    metrics: Path  # x.metrics.jsonl
    preview: Path  # x.preview.png

    @classmethod
    def for_model(cls, out: Path, tag: str = "") -> RunPaths:
        """Paths beside ``out``; ``tag`` (e.g. ``".prior"``) keeps the files of another run on the same
        model apart."""
        stem = model_stem(out) + tag
        return cls(
            out,
            out.with_name(stem + ".ckpt.safetensors"),
            out.with_name(stem + ".metrics.jsonl"),
            out.with_name(stem + ".preview.png"),
        )

    @property
    def lock(self) -> Path:
        """x.lock (x.prior.lock, ...): held while a run writes these files (:mod:`vqtok.runlock`)."""
        return self.checkpoint.with_name(self.checkpoint.name[: -len(".ckpt.safetensors")] + ".lock")


@dataclass
class TrainResult:
    paths: RunPaths
    step: int  # steps completed
    interrupted: bool
    summary: dict
    signal: int = 0  # the signal that stopped it (SIGINT, SIGTERM), if one did

    @property
    def exit_code(self) -> int:
        """What the command exits with: 0, or 128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signal or signal.SIGINT) if self.interrupted else 0


class StopOnInterrupt:
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step, so the
    checkpoint holds a whole number of steps; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested, self.signum = False, 0
        self.previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def setup_distributed(device: torch.device) -> torch.device:
    if not distributed.launched_by_torchrun() or distributed.is_distributed():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    torch.distributed.init_process_group(backend)
    return device


def lr_at(step: int, cfg) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up over ``cfg.warmup_steps``, then
    constant, or (``cfg.lr_decay == "cosine"``) half a cosine from ``cfg.lr`` down to 0 at the last step."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.lr_decay != "cosine":
        return cfg.lr * warm
    progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / max(1, cfg.steps - 1 - cfg.warmup_steps)))
    return cfg.lr * warm * 0.5 * (1.0 + math.cos(math.pi * progress))


class MetricsWindow:
    """Averages of the metrics since the last log line; a metric is a number or a list of numbers
    (e.g. the KL of each latent dimension), averaged element by element, and under torchrun over the
    ranks too (each rank's loss is its share of the batch's), so the log is the one process's."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float | list[float]]) -> None:
        for k, v in values.items():
            v = torch.tensor(v, dtype=torch.float64)
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1

    def flush(self) -> dict[str, float | list[float]]:
        if distributed.is_distributed():  # every rank logs the same metrics in the same order
            flat = distributed.mean_over_ranks(torch.cat([v.reshape(-1) for v in self.sums.values()]))
            sizes = [v.numel() for v in self.sums.values()]
            self.sums = {k: part.reshape(v.shape) for (k, v), part in zip(self.sums.items(), flat.split(sizes))}
        out = {k: (v / self.counts[k]).tolist() for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return out


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resumed run starts from), and a line a
    killed run left half-written."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn by a kill in mid-write
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(ln + "\n" for ln in kept))


class TrainingLoop:
    """Subclasses set ``self.model`` (an ``nn.Module`` whose forward returns a
    :class:`~vqtok.models.base.TrainStep`) before calling ``super().__init__``, and implement
    :meth:`batch`, :meth:`settings` and :meth:`save`."""

    label = "train"  # the progress bar's title

    model: torch.nn.Module

    def __init__(self, train: TrainConfig, paths: RunPaths, device: torch.device, console: Console | None = None):
        self.train_cfg, self.paths, self.device = train, paths, device
        self.console = console or stderr_console()
        self.channels_last = wants_channels_last(train.channels_last, device, self.model)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if train.compile:
            compile_networks(self.model)
        self.net = self.model
        if distributed.is_distributed():
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, broadcast_buffers=False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train.lr)
        self.amp = train.amp and device.type == "cuda"
        self.workers = resolve_workers(train.workers, device)  # data-loading processes (0: this one)
        self.step, self.elapsed, self.last = 0, 0.0, {}

    # ---- what a subclass provides ----
    def batch_maker(self) -> Callable[[int], Any]:
        """A picklable function of the step that builds that step's batch on the CPU (it may run in a
        data-loading worker process: :mod:`vqtok.loader`)."""
        raise NotImplementedError

    def to_device(self, batch):
        """A CPU batch of :meth:`batch_maker` as the model takes it: ``(x, labels)`` on the device, passed
        as ``model(x, labels, ...)``."""
        raise NotImplementedError

    def batch(self, step: int):
        """The inputs of step ``step``, built in this process."""
        return self.to_device(self.batch_maker()(step))

    def forward(self, x, labels) -> TrainStep:
        return self.net(x, labels, step=self.step)

    def settings(self) -> dict:
        """The settings stored in the checkpoint; ``--resume`` refuses a run whose :meth:`must_match`
        sections differ."""
        raise NotImplementedError

    def must_match(self) -> list[str]:
        return list(self.settings())

    def current_form(self, stored: dict) -> dict:
        """A checkpoint's stored :meth:`settings` in this version's form (e.g. a section added since then
        with its defaults), so that ``--resume`` compares like with like."""
        return stored

    def save(self, summary: dict) -> None:
        raise NotImplementedError

    def summary_facts(self) -> dict:
        """Facts about the run added to the training summary (e.g. the data it read)."""
        return {}

    def extra_loss(self, x, out: TrainStep) -> tuple[torch.Tensor | float, dict[str, torch.Tensor]]:
        """A further term of the loss, computed with the forward pass (e.g. the adversarial one), and its
        metrics; default none."""
        return 0.0, {}

    def after_update(self, x, out: TrainStep) -> dict[str, float]:
        """Called right after the optimizer step, with the step's batch and forward pass (e.g. to update
        a discriminator); returns metrics to log."""
        return {}

    def after_step(self) -> dict[str, float]:
        """Called after each step (``self.step`` counts it): further metrics to log, e.g. a held-out score."""
        return {}

    def kept_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """What a run keeps besides the model and optimizer, for the checkpoint: ``(facts, tensors)``."""
        return {}, {}

    def restore_kept(self, facts: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what :meth:`kept_state` gave, on resume."""

    # ---- one optimisation step ----
    def train_step(self, batch) -> dict[str, float | list[float]]:
        x, labels = batch
        if self.channels_last:
            x = as_channels_last(x)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.train_cfg)
        with self.autocast():
            out = self.forward(x, labels)
            extra, extra_metrics = self.extra_loss(x, out)
        loss = out.loss.float() + extra
        if not torch.isfinite(loss):
            kept = f"; the last checkpoint, {self.paths.checkpoint}, is kept" if self.paths.checkpoint.exists() else ""
            raise VqtokError(
                f"training diverged at step {self.step} (loss {loss.item()}): nothing was saved from "
                f"it{kept}; lower train.lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.train_cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
        self.optimizer.step()
        metrics: dict[str, float | list[float]] = {"loss": loss.item()}
        for k, v in {**out.metrics, **extra_metrics}.items():
            v = v.detach().float()
            metrics[k] = v.item() if v.ndim == 0 else v.tolist()
        metrics.update(self.after_update(x, out))
        return metrics

    def autocast(self):
        """bf16 autocast on CUDA when ``train.amp``; otherwise nothing."""
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()

    # ---- the loop ----
    def run(self, resume: bool = False) -> TrainResult:
        if not distributed.is_main():
            return self._run(resume)
        with exclusive(self.paths.lock, str(self.paths.model)):
            return self._run(resume)

    def _run(self, resume: bool) -> TrainResult:
        main = distributed.is_main()
        t = self.train_cfg
        if t.batch_size % distributed.world_size():
            raise UsageError(
                f"train.batch_size {t.batch_size} does not split evenly over "
                f"{distributed.world_size()} processes: make it a multiple of the process count"
            )
        if resume:
            self._resume()
        elif main:
            self.paths.metrics.unlink(missing_ok=True)
        window = MetricsWindow()
        progress = Progress(
            TextColumn(f"[bold]{self.label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not main,
        )
        task = progress.add_task(self.label, total=t.steps, completed=self.step, status="")
        started = time.perf_counter() - self.elapsed
        tick, tick_step = time.perf_counter(), self.step
        self.model.train()
        with progress, StopOnInterrupt() as stop:
            batches = batch_stream(
                self.batch_maker(), self.step, t.steps, self.workers, pin_memory=self.device.type == "cuda"
            )
            while self.step < t.steps and not distributed.any_rank(stop.requested):
                try:
                    batch = next(batches)
                except LoaderDied as e:
                    if main and self.step > 0:
                        self.elapsed = time.perf_counter() - started
                        self._checkpoint()
                        raise LoaderDied(
                            f"{e}; the steps so far are in {self.paths.checkpoint}: continue with --resume"
                        ) from None
                    raise
                metrics = self.train_step(self.to_device(batch))
                self.step += 1
                window.add({**metrics, **self.after_step()})
                progress.update(task, completed=self.step)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    now = time.perf_counter()
                    speed = (self.step - tick_step) / max(now - tick, 1e-9)
                    tick, tick_step = now, self.step
                    self.last = {
                        "step": self.step,
                        **window.flush(),
                        "steps_per_s": speed,
                        "lr": lr_at(self.step - 1, t),
                        "time": now - started,
                    }
                    if main:
                        self._log(self.last)
                    progress.update(task, status=self.status(self.last))
                if self.step % t.checkpoint_every == 0 and self.step < t.steps and main:
                    self.elapsed = time.perf_counter() - started
                    self._checkpoint()
            batches.close()
        interrupted = self.step < t.steps  # stopped by Ctrl-C between steps
        self.elapsed = time.perf_counter() - started
        summary = self._summary(interrupted)
        if main:
            if interrupted:
                self._checkpoint()
            self.save(summary)
            if not interrupted:
                self.paths.checkpoint.unlink(missing_ok=True)
        if distributed.is_distributed():
            torch.distributed.barrier()  # the others wait until rank 0 has saved
            torch.distributed.destroy_process_group()
        return TrainResult(self.paths, self.step, interrupted, summary, stop.signum)

    @staticmethod
    def status(m: dict) -> str:
        ppl = " ".join(f"{m[k]:.0f}" for k in sorted(m) if "perplexity" in k)
        extra = f"  ppl {ppl}" if ppl else ""
        if "elbo" in m:
            extra += f"  elbo {m['elbo']:.1f}  kl {m['kl']:.1f}"
        if "bits" in m:
            extra += f"  {m['bits']:.3f} bits/code"
        return f"loss {m['loss']:.4f}{extra}  {m['steps_per_s']:.2f} step/s"

    def _log(self, metrics: dict) -> None:
        self.paths.metrics.parent.mkdir(parents=True, exist_ok=True)
        with self.paths.metrics.open("a") as f:
            f.write(json.dumps(_rounded(metrics)) + "\n")

    def _checkpoint(self) -> None:
        facts, tensors = self.kept_state()
        save_checkpoint(
            self.paths.checkpoint,
            self.model,
            self.optimizer,
            self.step,
            {"config": self.settings(), "elapsed": self.elapsed, "last": self.last, "kept": facts},
            tensors,
        )

    def _resume(self) -> None:
        ckpt = self.paths.checkpoint
        if not ckpt.exists():
            raise UsageError(f"nothing to resume: {ckpt} does not exist (it is removed when a run completes)")
        stored, current = self.current_form(checkpoint_extra(ckpt)["config"]), self.settings()
        for section in self.must_match():  # before loading: changed settings may not fit its weights
            if stored.get(section) != current.get(section):
                raise UsageError(
                    f"--resume: the [{section}] settings differ from the checkpoint's; "
                    "resume with the same recipe and overrides"
                )
        self.step, extra, kept = load_checkpoint(ckpt, self.model, self.optimizer)
        self.elapsed, self.last = extra.get("elapsed", 0.0), extra.get("last", {})
        self.restore_kept(extra.get("kept", {}), kept)
        _truncate_log(self.paths.metrics, self.step)

    def _summary(self, interrupted: bool) -> dict:
        return {
            "steps": self.step,
            "completed": not interrupted,
            "seconds": round(self.elapsed, 2),
            "device": str(self.device),
            "world_size": distributed.world_size(),
            **self.summary_facts(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "final": {k: v for k, v in self.last.items() if k not in ("step", "time")},
        }
