"""The optional adversarial loss: the hinge and feature-matching terms, which parameters each side's
gradients reach, and a discriminator that learns to tell originals from reconstructions in a real run."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from conftest import SAMPLES, TINY_IMAGE, run_cli

from vqtok.config import AdversarialConfig, TrainConfig
from vqtok.plugin.registry import get_modality
from vqtok.train.adversarial import Adversary, feature_matching_loss, hinge_critic_loss, hinge_generator_loss


def judgement(*maps):
    return [[torch.tensor(m, dtype=torch.float32) for m in maps]]


def test_hinge_losses_and_feature_matching_on_known_values():
    undecided = judgement([1.0, -2.0], [0.0, 0.0])  # features, then logits at 0
    assert hinge_critic_loss(undecided, undecided).item() == pytest.approx(2.0)
    assert hinge_generator_loss(undecided).item() == pytest.approx(1.0)
    sure_real, sure_fake = judgement([1.0], [3.0, 1.0]), judgement([1.0], [-1.0, -4.0])
    assert hinge_critic_loss(sure_real, sure_fake).item() == 0.0  # beyond the margins: nothing to learn
    assert hinge_generator_loss(sure_fake).item() == pytest.approx((2 + 5) / 2)
    assert feature_matching_loss(undecided, undecided).item() == 0.0
    # |1 - 2| + |-2 - 0| over 2 values, relative to the original's mean magnitude 1.5
    assert feature_matching_loss(undecided, judgement([2.0, 0.0], [0.0])).item() == pytest.approx(1.5 / 1.5)


@pytest.mark.parametrize("modality, shape", [("audio", (2, 1, 4000)), ("image", (2, 3, 32, 32))])
def test_the_generator_terms_train_the_reconstruction_and_leave_the_discriminator_alone(modality, shape):
    mod = get_modality(modality)
    options = mod.config_class(sample_rate=8000) if modality == "audio" else mod.config_class(size=32)
    adversary = Adversary(
        mod.discriminator(options, 8),
        AdversarialConfig(weight=1.0, feature_weight=1.0),
        TrainConfig(),
        torch.device("cpu"),
    )
    x = torch.rand(shape) * 2 - 1
    x_hat = (x + 0.3 * torch.randn(shape)).requires_grad_(True)
    loss, metrics = adversary.generator_loss(x, x_hat)
    loss.backward()
    assert x_hat.grad.abs().sum() > 0 and set(metrics) == {"adv_g", "feature_match"}
    assert all(p.grad is None and p.requires_grad for p in adversary.net.parameters())
    before = [p.detach().clone() for p in adversary.net.parameters()]
    facts = adversary.critic_step(x, x_hat, step=100, autocast=contextlib.nullcontext)
    assert facts["adv_d"] > 0
    assert any(not torch.equal(a, p) for a, p in zip(before, adversary.net.parameters()))  # it moved


def test_the_discriminator_learns_to_tell_originals_from_reconstructions(tmp_path):
    out = tmp_path / "gan.safetensors"
    run_cli(
        "train",
        "--modality",
        "image",
        "--data",
        SAMPLES / "images",
        "--steps",
        60,
        "-o",
        out,
        *TINY_IMAGE,
        "train.warmup_steps=5",
        "adversarial.weight=0.1",
        "adversarial.lr=2e-3",
        "adversarial.width=8",
        "adversarial.start_step=10",
    )
    log = [json.loads(line) for line in out.with_name("gan.metrics.jsonl").read_text().splitlines()]
    assert "adv_d" not in log[0] and "adv_d" in log[-1]  # the first 10 steps: the reconstruction loss alone
    critic = [r["adv_d"] for r in log if "adv_d" in r]
    late = sum(critic[-3:]) / 3
    assert critic[0] > 1.5 and late < 0.7 * critic[0]  # from chance (2) to telling them apart
