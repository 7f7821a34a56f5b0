"""Vector quantization: one codebook (EMA or loss-trained) and a residual stack of them.

Distances use ``||z||^2 - 2 z e^T + ||e||^2`` (one matrix product), never an N x K x D tensor. The
codebook and its statistics stay float32, also under autocast. Statistics (EMA counts and sums, k-means
sums) pass through :func:`vqtok.distributed.all_reduce_sum`, so every rank keeps the same codebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .. import distributed


@dataclass
class Quantized:
    """What a quantizer returns for ``N`` vectors of dimension ``D`` and ``n_q`` codebooks."""

    z_q: torch.Tensor  # (N, D), straight-through: gradients flow to the encoder output
    codes: torch.Tensor  # (N, n_q) int64
    commit_loss: torch.Tensor  # scalar, beta already applied
    codebook_loss: torch.Tensor  # scalar, zero for EMA codebooks
    perplexity: torch.Tensor  # (n_q,) exp(entropy) of this batch's code histogram
    usage: torch.Tensor  # (n_q,) share of codes alive (EMA usage above the restart threshold)


def nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``z`` ``(N, D)`` -> ``(N,)``."""
    # ||z||^2 is the same for every code, so argmin needs only ||e||^2 - 2 z e^T.
    scores = torch.addmm(codebook.pow(2).sum(1), z, codebook.t(), alpha=-2.0)
    return scores.argmin(dim=1)


