"""Likelihood metrics: closed-form Gaussian terms, the ELBO and importance-sampled NLL, bits per dimension.

All log densities are in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

LOG_2PI = math.log(2 * math.pi)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) elementwise: ``0.5 (mu^2 + sigma^2 - log sigma^2 - 1)``;
    same shape as ``mu`` and ``logvar``."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float = 0.0, logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) elementwise, shapes broadcast; the defaults give the standard normal."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar))


@dataclass
class LikelihoodEstimate:
    """Per-example estimates in nats from the same ``k`` posterior samples, each ``(B,)``."""

    elbo: torch.Tensor  # mean_i log w_i: the ELBO with a sampled KL (unbiased)
    log_p: torch.Tensor  # logsumexp_i log w_i - log k: the importance-sampled log p(x), a lower bound
    # on log p(x) in expectation that tightens as k grows (Burda et al. 2015)
    log_p_first: dict[int, torch.Tensor] = field(default_factory=dict)  # {m: the same estimate from the
    # first m of the k samples}, for the m asked for: how the estimate moves with k, at no extra cost

    @property
    def nll(self) -> torch.Tensor:
        return -self.log_p


def importance_log_weights(
    model,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    eps: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``c`` posterior samples z_i = mu + sigma eps_i (``eps`` ``(c, B, D, *G)``) of ``x`` ``(B, C, *S)``:
    ``(log p(x|z_i), log p(z_i) - log q(z_i|x))``, each ``(c, B)``; their sum is log w_i. Differentiable
    (the IWAE objective trains on it; :func:`importance_sampled_likelihood` measures with it)."""
    c = eps.shape[0]
    z = mu + torch.exp(0.5 * logvar) * eps
    log_p_over_q = (log_normal(z) - log_normal(z, mu, logvar)).flatten(2).sum(2)  # (c, B)
    x_c = x.expand(c, *x.shape).flatten(0, 1)  # (c * B, C, *S), sample-major like z.flatten(0, 1)
    labels_c = None if labels is None else labels.repeat(c)
    return model.log_likelihood(x_c, z.flatten(0, 1), labels_c).view(c, -1), log_p_over_q


@torch.no_grad()
def importance_sampled_likelihood(
    model,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    k: int = 1000,
    chunk: int = 100,
    also_first: tuple[int, ...] = (),
) -> LikelihoodEstimate:
    """The ELBO and the importance-sampled log-likelihood of ``x`` from ``k`` samples z_i ~ q(z|x):

        log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),
        log p(x) ~= logsumexp_i log w_i - log k,     ELBO ~= mean_i log w_i.

    ``model`` provides ``posterior(x, labels) -> (mu, logvar)`` and ``log_likelihood(x, z, labels) ->
    (B,)`` (see :class:`vqtok.models.vae.VAE`). ``x`` ``(B, C, *S)``, ``labels`` ``(B,)`` or None.
    Samples are decoded ``chunk`` at a time (``chunk * B`` decoder inputs) and combined by a running
    logsumexp and sum, so memory does not grow with ``k``. Each sample's noise is drawn by its own
    ``torch.randn`` call from the global generator, so with a fixed seed the result does not depend on
    ``chunk``. For each ``m`` in ``also_first`` below ``k``, ``log_p_first[m]`` is the estimate from the
    first ``m`` samples (the same draws, so it pairs with the full estimate example by example).
    """
    if k < 1 or chunk < 1:
        raise ValueError("k and chunk must be at least 1")
    marks = sorted({m for m in also_first if 1 <= m < k})
    mu, logvar = model.posterior(x, labels)  # (B, D, *G)
    log_sum = torch.full((x.shape[0],), -math.inf, device=mu.device, dtype=torch.float64)
    total = torch.zeros(x.shape[0], device=mu.device, dtype=torch.float64)
    first: dict[int, torch.Tensor] = {}
    done = 0
    while done < k:
        c = min(chunk, k - done, *(m - done for m in marks if m > done))
        eps = torch.stack([torch.randn(mu.shape, device=mu.device) for _ in range(c)])  # (c, B, D, *G)
        log_w = sum(importance_log_weights(model, x, mu, logvar, eps, labels)).double()
        log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, dim=0))
        total += log_w.sum(0)
        done += c
        if done in marks:
            first[done] = (log_sum - math.log(done)).float()
    return LikelihoodEstimate(elbo=(total / k).float(), log_p=(log_sum - math.log(k)).float(), log_p_first=first)


def importance_sampled_nll(
    model, x: torch.Tensor, labels: torch.Tensor | None = None, k: int = 1000, chunk: int = 100
) -> torch.Tensor:
    """-log p(x) ``(B,)`` in nats, importance-sampled with ``k`` samples (see
    :func:`importance_sampled_likelihood`); ``k = 1`` is -ELBO with a sampled KL."""
    return importance_sampled_likelihood(model, x, labels, k, chunk).nll


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """Nats per example -> bits per input element: ``nll / (dims ln 2)``; ``dims`` = C * prod(S)."""
    return nll_nats / (dims * math.log(2))
