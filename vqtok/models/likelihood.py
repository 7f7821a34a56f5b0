"""Decoder likelihoods p(x|z) for data in the modality range [-1, 1].

A decoder outputs ``params`` ``(B, P * C, *S)`` for data ``x`` ``(B, C, *S)``, where ``P`` is the
likelihood's :attr:`Likelihood.params_per_channel`: the ``P`` groups of ``C`` channels are the
distribution's parameters (e.g. means, then log-scales). Every likelihood provides

- ``log_prob(params, x)`` -> ``(B,)``: log p(x|z) in nats per example, summed over all non-batch axes;
- ``mean(params)`` -> ``(B, C, *S)``: the reconstruction ``decode`` returns, in [-1, 1].

Both work in float32, whatever dtype the decoder ran in (bf16 autocast).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

LOG_2PI = math.log(2 * math.pi)


def sum_per_example(t: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` -> ``(B,)``: the sum over all non-batch axes."""
    return t.flatten(1).sum(1)


class Likelihood(nn.Module):
    """Base class: a factorised distribution over the elements of ``x`` given the decoder's output."""

    kind: ClassVar[str] = ""
    params_per_channel: ClassVar[int] = 1

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, P * C, *S)`` -> ``P`` float32 tensors ``(B, C, *S)``."""
        return params.float().chunk(self.params_per_channel, dim=1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``params`` ``(B, P * C, *S)``, ``x`` ``(B, C, *S)`` in [-1, 1] -> ``(B,)`` nats per example."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """``(B, P * C, *S)`` -> ``(B, C, *S)`` in [-1, 1]."""
        raise NotImplementedError

    def metrics(self) -> dict[str, torch.Tensor]:
        """Learned parameters worth logging (0-d or 1-D tensors)."""
        return {}


class Gaussian(Likelihood):
    """N(x; mu, sigma^2) with the decoder giving ``mu``; ``sigma`` (data units) is fixed, or learned
    as one log-sigma per channel (``learn_sigma``). A fixed sigma makes -log p an MSE up to constants.
    ``mean`` clips mu to [-1, 1], the data range."""

    kind = "gaussian"
    min_log_sigma: ClassVar[float] = math.log(1e-3)  # a learned sigma may not shrink to a point mass

    def __init__(self, channels: int, sigma: float = 0.1, learn: bool = False):
        super().__init__()
        log_sigma = torch.full((channels,), math.log(sigma))
        if learn:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma, persistent=False)
        self.learn = learn

    def _log_sigma(self, like: torch.Tensor) -> torch.Tensor:
        """The per-channel log-sigma, ``(1, C, 1, ...)`` broadcastable to ``like`` ``(B, C, *S)``."""
        log_sigma = self.log_sigma.float().clamp(min=self.min_log_sigma)
        return log_sigma.view(1, -1, *[1] * (like.ndim - 2))

    def log_prob(self, params, x):
        (mu,) = self.split(params)
        log_sigma = self._log_sigma(mu)
        z = (x.float() - mu) * torch.exp(-log_sigma)
        return sum_per_example(-0.5 * z.square() - log_sigma - 0.5 * LOG_2PI)

    def mean(self, params):
        return self.split(params)[0].clamp(-1, 1)

    def metrics(self):
        return {"sigma": self.log_sigma.detach().exp().mean()} if self.learn else {}


class Bernoulli(Likelihood):
    """Bernoulli(p = sigmoid(logits)) over the target ``(x + 1) / 2``. The exact likelihood of binary
    data (x in {-1, 1}); for continuous targets it is the usual cross-entropy, not a normalised density."""

    kind = "bernoulli"

    def log_prob(self, params, x):
        (logits,) = self.split(params)
        target = (x.float() + 1) / 2
        return -sum_per_example(F.binary_cross_entropy_with_logits(logits, target, reduction="none"))

    def mean(self, params):
        return 2 * torch.sigmoid(self.split(params)[0]) - 1


class DiscretizedLogistic(Likelihood):
    """The discretized logistic of PixelCNN++ / IAF for 8-bit data: 256 bins of width 2/255 centred on
    ``-1 + 2k/255``; the edge bins take the tails, so the 256 probabilities sum to one and -log p is an
    honest code length (bits/dim). ``x`` is rounded to its bin. The decoder gives, per channel, the
    logistic's mean and log-scale (clamped to [-7, 7]). ``mean`` is the logistic's mean clipped to
    [-1, 1]."""

    kind = "logistic"
    params_per_channel = 2
    bins: ClassVar[int] = 256
    log_scale_range: ClassVar[tuple[float, float]] = (-7.0, 7.0)

    def log_prob(self, params, x):
        mu, log_scale = self.split(params)
        log_scale = log_scale.clamp(*self.log_scale_range)
        half = self.bins - 1
        k = torch.round((x.float() + 1) * (half / 2)).clamp(0, half)  # the bin index, 0..255
        centred = k * (2 / half) - 1 - mu
        inv_scale = torch.exp(-log_scale)
        upper = inv_scale * (centred + 1 / half)  # logit of the CDF at the bin's upper edge
        lower = inv_scale * (centred - 1 / half)
        # log(sigmoid(u) - sigmoid(l)) = log sigmoid(u) + log sigmoid(-l) + log(1 - exp(l - u)), stable
        # for every u > l; here u - l = 2 / (255 scale), taken exactly rather than as a difference.
        width = (2 / half) * inv_scale
        log_mid = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(-width))
        log_p = torch.where(k == 0, F.logsigmoid(upper), torch.where(k == half, F.logsigmoid(-lower), log_mid))
        return sum_per_example(log_p)

    def mean(self, params):
        return self.split(params)[0].clamp(-1, 1)


LIKELIHOODS: dict[str, type[Likelihood]] = {c.kind: c for c in (Gaussian, Bernoulli, DiscretizedLogistic)}


def make_likelihood(options, channels: int) -> Likelihood:
    """The likelihood that ``options`` (``likelihood``, ``sigma``, ``learn_sigma``, e.g. a
    :class:`vqtok.models.vae.VAEOptions`) names, for data of ``channels`` channels."""
    if options.likelihood == "gaussian":
        return Gaussian(channels, options.sigma, options.learn_sigma)
    return LIKELIHOODS[options.likelihood]()
