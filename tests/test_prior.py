"""``vqtok train-prior`` and sampling through the prior, through the real CLI on the shipped data: where
the prior is stored, what it learns (bits per code, the asked-for digit), Ctrl-C and resume, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import DIGITS, SAMPLES, TINY_PRIOR, files_under, interrupt_after, ok, run_cli, run_parallel
from PIL import Image

import vqtok


@pytest.fixture(scope="module")
def models(prior_models):
    """The digit, speech, image and residual models with their priors (see conftest.build_prior_models)."""
    return prior_models


def _report(path) -> dict:
    return json.loads(ok(run_cli("info", "--json", path)).stdout)


# ---- storage ---------------------------------------------------------------------------------------------


def test_the_prior_goes_into_the_model_file_and_leaves_the_model_alone(models):
    before = json.loads((models / "digits-info-before.json").read_text())
    after = _report(models / "digits.safetensors")
    assert before["prior"] is None
    assert after["model_hash"] == before["model_hash"]  # codes encoded before still decode
    prior = after["prior"]
    assert prior["label_names"] == [str(d) for d in range(10)]  # class folders -> class-conditional
    assert prior["levels"] == ["codes"] and prior["training"]["steps"] == 400
    assert "200 file(s)" in prior["entropy"]["held_out"]
    log = [json.loads(line) for line in (models / "digits.prior.metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 400 and log[-1]["bits"] < log[0]["bits"]
    assert Image.open(models / "digits.prior.preview.png").size[0] > 28 * 4  # a grid of samples
    assert not (models / "digits.prior.ckpt.safetensors").exists()
    table = ok(run_cli("info", models / "digits.safetensors")).stderr
    assert "gated PixelCNN" in table and "bits per code (codes)" in table and "bits/image" in table


def test_a_separate_prior_file_names_its_model(models):
    assert _report(models / "speech.safetensors")["prior"] is None  # -o: the model file is untouched
    log = (models / "speech-prior.log").read_text()
    assert "top and bottom codes" in log and "bit/s" in log
    tok = vqtok.load(models / "speech.safetensors", prior=models / "speech-prior.safetensors")
    assert tok.prior.order == ["top", "bottom"]
    assert tok.prior_info["model_hash"] == tok.model_hash


def test_a_prior_for_a_model_that_changed_meanwhile_goes_beside_it(models, tmp_path):
    from vqtok.errors import VqtokError
    from vqtok.prior.store import save_prior

    model = tmp_path / "m.safetensors"
    model.write_bytes((models / "digits.safetensors").read_bytes())
    tok = vqtok.load(model)
    path = save_prior(tok.prior, tok.prior_info, model, "0123456789abcdef")  # trained on another model's codes
    assert path == tmp_path / "m.prior.safetensors"
    assert model.read_bytes() == (models / "digits.safetensors").read_bytes()  # the model file is untouched
    with pytest.raises(VqtokError, match="not for this model"):
        vqtok.load(model, prior=path)


# ---- what it learns ----------------------------------------------------------------------------------------


def test_prior_beats_the_uniform_and_unigram_code_models_on_held_out_digits(models):
    entropy = _report(models / "digits.safetensors")["prior"]["entropy"]
    bits = entropy["bits_per_code"]
    assert bits["uniform"]["codes"] == pytest.approx(6.0)  # 64 entries
    assert bits["prior"]["codes"] < bits["unigram"]["codes"] < bits["uniform"]["codes"]
    assert bits["prior"]["codes"] < 0.8 * bits["unigram"]["codes"], bits  # context is worth a lot here
    rate = entropy["bitrate"]
    assert entropy["unit"] == "bits/image" and rate["uniform"] == pytest.approx(49 * 6.0)
    assert rate["prior"] == pytest.approx(49 * bits["prior"]["codes"])


def test_class_conditional_prior_samples_show_the_asked_for_digit(models):
    from test_training import _digits, _fit_classifier

    tok = vqtok.load(models / "digits.safetensors")
    clf = _fit_classifier(*_digits("train", tok))
    recognized = []
    for digit in range(10):
        x = tok.sample(20, label=str(digit), seed=digit, temperature=0.7)
        assert x.shape == (20, 1, 28, 28)
        with torch.no_grad():
            recognized.append((clf(x).argmax(1) == digit).float().mean().item())
    # 600 training digits and a 7 x 7 code map: far from perfect, far above the 10% of chance
    assert sum(recognized) / 10 >= 0.45, recognized


# ---- sampling through the CLI --------------------------------------------------------------------------------


def test_sample_digits_with_label_temperature_top_k_and_seed(models, tmp_path):
    model = models / "digits.safetensors"
    common = ["sample", "--model", model, "-n", 8, "--temperature", 0.9, "--top-k", 10]
    runs = run_parallel(
        None,
        {
            "a": ([*common, "--label", 3, "-o", tmp_path / "a.png"], {}),
            "again": ([*common, "--label", 3, "-o", tmp_path / "again.png"], {}),
            "seed": ([*common, "--label", 3, "--seed", 1, "-o", tmp_path / "seed.png"], {}),
            "label": ([*common, "--label", 4, "-o", tmp_path / "label.png"], {}),
            "folder": (["sample", "--model", model, "-n", 3, "-o", tmp_path / "each"], {}),
        },
    )
    for proc in runs.values():
        ok(proc)
    a = (tmp_path / "a.png").read_bytes()
    assert a == (tmp_path / "again.png").read_bytes()
    assert a != (tmp_path / "seed.png").read_bytes() and a != (tmp_path / "label.png").read_bytes()
    grid = Image.open(tmp_path / "a.png")
    assert grid.size[0] >= 8 * 28 and grid.size[1] >= 28  # eight digits in one picture
    assert files_under(tmp_path / "each") == {"sample-000-0.png", "sample-001-1.png", "sample-002-2.png"}


def test_sample_speech_vqvae2_through_its_prior_file(models, tmp_path):
    out = tmp_path / "babble"
    ok(
        run_cli(
            "sample",
            "--model",
            models / "speech.safetensors",
            "--prior",
            models / "speech-prior.safetensors",
            "-n",
            2,
            "--seconds",
            0.5,
            "--top-k",
            5,
            "-o",
            out,
        )
    )
    assert files_under(out) == {"sample-000.wav", "sample-001.wav"}
    audio, rate = sf.read(out / "sample-000.wav")
    assert rate == 8000 and len(audio) == 4000 and np.isfinite(audio).all() and audio.std() > 0


def test_image_vqvae2_and_residual_speech_vqvae_sample_through_their_priors(models, tmp_path):
    runs = run_parallel(
        None,
        {
            "images-v2": (["sample", "--model", models / "images-v2.safetensors", "-n", 3, "-o", tmp_path / "v2"], {}),
            "speech-rvq": (
                [
                    "sample",
                    "--model",
                    models / "speech-rvq.safetensors",
                    "-n",
                    1,
                    "--seconds",
                    0.3,
                    "--temperature",
                    0.5,
                    "-o",
                    tmp_path / "rvq.wav",
                ],
                {},
            ),
        },
    )
    for proc in runs.values():
        ok(proc)
    assert files_under(tmp_path / "v2") == {f"sample-00{i}.png" for i in range(3)}
    assert all(Image.open(p).size == (32, 32) for p in (tmp_path / "v2").iterdir())
    assert len(sf.read(tmp_path / "rvq.wav")[0]) == 2400
    rvq = _report(models / "speech-rvq.safetensors")["prior"]
    assert rvq["entropy"]["codes_per_unit"]["codes"] == pytest.approx(2 * 8000 / 64)  # two codebooks
    tok = vqtok.load(models / "speech-rvq.safetensors")
    codes = tok.prior.sample(2, [5], None, 1.0, 0, torch.Generator().manual_seed(0))
    assert codes["codes"].shape == (2, 2, 5)  # residual codes: both codebooks at every position


# ---- Ctrl-C and resume ------------------------------------------------------------------------------------


def test_ctrl_c_saves_the_prior_and_resume_matches_an_uninterrupted_run(models, tmp_path):
    for name in ("straight", "cut"):
        (tmp_path / f"{name}.safetensors").write_bytes((models / "digits.safetensors").read_bytes())
    args = [
        "train-prior",
        "--data",
        DIGITS / "test",
        "--steps",
        40,
        "--seed",
        2,
        *TINY_PRIOR,
        "train.checkpoint_every=1000",
        "prior.eval_every=4",
    ]
    ok(run_cli(*args, "--model", tmp_path / "straight.safetensors"))
    cut = tmp_path / "cut.safetensors"
    proc = interrupt_after([*args, "--model", cut], tmp_path / "cut.prior.metrics.jsonl")
    assert proc.returncode == 130 and "--resume" in proc.stderr, proc.stderr
    assert (tmp_path / "cut.prior.ckpt.safetensors").exists()
    assert 5 <= _report(cut)["prior"]["training"]["steps"] < 40
    ok(run_cli(*args, "--model", cut, "--resume"))
    assert not (tmp_path / "cut.prior.ckpt.safetensors").exists()
    logs = [(tmp_path / f"{n}.prior.metrics.jsonl").read_text().splitlines() for n in ("straight", "cut")]
    losses = [{r["step"]: r["loss"] for r in map(json.loads, log)} for log in logs]
    assert sorted(losses[0]) == sorted(losses[1]) == list(range(1, 41))
    assert all(abs(losses[0][s] - losses[1][s]) <= 1e-5 * max(1.0, losses[0][s]) for s in losses[0])
    # held-out bits every 4 steps; the weights with the lowest are kept, across the interruption too
    valid = [json.loads(line).get("valid_bits") for line in logs[0]]
    assert all((v is not None) == (step % 4 == 0) for step, v in enumerate(valid, start=1))
    best = min(v for v in valid if v is not None)
    priors = [_report(tmp_path / f"{n}.safetensors")["prior"] for n in ("straight", "cut")]
    for prior in priors:
        assert prior["entropy"]["bits_per_code"]["prior"]["codes"] == pytest.approx(best, abs=1e-4)
        assert prior["training"]["kept"]["step"] == 4 * (1 + valid[3::4].index(best))


# ---- bad input ----------------------------------------------------------------------------------------------


def test_bad_prior_input_is_a_clear_error_and_writes_nothing(models, tmp_path):
    other = tmp_path / "other-prior.safetensors"
    broken = tmp_path / "broken-prior.safetensors"
    broken.write_bytes((models / "speech-prior.safetensors").read_bytes()[:500])
    digits, speech, vae = (models / f"{n}.safetensors" for n in ("digits", "speech", "vae"))
    out = tmp_path / "out"
    cases = {
        "vae": (
            ["train-prior", "--model", vae, "--data", SAMPLES / "images", "-o", other],
            2,
            "needs a model with discrete codes",
        ),
        "no data": (["train-prior", "--model", speech, "-o", other], 2, "no data"),
        "label on unconditional": (
            ["sample", "--model", speech, "--prior", models / "speech-prior.safetensors", "--label", "3", "-o", out],
            2,
            "not class-conditional",
        ),
        "unknown label": (["sample", "--model", digits, "--label", "eleven", "-o", out], 2, "known labels: 0, 1, 2"),
        "prior of another model": (
            ["sample", "--model", digits, "--prior", models / "speech-prior.safetensors", "-o", out],
            1,
            "not for this model",
        ),
        "model as prior": (["sample", "--model", speech, "--prior", digits, "-o", out], 1, "not a vqtok prior file"),
        "truncated prior": (
            ["sample", "--model", speech, "--prior", broken, "-o", out],
            1,
            "not a readable safetensors",
        ),
        "no prior yet": (["sample", "--model", speech, "-o", out], 1, "vqtok train-prior"),
        "top-k on a vae": (["sample", "--model", vae, "--top-k", 3, "-o", out], 2, "--top-k applies"),
        "unknown prior key": (
            ["train-prior", "--model", speech, "--data", SAMPLES / "speech", "prior.depth=3", "-o", other],
            2,
            "known keys of [prior]",
        ),
        "valid without classes": (
            ["train-prior", "--model", digits, "--data", DIGITS / "train", "--valid", SAMPLES / "images", "-o", other],
            2,
            "not in a folder of one of the training",
        ),
        "bad prior value": (
            ["train-prior", "--model", speech, "--data", SAMPLES / "speech", "prior.labels=maybe", "-o", other],
            2,
            "prior.labels must be",
        ),
    }
    results = run_parallel(None, {name: (args, {}) for name, (args, _, _) in cases.items()})
    for name, (_, code, message) in cases.items():
        proc = results[name]
        assert proc.returncode == code, (name, proc.returncode, proc.stderr)
        assert message in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, name
    assert not out.exists() and not other.exists()


def test_a_prior_learns_from_whole_photos_when_the_model_takes_any_size(image_model):
    """A model trained on random crops encodes photos whole, so its prior learns from the codes `vqtok encode`
    writes; a "fit" model's prior from each photo resized to ``image.size``, as it was trained."""
    import dataclasses

    from rich.console import Console

    from vqtok.prior.data import CodeSet

    files = sorted((SAMPLES / "images").glob("*.png"))[:3]
    tok = vqtok.load(image_model)
    labels = torch.full((len(files),), -1)
    fitted = CodeSet.encode(tok, files, labels, Console(quiet=True))
    grid = tok.config.options.size // tok.hop
    assert [tuple(item["codes"].shape[1:]) for item in fitted.items] == [(grid, grid)] * len(files)

    tok.config = dataclasses.replace(tok.config, options=dataclasses.replace(tok.config.options, crop="random"))
    whole = CodeSet.encode(tok, files, labels, Console(quiet=True))
    for item, path in zip(whole.items, files):
        written = tok.encode_file(path).arrays["codes"]
        assert np.array_equal(item["codes"].numpy().reshape(written.shape), written)
    assert len({tuple(item["codes"].shape) for item in whole.items}) > 1  # the photos' own sizes


def test_held_out_codes_are_measured_in_tiles_that_cover_every_code_once():
    from vqtok.prior.data import CodeSet

    g = torch.Generator().manual_seed(0)
    items = [
        {"top": torch.randint(9, (1, 5, 7), generator=g), "bottom": torch.randint(9, (2, 10, 14), generator=g)},
        {"top": torch.randint(9, (1, 2, 3), generator=g), "bottom": torch.randint(9, (2, 4, 6), generator=g)},
    ]
    codes = CodeSet(items, torch.tensor([3, -1]), [])
    seen = {"top": 0, "bottom": 0}
    labels = []
    for batch, batch_labels in codes.batches(4, {"top": 8, "bottom": 4}, window=4):
        labels += batch_labels.tolist()
        for name, (c, mask) in batch.items():
            assert c.shape[-2] <= (4 if name == "bottom" else 2) and c.shape[-1] <= (4 if name == "bottom" else 2)
            seen[name] += int(mask.sum()) * c.shape[1]
    assert seen == {"top": 35 + 6, "bottom": 2 * (140 + 24)}
    assert labels == [3] * 12 + [-1] * 2  # top 5 x 7 in tiles of 2 x 2 coarse positions: 3 x 4; 2 x 3: 1 x 2
