"""The training loop: device and bf16 autocast, torchrun/DDP, progress, metrics log, checkpoints, resume.

Only rank 0 logs, saves and shows progress. Batches are a pure function of ``(seed, step)`` (see
:mod:`vqtok.data`), and the checkpoint holds model, optimizer and RNG state, so ``--resume`` reaches the
same result as a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, resolve_data_path
from .data import TrainingSet
from .errors import UsageError, VqtokError
from .families import build_model
from .formats import write_model
from .modality import Modality
from .plugins import get_family


@dataclass
class RunPaths:
    """Files a run writes beside its model file ``x.safetensors``."""

    model: Path
    checkpoint: Path  # x.ckpt.safetensors, removed when the run completes
    metrics: Path  # x.metrics.jsonl
    preview: Path  # x.preview.png

    @classmethod
    def for_model(cls, out: Path) -> "RunPaths":
        stem = out.name[: -len(".safetensors")] if out.name.endswith(".safetensors") else out.name
        return cls(out, out.with_name(stem + ".ckpt.safetensors"), out.with_name(stem + ".metrics.jsonl"),
                   out.with_name(stem + ".preview.png"))


@dataclass
class TrainResult:
    paths: RunPaths
    step: int  # steps completed
    interrupted: bool
    summary: dict


class StopOnInterrupt:
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step, so the
    checkpoint holds a whole number of steps; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


def _setup_distributed(device: torch.device) -> torch.device:
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
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))


class MetricsWindow:
    """Averages of the metrics since the last log line; a metric is a number or a list of numbers
    (e.g. the KL of each latent dimension), averaged element by element."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float | list[float]]) -> None:
        for k, v in values.items():
            v = torch.tensor(v, dtype=torch.float64)
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1

    def flush(self) -> dict[str, float | list[float]]:
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
    """Drop log lines past ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in lines))


class Trainer:
    def __init__(self, config: RunConfig, modality: Modality, out: Path, console: Console | None = None):
        self.config, self.modality = config, modality
        self.paths = RunPaths.for_model(Path(out))
        self.console = console or Console(stderr=True)
        self.device = _setup_distributed(pick_device(config.train.device))
        if not config.data:
            raise UsageError("no training data: pass --data DIR (or set data in the recipe)")
        self.data_root = resolve_data_path(config.data)
        self.data = TrainingSet(self.data_root, modality, config.options)
        torch.manual_seed(config.train.seed)
        if get_family(config.model.arch).conditional:  # before building: say what the data lacks
            self.data.require_labels()
        self.model = build_model(config, modality, self.data.label_names).to(self.device)
        self.conditional = self.model.conditional
        self.net = self.model
        if distributed.is_distributed():
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, broadcast_buffers=False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)
        self.amp = config.train.amp and self.device.type == "cuda"
        self.step, self.elapsed, self.last = 0, 0.0, {}

    # ---- one optimisation step ----
    def recon_loss(self, x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.modality.loss(x_hat, x, self.config.options)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor | None]) -> dict[str, float | list[float]]:
        x, labels = batch
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.config.train)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()
        with autocast:
            out = self.net(x, labels, step=self.step, recon=self.recon_loss)
        loss = out.loss.float()
        if not torch.isfinite(loss):
            raise VqtokError(f"training diverged at step {self.step} (loss {loss.item()}); lower train.lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        metrics: dict[str, float | list[float]] = {"loss": loss.item()}
        for k, v in out.metrics.items():
            v = v.detach().float()
            metrics[k] = v.item() if v.ndim == 0 else v.tolist()
        return metrics

    def batch(self, step: int, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Examples ``(B, C, *S)`` on the device, and their labels ``(B,)`` for a conditional family
        (None otherwise)."""
        t = self.config.train
        x, labels = self.data.batch(step, size or t.batch_size, t.seed, distributed.rank(),
                                    distributed.world_size(), multiple=self.model.hop)
        labels = labels.to(self.device) if self.conditional else None
        return x.to(self.device, non_blocking=True), labels

    # ---- the loop ----
    def run(self, resume: bool = False) -> TrainResult:
        main = distributed.is_main()
        if resume:
            self._resume()
        elif main:
            self.paths.metrics.unlink(missing_ok=True)
        t = self.config.train
        window = MetricsWindow()
        progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                            console=self.console, disable=not main)
        task = progress.add_task("train", total=t.steps, completed=self.step, status="")
        started = time.perf_counter() - self.elapsed
        tick, tick_step = time.perf_counter(), self.step
        self.model.train()
        with progress, StopOnInterrupt() as stop:
            while self.step < t.steps and not stop.requested:
                window.add(self.train_step(self.batch(self.step)))
                self.step += 1
                progress.update(task, completed=self.step)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    now = time.perf_counter()
                    speed = (self.step - tick_step) / max(now - tick, 1e-9)
                    tick, tick_step = now, self.step
                    self.last = {"step": self.step, **window.flush(), "steps_per_s": speed,
                                 "lr": lr_at(self.step - 1, t), "time": now - started}
                    if main:
                        self._log(self.last)
                    progress.update(task, status=self._status(self.last))
                if self.step % t.checkpoint_every == 0 and self.step < t.steps and main:
                    self.elapsed = time.perf_counter() - started
                    self._checkpoint()
        interrupted = self.step < t.steps  # stopped by Ctrl-C between steps
        self.elapsed = time.perf_counter() - started
        summary = self._summary(interrupted)
        if main:
            if interrupted:
                self._checkpoint()
            self._save(summary)
            if not interrupted:
                self.paths.checkpoint.unlink(missing_ok=True)
        if distributed.is_distributed():
            torch.distributed.barrier()  # the others wait until rank 0 has saved
            torch.distributed.destroy_process_group()
        return TrainResult(self.paths, self.step, interrupted, summary)

    @staticmethod
    def _status(m: dict) -> str:
        ppl = " ".join(f"{m[k]:.0f}" for k in sorted(m) if "perplexity" in k)
        extra = f"  ppl {ppl}" if ppl else ""
        if "elbo" in m:
            extra += f"  elbo {m['elbo']:.1f}  kl {m['kl']:.1f}"
        return f"loss {m['loss']:.4f}{extra}  {m['steps_per_s']:.2f} step/s"

    def _log(self, metrics: dict) -> None:
        self.paths.metrics.parent.mkdir(parents=True, exist_ok=True)
        with self.paths.metrics.open("a") as f:
            f.write(json.dumps(_rounded(metrics)) + "\n")

    def _checkpoint(self) -> None:
        save_checkpoint(self.paths.checkpoint, self.model, self.optimizer, self.step,
                        {"config": self.config.to_dict(), "elapsed": self.elapsed, "last": self.last})

    def _resume(self) -> None:
        ckpt = self.paths.checkpoint
        if not ckpt.exists():
            raise UsageError(f"nothing to resume: {ckpt} does not exist (it is removed when a run completes)")
        self.step, extra = load_checkpoint(ckpt, self.model, self.optimizer)
        stored = extra["config"]
        current = self.config.to_dict()
        for section in ("model", self.config.modality, self.config.model.arch):
            if stored.get(section) != current.get(section):
                raise UsageError(f"--resume: the [{section}] settings differ from the checkpoint's; "
                                 "resume with the same recipe and overrides")
        self.elapsed, self.last = extra.get("elapsed", 0.0), extra.get("last", {})
        _truncate_log(self.paths.metrics, self.step)

    def _summary(self, interrupted: bool) -> dict:
        return {
            "steps": self.step, "completed": not interrupted, "seconds": round(self.elapsed, 2),
            "device": str(self.device), "world_size": distributed.world_size(),
            "data": str(self.data_root), "files": len(self.data),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "final": {k: v for k, v in self.last.items() if k not in ("step", "time")},
        }

    def _save(self, summary: dict) -> None:
        model = self.model
        decode = {"hop": model.hop, "latents": {k: dataclasses.asdict(v) for k, v in model.latents().items()},
                  "label_names": self.data.label_names if self.conditional else [],
                  **model.describe(), **self.modality.describe(self.config.options)}
        summary["diagnostics"] = self._diagnose()
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        meta = {"modality": self.modality.name, "family": model.name, "config": self.config.to_dict(),
                "decode": decode, "training": summary}
        write_model(self.paths.model, tensors, meta)
        self._preview()

    @torch.no_grad()
    def _diagnose(self) -> dict:
        """The family's own measurements (e.g. active units) on one batch of training data."""
        was_training = self.model.training
        self.model.eval()
        x, labels = self.batch(0, max(self.config.train.batch_size, 64))
        facts = self.model.diagnose(x, labels)
        self.model.train(was_training)
        return facts

    @torch.no_grad()
    def _preview(self) -> None:
        model = self.model
        was_training = model.training
        model.eval()
        x, labels = self.batch(0, min(8, self.config.train.batch_size))
        x_hat = model.reconstruct(x, labels).float().clamp(-1, 1)
        try:
            self.modality.preview(x.cpu(), x_hat.cpu(), self.paths.preview, self.config.options)
        except Exception as e:  # a picture is a bonus: never lose a trained model over it
            self.console.print(f"[yellow]warning:[/] no preview picture ({type(e).__name__}: {e})")
        model.train(was_training)
