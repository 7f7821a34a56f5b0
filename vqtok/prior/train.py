"""``vqtok train-prior``: encode a folder with a trained model once, train the prior over its codes
with the shared loop (progress, checkpoints, Ctrl-C, ``--resume``), measure it as an entropy model on
held-out files and store it with the model.

A prior recipe (``--recipe``) has the tables ``[prior]`` (:class:`~vqtok.prior.model.PriorOptions`)
and ``[train]`` (:class:`~vqtok.config.TrainConfig`) and may name ``data`` and ``valid`` folders;
``key=value`` overrides and flags win over it, as for ``vqtok train``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from .. import distributed
from ..codec import Tokenizer
from ..config import TrainConfig, build_section, layered, read_recipe, resolve_data_path
from ..console import stderr_console
from ..device import pick_device
from ..errors import UsageError
from ..files.atomic import atomic_path
from ..info import latent_rates
from ..plugin.modality import Modality
from ..train.data import TrainingSet
from ..train.loop import RunPaths, TrainingLoop, setup_distributed
from .data import CodeSet
from .entropy import entropy_report, mean_bits, prior_bits, uniform_bits, unigram_bits
from .model import Prior, PriorOptions
from .store import save_prior

DEFAULTS = {"train": {"steps": 2000, "batch_size": 32, "lr": 1e-3, "warmup_steps": 100, "checkpoint_every": 500}}
PREVIEW_SAMPLES = 16


@dataclass
class PriorRun:
    """A resolved ``train-prior`` command."""

    options: PriorOptions
    train: TrainConfig
    data: Path
    valid: Path | None


def resolve_prior_run(recipe: Path | None, overrides: list[str], flags: dict) -> PriorRun:
    user = layered(read_recipe(recipe) if recipe else None, overrides, flags, DEFAULTS)
    unknown = sorted(set(user) - {"prior", "train", "data", "valid"})
    if unknown:
        raise UsageError(f"unknown section or key {unknown[0]!r} for train-prior; known: data, valid, [prior], [train]")
    if not user.get("data"):
        raise UsageError("no data: pass --data DIR (the files to encode and train the prior on)")
    options = build_section(PriorOptions, user.get("prior", {}), "prior")
    train = build_section(TrainConfig, user["train"], "train")
    valid = resolve_data_path(user["valid"]) if user.get("valid") else None
    return PriorRun(options, train, resolve_data_path(user["data"]), valid)


def _held_out(n: int, share: float) -> list[int]:
    """Evenly spread indices of ``round(n * share)`` of ``n`` files (none when fewer than 2 files)."""
    k = round(n * share) if n >= 2 else 0
    return sorted({int((i + 0.5) * n / k) for i in range(k)}) if k else []


class PriorTrainer(TrainingLoop):
    label = "prior"

    def __init__(
        self, tok: Tokenizer, model_path: Path, run: PriorRun, out: Path | None, console: Console | None = None
    ):
        self.tok, self.model_path, self.run_cfg, self.out = tok, Path(model_path), run, out
        console = console or stderr_console()
        _require_codes(tok)
        device = setup_distributed(pick_device(run.train.device))
        tok.model.to(device)
        tok.device = device
        files = TrainingSet(run.data, tok.modality, tok.config.options)
        self.label_names = self._labels(files, run.options.labels)
        labels = files.labels if self.label_names else torch.full((len(files),), -1)
        if run.valid is not None:  # checked before the long encoding
            valid_files = TrainingSet(run.valid, tok.modality, tok.config.options)
            valid_labels = self._valid_labels(valid_files)
        everything = CodeSet.encode(tok, files.files, labels, console)
        if run.valid is not None:
            self.train_set, self.valid_set = everything, CodeSet.encode(tok, valid_files.files, valid_labels, console)
            self.held_out = f"{len(self.valid_set)} file(s) from {run.valid}"
        else:
            held = _held_out(len(everything), run.options.valid_share)
            rest = [i for i in range(len(everything)) if i not in set(held)]
            self.train_set = everything.subset(rest) if held else everything
            self.valid_set = everything.subset(held) if held else everything
            self.held_out = (
                f"{len(held)} of the {len(everything)} files, not trained on"
                if held
                else "the training files themselves (too few files to hold any out)"
            )
        self.hops = {name: spec.hop for name, spec in tok.specs.items()}
        self.best: dict = {}  # {"step", "bits"} of the lowest held-out bits per code so far
        self.best_weights: dict[str, torch.Tensor] = {}
        torch.manual_seed(run.train.seed)
        self.model = Prior(tok.dims, tok.specs, run.options, len(self.label_names)).to(device)
        super().__init__(run.train, RunPaths.for_model(Path(out or model_path), ".prior"), device, console)

    @staticmethod
    def _labels(files: TrainingSet, choice: str) -> list[str]:
        if choice == "no":
            return []
        if choice == "yes":
            files.require_labels()
            return files.label_names
        labelled = bool(files.label_names) and bool((files.labels >= 0).all())
        return files.label_names if labelled and len(files.label_names) >= 2 else []

    def _valid_labels(self, valid: TrainingSet) -> torch.Tensor:
        """The class of each held-out file (-1 for all when the prior is unconditional)."""
        if not self.label_names:
            return torch.full((len(valid),), -1)
        names = [valid.label_names[i] if i >= 0 else None for i in valid.labels.tolist()]
        for path, name in zip(valid.files, names):
            if name not in self.label_names:
                raise UsageError(
                    f"--valid: {path} is not in a folder of one of the training classes "
                    f"({', '.join(self.label_names)}); a class-conditional prior is measured on "
                    "files of its classes"
                )
        return torch.tensor([self.label_names.index(name) for name in names])

    def batch_maker(self):
        t = self.train_cfg
        dropout = self.run_cfg.options.label_dropout if self.label_names else 0.0
        return functools.partial(
            self.train_set.batch,
            size=t.batch_size,
            seed=t.seed,
            hops=self.hops,
            window=self.run_cfg.options.window,
            rank=distributed.rank(),
            world=distributed.world_size(),
            label_dropout=dropout,
            no_label=len(self.label_names),
            balance=self.run_cfg.options.balance,
        )

    def to_device(self, batch):
        batch, labels = batch
        batch = {k: (c.to(self.device), m.to(self.device)) for k, (c, m) in batch.items()}
        return batch, labels.to(self.device) if self.label_names else None

    def settings(self) -> dict:
        return {
            "prior": dataclasses.asdict(self.run_cfg.options),
            "train": dataclasses.asdict(self.train_cfg),
            "model": self.tok.model_hash,
            "labels": self.label_names,
        }

    def must_match(self) -> list[str]:
        return ["prior", "model", "labels"]

    def summary_facts(self) -> dict:
        return {"data": str(self.run_cfg.data), "files": len(self.train_set), "held_out": self.held_out}

    def after_step(self) -> dict[str, float]:
        """Every ``prior.eval_every`` steps and at the end: the held-out bits per code, logged as
        ``valid_bits``; the weights that reach the lowest are kept (the prior overfits small data)."""
        every = self.run_cfg.options.eval_every
        if not every or (self.step % every and self.step < self.train_cfg.steps):
            return {}
        bits = mean_bits(self.held_out_bits(), self.valid_set)
        if not self.best or bits < self.best["bits"]:
            self.best = {"step": self.step, "bits": bits}
            self.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return {"valid_bits": bits}

    def held_out_bits(self, use_labels: bool = True) -> dict[str, float]:
        """Bits per code of the held-out codes under the prior now, per level."""
        return prior_bits(
            self.model, self.valid_set, self.device, self.hops, self.run_cfg.options.window, use_labels=use_labels
        )

    def kept_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return self.best, self.best_weights

    def restore_kept(self, facts: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.best, self.best_weights = facts, tensors

    def entropy(self) -> dict:
        """Bits per code on the held-out codes under the prior, the unigram and the uniform code models."""
        specs = self.tok.specs
        bits = {"prior": self.held_out_bits()}
        if self.model.knows_no_label:
            bits["prior_no_label"] = self.held_out_bits(use_labels=False)
        bits |= {"unigram": unigram_bits(self.train_set, self.valid_set, specs), "uniform": uniform_bits(specs)}
        return entropy_report(bits, specs, latent_rates(self.tok.meta["decode"]), self.held_out)

    def save(self, summary: dict) -> None:
        if self.best and self.best["step"] != self.step:
            self.model.load_state_dict(self.best_weights)
        summary["kept"] = self.best or {"step": self.step}
        info = {
            "options": dataclasses.asdict(self.run_cfg.options),
            "train": dataclasses.asdict(self.train_cfg),
            "label_names": self.label_names,
            "levels": self.model.order,
            "training": summary,
            "entropy": self.entropy(),
        }
        self.saved_to = save_prior(self.model, info, self.model_path, self.tok.model_hash, self.out)
        if self.out is None and self.saved_to != self.model_path:
            self.console.print(
                f"[yellow]warning:[/] {self.model_path} changed while the prior trained; the prior "
                f"went to {self.saved_to} (use it with --prior)"
            )
        self.info = info
        self.tok.prior, self.tok.prior_info = self.model.eval(), info
        self._preview()
        self.model.train()

    def _preview(self) -> None:
        """A grid of samples (one label after another for a class-conditional prior), where the
        modality draws grids."""
        modality = self.tok.modality
        if type(modality).save_batch is Modality.save_batch:  # it draws no batch pictures
            return
        try:
            x = self.tok.sample(PREVIEW_SAMPLES, seed=self.train_cfg.seed)
            with atomic_path(self.paths.preview) as tmp:
                modality.save_batch(x, tmp, self.tok.config.options)
        except Exception as e:  # a picture is a bonus: never lose a trained prior over it
            self.console.print(f"[yellow]warning:[/] no preview picture ({type(e).__name__}: {e})")


def _require_codes(tok: Tokenizer) -> None:
    continuous = [name for name, spec in tok.specs.items() if not spec.discrete]
    if continuous:
        raise UsageError(
            f"train-prior needs a model with discrete codes; a {tok.family} model has continuous "
            f"latents ({', '.join(continuous)}) and samples from its own N(0, I) prior: "
            "use `vqtok sample` directly"
        )
