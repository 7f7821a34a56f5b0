"""VAE and CVAE: the closed-form KL, the reparameterisation, the likelihoods, KL warm-up, dynamic
binarization, importance-sampled NLL, conditioning, shapes, and that a tiny model learns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vqtok.config import ModelConfig
from vqtok.errors import UsageError, VqtokError
from vqtok.metrics import bits_per_dim, importance_sampled_nll, kl_normal, log_normal
from vqtok.models.likelihood import Bernoulli as BernoulliLikelihood
from vqtok.models.likelihood import DiscretizedLogistic, Gaussian, make_likelihood
from vqtok.models.vae import CVAE, VAE, CVAEOptions, VAEOptions

DIGITS = Path(__file__).resolve().parent.parent / "vqtok" / "samples" / "digits" / "train"


def tiny(
    cls=VAE, dims: int = 2, channels: int = 1, strides=(2, 2), latent_dim: int = 4, n_labels: int = 0, **options
) -> VAE:
    cfg = ModelConfig(arch=cls.name, width=8, max_width=16, res_blocks=1, strides=list(strides), latent_dim=latent_dim)
    return cls(dims, channels, cfg, cls.config_class(**options), n_labels)


def mean_and_se(t: torch.Tensor) -> tuple[float, float]:
    t = t.double()
    return float(t.mean()), float(t.std() / math.sqrt(t.numel()))


# ---- the closed-form KL ------------------------------------------------------------------------------
def test_kl_normal_closed_form():
    mu, logvar = torch.randn(5, 3), torch.rand(5, 3) * 4 - 3
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    assert torch.allclose(kl_normal(mu, logvar), expected, atol=1e-5)
    assert float(kl_normal(torch.tensor(0.0), torch.tensor(0.0))) == 0.0
    assert float(kl_normal(torch.tensor(1.0), torch.tensor(0.0))) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_normal_matches_monte_carlo(seed):
    g = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(4, generator=g), torch.rand(4, generator=g) * 3 - 2
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((100_000,))  # (N, 4)
    samples = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1)  # log q(z) - log p(z), (N,)
    estimate, se = mean_and_se(samples)
    # The MC mean is within 5 standard errors of the truth with probability 1 - 6e-7.
    assert abs(estimate - float(kl_normal(mu, logvar).sum())) < 5 * se


def test_log_normal_matches_torch():
    z, mu, logvar = torch.randn(6), torch.randn(6), torch.randn(6)
    assert torch.allclose(log_normal(z, mu, logvar), Normal(mu, torch.exp(0.5 * logvar)).log_prob(z), atol=1e-5)
    assert torch.allclose(log_normal(z), Normal(0.0, 1.0).log_prob(z), atol=1e-6)
    assert bits_per_dim(math.log(2) * 784, 784) == pytest.approx(1.0)


# ---- the reparameterisation ----------------------------------------------------------------------------
def test_gradients_reach_mu_logvar_and_parameters():
    torch.manual_seed(0)
    model = tiny(kl_weight=0.0)  # no KL term: the gradients reach mu and logvar only through z
    seen = {}

    def keep(module, inputs, output):
        output.retain_grad()
        seen["h"] = output

    model.encoder.register_forward_hook(keep)
    model(torch.rand(3, 1, 8, 8) * 2 - 1).loss.backward()
    grad = seen["h"].grad  # (B, 2D, *G): mu, then the log-variance
    assert grad[:, :4].abs().sum() > 0 and grad[:, 4:].abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_training_pass_samples_z():
    model = tiny()
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    assert model(x).metrics["nll_recon"] != model(x).metrics["nll_recon"]
    model.encoder.net[-1].bias.data[4:] = -30.0  # log-variance at the floor: z = mu, no noise left
    model.encoder.net[-1].weight.data[4:] = 0.0
    assert torch.allclose(model(x).metrics["nll_recon"], model(x).metrics["nll_recon"])


# ---- the likelihoods -------------------------------------------------------------------------------------
def test_gaussian_is_normal_log_prob():
    params, x = torch.randn(3, 2, 5, 5), torch.rand(3, 2, 5, 5) * 2 - 1
    expected = Normal(params, 0.3).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(Gaussian(2, sigma=0.3).log_prob(params, x), expected, atol=1e-3)


def test_learned_sigma_is_trainable_and_per_channel():
    model = tiny(channels=2, learn_sigma=True, sigma=0.5)
    lik = model.likelihood
    assert any(p is lik.log_sigma for p in model.parameters()) and lik.log_sigma.requires_grad
    with torch.no_grad():
        lik.log_sigma.copy_(torch.log(torch.tensor([0.2, 0.7])))
    params, x = torch.randn(3, 2, 4), torch.rand(3, 2, 4) * 2 - 1
    expected = Normal(params, torch.tensor([0.2, 0.7]).view(1, 2, 1)).log_prob(x).sum((1, 2))
    assert torch.allclose(lik.log_prob(params, x), expected, atol=1e-4)
    out = model(torch.rand(2, 2, 8, 8) * 2 - 1)
    out.loss.backward()
    assert lik.log_sigma.grad is not None and lik.log_sigma.grad.abs().sum() > 0
    assert "sigma" in out.metrics


def test_bernoulli_is_minus_bce():
    logits = torch.randn(4, 1, 6, 6) * 3
    binary = torch.randint(0, 2, (4, 1, 6, 6)).float()
    lik = BernoulliLikelihood()
    expected = Bernoulli(logits=logits).log_prob(binary).sum((1, 2, 3))
    assert torch.allclose(lik.log_prob(logits, 2 * binary - 1), expected, atol=1e-4)
    p = torch.rand(4, 1, 6, 6)  # continuous targets: the cross-entropy
    sig = torch.sigmoid(logits.double())
    expected = (p * sig.log() + (1 - p) * (1 - sig).log()).sum((1, 2, 3))
    assert torch.allclose(lik.log_prob(logits, 2 * p - 1).double(), expected, atol=1e-3)


def logistic_probabilities(params: torch.Tensor) -> torch.Tensor:
    """``params`` ``(N, 2, 1)`` (one element each) -> ``(N, 256)`` probabilities of the 256 values."""
    n = params.shape[0]
    values = torch.arange(256) / 127.5 - 1  # the bin centres
    x = values.repeat(n).view(n * 256, 1, 1)  # element-major: element i, value k at i * 256 + k
    log_p = DiscretizedLogistic().log_prob(params.repeat_interleave(256, dim=0), x)
    return log_p.view(n, 256).double().exp()


def test_discretized_logistic_is_a_distribution():
    torch.manual_seed(0)
    mean = torch.cat([torch.rand(20) * 2.4 - 1.2, torch.tensor([-5.0, 5.0, 0.0, 0.0, 1.0, -1.0])])
    log_scale = torch.cat([torch.rand(20) * 8 - 6, torch.tensor([-7.0, -7.0, -9.0, 6.0, -7.0, 3.0])])
    params = torch.stack([mean, log_scale], 1).unsqueeze(-1)  # (N, 2, 1)
    probs = logistic_probabilities(params)
    assert torch.isfinite(probs).all() and (probs >= 0).all()
    assert torch.allclose(probs.sum(1), torch.ones(len(mean), dtype=torch.float64), atol=1e-4)


def test_discretized_logistic_matches_the_cdf_difference():
    params = torch.tensor([[0.1, -3.0], [-0.4, -1.0], [0.9, -5.0]]).unsqueeze(-1).double()
    probs = logistic_probabilities(params.float())
    edges = torch.arange(-1, 257).double() / 127.5 - 1 + 1 / 255  # upper edges of the bins
    mu, s = params[:, 0], params[:, 1].exp()
    cdf = torch.sigmoid((edges - mu) / s)  # (N, 258)
    cdf[:, 0], cdf[:, -2] = 0, 1  # the edge bins take the tails
    expected = cdf[:, 1:-1] - cdf[:, :-2]
    assert torch.allclose(probs, expected, atol=1e-5, rtol=1e-3)


def test_discretized_logistic_log_prob_bounds_rounding_and_gradients():
    lik = DiscretizedLogistic()
    params = (torch.randn(4, 6, 5, 5) * 4).requires_grad_()  # 3 channels: means, then log-scales
    x = torch.randint(0, 256, (4, 3, 5, 5)) / 127.5 - 1
    log_p = lik.log_prob(params, x)
    assert log_p.shape == (4,) and (log_p <= 0).all() and torch.isfinite(log_p).all()
    assert torch.allclose(lik.log_prob(params, x + 0.4 / 255), log_p)  # x is taken to its bin
    log_p.sum().backward()
    assert torch.isfinite(params.grad).all()
    assert lik.mean(params).shape == x.shape


@pytest.mark.parametrize("kind", ["gaussian", "bernoulli", "logistic"])
def test_likelihood_mean_in_range(kind):
    lik = make_likelihood(VAEOptions(likelihood=kind), 3)
    params = torch.randn(2, 3 * lik.params_per_channel, 4, 4) * 10
    m = lik.mean(params)
    assert m.shape == (2, 3, 4, 4) and m.min() >= -1 and m.max() <= 1
    model = tiny(channels=3, likelihood=kind)
    assert model.decoder.net[-1].out_channels == 3 * lik.params_per_channel


# ---- options and warm-up ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, key",
    [
        (dict(likelihood="poisson"), "likelihood"),
        (dict(sigma=0.0), "sigma"),
        (dict(kl_weight=-1.0), "kl_weight"),
        (dict(kl_warmup_steps=-1), "kl_warmup_steps"),
        (dict(binarize=True), "binarize"),
        (dict(learn_sigma=True, likelihood="logistic"), "learn_sigma"),
    ],
)
def test_options_are_validated(bad, key):
    with pytest.raises(UsageError, match=f"vae.{key}"):
        VAEOptions(**bad)
    with pytest.raises(UsageError, match=f"cvae.{key}"):
        CVAEOptions(**bad)


def test_kl_warmup():
    model = tiny(kl_weight=2.0, kl_warmup_steps=100)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    for step, beta in [(0, 0.0), (50, 1.0), (100, 2.0), (1000, 2.0)]:
        out = model(x, step=step)
        m = out.metrics
        assert float(m["kl_weight"]) == pytest.approx(beta)
        assert out.loss.item() * 64 == pytest.approx(float(m["nll_recon"] + beta * m["kl"]), rel=1e-4)
        assert float(m["elbo"]) == pytest.approx(-float(m["nll_recon"] + m["kl"]), rel=1e-5)
        assert float(m["bits_per_dim"]) == pytest.approx(-float(m["elbo"]) / (64 * math.log(2)), rel=1e-5)
        assert float(m["kl_per_dim"].sum()) == pytest.approx(float(m["kl"]), rel=1e-4)
    assert float(tiny()(x, step=0).metrics["kl_weight"]) == 1.0  # no warm-up: the full weight at once


# ---- dynamic binarization --------------------------------------------------------------------------------
def record_targets(model: VAE) -> list[torch.Tensor]:
    """Make ``model.likelihood.log_prob`` record the targets it is given."""
    seen, log_prob = [], model.likelihood.log_prob

    def recording(params, x):
        seen.append(x.detach().clone())
        return log_prob(params, x)

    model.likelihood.log_prob = recording
    return seen


def test_binarize_trains_on_binary_draws():
    x = torch.zeros(8, 1, 16, 16)  # p = 0.5 everywhere
    model = tiny(likelihood="bernoulli", binarize=True)
    seen = record_targets(model)
    encoder_inputs = []
    model.encoder.register_forward_pre_hook(lambda m, args: encoder_inputs.append(args[0]))
    nll_binary = model(x).metrics["nll_recon"]
    target = seen[-1]
    assert set(target.unique().tolist()) == {-1.0, 1.0}
    assert 0.4 < float((target > 0).float().mean()) < 0.6
    assert torch.equal(encoder_inputs[-1], target)  # the encoder sees the binary draw too
    model(x)
    assert not torch.equal(seen[-1], target)  # a new draw every step
    model(torch.ones_like(x))
    assert torch.equal(seen[-1], torch.ones_like(x))  # p = 1: the draw is x itself

    model.eval()  # evaluation scores the data as given
    model(x)
    assert torch.equal(seen[-1], x)
    plain = tiny(likelihood="bernoulli")
    plain.load_state_dict(model.state_dict())
    seen_plain = record_targets(plain)
    nll_plain = plain(x).metrics["nll_recon"]
    assert torch.equal(seen_plain[-1], x) and float(nll_plain) != float(nll_binary)


# ---- importance-sampled NLL ------------------------------------------------------------------------------
def neg_elbo_samples(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """One-sample -ELBO (closed-form KL) of each row of ``x``, ``(B,)``."""
    m = model.eval()
    with torch.no_grad():
        mu, logvar = m.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return -m.log_likelihood(x, z) + kl_normal(mu, logvar).flatten(1).sum(1)


def test_importance_sampling_with_one_sample_is_the_elbo():
    torch.manual_seed(0)
    model = tiny(latent_dim=2, sigma=0.5).eval()
    with torch.no_grad():  # move q away from the prior (KL about 4 nats), so a wrong log p(z) - log q shows
        model.encoder.net[-1].bias += torch.tensor([0.8, -0.8, -1.0, -1.0])
    x = (torch.rand(1, 1, 8, 8) * 2 - 1).expand(4000, 1, 8, 8)  # 4000 independent estimates of one x
    is_mean, is_se = mean_and_se(importance_sampled_nll(model, x, k=1))
    elbo_mean, elbo_se = mean_and_se(neg_elbo_samples(model, x))
    assert abs(is_mean - elbo_mean) < 5 * math.hypot(is_se, elbo_se)


def test_importance_sampling_tightens_the_bound():
    torch.manual_seed(1)
    model = tiny(latent_dim=2, sigma=0.5).eval()
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    nll = importance_sampled_nll(model, x, k=200, chunk=64)
    assert nll.shape == (3,)
    for i in range(3):
        elbo_mean, elbo_se = mean_and_se(neg_elbo_samples(model, x[i : i + 1].expand(2000, 1, 8, 8)))
        assert float(nll[i]) < elbo_mean + 3 * elbo_se


def test_importance_sampling_chunks_do_not_change_the_result():
    model = tiny(likelihood="logistic").eval()
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    results = []
    for chunk in (50, 7, 1):
        torch.manual_seed(3)
        results.append(importance_sampled_nll(model, x, k=50, chunk=chunk))
    for r in results[1:]:
        assert torch.allclose(r, results[0], rtol=1e-6, atol=1e-3)
    torch.manual_seed(4)
    assert not torch.allclose(importance_sampled_nll(model, x, k=50), results[0])


def test_importance_sampling_with_labels():
    model = tiny(CVAE, n_labels=3).eval()
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    nll = importance_sampled_nll(model, x, torch.tensor([0, 2]), k=10, chunk=4)
    assert nll.shape == (2,) and torch.isfinite(nll).all()


# ---- CVAE ---------------------------------------------------------------------------------------------------
def test_cvae_needs_labels():
    with pytest.raises(VqtokError, match="labelled data"):
        tiny(CVAE, n_labels=0)
    model = tiny(CVAE, n_labels=3)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    for call in (
        lambda: model(x),
        lambda: model.encode(x),
        lambda: model.decode(model.encode(x, torch.tensor([0, 1]))),
        lambda: model.sample(2, [2, 2]),
    ):
        with pytest.raises(VqtokError, match="label"):
            call()
    with pytest.raises(VqtokError, match="out of range"):
        model(x, torch.tensor([0, 3]))
    with pytest.raises(VqtokError, match="one label per example"):
        model(x, torch.tensor([0]))


def test_cvae_label_conditions_encoder_and_decoder():
    torch.manual_seed(0)
    model = tiny(CVAE, n_labels=3).eval()
    x = torch.rand(1, 1, 8, 8) * 2 - 1
    z = torch.randn(1, 4, 2, 2)
    a, b = (model.decode({"mean": z}, torch.tensor([c])) for c in (0, 1))
    assert (a - b).abs().max() > 1e-4
    mu_a, mu_b = (model.encode(x, torch.tensor([c]))["mean"] for c in (0, 2))
    assert (mu_a - mu_b).abs().max() > 1e-4
    out = model(x.expand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
    out.loss.backward()
    assert model.label_embedding.weight.grad.abs().sum() > 0
    g = torch.Generator().manual_seed(0)
    assert model.sample(3, [2, 2], torch.tensor([2, 2, 2]), generator=g).shape == (3, 1, 8, 8)


# ---- shapes, encode/decode/sample ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dims, channels, size, strides, likelihood",
    [
        (1, 1, (64,), [2, 4], "gaussian"),
        (2, 3, (16, 16), [2, 2], "logistic"),
        (2, 1, (28, 28), [2, 2, 7], "bernoulli"),
    ],
)
def test_shapes(dims, channels, size, strides, likelihood):
    torch.manual_seed(0)
    model = tiny(dims=dims, channels=channels, strides=strides, likelihood=likelihood)
    hop = math.prod(strides)
    grid = [s // hop for s in size]
    x = torch.rand(2, channels, *size) * 2 - 1
    out = model(x)
    assert out.x_hat.shape == x.shape and out.loss.ndim == 0
    assert out.metrics["kl_per_dim"].shape == (4,)
    assert all(v.ndim == 0 for k, v in out.metrics.items() if k != "kl_per_dim")
    assert model.latents()["mean"].depth == 4 and not model.latents()["mean"].discrete
    assert model.latents()["mean"].hop == hop == model.hop
    model.eval()
    mean = model.encode(x)["mean"]
    assert mean.dtype == torch.float32 and mean.shape == (2, 4, *grid)
    y = model.decode({"mean": mean})
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert torch.equal(model.reconstruct(x), y)
    with pytest.raises(UsageError, match="n-q"):
        model.encode(x, n_q=1)

    def draw(seed, temperature=1.0):
        return model.sample(3, grid, temperature=temperature, generator=torch.Generator().manual_seed(seed))

    assert draw(5).shape == (3, channels, *size)
    assert torch.equal(draw(5), draw(5)) and not torch.equal(draw(5), draw(6))
    assert torch.allclose(draw(5, 0.0), model.decode({"mean": torch.zeros(3, 4, *grid)}))
    assert model.describe() == {"latent_dim": 4, "likelihood": likelihood}
    assert model.encoder_context >= 1 and model.decoder_context >= 1
    facts = model.diagnose(x)
    assert facts["latent_dim"] == 4 and 0 <= facts["active_units"] <= 4


def test_active_units_counts_channels_that_vary():
    model = tiny()
    with torch.no_grad():  # the first two mean channels vary with x; the other two barely (Var << 0.01)
        model.encoder.net[-1].weight[2:4] *= 1e-3
        model.encoder.net[-1].weight[:2] *= 50
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    assert model.diagnose(x)["active_units"] == 2


# ---- learning -----------------------------------------------------------------------------------------------
def load_digits(n: int = 32) -> torch.Tensor:
    from PIL import Image

    paths = sorted(DIGITS.glob("*/*.png"))
    paths = paths[:: max(1, len(paths) // n)][:n]  # spread over the classes
    arrays = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in paths]
    return torch.from_numpy(np.stack(arrays)).unsqueeze(1) / 127.5 - 1  # (n, 1, 28, 28) in [-1, 1]


def test_tiny_vae_learns_digits():
    torch.manual_seed(0)
    x = load_digits(16)
    assert x.shape == (16, 1, 28, 28)
    x = torch.nn.functional.avg_pool2d(x, 2)  # 14x14 keeps the test fast
    model = tiny(strides=[2, 7], latent_dim=8, likelihood="bernoulli", kl_warmup_steps=30)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        out = model(x, step=step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-10:]) < 0.5 * losses[0]  # about 0.35 after 60 steps
    assert model.eval().diagnose(x)["active_units"] >= 1


# ---- IWAE -----------------------------------------------------------------------------------------------
def test_iwae_loss_is_the_importance_weighted_bound_and_tighter_than_the_elbo():
    torch.manual_seed(0)
    model = tiny(latent_dim=2, sigma=0.5, iw_samples=50)
    with torch.no_grad():  # q away from the prior, so the bounds differ
        model.encoder.net[-1].bias += torch.tensor([0.8, -0.8, -1.0, -1.0])
    x = torch.rand(1, 1, 8, 8).expand(400, 1, 8, 8) * 2 - 1  # one x, many independent estimates
    out = model(x, step=10)
    bound = -out.loss.item() * x[0].numel()  # the loss is -bound per input element
    assert bound == pytest.approx(out.metrics["iwae_bound"].item(), rel=1e-5)
    elbo_mean, elbo_se = mean_and_se(-neg_elbo_samples(model, x))
    assert bound > elbo_mean + 5 * elbo_se  # K = 50 samples: a tighter bound than the ELBO
    torch.manual_seed(1)
    nll = importance_sampled_nll(model.eval(), x[:1], k=5000)  # close to the truth
    assert bound < -float(nll[0]) + 0.5  # ... and still a lower bound on log p(x), in expectation


def test_tiny_iwae_learns_digits():
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(load_digits(16), 2)
    model = tiny(strides=[2, 7], latent_dim=8, likelihood="bernoulli", kl_warmup_steps=30, iw_samples=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        out = model(x, step=step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-10:]) < 0.5 * losses[0]
    assert out.x_hat.shape == x.shape


def test_iw_samples_must_be_positive():
    with pytest.raises(UsageError, match="iw_samples"):
        VAEOptions(iw_samples=0)
