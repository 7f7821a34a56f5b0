"""VAE and CVAE: a strided conv encoder giving a Gaussian posterior over a grid of continuous latents,
and a mirrored decoder giving the parameters of a likelihood p(x|z), 1-D or 2-D.

q(z|x) = N(mu(x), diag sigma^2(x)) over a latent grid ``(B, D, *S / hop)``; prior N(0, I). With strides
whose product equals the input size (28x28 with strides [2, 2, 7]) the grid is a single global vector.
Training minimises -ELBO = -E_q[log p(x|z)] + beta KL(q || p), one reparameterised sample of z and the
closed-form KL, with beta warmed up linearly from 0; or, with ``iw_samples = K > 1``, the importance-
weighted bound of Burda et al. 2015 (IWAE), -log (1/K) sum_k w_k with log w_k = log p(x|z_k) +
beta (log p(z_k) - log q(z_k|x)), K reparameterised samples. The CVAE conditions both networks on a
class label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from .. import distributed
from ..config import ModelConfig
from ..errors import UsageError, VqtokError
from ..metrics import importance_log_weights, kl_normal
from ..nn.conv import Decoder, Encoder, conv_shape
from .base import ConvFamily, LatentSpec, TrainStep
from .likelihood import LIKELIHOODS, make_likelihood, sum_per_example

LOGVAR_RANGE = (-30.0, 20.0)  # the encoder's log-variance is clamped to this range


@dataclass
class VAEOptions:
    """The options of the recipe's ``[vae]`` table."""

    table: ClassVar[str] = "vae"

    likelihood: str = "gaussian"  # p(x|z): gaussian, bernoulli (binary data) or logistic (8-bit data)
    sigma: float = 0.1  # gaussian: the fixed standard deviation (data units), or the initial one
    learn_sigma: bool = False  # gaussian: learn one sigma per channel
    kl_weight: float = 1.0  # beta: the KL term's weight (1: the ELBO)
    kl_warmup_steps: int = 0  # beta rises linearly from 0 to kl_weight over these steps
    binarize: bool = False  # bernoulli: train on binary draws x_b ~ Bernoulli((x + 1) / 2), new each step
    iw_samples: int = 1  # K > 1: train on the importance-weighted bound with K samples (IWAE), not the ELBO

    def __post_init__(self):
        t = self.table
        checks = [
            (
                self.likelihood in LIKELIHOODS,
                f"{t}.likelihood must be {', '.join(LIKELIHOODS)}; got {self.likelihood!r}",
            ),
            (self.sigma > 0, f"{t}.sigma must be positive"),
            (self.kl_weight >= 0, f"{t}.kl_weight must be at least 0"),
            (self.kl_warmup_steps >= 0, f"{t}.kl_warmup_steps must be at least 0"),
            (self.iw_samples >= 1, f"{t}.iw_samples must be at least 1"),
            (not self.binarize or self.likelihood == "bernoulli", f'{t}.binarize needs {t}.likelihood = "bernoulli"'),
            (
                not self.learn_sigma or self.likelihood == "gaussian",
                f'{t}.learn_sigma needs {t}.likelihood = "gaussian"',
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    def kl_weight_at(self, step: int) -> float:
        """The KL weight at optimisation step ``step``."""
        if self.kl_warmup_steps <= 0:
            return self.kl_weight
        return self.kl_weight * min(1.0, step / self.kl_warmup_steps)


@dataclass
class CVAEOptions(VAEOptions):
    """The options of the recipe's ``[cvae]`` table (those of a VAE)."""

    table: ClassVar[str] = "cvae"


def broadcast_grid(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B, K)`` -> ``(B, K, *G)``, constant over the grid ``G`` of ``like`` ``(B, _, *G)``."""
    grid = like.shape[2:]
    return v.view(*v.shape, *[1] * len(grid)).expand(*v.shape, *grid).to(like.dtype)


class VAE(ConvFamily):
    name = "vae"
    description = "VAE: a grid of continuous Gaussian latents; samples drawn from N(0, I)"
    config_class = VAEOptions
    can_sample = True
    has_likelihood = True

    def __init__(
        self, dims: int, in_channels: int, cfg: ModelConfig, options: VAEOptions | None = None, n_labels: int = 0
    ):
        super().__init__(dims, in_channels, cfg, options, n_labels)
        self.options = options if options is not None else self.config_class()
        self.latent_dim = cfg.latent_dim
        self.likelihood = make_likelihood(self.options, in_channels)
        extra_in, extra_z = self.label_channels()
        shape = conv_shape(cfg)
        self.encoder = Encoder(dims, in_channels + extra_in, 2 * cfg.latent_dim, **shape)
        self.decoder = Decoder(
            dims, cfg.latent_dim + extra_z, self.likelihood.params_per_channel * in_channels, **shape
        )
        self.hop = self.encoder.hop

    # ---- conditioning: none here; the CVAE overrides these --------------------------------------
    def label_channels(self) -> tuple[int, int]:
        """Channels the label adds to the encoder's input and to the decoder's input."""
        return 0, 0

    def encoder_input(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``(B, C, *S)`` -> what the encoder reads."""
        return x

    def decoder_input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``(B, D, *G)`` -> what the decoder reads."""
        return z

    @property
    def fits_binarized_data(self) -> bool:
        return self.options.binarize

    # ---- the model ---------------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): ``(B, C, *S)`` -> ``(mu, logvar)``, each float32 ``(B, D, *S / hop)``."""
        h = self.encoder(self.encoder_input(x, labels)).float()
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def likelihood_params(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder: ``z`` ``(B, D, *G)`` -> the parameters of p(x|z) ``(B, P * C, *G * hop)``."""
        return self.decoder(self.decoder_input(z, labels))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x|z): ``x`` ``(B, C, *S)``, ``z`` ``(B, D, *S / hop)`` -> ``(B,)`` nats per example."""
        return self.likelihood.log_prob(self.likelihood_params(z, labels), x)

    def _targets(self, x: torch.Tensor) -> torch.Tensor:
        """The data a training step fits: ``x``, or a fresh binary draw of it (``binarize``)."""
        if self.training and self.options.binarize:
            p = ((x.float() + 1) / 2).clamp(0, 1)
            return 2 * (distributed.global_draw(torch.rand, p) < p).to(x.dtype) - 1
        return x

    def latents(self) -> dict[str, LatentSpec]:
        return {"mean": LatentSpec(self.latent_dim, self.hop, None)}

    def forward(self, x, labels=None, *, step: int = 0, recon=None) -> TrainStep:
        """One sample of the ELBO of ``x`` ``(B, C, *S)``; ``recon`` is not used (the likelihood is the
        reconstruction loss). The loss is (-log p(x|z) + beta KL) per input element, batch-averaged."""
        x = self._targets(x)
        mu, logvar = self.posterior(x, labels)
        if self.options.iw_samples > 1:
            return self._importance_weighted(x, mu, logvar, labels, step)
        z = mu + torch.exp(0.5 * logvar) * distributed.global_draw(torch.randn, mu)
        params = self.likelihood_params(z, labels)
        nll = -self.likelihood.log_prob(params, x)  # (B,)
        kl_map = kl_normal(mu, logvar)  # (B, D, *G)
        kl = sum_per_example(kl_map)
        beta = self.options.kl_weight_at(step)
        n_in = x[0].numel()
        loss = (nll + beta * kl).mean() / n_in
        elbo = -(nll + kl)
        metrics = {
            "elbo": elbo.mean(),
            "nll_recon": nll.mean(),
            "kl": kl.mean(),
            "kl_weight": torch.tensor(beta, device=x.device),
            "bits_per_dim": -elbo.mean() / (n_in * math.log(2)),
            "kl_per_dim": kl_map.flatten(2).sum(2).mean(0),  # (D,): posterior collapse shows as zeros
            **self.likelihood.metrics(),
        }
        return TrainStep(self.likelihood.mean(params), loss, {k: v.detach() for k, v in metrics.items()})

    def _importance_weighted(self, x, mu, logvar, labels, step: int) -> TrainStep:
        """The IWAE loss of ``x`` from its posterior ``(mu, logvar)`` ``(B, D, *G)``, per input element."""
        k, n_in = self.options.iw_samples, x[0].numel()
        eps = distributed.global_draw(torch.randn, mu.unsqueeze(1).expand(-1, k, *mu.shape[1:])).transpose(0, 1)
        log_px, log_p_over_q = importance_log_weights(self, x, mu, logvar, eps, labels)  # (K, B) each
        beta = self.options.kl_weight_at(step)
        bound = torch.logsumexp(log_px + beta * log_p_over_q, dim=0) - math.log(k)  # (B,)
        kl_map = kl_normal(mu, logvar)
        with torch.no_grad():
            x_hat = self.likelihood.mean(self.likelihood_params(mu, labels))
        elbo = (log_px + log_p_over_q).mean(0)
        metrics = {
            "iwae_bound": bound.mean(),
            "elbo": elbo.mean(),
            "nll_recon": -log_px.mean(),
            "kl": sum_per_example(kl_map).mean(),
            "kl_weight": torch.tensor(beta, device=x.device),
            "bits_per_dim": -bound.mean() / (n_in * math.log(2)),
            "kl_per_dim": kl_map.flatten(2).sum(2).mean(0),
            **self.likelihood.metrics(),
        }
        return TrainStep(x_hat, -bound.mean() / n_in, {key: v.detach() for key, v in metrics.items()})

    @torch.no_grad()
    def encode(self, x, labels=None, n_q=None) -> dict[str, torch.Tensor]:
        """``(B, C, *S)`` -> ``{"mean": (B, D, *S / hop)}``, the posterior means, float32."""
        if n_q is not None:
            raise UsageError(f"--n-q applies to residual VQ models; this is a {self.name} model")
        return {"mean": self.posterior(x, labels)[0]}

    @torch.no_grad()
    def decode(self, latents, labels=None) -> torch.Tensor:
        """``{"mean": (B, D, *G)}`` -> ``(B, C, *G * hop)``: the likelihood's mean at z."""
        z = latents["mean"].to(self.decoder.net[0].weight)  # the decoder's device and dtype
        return self.likelihood.mean(self.likelihood_params(z, labels))

    @torch.no_grad()
    def sample(self, n, grid, labels=None, temperature=1.0, generator=None) -> torch.Tensor:
        """Decodes ``n`` draws z ~ N(0, temperature^2 I) ``(n, D, *grid)``. z is drawn on the CPU with
        ``generator``, so a seed gives the same samples on every device."""
        z = torch.randn((n, self.latent_dim, *grid), generator=generator) * temperature
        return self.decode({"mean": z}, labels)

    def describe(self) -> dict:
        return {"latent_dim": self.latent_dim, "likelihood": self.options.likelihood}

    @torch.no_grad()
    def diagnose(self, x, labels=None) -> dict:
        """Active units (Burda et al. 2015): latent dimensions u whose Var_x(E_q[z_u]), averaged over the
        latent positions, exceeds 0.01."""
        mu, _ = self.posterior(x, labels)
        variance = mu.var(dim=0, correction=0).flatten(1).mean(1)  # (D,)
        return {"active_units": int((variance > 0.01).sum()), "latent_dim": self.latent_dim}


class CVAE(VAE):
    """The label ``c`` conditions both networks: its one-hot maps are extra encoder input channels, and
    a learned embedding, broadcast over the latent grid, is concatenated to z at the decoder's input."""

    name = "cvae"
    description = "CVAE: a VAE conditioned on a class label (sample a chosen class)"
    config_class = CVAEOptions
    conditional = True
    embedding_dim: ClassVar[int] = 16

    def __init__(
        self, dims: int, in_channels: int, cfg: ModelConfig, options: VAEOptions | None = None, n_labels: int = 0
    ):
        super().__init__(dims, in_channels, cfg, options, n_labels)
        self.label_embedding = nn.Embedding(n_labels, self.embedding_dim)

    def label_channels(self) -> tuple[int, int]:
        return self.n_labels, self.embedding_dim

    def _check(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``labels`` as int64 ``(B,)``, or a clear error."""
        if labels is None:
            raise VqtokError("a cvae model needs a class label for every example (e.g. --label NAME)")
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.numel() != batch:
            raise VqtokError(f"a cvae model needs one label per example: got {labels.numel()} for {batch}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.n_labels):
            raise VqtokError(
                f"label out of range: this cvae model knows {self.n_labels} classes "
                f"(0..{self.n_labels - 1}), got {labels.tolist()}"
            )
        return labels

    def encoder_input(self, x, labels):
        labels = self._check(labels, x.shape[0]).to(x.device)
        return torch.cat([x, broadcast_grid(F.one_hot(labels, self.n_labels), x)], dim=1)

    def decoder_input(self, z, labels):
        labels = self._check(labels, z.shape[0]).to(z.device)
        return torch.cat([z, broadcast_grid(self.label_embedding(labels), z)], dim=1)
