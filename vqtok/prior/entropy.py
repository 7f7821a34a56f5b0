"""The prior as an entropy model: bits per code on held-out codes, beside two simpler code models.

- ``uniform``: every code of a codebook of ``K`` entries costs ``log2 K`` bits (the raw bitrate);
- ``unigram``: codes drawn independently with the frequencies seen in the training codes (add-one
  smoothing), which is what an entropy coder without context reaches;
- ``prior``: the learned autoregressive prior's ``-log2 p(code | codes before it)``, which an
  arithmetic coder driven by the prior reaches within a few bits per file.

Bitrates follow from the codes per second (audio) or per image and the bits per code of each level.
"""

from __future__ import annotations

import math

import torch

from ..info import rate_unit
from ..models.base import LatentSpec
from .data import CodeSet
from .model import Prior

LN2 = math.log(2.0)


def uniform_bits(specs: dict[str, LatentSpec]) -> dict[str, float]:
    """Bits per code of each latent under the uniform code model (mean over its codebooks)."""
    return {name: sum(math.log2(k) for k in s.codebook_sizes[: s.depth]) / s.depth for name, s in specs.items()}


def unigram_bits(train: CodeSet, test: CodeSet, specs: dict[str, LatentSpec]) -> dict[str, float]:
    """Bits per code of ``test`` under the code frequencies of ``train`` (add-one smoothed)."""
    out = {}
    for name, s in specs.items():
        sizes = s.codebook_sizes[: s.depth]
        log_p = [torch.log2((c + 1.0) / (c.sum() + len(c))) for c in train.counts(name, sizes)]
        total, count = 0.0, 0
        for item in test.items:
            for q, lp in enumerate(log_p):
                total -= float(lp[item[name][q].reshape(-1)].sum())
                count += item[name][q].numel()
        out[name] = total / max(count, 1)
    return out


@torch.no_grad()
def prior_bits(
    prior: Prior,
    test: CodeSet,
    device: torch.device,
    hops: dict[str, int],
    window: int,
    batch_size: int = 8,
    use_labels: bool = True,
) -> dict[str, float]:
    """Bits per code of ``test`` under ``prior`` (mean over all codes of each level), each example in tiles
    of ``window`` positions (:meth:`CodeSet.batches`); with ``use_labels`` False a class-conditional prior
    that learned "no label" is measured as it codes examples of unknown class."""
    was_training = prior.training
    prior.eval()
    totals = {name: 0.0 for name in prior.order}
    counts = {name: 0 for name in prior.order}
    for batch, labels in test.batches(batch_size, hops, window):
        codes = {k: c.to(device) for k, (c, _) in batch.items()}
        nll = prior.nll(codes, labels.to(device) if prior.conditional and use_labels else None)
        for name in prior.order:
            mask = batch[name][1].to(device)[:, None].expand_as(nll[name])
            totals[name] += float(nll[name][mask].sum()) / LN2
            counts[name] += int(mask.sum())
    prior.train(was_training)
    return {name: totals[name] / max(counts[name], 1) for name in prior.order}


def mean_bits(bits: dict[str, float], test: CodeSet) -> float:
    """Bits per code over all levels of ``test``, each code counting alike."""
    counts = {name: sum(item[name].numel() for item in test.items) for name in bits}
    return sum(bits[name] * counts[name] for name in bits) / max(1, sum(counts.values()))


def entropy_report(
    bits: dict[str, dict[str, float]], specs: dict[str, LatentSpec], rates: dict[str, dict], held_out: str
) -> dict:
    """``bits``: ``{"prior"|"prior_no_label"|"unigram"|"uniform": {level: bits per code}}`` (``prior_no_label``:
    a class-conditional prior given no labels, where it learned that); ``rates``: what
    :func:`vqtok.info.latent_rates` gives -> bits per code and bitrates under each code model."""
    unit = rate_unit(rates)
    report = {"held_out": held_out, "bits_per_code": bits, "levels": list(bits["prior"])}
    if unit is not None:
        unit_key, report["unit"] = unit
        codes = {name: rates[name][unit_key] * specs[name].depth for name in specs}
        report["codes_per_unit"] = codes
        report["bitrate"] = {model: sum(codes[name] * b[name] for name in specs) for model, b in bits.items()}
    return report
