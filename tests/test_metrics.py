"""Each metric of ``vqtok eval`` on a case whose answer is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from vqtok_audio import AudioModality, AudioOptions

from vqtok.metrics import (
    code_counts,
    importance_sampled_likelihood,
    log_mel_distance,
    mse,
    perplexity,
    psnr,
    si_sdr,
    used_share,
)
from vqtok.metrics.likelihood import log_normal


def orthogonal_noise(ref: torch.Tensor, power: float, seed: int) -> torch.Tensor:
    """Zero-mean noise ``(B, 1, T)`` orthogonal to the zero-mean ``ref``, of total energy ``power``."""
    n = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    n = n - n.mean(-1, keepdim=True)
    r = ref - ref.mean(-1, keepdim=True)
    n = n - (n * r).sum(-1, keepdim=True) / r.square().sum(-1, keepdim=True) * r
    return n * (power / n.square().sum(-1, keepdim=True)).sqrt()


def test_si_sdr_of_a_scaled_copy_plus_orthogonal_noise():
    ref = torch.randn(3, 1, 4000, dtype=torch.float64) + 0.3  # a DC offset, which SI-SDR removes
    gain, noise_energy = 0.5, 2.0
    est = gain * ref + orthogonal_noise(ref, noise_energy, 0) + 0.1
    r = ref - ref.mean(-1, keepdim=True)
    expected = 10 * torch.log10(gain**2 * r.square().sum((1, 2)) / noise_energy)
    assert torch.allclose(si_sdr(est, ref).double(), expected, atol=1e-3)
    assert torch.allclose(si_sdr(7 * est, ref), si_sdr(est, ref), atol=1e-3)  # gain-invariant
    assert (si_sdr(3 * ref, ref) > 100).all()  # a scaled copy is (almost) perfect


def test_psnr_and_mse_of_a_constant_error():
    x = torch.rand(2, 3, 8, 8) * 1.8 - 0.9
    assert torch.allclose(mse(x + 0.02, x), torch.full((2,), 4e-4), rtol=1e-4)
    assert torch.allclose(psnr(x + 0.02, x), torch.full((2,), 40.0), atol=1e-3)  # 10 log10(2^2 / 4e-4)
    assert torch.allclose(psnr(x - 0.2, x), torch.full((2,), 20.0), atol=1e-3)


def test_log_mel_distance_of_a_gain_is_its_decibels():
    noise = torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(1)) * 0.1  # energy in every band
    for gain in (2.0, 0.5, 1.25):
        assert torch.allclose(
            log_mel_distance(gain * noise, noise, 16000), torch.full((2,), abs(20 * math.log10(gain))), atol=1e-3
        )
    assert torch.allclose(log_mel_distance(noise, noise, 8000), torch.zeros(2))


def test_log_mel_distance_floors_silence_below_the_reference():
    """Two different near-silent signals differ by many dB; floored at 80 dB below the reference's
    peak, a silent stretch costs nothing."""
    g = torch.Generator().manual_seed(2)
    ref = torch.cat([torch.randn(1, 1, 8000, generator=g) * 0.3, torch.zeros(1, 1, 8000)], dim=-1)
    est = ref.clone()
    est[..., 8000 + 1024 :] = 1e-7 * torch.randn(1, 1, 8000 - 1024, generator=g)  # -140 dB of hiss
    assert float(log_mel_distance(est, ref, 8000)) < 1e-3


def test_audio_quality_metrics_of_a_doubled_copy():
    """The multi-resolution STFT distance of ``2 x`` is ``1 + ln 2``: spectral convergence
    ``||2S - S|| / ||S|| = 1`` plus the mean ``|ln 2S - ln S|``, at every resolution."""
    x = torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(3)) * 0.2
    q = AudioModality().quality(2 * x, x, AudioOptions(sample_rate=8000))
    assert set(q) == {"si_sdr_db", "mr_stft", "log_mel_distance_db"}
    assert all(v.shape == (2,) for v in q.values())
    assert torch.allclose(q["mr_stft"], torch.full((2,), 1 + math.log(2)), atol=1e-3)
    assert torch.allclose(q["log_mel_distance_db"], torch.full((2,), 20 * math.log10(2)), atol=1e-3)
    same = AudioModality().quality(x, x, AudioOptions(sample_rate=8000))
    assert torch.allclose(same["mr_stft"], torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize("k,size", [(1, 16), (7, 16), (16, 16), (5, 1024)])
def test_perplexity_and_used_share_of_equally_used_codes(k, size):
    codes = torch.arange(k).repeat(13)[None, None]  # (B=1, n_q=1, positions): k codes, equally often
    (counts,) = code_counts(codes, [size])
    assert counts.shape == (size,) and int(counts.sum()) == 13 * k
    assert perplexity(counts) == pytest.approx(k, rel=1e-9)
    assert used_share(counts) == pytest.approx(k / size)


def test_perplexity_of_a_skewed_histogram():
    counts = torch.tensor([3, 1, 0, 0])
    p = torch.tensor([0.75, 0.25])
    assert perplexity(counts) == pytest.approx(float(torch.exp(-(p * p.log()).sum())))
    assert used_share(counts) == 0.5


class LinearGaussian(torch.nn.Module):
    """Probabilistic PCA as a VAE: p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I), and a diagonal
    Gaussian posterior q(z|x) given by ``posterior``. Its exact marginal is
    ``p(x) = N(x; b, W W^T + s^2 I)`` (Tipping & Bishop 1999)."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, s: float, q_scale: float = 1.0):
        super().__init__()
        self.w, self.b, self.s, self.q_scale = w, b, s, q_scale
        m = w.T @ w + s**2 * torch.eye(w.shape[1], dtype=w.dtype)
        self.m_inv = torch.linalg.inv(m)

    def exact_log_p(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.w @ self.w.T + self.s**2 * torch.eye(self.w.shape[0], dtype=self.w.dtype)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x.flatten(1))

    def posterior(self, x, labels=None):
        """The exact posterior's mean ``M^-1 W^T (x - b)`` and the diagonal of its covariance
        ``s^2 M^-1`` (times ``q_scale``): exact when ``W`` has orthogonal columns."""
        mu = (x.flatten(1) - self.b) @ self.w @ self.m_inv.T
        var = (self.s**2 * torch.diagonal(self.m_inv)) * self.q_scale
        return mu, var.log().expand_as(mu)

    def log_likelihood(self, x, z, labels=None):
        mean = z @ self.w.T + self.b
        return log_normal(x.flatten(1), mean, torch.tensor(2 * math.log(self.s), dtype=x.dtype)).sum(1)


