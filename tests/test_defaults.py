"""The default models the built-in plugins ship: rebuilt by their committed recipes, described by
``vqtok info``, and used by the CLI when no model is given."""

from __future__ import annotations

import dataclasses
import io
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, SAMPLES, cli_env, run_cli
from PIL import Image

import vqtok
from vqtok import config
from vqtok.files.model import read_model
from vqtok.metrics import log_mel_distance, si_sdr
from vqtok.plugin.defaults import model_path
from vqtok.plugin.registry import get_modality
from vqtok.train import chain, finetune

# each shipped model by its @ name: the last recipe of its chain, its prior's recipe, and the data it saw
RECIPES = {
    "audio": ROOT / "recipes" / "speech-8k-voices-more.toml",
    "image": ROOT / "recipes" / "photo-8x.toml",
    "digits": ROOT / "recipes" / "mnist-vqvae.toml",
}
PRIOR_RECIPES = {
    "audio": ROOT / "recipes" / "priors" / "speech-8k-voices.toml",
    "image": ROOT / "recipes" / "priors" / "photo-8x.toml",
    "digits": ROOT / "recipes" / "priors" / "mnist-vqvae.toml",
}
TRAINED_ON = {
    "audio": "bench/data/speech-voices/train",
    "image": "bench/data/photos/train",
    "digits": "bench/data/mnist/train",
}
SPEECH = SAMPLES / "speech" / "agent-alreadyon.wav"
PHOTO = SAMPLES / "images" / "chelsea.png"  # scikit-image's cat: a test photo set, never trained on
DIGIT = SAMPLES / "digits" / "test" / "3" / "00030.png"


def comparable(settings: dict) -> dict:
    """A run's settings without where it ran: the data folder's location, the device, the init file's path."""
    settings = chain.comparable(settings)
    for key in ("data", "init"):
        settings.pop(key)
    return settings


@pytest.mark.parametrize("name", RECIPES)
def test_shipped_model_is_what_its_committed_recipes_train(name):
    path = model_path(f"@{name}")
    # shipped as `vqtok export` writes them: weights in bfloat16, codebooks float32 (the photo model with its
    # prior 13.8 MB, the speech model with its prior 9.5 MB, the digits 3.4 MB)
    assert path.is_file() and path.stat().st_size < 16 * 2**20, f"{path}: missing or too large"
    meta = read_model(path).meta
    assert meta["export"]["dtype"] == "bfloat16"
    stored = config.from_dict(meta["config"], get_modality).to_dict()  # later keys: defaults
    assert stored["data"].endswith(TRAINED_ON[name])
    recipe, training = config.read_recipe(RECIPES[name]), meta["training"]
    while chain.names_recipe(recipe.get("init")):  # the last recipe, then each one of the chain before it
        before = training["started_from"]  # what the stage before trained, as the model recorded it
        inherited = finetune.inheritable(before["config"])
        expected = config.resolve(config.layered({**recipe, "init": ""}, defaults=inherited), get_modality=get_modality)
        assert comparable(stored) == comparable(expected.to_dict())
        assert before["completed"]
        recipe, training = config.read_recipe(Path(recipe["init"])), before
        stored = config.from_dict(before["config"], get_modality).to_dict()
    assert comparable(stored) == comparable(config.resolve(recipe, get_modality=get_modality).to_dict())


@pytest.mark.parametrize("name", PRIOR_RECIPES)
def test_shipped_models_prior_is_what_its_committed_recipe_trains(name):
    from vqtok.prior.model import PriorOptions
    from vqtok.prior.train import resolve_prior_run

    prior = read_model(model_path(f"@{name}")).meta["prior"]
    run = resolve_prior_run(PRIOR_RECIPES[name], [], {})
    stored = PriorOptions(**prior["options"])  # options added since it was trained take their defaults
    assert dataclasses.asdict(stored) == dataclasses.asdict(run.options)
    assert prior["training"]["steps"] == run.train.steps and prior["training"]["completed"]
    assert prior["label_names"] == PRIOR_LABELS[name]


def _training_voices() -> list[str]:
    """The voice folders of the speech set's training split (bench/speech-voices.toml), sorted."""
    voices = tomllib.loads((ROOT / "bench" / "speech-voices.toml").read_text())["voice"]
    return sorted(v["name"] for v in voices if v["split"] == "train")


# the classes of each shipped prior: the digit folders, the training voices; the photo prior has none
PRIOR_LABELS = {"audio": _training_voices(), "image": [], "digits": [str(d) for d in range(10)]}


@pytest.mark.parametrize("name", RECIPES)
def test_info_on_a_shipped_model_says_what_data_it_was_trained_on(name):
    report = json.loads(run_cli("info", "--json", f"@{name}").stdout)
    assert report["modality"] == ("audio" if name == "audio" else "image") and TRAINED_ON[name] in report["about"]
    assert report["training"]["completed"]
    table = run_cli("info", f"@{name}").stderr
    about_row = next(line for line in table.splitlines() if " about " in line)
    assert " ".join(report["about"].split()[:3]) in about_row  # the table wraps the rest


