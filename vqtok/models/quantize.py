"""Vector quantization: one codebook (EMA or loss-trained) and a residual stack of them.

Distances use ``||z||^2 - 2 z e^T + ||e||^2`` (one matrix product, in cache-sized blocks of rows), never
an N x K x D tensor. The codebook and its statistics stay float32, also under autocast. Under torchrun
every rank keeps the codebook one process with the global batch would: EMA counts and sums pass through
:func:`vqtok.distributed.all_reduce_sum`, and k-means and dead-code restarts choose among the vectors of
every rank (:func:`vqtok.distributed.gather_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


#: Scores :func:`nearest` computes at once, per device type: a block of ``SEARCH_BLOCK // K`` rows of
#: ``z``. On CPU one block (16 MB) stays in the processor's last-level cache from the matrix product to
#: its argmin; smaller blocks are as fast on an idle machine but slower on a busy one, where every
#: multi-threaded call waits for a core. On a GPU the block only bounds the memory of large batches.
SEARCH_BLOCK = {"cpu": 1 << 22}
SEARCH_BLOCK_OTHER = 1 << 26


@torch.no_grad()
def nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row ``(K, D)`` for each row of ``z`` ``(N, D)`` -> ``(N,)`` int64.

    Ties go to the lowest index, as with ``torch.argmin``. ``||z||^2`` is the same for every code, so the
    argmin needs only the scores ``||e||^2 - 2 z e^T``. They are computed a block of rows at a time into
    one reused buffer and reduced while still in cache: the ``N x K`` matrix is never allocated, and
    each score is written once and read once.
    """
    n, k = z.shape[0], codebook.shape[0]
    block = max(1, SEARCH_BLOCK.get(z.device.type, SEARCH_BLOCK_OTHER) // k)
    scores = z.new_empty(min(block, n), k)
    norms = codebook.pow(2).sum(1)
    codes = torch.empty(n, dtype=torch.long, device=z.device)
    for start in range(0, n, block):
        rows = z[start : start + block]
        block_scores = torch.addmm(norms, rows, codebook.t(), alpha=-2.0, out=scores[: len(rows)])
        _argmin_rows(block_scores, out=codes[start : start + len(rows)])
    return codes


def _argmin_rows(scores: torch.Tensor, out: torch.Tensor) -> None:
    """``scores.argmin(dim=1)`` of ``(B, K)`` scores into ``out`` ``(B,)`` int64 (the first minimum; NaN
    counts as the minimum).

    On CPU through numpy, whose argmin is vectorised and single-threaded: about 15 times faster than
    torch's, which is neither, and without a wait for a second thread on a busy machine.
    """
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        np.argmin(scores.numpy(), axis=1, out=out.numpy())
    else:
        torch.argmin(scores, dim=1, out=out)


def code_sums(z: torch.Tensor, codes: torch.Tensor, histogram: torch.Tensor) -> torch.Tensor:
    """Sum of the rows of ``z`` ``(N, D)`` given to each code -> ``(K, D)``; ``codes`` ``(N,)`` int64 and
    their ``histogram`` ``(K,)`` int64 (``torch.bincount(codes, minlength=K)``).

    The same sums as ``zeros(K, D).index_add_(0, codes, z)``, in the same order (a stable sort, then one
    ``embedding_bag`` per code); but on CPU ``index_add_`` runs a parallel radix sort whose many thread
    barriers cost tens of milliseconds whenever another process holds a core.
    """
    order = torch.sort(codes, stable=True).indices
    offsets = histogram.cumsum(0) - histogram
    return F.embedding_bag(order, z, offsets, mode="sum")


def kmeans(z: torch.Tensor, k: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` centroids ``(k, D)`` of ``z`` ``(N, D)`` and their cluster sizes ``(k,)``."""
    pick = torch.randint(0, z.shape[0], (k,), device=z.device)
    centroids = z[pick].clone()
    counts = torch.zeros(k, device=z.device, dtype=z.dtype)
    for _ in range(iters):
        assign = nearest(z, centroids)
        histogram = torch.bincount(assign, minlength=k)
        sums = code_sums(z, assign, histogram)
        counts = histogram.to(z.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, counts


TRAINING_ONLY = ("ema_sum",)  # quantizer state a training checkpoint keeps and a model file leaves out


class VectorQuantizer(nn.Module):
    """One codebook of ``K`` vectors of dimension ``D``.

    ``forward(z (N, D))`` returns the nearest codes, the straight-through ``z_q`` and the losses; in
    training it also updates the codebook (EMA mode), restarts dead codes, and on its very first call
    initialises the codebook by k-means on ``z``.
    """

    KEEPS_FLOAT32 = True  # `vqtok export` stores network weights narrower, never the codebook

    def __init__(
        self,
        size: int,
        dim: int,
        beta: float,
        update: str = "ema",
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_threshold: float = 0.1,
        eps: float = 1e-5,
    ):
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

    def _smoothed_count(self, count: torch.Tensor) -> torch.Tensor:
        """The EMA counts ``(K,)`` the codebook divides the EMA sums by (Laplace-smoothed)."""
        n = count.sum()
        return (count + self.eps) / (n + self.size * self.eps) * n

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A shipped model file leaves the EMA sums out (TRAINING_ONLY): they follow from the codebook
        # and the counts, as codebook = sums / smoothed counts.
        if (
            prefix + "ema_sum" not in state_dict
            and prefix + "codebook" in state_dict
            and prefix + "ema_count" in state_dict
        ):
            count = state_dict[prefix + "ema_count"]
            state_dict[prefix + "ema_sum"] = state_dict[prefix + "codebook"] * self._smoothed_count(count)[:, None]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, z: torch.Tensor) -> Quantized:
        with torch.autocast(z.device.type, enabled=False):  # distances and codebook stay float32
            return self._forward(z.float())

    def _forward(self, z: torch.Tensor) -> Quantized:
        if self.training and not bool(self.initialized):
            self._initialize(z.detach())
        codes = nearest(z.detach(), self.codebook.detach())
        histogram = torch.bincount(codes, minlength=self.size)
        counts = histogram.float()
        q = self.lookup(codes)  # the chosen codes, before this step's update moves them
        if self.training:
            self._update_statistics(z.detach(), codes, histogram, counts)
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
        """First training call: k-means codebook (if enabled) on the global batch's ``z`` (every rank's,
        each rank computing the same centroids) and statistics at its scale."""
        z = distributed.gather_rows(z)
        n = float(z.shape[0])
        self.ema_count.fill_(n / self.size)
        if self.kmeans_iters > 0:
            reps = -(-self.size // z.shape[0])
            if reps > 1:  # too few vectors for K clusters: repeat them, jittered
                z = z.repeat(reps, 1) + 1e-3 * z.std() * torch.randn(z.shape[0] * reps, z.shape[1], device=z.device)
            centroids, counts = kmeans(z, self.size, self.kmeans_iters)
            self.codebook.data.copy_(distributed.broadcast(centroids))
            # Codes k-means left (nearly) empty start with a tiny count: the dead-code restart soon
            # replaces them, and until then their EMA mean stays at the centroid.
            self.ema_count.copy_((counts / reps).clamp_min(1e-2 * n / self.size))
        self.ema_sum.copy_(self.codebook.detach() * self.ema_count[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_statistics(
        self, z: torch.Tensor, codes: torch.Tensor, histogram: torch.Tensor, counts: torch.Tensor
    ) -> None:
        """EMA step for ``z`` ``(N, D)`` and its ``codes`` ``(N,)``; ``histogram`` ``(K,)`` int64 and
        ``counts`` ``(K,)`` float32 are this rank's code histogram (``counts`` is left unchanged)."""
        counts = distributed.all_reduce_sum(counts.clone())
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.update == "ema":
            sums = distributed.all_reduce_sum(code_sums(z, codes, histogram))
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            self.codebook.copy_(self.ema_sum / self._smoothed_count(self.ema_count)[:, None])
        self._restart_dead(z, float(counts.sum()))

    @torch.no_grad()
    def _restart_dead(self, z: torch.Tensor, n: float) -> None:
        dead = self.ema_count < self._dead_level(n)
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        z = distributed.gather_rows(z)  # chosen from the global batch, as one process would
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

    def code_counts(self) -> list[torch.Tensor]:
        """Per codebook, ``(K,)`` float32: how often each code was picked, a moving average over the last
        training steps (the EMA statistics every codebook keeps, whatever its update rule)."""
        return [q.ema_count.detach().float().cpu().clone() for q in self.levels]

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
        n_q,
        size=cfg.codebook_size,
        dim=cfg.latent_dim,
        beta=cfg.beta,
        update=cfg.codebook_update,
        decay=cfg.ema_decay,
        kmeans_init=cfg.kmeans_init,
        kmeans_iters=cfg.kmeans_iters,
        dead_threshold=cfg.dead_code_threshold,
    )
