"""Speed of vqtok's vector quantizer against the PyPI peer `vector-quantize-pytorch`, and of its
nearest-code search against this machine's float32 matmul throughput.

    python bench/bench_quantizer.py [--device cpu|cuda] [--threads N] [--repeats 21] [--n 16384]

Needs `pip install vector-quantize-pytorch` (the peer; it brings einops and einx). One codebook of
K = 1024 codes of dimension D = 64, N = 16384 input vectors (standard normal), float32, torch's default
number of threads unless --threads says otherwise. Both quantizers get the same settings:

- vqtok: `VectorQuantizer(size=1024, dim=64, beta=0.25, update="ema", decay=0.99, kmeans_init=False)`
  (its dead-code restart, threshold 0.1, stays on as in every vqtok model; no code dies in these steps);
- peer: `VectorQuantize(dim=64, codebook_size=1024, decay=0.99, commitment_weight=0.25, kmeans_init=False,
  rotation_trick=False, sync_codebook=False)`; `rotation_trick=False` gives the plain straight-through
  estimator (its default for dim > 1 is the rotation trick), and the rest are its defaults: EMA codebook
  (`ema_update`), Euclidean distance, `eps=1e-5` Laplace smoothing, no dead-code replacement
  (`threshold_ema_dead_code=0`), no projection, one head, no orthogonal or diversity losses.

Rows (median of --repeats timed calls after warm-up, in milliseconds):

- train: module in train mode, `z` requires grad, forward (with its EMA update) and backward of the
  commitment loss plus the sum of the quantized output;
- encode: eval mode, `torch.no_grad()`, the module's forward for the indices only;
- search: `vqtok.models.quantize.nearest` alone, as GFLOP/s (2 N K D flops) and as a share of the
  GFLOP/s of a plain `(N x D) @ (D x K)` matmul into a preallocated output, measured in the same run.
  Its codes are checked to equal the argmin of `torch.cdist` in float64 (brute force).

The ratio is peer time / vqtok time (above 1: vqtok is faster). The line under the table says how often
the peer picks the same code as vqtok when both hold the same codebook (a check that the settings agree).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import time

import torch

from vqtok.models.quantize import VectorQuantizer, nearest

K, D = 1024, 64


def medians(fns: dict, repeats: int, device: torch.device, warmup: int = 3) -> dict:
    """Median seconds of each function, timed round-robin (one call of each in turn), so that all of
    them see the same share of a noisy machine; the clock is read after the device has finished."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def train_step(module, z0: torch.Tensor, peer: bool) -> None:
    z = z0.detach().requires_grad_()
    if peer:
        q, _, loss = module(z[None])
        (loss + q.sum()).backward()
    else:
        out = module(z)
        (out.commit_loss + out.z_q.sum()).backward()


@torch.no_grad()
def encode(module, z: torch.Tensor, peer: bool) -> torch.Tensor:
    return module(z[None])[1][0] if peer else module(z).codes[:, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--n", type=int, default=16384, help="number of input vectors")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    from vector_quantize_pytorch import VectorQuantize

    if args.threads:
        torch.set_num_threads(args.threads)
    device, n, repeats = torch.device(args.device), args.n, args.repeats
    torch.manual_seed(0)
    z = torch.randn(n, D, device=device)
    ours = VectorQuantizer(size=K, dim=D, beta=0.25, update="ema", decay=0.99, kmeans_init=False).to(device)
    peer = VectorQuantize(
        dim=D,
        codebook_size=K,
        decay=0.99,
        commitment_weight=0.25,
        kmeans_init=False,
        rotation_trick=False,
        sync_codebook=False,
    ).to(device)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}; "
        f"vector-quantize-pytorch {importlib.metadata.version('vector-quantize-pytorch')}; "
        f"N = {n}, K = {K}, D = {D}, float32; medians of {repeats}"
    )

    ours.train(), peer.train()
    train = medians(
        {"ours": lambda: train_step(ours, z, False), "peer": lambda: train_step(peer, z, True)}, repeats, device
    )
    ours.eval(), peer.eval()
    enc = medians({"ours": lambda: encode(ours, z, False), "peer": lambda: encode(peer, z, True)}, repeats, device)

    codebook = ours.codebook.detach().clone()  # trained by the steps above: a realistic codebook
    codes = nearest(z, codebook)
    brute = torch.cdist(z.double(), codebook.double()).argmin(dim=1)
    assert torch.equal(codes, brute), f"{int((codes != brute).sum())} codes differ from cdist's argmin"
    product, cb_t = torch.empty(n, K, device=device), codebook.t()
    search = medians(
        {"search": lambda: nearest(z, codebook), "matmul": lambda: torch.mm(z, cb_t, out=product)}, repeats, device
    )
    peer._codebook.embed.copy_(codebook[None])  # same codebook in both: do they pick the same codes?
    agree = float((encode(peer, z, True) == encode(ours, z, False)).float().mean())

    flops = 2 * n * K * D
    print(f"{'':<24}{'vqtok ms':>10}{'peer ms':>10}{'peer/vqtok':>12}{'GFLOP/s':>10}{'share of matmul':>17}")
    for name, t in (("train fwd+bwd", train), ("encode (eval)", enc)):
        print(f"{name:<24}{t['ours'] * 1e3:>10.1f}{t['peer'] * 1e3:>10.1f}{t['peer'] / t['ours']:>11.1f}x")
    for name, key in (("search (nearest)", "search"), ("matmul N x D @ D x K", "matmul")):
        t = search[key]
        print(f"{name:<24}{t * 1e3:>10.1f}{'':>22}{flops / t / 1e9:>10.1f}{search['matmul'] / t:>16.0%}")
    print(
        f"search codes equal float64 cdist argmin: {n} of {n}; peer picks vqtok's code for {agree:.2%} "
        "of the vectors when both hold the same codebook"
    )


if __name__ == "__main__":
    main()