def test_speech_without_a_model_uses_the_default_and_sounds_like_the_input(tmp_path):
    codes = run_cli("encode", SPEECH).stdout  # no --model, no $VQTOK_MODEL
    x, rate = sf.read(SPEECH, dtype="float32")
    assert rate == 8000
    array = np.load(io.BytesIO(codes), allow_pickle=False)
    assert array.shape == (2, -(-len(x) // 80)) and array.dtype.kind == "i"  # 100 positions/s, 2 codebooks
    assert array.min() >= 0 and array.max() < 4096
    (tmp_path / "codes.npy").write_bytes(codes)
    run_cli("decode", tmp_path / "codes.npy", "-o", tmp_path / "back.wav")
    y, _ = sf.read(tmp_path / "back.wav", dtype="float32")
    assert len(y) == 80 * array.shape[1]  # .npy holds no length: whole hops (.npz restores it exactly)
    y = y[: len(x)]
    ref, est = torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None]
    noise = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0)) * ref.std()
    # a trivial baseline: noise of the speech's loudness; the decoded speech must be far closer to it
    assert log_mel_distance(est, ref, rate) < 0.5 * log_mel_distance(noise, ref, rate)
    assert si_sdr(est, ref) > 0


def test_photo_without_a_model_uses_the_default_and_keeps_its_colours(tmp_path):
    codes = run_cli("encode", PHOTO).stdout  # no --model: the colour-photo default
    x = np.asarray(Image.open(PHOTO).convert("RGB"), dtype=np.float32)
    array = np.load(io.BytesIO(codes), allow_pickle=False)
    assert array.shape == (4, -(-x.shape[0] // 8), -(-x.shape[1] // 8)) and 0 <= array.min() and array.max() < 4096
    (tmp_path / "codes.npy").write_bytes(codes)
    run_cli("decode", tmp_path / "codes.npy", "-o", tmp_path / "back.png")
    y = np.asarray(Image.open(tmp_path / "back.png").convert("RGB"), dtype=np.float32)[: x.shape[0], : x.shape[1]]
    psnr = 10 * np.log10(255**2 / np.mean((y - x) ** 2))
    grey = x.mean(axis=2, keepdims=True).repeat(3, axis=2)  # baseline: the photo in grey, every edge kept
    assert psnr > 24 and psnr > 10 * np.log10(255**2 / np.mean((grey - x) ** 2)) + 6, psnr


def test_digit_model_by_name_looks_like_the_input(tmp_path):
    codes = run_cli("encode", "--model", "@digits", DIGIT).stdout
    array = np.load(io.BytesIO(codes), allow_pickle=False)
    assert array.shape == (7, 7) and array.max() < 512
    (tmp_path / "codes.npy").write_bytes(codes)
    run_cli("decode", "--model", "@digits", tmp_path / "codes.npy", "-o", tmp_path / "back.png")
    x = np.asarray(Image.open(DIGIT).convert("L"), dtype=np.float32) / 255
    y = np.asarray(Image.open(tmp_path / "back.png"), dtype=np.float32) / 255
    assert y.shape == x.shape == (28, 28)
    assert np.mean((y - x) ** 2) < 0.2 * np.mean((x - x.mean()) ** 2)  # baseline: the digit's mean grey


def test_the_shipped_digit_model_samples_the_asked_for_digit(tmp_path):
    from test_training import _digits, _fit_classifier

    tok = vqtok.load("@digits")  # the library takes a shipped model's name as the CLI does
    clf = _fit_classifier(*_digits("train", tok))  # judged by an MLP fitted on the 600 shipped digits
    recognized = []
    for digit in range(10):
        x = tok.sample(20, label=str(digit), seed=digit)
        with torch.no_grad():
            recognized.append((clf(x).argmax(1) == digit).float().mean().item())
    assert sum(recognized) / 10 >= 0.7 and min(recognized) >= 0.4, recognized  # chance: 0.1
    run_cli("sample", "--model", "@digits", "--label", "7", "-n", 3, "-o", tmp_path / "sevens")
    assert sorted(p.name for p in (tmp_path / "sevens").iterdir()) == [f"sample-00{i}-7.png" for i in range(3)]


def test_without_a_model_files_no_default_reads_are_a_usage_error_naming_the_defaults(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    proc = run_cli("encode", text, check=False)
    assert proc.returncode == 2 and "@audio" in proc.stderr and "@image" in proc.stderr and not proc.stdout
    mixed = run_cli("encode", SPEECH, DIGIT, "-o", tmp_path, check=False)
    assert mixed.returncode == 2 and "several modalities" in mixed.stderr
    unknown = run_cli("info", "@video", check=False)
    assert unknown.returncode == 2 and "@video: no shipped model of that name" in unknown.stderr
    assert "@digits" in unknown.stderr


def test_an_explicit_model_or_the_environment_wins_over_the_default(tmp_path):
    image_default = get_modality("image").default_model
    proc = run_cli("encode", SPEECH, env=cli_env({"VQTOK_MODEL": str(image_default)}), check=False)
    assert proc.returncode == 1 and "not a file this image model reads" in proc.stderr