def kmeans(z: torch.Tensor, k: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` centroids ``(k, D)`` of ``z`` ``(N, D)`` and their cluster sizes ``(k,)`` (summed over
    ranks); identical on every rank, since the sums are all-reduced."""
    pick = torch.randint(0, z.shape[0], (k,), device=z.device)
    centroids = distributed.broadcast(z[pick].clone())
    counts = torch.zeros(k, device=z.device, dtype=z.dtype)
    for _ in range(iters):
        assign = nearest(z, centroids)
        sums = distributed.all_reduce_sum(torch.zeros_like(centroids).index_add_(0, assign, z))
        counts = distributed.all_reduce_sum(torch.bincount(assign, minlength=k).to(z.dtype))
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, counts


class VectorQuantizer(nn.Module):
    """One codebook of ``K`` vectors of dimension ``D``.

    ``forward(z (N, D))`` returns the nearest codes, the straight-through ``z_q`` and the losses; in
    training it also updates the codebook (EMA mode), restarts dead codes, and on its very first call
    initialises the codebook by k-means on ``z``.
    """

    def __init__(self, size: int, dim: int, beta: float, update: str = "ema", decay: float = 0.99,
                 kmeans_init: bool = True, kmeans_iters: int = 10, dead_threshold: float = 0.1,
                 eps: float = 1e-5):
        super().__init__()
        self.size, self.dim, self.beta, self.update, self.decay = size, dim, beta, update, decay
        self.kmeans_iters = kmeans_iters if kmeans_init else 0
        self.dead_threshold, self.eps = dead_threshold, eps
        init = torch.randn(size, dim) / dim**0.5
        if update == "ema":
            self.register_buffer("codebook", init)
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("ema_count", torch.ones(size))  # vectors per step, moving average
        self.register_buffer("ema_sum", init.clone())
        self.register_buffer("initialized", torch.tensor(False))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(...)`` -> vectors ``(..., D)``."""
        return F.embedding(codes, self.codebook)

    def forward(self, z: torch.Tensor) -> Quantized:
        with torch.autocast(z.device.type, enabled=False):  # distances and codebook stay float32
            return self._forward(z.float())

    def _forward(self, z: torch.Tensor) -> Quantized:
        if self.training and not bool(self.initialized):
            self._initialize(z.detach())
        codes = nearest(z.detach(), self.codebook.detach())
        counts = torch.bincount(codes, minlength=self.size).float()
        q = self.lookup(codes)  # the chosen codes, before this step's update moves them
        if self.training:
            self._update_statistics(z.detach(), codes, counts)
        commit = self.beta * F.mse_loss(z, q.detach())
        codebook_loss = F.mse_loss(q, z.detach()) if self.update == "loss" else z.new_zeros(())
        z_q = z + (q - z).detach()
        if self.training:  # in training every rank runs this step, so the batch statistic can be global
            distributed.all_reduce_sum(counts)
        p = counts / counts.sum().clamp_min(1)
        perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())
        usage = (self.ema_count >= self._dead_level()).float().mean()
        return Quantized(z_q, codes[:, None], commit, codebook_loss, perplexity[None], usage[None])

    def _dead_level(self, n: float | None = None) -> float:
        """EMA count under which a code counts as dead: ``dead_threshold`` x a uniform code's share."""
        n = float(self.ema_count.sum()) if n is None else n
        return self.dead_threshold * n / self.size

    @torch.no_grad()
    def _initialize(self, z: torch.Tensor) -> None:
        """First training call: k-means codebook (if enabled) and statistics at the batch's scale."""
        n = float(distributed.all_reduce_sum(torch.tensor(float(z.shape[0]), device=z.device)))
        self.ema_count.fill_(n / self.size)
        if self.kmeans_iters > 0:
            reps = -(-self.size // z.shape[0])
            if reps > 1:  # too few vectors for K clusters: repeat them, jittered
                z = z.repeat(reps, 1) + 1e-3 * z.std() * torch.randn(z.shape[0] * reps, z.shape[1], device=z.device)
            centroids, counts = kmeans(z, self.size, self.kmeans_iters)
            self.codebook.data.copy_(centroids)
            # Codes k-means left (nearly) empty start with a tiny count: the dead-code restart soon
            # replaces them, and until then their EMA mean stays at the centroid.
            self.ema_count.copy_((counts / reps).clamp_min(1e-2 * n / self.size))
        self.ema_sum.copy_(self.codebook.detach() * self.ema_count[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_statistics(self, z: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        counts = distributed.all_reduce_sum(counts.clone())
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.update == "ema":
            sums = distributed.all_reduce_sum(torch.zeros_like(self.ema_sum).index_add_(0, codes, z))
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.size * self.eps) * n  # Laplace
            self.codebook.copy_(self.ema_sum / smoothed[:, None])
        self._restart_dead(z, float(counts.sum()))

    @torch.no_grad()
    def _restart_dead(self, z: torch.Tensor, n: float) -> None:
        dead = self.ema_count < self._dead_level(n)
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        pick = torch.randint(0, z.shape[0], (n_dead,), device=z.device)
        fresh = distributed.broadcast(z[pick].clone())
        self.codebook.data[dead] = fresh
        self.ema_count[dead] = n / self.size
        self.ema_sum[dead] = fresh * (n / self.size)


class ResidualQuantizer(nn.Module):
    """``n_q`` codebooks, each quantizing what the previous ones left: ``z ~ sum_i e^(i)_{k_i}``.

    ``forward(z (N, D), n_q=None)`` uses the first ``n_q`` codebooks (all by default).
    """

    def __init__(self, n_q: int, **codebook_args):
        super().__init__()
        self.levels = nn.ModuleList(VectorQuantizer(**codebook_args) for _ in range(n_q))

    @property
    def n_q(self) -> int:
        return len(self.levels)

    @property
    def sizes(self) -> list[int]:
        return [q.size for q in self.levels]

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> Quantized:
        z = z.float()
        residual, total, outs = z, 0.0, []
        for q in self.levels[: n_q or self.n_q]:
            out = q(residual)
            total = total + out.z_q
            residual = residual - out.z_q.detach()
            outs.append(out)
        z_q = z + (total - z).detach() if len(outs) > 1 else outs[0].z_q
        return Quantized(
            z_q,
            torch.cat([o.codes for o in outs], dim=1),
            sum(o.commit_loss for o in outs),
            sum(o.codebook_loss for o in outs),
            torch.cat([o.perplexity for o in outs]),
            torch.cat([o.usage for o in outs]),
        )

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(..., n)`` with ``n <= n_q`` -> summed vectors ``(..., D)``."""
        return sum(self.levels[i].lookup(codes[..., i]) for i in range(codes.shape[-1]))


def quantizer_from_config(cfg, n_q: int) -> ResidualQuantizer:
    """A residual quantizer of ``n_q`` codebooks with the settings of a :class:`vqtok.config.ModelConfig`."""
    return ResidualQuantizer(
        n_q, size=cfg.codebook_size, dim=cfg.latent_dim, beta=cfg.beta, update=cfg.codebook_update,
        decay=cfg.ema_decay, kmeans_init=cfg.kmeans_init, kmeans_iters=cfg.kmeans_iters,
        dead_threshold=cfg.dead_code_threshold,
    )
