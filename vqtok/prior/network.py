"""``CodePrior``: an autoregressive model of one grid of codes, ``p(c) = prod_i p(c_i | c_<i, cond)``.

Codes ``(B, n_q, *G)``: ``n_q`` codebooks (residual VQ) at each position of a 2-D map ``(H, W)`` or a
1-D sequence ``(T,)``, taken in raster order. A position's input is the sum of one embedding per
codebook. A stack of gated causal layers (:mod:`vqtok.prior.layers`: PixelCNN vertical + horizontal
stacks for 2-D, dilated causal convolutions for 1-D) turns the codes before each position into a
context vector; the :class:`CodeHead` predicts the position's codebooks one after another from it:
codebook ``q`` from the context plus the embeddings of codebooks ``0..q-1`` at that position (the
depth order of RQ-Transformer, here with a small MLP). So ``p(c_i) = prod_q p(c_i,q | c_<i, c_i,<q)``.

Sampling streams: :meth:`CodePrior.sample` keeps every layer's inputs in buffers and computes, per
position, only that position's outputs (per row, the vertical stack once for the whole row), instead
of re-running the network over the whole map (:meth:`CodePrior.sample_naive`, kept as the reference).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from .layers import GatedLayer1d, GatedLayer2d

DILATION_CYCLE = 10  # 1-D: dilations 1, 2, 4, .., 512, then again


class Picker(Protocol):
    """What picks the code at each position as :meth:`CodePrior.sample` streams: a :class:`Draw` samples;
    the entropy coder (:mod:`vqtok.prior.coding`) takes known codes or decodes them."""

    n: int  # rows, each an independent grid

    def pick(self, logits: torch.Tensor, q: int, index: tuple) -> torch.Tensor:
        """``logits`` ``(n, K)`` of codebook ``q`` at grid position ``index`` -> codes ``(n,)``."""


@dataclass
class Draw:
    """How codes are picked from logits: ``temperature`` (0: the most likely), ``top_k`` (0: all) and
    one uniform number per code, drawn up front, so that every sampler picks the same codes."""

    temperature: float
    top_k: int
    uniforms: torch.Tensor  # (n, n_q, *G) in [0, 1)

    @classmethod
    def seeded(
        cls, n: int, n_q: int, grid: list[int], temperature: float, top_k: int, generator: torch.Generator | None
    ) -> Draw:
        return cls(temperature, top_k, torch.rand((n, n_q, *grid), generator=generator))

    @property
    def n(self) -> int:
        return self.uniforms.shape[0]

    def pick(self, logits: torch.Tensor, q: int, index: tuple) -> torch.Tensor:
        """``logits`` ``(n, K)`` of codebook ``q`` at grid position ``index`` -> codes ``(n,)``."""
        logits = logits.float()
        if self.temperature == 0:
            return logits.argmax(-1)
        logits = logits / self.temperature
        if 0 < self.top_k < logits.shape[-1]:
            kth = logits.topk(self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        cdf = logits.softmax(-1).cumsum(-1)
        u = self.uniforms[(slice(None), q, *index)].to(cdf.device) * cdf[:, -1]
        return (cdf < u[:, None]).sum(-1).clamp_max(logits.shape[-1] - 1)


class CodeEmbedding(nn.Module):
    """Codes ``(B, n_q, *S)`` -> ``(B, C, *S)``: the sum of one learned embedding per codebook."""

    def __init__(self, codebook_sizes: list[int], channels: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(k, channels) for k in codebook_sizes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = sum(table(codes[:, q]) for q, table in enumerate(self.tables))
        return x.movedim(-1, 1)


class CodeHead(nn.Module):
    """Logits of each codebook at a position from its context ``(.., C)``, codebook by codebook."""

    def __init__(self, channels: int, codebook_sizes: list[int]):
        super().__init__()
        c = channels
        self.depth = nn.ModuleList(nn.Embedding(k, c) for k in codebook_sizes[:-1])
        self.out = nn.ModuleList(
            nn.Sequential(nn.ELU(), nn.Linear(c, c), nn.ELU(), nn.Linear(c, k)) for k in codebook_sizes
        )

    def forward(self, context: torch.Tensor, codes: torch.Tensor) -> list[torch.Tensor]:
        """``context`` ``(B, C, *G)``, ``codes`` ``(B, n_q, *G)`` -> per codebook ``(B, K_q, *G)``."""
        f = context.movedim(1, -1)
        logits = []
        for q, mlp in enumerate(self.out):
            logits.append(mlp(f).movedim(-1, 1))
            if q < len(self.depth):
                f = f + self.depth[q](codes[:, q])
        return logits

    def sample(self, context: torch.Tensor, draw: Picker, index: tuple) -> torch.Tensor:
        """``context`` ``(n, C)`` at grid position ``index`` -> codes ``(n, n_q)``."""
        f, picked = context, []
        for q, mlp in enumerate(self.out):
            picked.append(draw.pick(mlp(f), q, index))
            if q < len(self.depth):
                f = f + self.depth[q](picked[-1])
        return torch.stack(picked, 1)


class CodePrior(nn.Module):
    """The prior of one code grid. ``cond_channels`` > 0: it takes a condition map ``(B, E, *G)``
    (or ``(B, E, 1, ..)``, broadcast) added inside every gate."""

    def __init__(
        self, dims: int, codebook_sizes: list[int], width: int, layers: int, kernel: int, cond_channels: int = 0
    ):
        super().__init__()
        self.dims, self.codebook_sizes, self.kernel = dims, list(codebook_sizes), kernel
        self.embed = CodeEmbedding(codebook_sizes, width)
        if dims == 2:
            self.layers = nn.ModuleList(GatedLayer2d(width, kernel, cond_channels) for _ in range(layers))
        elif dims == 1:
            self.layers = nn.ModuleList(
                GatedLayer1d(width, kernel, 2 ** (i % DILATION_CYCLE), cond_channels) for i in range(layers)
            )
        else:
            raise ValueError(f"a code prior works on 1-D or 2-D grids, not {dims}-D")
        self.head = CodeHead(width, codebook_sizes)

    @property
    def n_q(self) -> int:
        return len(self.codebook_sizes)

    def receptive_field(self) -> int:
        """How many positions back it sees: rows above and columns to each side (2-D), steps (1-D)."""
        if self.dims == 2:
            return len(self.layers) * (self.kernel // 2) + 1
        return sum(layer.reach for layer in self.layers) + 1

    # ---- the whole grid at once (training, likelihood) ----
    def context(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``codes`` ``(B, n_q, *G)`` -> the context of every position ``(B, C, *G)``, which depends only
        on the codes before it."""
        x = self.embed(codes)
        h = F.pad(x, (1, 0))[..., :-1]  # shifted one position right: mask A
        if self.dims == 2:
            v = F.pad(x, (0, 0, 1, 0))[:, :, :-1]  # shifted one row down
            for layer in self.layers:
                v, h = layer(v, h, cond)
        else:
            for layer in self.layers:
                h = layer(h, cond)
        return h

    def logits(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``(B, n_q, *G)`` -> per codebook ``(B, K_q, *G)``."""
        return self.head(self.context(codes, cond), codes)

    def nll(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``-log p`` of each code in nats, ``(B, n_q, *G)``."""
        logits = self.logits(codes, cond)
        return torch.stack(
            [F.cross_entropy(lg.float(), codes[:, q], reduction="none") for q, lg in enumerate(logits)], 1
        )

    # ---- sampling ----
    @torch.no_grad()
    def sample_naive(self, grid: list[int], draw: Picker, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The reference sampler: the whole network over the whole grid for every code. -> ``(n, n_q, *G)``."""
        n = draw.n
        codes = torch.zeros((n, self.n_q, *grid), dtype=torch.long, device=self._device())
        for index in itertools.product(*map(range, grid)):
            for q in range(self.n_q):
                logits = self.logits(codes, cond)[q][(slice(None), slice(None), *index)]
                codes[(slice(None), q, *index)] = draw.pick(logits, q, index)
        return codes

    @torch.no_grad()
    def sample(self, grid: list[int], draw: Picker, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``(n, n_q, *G)``, the same as :meth:`sample_naive` draws, computing each layer's output
        only where it is new."""
        if self.dims == 2:
            return self._sample_2d(*grid, draw, cond)
        return self._sample_1d(grid[0], draw, cond)

    def _device(self) -> torch.device:
        return self.head.out[0][1].weight.device

    def _sample_1d(self, length: int, draw: Picker, cond) -> torch.Tensor:
        n, c, dev = draw.n, self.head.out[0][1].in_features, self._device()
        codes = torch.zeros((n, self.n_q, length), dtype=torch.long, device=dev)
        # inputs[l][:, :, reach_l + t]: layer l's input at time t (zeros before 0)
        inputs = [torch.zeros(n, c, layer.reach + length, device=dev) for layer in self.layers]
        biases = [layer.cond(cond) for layer in self.layers]  # (n, 2C, T or 1) or 0
        for t in range(length):
            for i, layer in enumerate(self.layers):
                window = inputs[i][:, :, t : t + layer.reach + 1 : layer.dilation]
                bias = biases[i] if isinstance(biases[i], float) else biases[i][..., min(t, biases[i].shape[-1] - 1)]
                out = layer.step(window, inputs[i][:, :, t + layer.reach], bias)
                if i + 1 < len(self.layers):
                    inputs[i + 1][:, :, self.layers[i + 1].reach + t] = out
            codes[:, :, t] = self.head.sample(out, draw, (t,))
            if t + 1 < length:
                inputs[0][:, :, self.layers[0].reach + t + 1] = self.embed(codes[:, :, t])
        return codes

    def _sample_2d(self, height: int, width: int, draw: Picker, cond) -> torch.Tensor:
        n, c, dev = draw.n, self.head.out[0][1].in_features, self._device()
        r = self.kernel // 2
        codes = torch.zeros((n, self.n_q, height, width), dtype=torch.long, device=dev)
        # vertical[k][:, :, r + i, r + j]: layer k's vertical input at (i, j), zero-padded around
        vertical = [torch.zeros(n, c, r + height, width + 2 * r, device=dev) for _ in self.layers]
        for i in range(height):
            if i > 0:  # the first layer's vertical input at row i is the embedded row i - 1
                vertical[0][:, :, r + i, r : r + width] = self.embed(codes[:, :, i - 1])
            cond_row = cond if cond is None or cond.shape[2] == 1 else cond[:, :, i : i + 1]
            row_bias = []
            for k, layer in enumerate(self.layers):
                v_out, bias = layer.vertical_row(vertical[k][:, :, i : i + r + 1], cond_row)
                if k + 1 < len(self.layers):
                    vertical[k + 1][:, :, r + i, r : r + width] = v_out[:, :, 0]
                row_bias.append(bias)
            # horizontal[k][:, :, r + j]: layer k's horizontal input at (i, j), zero-padded on the left
            horizontal = [torch.zeros(n, c, r + width, device=dev) for _ in self.layers]
            for j in range(width):
                for k, layer in enumerate(self.layers):
                    bias = row_bias[k][:, :, min(j, row_bias[k].shape[-1] - 1)]
                    out = layer.horizontal_step(horizontal[k][:, :, j : j + r + 1], horizontal[k][:, :, r + j], bias)
                    if k + 1 < len(self.layers):
                        horizontal[k + 1][:, :, r + j] = out
                codes[:, :, i, j] = self.head.sample(out, draw, (i, j))
                if j + 1 < width:
                    horizontal[0][:, :, r + j + 1] = self.embed(codes[:, :, i, j])
        return codes
