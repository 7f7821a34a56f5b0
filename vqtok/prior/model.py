"""``Prior``: the learned prior over all of a model's code grids, ``p(top) p(bottom | top)``.

One :class:`~vqtok.prior.network.CodePrior` per discrete latent array of the family, coarsest first
(VQ-VAE: ``codes``; VQ-VAE-2: ``top`` then ``bottom``). Each level's gates take a condition map
(:class:`LevelCondition`): the class label's embedding when the prior is class-conditional, and for
every level below the first the codes of the level above, embedded, passed through two convolutions
(they are known in full, so they need no mask) and repeated up to this level's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UsageError
from ..models.base import LatentSpec, TrainStep
from .network import CodeEmbedding, CodePrior, Draw, Picker

CodeBatch = dict[str, tuple[torch.Tensor, torch.Tensor]]  # name -> (codes (B, n_q, *G), mask (B, *G))


@dataclass
class PriorOptions:
    """The prior's architecture and data: the ``[prior]`` table of a prior recipe."""

    width: int = 64  # channels of every layer
    layers: int = 10  # gated layers per level
    kernel: int = 3  # 2-D: k x k (vertical) and 1 x k/2+1 (horizontal); 1-D: k taps, dilations 1, 2, 4, ..
    window: int = 512  # longest training crop along each axis, in positions of the finest level
    valid_share: float = 0.1  # share of the files held out to measure bits per code (without --valid)
    labels: str = "auto"  # class-conditional: "auto" (when every file lies in a class folder), "yes", "no"
    eval_every: int = 250  # steps between held-out measurements; the best weights are kept (0: keep the last)
    label_dropout: float = 0.0  # class-conditional: share of training crops shown without their label, so
    #                             the prior also models codes of no known class (unseen voices) and samples them
    balance: str = "files"  # training crops from every file alike ("files") or from every label alike ("labels")

    def __post_init__(self):
        checks = [
            (self.width >= 1 and self.layers >= 1, "prior.width and prior.layers must be at least 1"),
            (self.kernel >= 2, "prior.kernel must be at least 2"),
            (self.window >= 1, "prior.window must be at least 1"),
            (0 <= self.valid_share < 1, "prior.valid_share must lie in [0, 1)"),
            (self.eval_every >= 0, "prior.eval_every must be at least 0"),
            (self.labels in ("auto", "yes", "no"), "prior.labels must be auto, yes or no"),
            (0 <= self.label_dropout < 1, "prior.label_dropout must lie in [0, 1)"),
            (self.balance in ("files", "labels"), "prior.balance must be files or labels"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


def level_order(specs: dict[str, LatentSpec]) -> list[str]:
    """Latent names from the coarsest grid to the finest (the order codes are sampled in)."""
    return sorted(specs, key=lambda name: -specs[name].hop)


class LevelCondition(nn.Module):
    """The condition map of one level: ``(B, E, 1, ..)`` from a label, ``(B, E, *G)`` from the codes of
    the level above (grid ``G / factor``), their sum when both, None when neither. ``label_rows`` is the
    number of label embeddings: the classes, plus one for "no class" when the prior learned it."""

    def __init__(self, dims: int, width: int, label_rows: int, above: LatentSpec | None, factor: int):
        super().__init__()
        self.dims, self.factor = dims, factor
        self.channels = width if label_rows or above is not None else 0  # E; 0: no condition
        self.label = nn.Embedding(label_rows, width) if label_rows else None
        self.above = None
        if above is not None:
            conv = nn.Conv1d if dims == 1 else nn.Conv2d
            self.above = nn.ModuleList(
                [
                    CodeEmbedding(above.codebook_sizes, width),
                    nn.Sequential(conv(width, width, 3, padding=1), nn.ELU(), conv(width, width, 3, padding=1)),
                ]
            )

    def forward(self, labels: torch.Tensor | None, above: torch.Tensor | None) -> torch.Tensor | None:
        cond = None
        if self.label is not None:
            cond = self.label(labels).reshape(labels.shape[0], -1, *[1] * self.dims)
        if self.above is not None:
            embed, convs = self.above
            c = convs(embed(above))
            for axis in range(2, 2 + self.dims):
                c = c.repeat_interleave(self.factor, dim=axis)
            cond = c if cond is None else cond + c
        return cond


class Prior(nn.Module):
    """Priors of all the code grids of a family with latents ``specs`` (all discrete). A class-conditional
    prior trained with ``label_dropout`` has one more label, :attr:`no_label` (index ``n_labels``), for
    codes of no known class: it is used wherever no labels are given."""

    def __init__(self, dims: int, specs: dict[str, LatentSpec], options: PriorOptions, n_labels: int = 0):
        super().__init__()
        self.dims, self.specs, self.options, self.n_labels = dims, dict(specs), options, n_labels
        self.knows_no_label = n_labels > 0 and options.label_dropout > 0
        label_rows = n_labels + self.knows_no_label
        self.order = level_order(specs)
        self.levels = nn.ModuleDict()
        self.conditions = nn.ModuleDict()
        for i, name in enumerate(self.order):
            spec = specs[name]
            above = specs[self.order[i - 1]] if i > 0 else None
            factor = above.hop // spec.hop if above is not None else 1
            cond = LevelCondition(dims, options.width, label_rows, above, factor)
            self.conditions[name] = cond
            self.levels[name] = CodePrior(
                dims,
                list(spec.codebook_sizes[: spec.depth]),
                options.width,
                options.layers,
                options.kernel,
                cond.channels,
            )

    @property
    def conditional(self) -> bool:
        return self.n_labels > 0

    @property
    def no_label(self) -> int:
        """The label index meaning "no known class" (valid when :attr:`knows_no_label`)."""
        return self.n_labels

    def _labels(self, labels: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor | None:
        """The labels ``(n,)`` the conditions take: None for an unconditional prior, ``no_label`` where a
        conditional one is given none (an error when it never learned that)."""
        if not self.conditional:
            return None
        if labels is not None:
            return labels
        if not self.knows_no_label:
            raise UsageError(
                "this class-conditional prior needs a label for every example (train it with "
                "prior.label_dropout > 0 to also model examples of no known class)"
            )
        return torch.full((n,), self.no_label, dtype=torch.long, device=device)

    def _condition(self, name: str, codes: dict[str, torch.Tensor], labels) -> torch.Tensor | None:
        i = self.order.index(name)
        above = codes[self.order[i - 1]] if i > 0 else None
        return self.conditions[name](labels, above)

    def nll(self, codes: dict[str, torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Codes ``{name: (B, n_q, *G)}`` -> ``-log p`` of each code in nats ``{name: (B, n_q, *G)}``."""
        first = codes[self.order[0]]
        labels = self._labels(labels, first.shape[0], first.device)
        return {name: self.levels[name].nll(codes[name], self._condition(name, codes, labels)) for name in self.order}

    def nats_per_example(self, codes: dict[str, torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """-log p of each example's codes ``{name: (B, n_q, *G)}``, every level: ``(B,)`` nats."""
        return sum(v.flatten(1).sum(1) for v in self.nll(codes, labels).values())

    def nats_per_label(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`nats_per_example` under each label in turn, "no label" last where the prior learned it:
        ``(n_labels (+ 1), B)`` nats."""
        b = codes[self.order[0]].shape[0]
        device = codes[self.order[0]].device
        labels = range(self.n_labels + self.knows_no_label)
        return torch.stack([self.nats_per_example(codes, torch.full((b,), j, device=device)) for j in labels])

    def forward(self, batch: CodeBatch, labels: torch.Tensor | None = None, *, step: int = 0) -> TrainStep:
        """Mean nats per code over the masked-in codes of every level (the training loss)."""
        nll = self.nll({name: codes for name, (codes, _) in batch.items()}, labels)
        total, count, metrics = 0.0, 0, {}
        for name in self.order:
            mask = batch[name][1][:, None].expand_as(nll[name])
            level_total, level_count = nll[name][mask].sum(), mask.sum()
            metrics[f"bits_{name}"] = (level_total / level_count.clamp_min(1) / torch.log(torch.tensor(2.0))).detach()
            total, count = total + level_total, count + level_count
        loss = total / count.clamp_min(1)
        metrics["bits"] = loss.detach() / torch.log(torch.tensor(2.0))
        return TrainStep(None, loss, metrics)

    def level_sizes(self, grid: list[int]) -> dict[str, list[int]]:
        """The grid of every level when the coarsest level's is ``grid``."""
        coarse = self.specs[self.order[0]].hop
        return {name: [g * (coarse // self.specs[name].hop) for g in grid] for name in self.order}

    @torch.no_grad()
    def generate(
        self,
        n: int,
        sizes: dict[str, list[int]],
        pickers: dict[str, Picker],
        labels: torch.Tensor | None = None,
        naive: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Codes ``{name: (n, n_q, *sizes[name])}`` level by level, coarsest first, streaming: at each
        position ``pickers[name]`` chooses the codes from the prior's logits (it samples them, or an entropy
        coder takes known codes or decodes them). ``naive`` uses the reference sampler (the same codes,
        much slower)."""
        codes: dict[str, torch.Tensor] = {}
        labels = self._labels(labels, n, next(self.parameters()).device)
        for name in self.order:
            level = self.levels[name]
            cond = self._condition(name, codes, labels)
            codes[name] = (level.sample_naive if naive else level.sample)(sizes[name], pickers[name], cond)
        return codes

    def sample(
        self,
        n: int,
        grid: list[int],
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        generator: torch.Generator | None = None,
        naive: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Codes ``{name: (n, n_q, *G_name)}`` drawn level by level; ``grid`` is the coarsest level's."""
        sizes = self.level_sizes(grid)
        draws = {
            name: Draw.seeded(n, self.levels[name].n_q, sizes[name], temperature, top_k, generator)
            for name in self.order
        }
        return self.generate(n, sizes, draws, labels, naive)
