"""The optional adversarial loss of ``vqtok train`` (``[adversarial]`` in a recipe).

A reconstruction loss alone (L1, spectral distances, MSE) rewards the average of what might be there:
smeared detail, buzzy speech, blurry edges. As in SoundStream, EnCodec and VQGAN, a discriminator from
the modality (:meth:`vqtok.modality.Modality.discriminator`) learns to tell originals from
reconstructions, and the autoencoder is trained to fool it, on top of its reconstruction loss:

- discriminator (hinge): ``mean_k [relu(1 - D_k(x)) + relu(1 + D_k(x_hat))]`` over its sub-discriminators k;
- autoencoder: ``weight * mean_k relu(1 - D_k(x_hat))`` plus ``feature_weight *`` feature matching,
  ``mean_{k,l} |D_k^l(x) - D_k^l(x_hat)| / mean |D_k^l(x)|`` over the feature maps l of each.

A discriminator maps a batch ``(B, C, *S)`` to a list, one per sub-discriminator, of its feature maps,
the last being its logits. After ``start_step`` steps of the reconstruction loss alone, each training
step updates the autoencoder and then the discriminator, on the same batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .. import distributed
from ..config import AdversarialConfig, TrainConfig
from ..files.checkpoint import load_optimizer, optimizer_tensors
from .loop import lr_at

Judgement = list[list[torch.Tensor]]  # per sub-discriminator: its feature maps, the last its logits


def hinge_critic_loss(real: Judgement, fake: Judgement) -> torch.Tensor:
    return sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake)) / len(real)


def hinge_generator_loss(fake: Judgement) -> torch.Tensor:
    return sum(F.relu(1 - f[-1]).mean() for f in fake) / len(fake)


def feature_matching_loss(real: Judgement, fake: Judgement) -> torch.Tensor:
    """Mean over sub-discriminators and their feature maps (not the logits) of the L1 distance relative
    to the original's mean magnitude, so that every layer counts alike."""
    terms = [
        (r - f).abs().mean() / (r.abs().mean() + 1e-8) for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])
    ]
    return sum(terms) / len(terms)


class Adversary:
    """The discriminator of a training run, its optimizer, and the losses of both sides."""

    def __init__(self, discriminator: nn.Module, cfg: AdversarialConfig, train: TrainConfig, device: torch.device):
        self.net = discriminator.to(device)
        self.cfg, self.train = cfg, train
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.5, 0.9))

    def active(self, step: int) -> bool:
        return step >= self.cfg.start_step

    def generator_loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The autoencoder's adversarial terms for originals ``x`` and reconstructions ``x_hat`` ``(B, C, *S)``
        (gradients flow into ``x_hat`` only), and the metrics to log."""
        self.net.requires_grad_(False)
        try:
            fake = self.net(x_hat)
            with torch.no_grad():
                real = self.net(x) if self.cfg.feature_weight > 0 else None
        finally:
            self.net.requires_grad_(True)
        adv = hinge_generator_loss(fake)
        metrics = {"adv_g": adv.detach()}
        loss = self.cfg.weight * adv
        if real is not None:
            fm = feature_matching_loss(real, fake)
            metrics["feature_match"] = fm.detach()
            loss = loss + self.cfg.feature_weight * fm
        return loss, metrics

    def critic_step(self, x: torch.Tensor, x_hat: torch.Tensor, step: int, autocast) -> dict[str, float]:
        """One update of the discriminator on originals ``x`` against reconstructions ``x_hat``, its
        forward pass under the context ``autocast()``; under torchrun its gradients are averaged over
        the processes, as the autoencoder's are."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, self.train) * self.cfg.lr / self.train.lr
        with autocast():
            loss = hinge_critic_loss(self.net(x), self.net(x_hat.detach())).float()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if distributed.is_distributed():
            for p in self.net.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= distributed.world_size()
        if self.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.train.grad_clip)
        self.optimizer.step()
        return {"adv_d": loss.item()}

    # ---- checkpoints ----
    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """``(facts, tensors)`` for a checkpoint: the weights under ``disc.``, Adam's state under ``disc_optim.``."""
        tensors, param_groups = optimizer_tensors(self.optimizer, "disc_optim")
        tensors.update({f"disc.{k}": v for k, v in self.net.state_dict().items()})
        return {"disc_param_groups": param_groups}, tensors

    def restore(self, facts: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict({k[len("disc.") :]: v for k, v in tensors.items() if k.startswith("disc.")})
        load_optimizer(self.optimizer, tensors, "disc_optim", facts["disc_param_groups"])
