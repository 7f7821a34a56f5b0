"""``vqtok train``: the autoencoder's run on top of the shared loop (:mod:`vqtok.loop`).

It reads the training folder (:mod:`vqtok.data`), builds the family's model (from a trained model's
weights when the config names one to start from, :mod:`vqtok.finetune`), trains it with the
modality's reconstruction loss (plus, when ``[adversarial]`` asks for it, the modality's
discriminator: :mod:`vqtok.adversarial`), and saves the model file with a preview picture and the
family's diagnostics.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console

from .. import distributed
from ..config import RunConfig, from_dict, resolve_data_path
from ..device import pick_device
from ..errors import UsageError
from ..files.model import write_model
from ..models.base import TrainStep
from ..models.quantize import TRAINING_ONLY
from ..plugin.families import build_model
from ..plugin.modality import Modality, stored_facts
from ..plugin.registry import get_family, get_modality
from .adversarial import Adversary
from .chain import lineage
from .data import TrainingSet
from .finetune import start_from
from .loop import RunPaths, TrainingLoop, setup_distributed


class Trainer(TrainingLoop):
    def __init__(self, config: RunConfig, modality: Modality, out: Path, console: Console | None = None):
        self.config, self.modality = config, modality
        device = setup_distributed(pick_device(config.train.device))
        if not config.data:
            raise UsageError("no training data: pass --data DIR (or set data in the recipe)")
        self.data_root = resolve_data_path(config.data)
        self.data = TrainingSet(self.data_root, modality, config.options)
        torch.manual_seed(config.train.seed)
        if get_family(config.model.arch).conditional:  # before building: say what the data lacks
            self.data.require_labels()
        self.model = build_model(config, modality, self.data.label_names).to(device)
        self.init = (
            start_from(self.model, config, self.data.label_names, modality.bound_to_weights(config.options))
            if config.init
            else None
        )
        self.conditional = self.model.conditional
        self.adversary = self._adversary(device) if config.adversarial.enabled else None
        super().__init__(config.train, RunPaths.for_model(Path(out)), device, console)

    def _adversary(self, device: torch.device) -> Adversary:
        net = self.modality.discriminator(self.config.options, self.config.adversarial.width)
        if net is None:
            raise UsageError(
                f"[adversarial]: the {self.modality.name} modality has no discriminator; set "
                "adversarial.weight and adversarial.feature_weight to 0"
            )
        return Adversary(net, self.config.adversarial, self.config.train, device)

    def recon_loss(self, x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.modality.loss(x_hat, x, self.config.options)

    def forward(self, x, labels) -> TrainStep:
        return self.net(x, labels, step=self.step, recon=self.recon_loss)

    def _adversarial_step(self) -> bool:
        return self.adversary is not None and self.adversary.active(self.step)

    def extra_loss(self, x, out: TrainStep):
        return self.adversary.generator_loss(x, out.x_hat) if self._adversarial_step() else (0.0, {})

    def after_update(self, x, out: TrainStep) -> dict[str, float]:
        if not self._adversarial_step():
            return {}
        return self.adversary.critic_step(x, out.x_hat, self.step, self.autocast)

    def kept_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return self.adversary.state() if self.adversary is not None else ({}, {})

    def restore_kept(self, facts: dict, tensors: dict[str, torch.Tensor]) -> None:
        if self.adversary is not None:
            self.adversary.restore(facts, tensors)

    def batch_maker(self, size: int | None = None) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
        """Step -> this rank's examples ``(B, C, *S)`` and their labels ``(B,)``, on the CPU."""
        t = self.config.train
        return functools.partial(
            self.data.batch,
            size=size or t.batch_size,
            seed=t.seed,
            rank=distributed.rank(),
            world=distributed.world_size(),
            multiple=self.model.hop,
        )

    def to_device(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Examples ``(B, C, *S)`` on the device, and their labels ``(B,)`` for a conditional family
        (None otherwise)."""
        x, labels = batch
        labels = labels.to(self.device) if self.conditional else None
        return x.to(self.device, non_blocking=True), labels

    def batch(self, step: int, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.to_device(self.batch_maker(size)(step))

    def settings(self) -> dict:
        return self.config.to_dict()

    def must_match(self) -> list[str]:
        return ["model", self.config.modality, self.config.model.arch, "adversarial"]

    def current_form(self, stored: dict) -> dict:
        # a checkpoint from before [adversarial] existed has none: it trained without one, the default
        return from_dict(stored, get_modality).to_dict()

    def summary_facts(self) -> dict:
        started = {"started_from": lineage(self.init)} if self.init else {}
        return {"data": str(self.data_root), "files": len(self.data), **started}

    def save(self, summary: dict) -> None:
        model = self.model
        decode = {
            "hop": model.hop,
            "latents": {k: dataclasses.asdict(v) for k, v in model.latents().items()},
            "label_names": self.data.label_names if self.conditional else [],
            **model.describe(),
            **self.modality.describe(self.config.options),
            **stored_facts(self.modality, self.config.options),
        }
        summary["diagnostics"] = self._diagnose()
        tensors = {
            f"model.{k}": v
            for k, v in model.state_dict().items()  # the checkpoint keeps the rest
            if k.rsplit(".", 1)[-1] not in TRAINING_ONLY
        }
        meta = {
            "modality": self.modality.name,
            "family": model.name,
            "config": self.config.to_dict(),
            "decode": decode,
            "training": summary,
        }
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