def ppca(orthogonal: bool, q_scale: float = 1.0) -> tuple[LinearGaussian, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    w = torch.randn(6, 3, generator=g, dtype=torch.float64)
    if orthogonal:
        w = torch.linalg.qr(w).Q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    model = LinearGaussian(w, torch.randn(6, generator=g, dtype=torch.float64), 0.3, q_scale)
    x = (
        torch.randn(4, 3, generator=g, dtype=torch.float64) @ w.T
        + model.b
        + 0.3 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    )
    return model, x.view(4, 1, 6)


def test_with_the_exact_posterior_elbo_and_nll_equal_the_ppca_likelihood():
    """With q(z|x) = p(z|x), every importance weight is p(x): the ELBO and the NLL are exact."""
    model, x = ppca(orthogonal=True)
    torch.manual_seed(0)
    est = importance_sampled_likelihood(model, x, k=10, chunk=3)
    exact = model.exact_log_p(x).float()
    assert torch.allclose(est.elbo, exact, atol=1e-4)
    assert torch.allclose(est.log_p, exact, atol=1e-4)


def test_the_estimates_from_the_first_m_samples_are_those_of_a_run_with_k_m():
    """Each sample draws its own noise, so the first m of k samples are the draws a run with k = m makes:
    the ladder of estimates costs nothing and pairs with the full one example by example."""
    model, x = ppca(orthogonal=False, q_scale=2.0)
    torch.manual_seed(1)
    est = importance_sampled_likelihood(model, x, k=300, chunk=7, also_first=(3, 30, 300, 1000))
    assert sorted(est.log_p_first) == [3, 30]  # k itself is log_p; more than k cannot be had
    for m in (3, 30):
        torch.manual_seed(1)
        alone = importance_sampled_likelihood(model, x, k=m, chunk=64)
        assert torch.allclose(est.log_p_first[m], alone.log_p, atol=1e-6)
    assert not torch.allclose(est.log_p_first[3], est.log_p)


def test_importance_sampling_converges_to_the_ppca_likelihood_from_a_poor_posterior():
    """A correlated posterior approximated by a too-wide diagonal: the ELBO lies clearly below
    log p(x); the importance-sampled estimate with k = 5000 comes within 0.02 nats of it."""
    model, x = ppca(orthogonal=False, q_scale=2.0)
    exact = model.exact_log_p(x).float()
    torch.manual_seed(0)
    est = importance_sampled_likelihood(model, x, k=5000, chunk=700)
    assert (est.elbo < exact - 0.1).all()
    assert torch.allclose(est.log_p, exact, atol=0.02)
    few = importance_sampled_likelihood(model, x, k=5, chunk=5)
    assert ((exact - few.log_p).abs() > (exact - est.log_p).abs()).sum() >= 3  # more samples, closer
