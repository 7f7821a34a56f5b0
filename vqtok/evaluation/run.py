"""``vqtok eval``: measure a model on a folder of files, one pass over the data.

Every file is encoded and decoded as the model sees it (:meth:`Modality.evaluation_example`; inputs
padded to a multiple of the hop, outputs cropped back). Measured, where they fit the model:

- reconstruction quality, the modality's metrics (:meth:`Modality.quality`), mean over the files;
- VAE / CVAE: the ELBO and the importance-sampled NLL from the same ``k`` posterior samples per file
  (:func:`vqtok.metrics.importance_sampled_likelihood`), in nats per example and bits per dimension,
  with the standard error of the mean over the files, and the NLL from the first k/10, k/100, ... of
  the same samples (how far the estimate still moves with k);
- discrete families: the bound ``-log p(x) <= -log p(x|z_q) - log p(z_q)``. The first term is a
  Gaussian likelihood around the reconstruction whose sigma is the RMS error over the whole set (its
  maximum-likelihood value, reported); the second the prior's NLL of the codes, or ``log K`` per code
  without a prior (or with fewer residual codebooks than the prior models). A class-conditional prior is
  given each file's class folder, or, for files outside the classes, the mixture over its classes with equal weights;
- per codebook: perplexity and the share of codes used over all the files' codes;
- the raw bitrate (``log2 K`` per code) and, with a prior, the entropy-coded bitrate (its bits per code
  on these files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..codec import Tokenizer, crop_batch
from ..errors import UsageError
from ..info import latent_rates, rate_unit
from ..metrics import code_counts, importance_sampled_likelihood, perplexity, used_share
from ..train.data import TrainingSet, evaluation_batches

LN2 = math.log(2.0)
IW_BUDGET = 2**21  # input elements decoded at once while importance sampling (k samples x batch)
SHOWN = 8  # originals and reconstructions kept for --plots


def sample_ladder(k: int) -> list[int]:
    """``k`` and the sample counts whose NLL the report shows beside it: k/10, k/100, ... down to 1."""
    return [k // 10**i for i in range(len(str(k))) if k // 10**i >= 1]


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """The mean of per-file values and its standard error (0 for a single file)."""
    v = torch.tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std() / math.sqrt(len(v))) if len(v) > 1 else 0.0


@dataclass
class EvalOptions:
    iw_samples: int = 1000  # VAE/CVAE: posterior samples per file for the NLL
    seed: int = 0  # importance samples and the binarization of data for binarized-Bernoulli VAEs
    n_q: int | None = None  # residual VQ: evaluate with the first n_q codebooks
    batch_size: int = 64  # files of equal shape decoded together (images)


@dataclass
class Totals:
    """Sums over the files, turned into the report at the end."""

    files: int = 0
    dims: int = 0  # input elements over all files (after padding to the hop)
    quality: dict[str, float] = field(default_factory=dict)
    elbo: float = 0.0
    nll: dict[int, list[float]] = field(default_factory=dict)  # {k: per file, -log p(x) from k samples}
    sse: list[float] = field(default_factory=list)  # per file: squared error of the reconstruction
    sizes: list[int] = field(default_factory=list)  # per file: input elements
    code_nats: list[float] = field(default_factory=list)  # per file: -log p(codes)
    codes: int = 0  # codes over all files and latents
    counts: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # per latent: histogram per codebook
    shown: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


class Evaluation:
    def __init__(self, tok: Tokenizer, data: Path, options: EvalOptions):
        if options.iw_samples < 1:
            raise UsageError("--iw-samples must be at least 1")
        self.tok, self.data, self.options = tok, Path(data), options
        self.n_q = tok.check_n_q(options.n_q)
        self.set = TrainingSet(self.data, tok.modality, tok.config.options)
        self.classes = self.set.class_names()
        self.model_labels = self._model_labels()
        self.specs = tok.specs
        self.discrete = all(s.discrete for s in self.specs.values())
        self.likelihood = tok.model.has_likelihood
        self.binarize = tok.model.fits_binarized_data
        # The prior models every codebook of a residual quantizer: with fewer, codes cost log K each.
        full = self.n_q is None or all(self.n_q >= s.depth for s in self.specs.values())
        self.prior = tok.prior if full else None
        self.totals = Totals()

    # ---- labels ----
    def _model_labels(self) -> torch.Tensor | None:
        """A conditional model's class index of every file ``(N,)``; the data must lie in its classes."""
        if not self.tok.model.conditional:
            return None
        names = self.tok.label_names
        for path, name in zip(self.set.files, self.classes):
            if name not in names:
                raise UsageError(
                    f"{path}: a {self.tok.family} model needs each file in a sub-folder named after "
                    f"one of its classes ({', '.join(names)})"
                )
        return torch.tensor([names.index(n) for n in self.classes])

    # ---- the pass over the data ----
    def run(self, console: Console) -> dict:
        g = torch.Generator().manual_seed(self.options.seed)
        torch.manual_seed(self.options.seed)
        long_inputs = self.tok.modality.long_inputs == "stream"  # long recordings: one at a time
        batch = 1 if long_inputs else self.options.batch_size
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"eval {len(self.set)} file(s)", total=len(self.set))
            for indices, x in evaluation_batches(self.set.files, self.tok.modality, self.tok.config.options, batch):
                if self.binarize:
                    x = 2 * torch.bernoulli((x + 1) / 2, generator=g) - 1
                labels = self.model_labels[indices] if self.model_labels is not None else None
                self._measure(x, labels, [self.classes[i] for i in indices])
                progress.advance(task, len(indices))
        return self.report()

    @torch.no_grad()
    def _measure(self, x: torch.Tensor, labels: torch.Tensor | None, classes: list[str | None]) -> None:
        tok, t = self.tok, self.totals
        size = x.shape[2:]
        padded = tok.pad_to_hop(x.to(tok.device))
        dev_labels = labels.to(tok.device) if labels is not None else None
        latents = tok.model.encode(padded, dev_labels, self.n_q)
        x_hat = tok.model.decode(latents, dev_labels).float()
        x_hat = crop_batch(x_hat, size).cpu()
        for name, values in tok.modality.quality(x_hat, x, tok.config.options).items():
            t.quality[name] = t.quality.get(name, 0.0) + float(values.double().sum())
        t.files += len(x)
        t.dims += padded[0].numel() * len(x)
        for i in range(min(len(x), SHOWN - len(t.shown))):
            t.shown.append((x[i], x_hat[i]))
        if self.likelihood:
            self._likelihood(padded, dev_labels)
        if self.discrete:
            self._codes(latents, classes)
            t.sse += (x_hat - x).double().square().flatten(1).sum(1).tolist()
            t.sizes += [x[0].numel()] * len(x)

    def _likelihood(self, x: torch.Tensor, labels: torch.Tensor | None) -> None:
        k = self.options.iw_samples
        chunk = max(1, min(k, IW_BUDGET // (x.shape[0] * x[0].numel())))
        estimate = importance_sampled_likelihood(self.tok.model, x, labels, k, chunk, sample_ladder(k)[1:])
        self.totals.elbo += float(estimate.elbo.double().sum())
        for m, log_p in {k: estimate.log_p, **estimate.log_p_first}.items():
            self.totals.nll.setdefault(m, []).extend((-log_p.double()).tolist())

    def _codes(self, latents: dict[str, torch.Tensor], classes: list[str | None]) -> None:
        t = self.totals
        for name, codes in latents.items():
            counts = code_counts(codes.cpu(), self.specs[name].codebook_sizes)
            t.counts[name] = [a + b for a, b in zip(t.counts[name], counts)] if name in t.counts else counts
            t.codes += codes.numel()
        if self.prior is None:
            per_position = sum(c[0, 0].numel() * sum(math.log(k) for k in self._sizes(n)) for n, c in latents.items())
            t.code_nats += [per_position] * len(classes)
        else:
            t.code_nats += self._prior_nats(latents, classes).tolist()

    def _sizes(self, name: str) -> list[int]:
        """The codebook sizes of latent ``name`` in use (the first ``n_q`` of a residual quantizer)."""
        spec = self.specs[name]
        return spec.codebook_sizes[: self.n_q or spec.depth]

    def _prior_nats(self, latents: dict[str, torch.Tensor], classes: list[str | None]) -> torch.Tensor:
        """-log p(codes) ``(B,)`` under the prior: given each file's class, or under the equal-weight
        mixture over the classes (and "no label", where the prior learned it) when some file has none of
        the prior's classes."""
        prior, names, device = self.prior, self.tok.prior_info.get("label_names") or [], self.tok.device
        latents = {k: v.to(device) for k, v in latents.items()}
        if not prior.conditional:
            return prior.nats_per_example(latents).double().cpu()
        if all(c in names for c in classes):
            labels = torch.tensor([names.index(c) for c in classes], device=device)
            return prior.nats_per_example(latents, labels).double().cpu()
        each = prior.nats_per_label(latents).double().cpu()  # (C, B), "no label" last where learned
        return -(torch.logsumexp(-each, dim=0) - math.log(each.shape[0]))  # (C, B) -> (B,)

    # ---- the report ----
    def report(self) -> dict:
        t, tok = self.totals, self.tok
        out = {
            "model_hash": tok.model_hash,
            "family": tok.family,
            "modality": tok.modality.name,
            "data": str(self.data),
            "files": t.files,
            "input_elements": t.dims,
            "quality": {k: v / max(t.files, 1) for k, v in t.quality.items()},
            "quality_labels": tok.modality.quality_labels(),
        }
        if self.n_q is not None:
            out["n_q"] = self.n_q
        if self.likelihood and t.files:
            k = self.options.iw_samples
            nll = {m: mean_and_stderr(t.nll[m]) for m in sample_ladder(k)}
            out["likelihood"] = {
                "iw_samples": k,
                "elbo_nats": t.elbo / t.files,
                "nll_nats": nll[k][0],
                "nll_stderr_nats": nll[k][1],  # of the mean over these files
                "nll_nats_by_k": {str(m): v[0] for m, v in sorted(nll.items())},  # the first m of the samples
                "elbo_bits_per_dim": -t.elbo / (t.dims * LN2),
                "nll_bits_per_dim": nll[k][0] * t.files / (t.dims * LN2),
                "likelihood": tok.meta["decode"].get("likelihood"),
                "binarized": self.binarize,
            }
        if self.discrete and t.files:
            out["bound"] = self._bound()
            out["codebooks"] = {
                name: [{"size": len(c), "perplexity": perplexity(c), "used": used_share(c)} for c in per_q]
                for name, per_q in t.counts.items()
            }
            out["bitrate"] = self._bitrate()
        return out

    def _bound(self) -> dict:
        t = self.totals
        sse, sizes, code = (torch.tensor(v, dtype=torch.float64) for v in (t.sse, t.sizes, t.code_nats))
        var = float(sse.sum() / sizes.sum()) or 1e-12
        recon = 0.5 * sizes * math.log(2 * math.pi * var) + sse / (2 * var)
        bound = recon + code
        prior = self.prior
        kind = (
            "prior"
            if prior is not None
            else "uniform"
            if not self.tok.has_prior
            else "uniform (the prior models all the codebooks, not the first n_q)"
        )
        if prior is not None and prior.conditional:
            names = self.tok.prior_info.get("label_names") or []
            kind += (
                " (given the class folder)"
                if all(c in names for c in self.classes)
                else " (mixture over its classes and no label)"
                if prior.knows_no_label
                else " (mixture over its classes)"
            )
        return {
            "recon_nats": float(recon.mean()),
            "code_nats": float(code.mean()),
            "nll_bound_nats": float(bound.mean()),
            "bits_per_dim": float(bound.sum() / (sizes.sum() * LN2)),
            "recon_sigma": math.sqrt(var),
            "code_model": kind,
        }

    def _bitrate(self) -> dict:
        """Raw bits (log2 K per code) and, with a prior, its measured bits per code (over every code of
        every latent), per second or per image."""
        rates = latent_rates(self.tok.meta["decode"])
        unit = rate_unit(rates)
        if unit is None:
            return {}
        unit_key = unit[0]
        raw = sum(rates[n][unit_key] * sum(math.log2(k) for k in self._sizes(n)) for n in self.specs)
        out = {"unit": unit[1], "raw": raw}
        if self.prior is not None:
            t = self.totals
            codes_per_unit = sum(rates[n][unit_key] * len(self._sizes(n)) for n in self.specs)
            out["bits_per_code"] = sum(t.code_nats) / LN2 / t.codes
            out["entropy_coded"] = out["bits_per_code"] * codes_per_unit
        return out
