"""Fine-tuning (``vqtok train --init MODEL``): the run inherits the model's settings and starts from
its weights; a model whose weights cannot mean the same thing is refused with a clear error."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import SAMPLES, TINY_IMAGE, run_cli

from vqtok import config
from vqtok.config.renamed import current_names
from vqtok.errors import UsageError, VqtokError
from vqtok.files.model import read_model
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer


def resolve(init, overrides=(), **flags) -> config.RunConfig:
    return config.resolve({"init": str(init), "data": str(SAMPLES / "speech")}, list(overrides), flags, get_modality)


def test_a_run_starting_from_a_model_has_its_settings_and_weights(audio_model, tmp_path):
    stored = read_model(audio_model)
    run = resolve(audio_model, ["train.lr=1e-4"])
    assert config.from_dict(stored.meta["config"], get_modality).model == run.model
    assert run.options == config.from_dict(stored.meta["config"], get_modality).options
    assert run.train.lr == 1e-4 and run.train.steps == config.TrainConfig.steps  # [train] is the run's own
    trainer = Trainer(run, get_modality("audio"), tmp_path / "tuned.safetensors")
    assert trainer.init == audio_model
    weights = stored.section("model")
    state = trainer.model.state_dict()
    assert weights.keys() == {k for k in state if not k.endswith(".ema_sum")}  # the file leaves EMA sums out
    for name, value in weights.items():
        assert torch.equal(state[name].cpu(), value), name  # codebooks too: no k-means restart


def test_fine_tuning_on_the_cli_continues_from_the_trained_loss(tmp_path):
    trained, tuned = tmp_path / "trained.safetensors", tmp_path / "tuned.safetensors"
    run_cli(
        "train",
        "--modality",
        "image",
        "--data",
        SAMPLES / "images",
        "--steps",
        60,
        "-o",
        trained,
        *TINY_IMAGE,
        "train.lr=2e-3",
        "train.warmup_steps=5",
    )
    proc = run_cli(
        "train",
        "--init",
        trained,
        "--data",
        SAMPLES / "images",
        "--steps",
        5,
        "-o",
        tuned,
        "--batch-size",
        4,
        "train.log_every=5",
    )
    assert f"starting from {trained}" in " ".join(proc.stderr.split())
    meta = read_model(tuned).meta
    assert meta["config"]["init"] == str(trained)
    assert meta["config"]["model"] == read_model(trained).meta["config"]["model"]
    scratch = [json.loads(line)["loss"] for line in trained.with_name("trained.metrics.jsonl").read_text().splitlines()]
    first_tuned = json.loads(tuned.with_name("tuned.metrics.jsonl").read_text().splitlines()[0])["loss"]
    assert scratch[-1] < 0.8 * scratch[0]  # the first run learned ...
    assert first_tuned < 0.8 * scratch[0]  # ... and the second starts where it ended, not from scratch


def test_a_shipped_default_can_be_fine_tuned_by_name(tmp_path):
    out = tmp_path / "mine.safetensors"
    run_cli("train", "--init", "@audio", "--data", SAMPLES / "speech", "--steps", 1, "--batch-size", 2, "-o", out)
    meta = read_model(out).meta
    default = read_model(get_modality("audio").default_model).meta
    assert meta["config"]["audio"].items() >= default["config"]["audio"].items()  # 8 kHz, as the default
    stored = current_names(default["config"])  # the shipped file predates model.width (was model.channels)
    assert meta["config"]["model"] == stored["model"] and meta["config"]["init"] == "@audio"
    shipped = re.escape(get_modality("audio").default_model.name)  # by file name, not the trainer's folders
    assert re.search(rf"fine-tuned from\s+│ @audio: {shipped}", run_cli("info", out).stderr)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.strides=[2,2,8]", "strides = [2, 4, 8] there, [2, 2, 8] here"),
        ("model.codebook_size=32", "codebook_size = 64 there, 32 here"),
        ("audio.sample_rate=16000", "sample_rate = 8000, but this run's [audio] options give 16000"),
    ],
)
def test_a_model_whose_weights_cannot_fit_is_refused_naming_the_setting(audio_model, tmp_path, override, message):
    with pytest.raises(UsageError) as e:
        Trainer(resolve(audio_model, [override]), get_modality("audio"), tmp_path / "x.safetensors")
    assert message in str(e.value)


def test_another_modalitys_model_or_a_missing_file_is_a_clear_error(image_model, tmp_path):
    with pytest.raises(UsageError, match="its modality is image; this run's is audio"):
        resolve(image_model, modality="audio")
    with pytest.raises(VqtokError, match="no such file"):
        resolve(tmp_path / "nothing.safetensors")
    proc = run_cli(
        "train", "--init", "@video", "--data", SAMPLES / "speech", "-o", tmp_path / "x.safetensors", check=False
    )
    assert proc.returncode == 2 and "@video: no shipped model" in proc.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_an_image_model_fine_tunes_at_another_size_but_not_with_other_channels(image_model, tmp_path):
    def run(override):
        return config.resolve({"init": str(image_model), "data": str(SAMPLES / "images")}, [override], {}, get_modality)

    stored = read_model(image_model).meta["decode"]
    assert stored["image_size"] == 32 and stored["channels"] == 3
    bigger = Trainer(run("image.size=48"), get_modality("image"), tmp_path / "big.safetensors")
    assert bigger.init == image_model and bigger.config.options.size == 48  # fully convolutional: any size
    with pytest.raises(UsageError, match=r"channels = 3, but this run's \[image\] options give 1"):
        Trainer(run("image.channels=1"), get_modality("image"), tmp_path / "grey.safetensors")
