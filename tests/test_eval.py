"""``vqtok eval`` and ``vqtok plot`` through the real CLI: each figure of the report checked against an
independent computation through the Python API, the pictures, and bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import DIGITS, SAMPLES, files_under, ok, run_cli, run_parallel
from PIL import Image

import vqtok
from vqtok.metrics import log_mel_distance, perplexity, si_sdr


@pytest.fixture(scope="module")
def models(prior_models):
    """The digit, speech, image and residual models with their priors (see conftest.build_prior_models)."""
    return prior_models


def evaluate(*args) -> dict:
    return json.loads(ok(run_cli("eval", "--json", *args)).stdout)


def reconstructions(tok, root) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every file under ``root`` as the model sees it, and its reconstruction through encode/decode."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and tok.modality.is_supported(p))
    xs = [tok.modality.evaluation_example(p, tok.config.options) for p in files]
    ys = [tok.decode(tok.encode(x)) for x in xs]  # padded to the hop: crop back
    return xs, [y[(slice(None), *(slice(0, n) for n in x.shape[1:]))] for x, y in zip(xs, ys)]


def test_eval_of_a_vqvae_with_a_class_conditional_prior(models, tmp_path):
    model = models / "digits.safetensors"
    report = evaluate("--model", model, "--data", DIGITS / "test", "--plots", tmp_path / "plots")
    assert report["files"] == 200 and report["family"] == "vqvae"
    # The prior's bits per code equal what train-prior measured on the same held-out digits.
    info = json.loads(ok(run_cli("info", "--json", model)).stdout)
    rate = report["bitrate"]
    assert rate["bits_per_code"] == pytest.approx(info["prior"]["entropy"]["bits_per_code"]["prior"]["codes"], rel=1e-4)
    assert rate["raw"] == 49 * 6 and rate["unit"] == "bits/image"  # 7 x 7 codes of 64 entries
    assert rate["entropy_coded"] == pytest.approx(49 * rate["bits_per_code"])
    bound = report["bound"]
    assert bound["code_model"] == "prior (given the class folder)"
    assert bound["code_nats"] == pytest.approx(49 * rate["bits_per_code"] * math.log(2), rel=1e-6)
    assert bound["nll_bound_nats"] == pytest.approx(bound["recon_nats"] + bound["code_nats"])
    assert bound["bits_per_dim"] == pytest.approx(bound["nll_bound_nats"] / (784 * math.log(2)))
    # Reconstruction terms against encode/decode through the Python API.
    tok = vqtok.load(model)
    xs, ys = reconstructions(tok, DIGITS / "test")
    sse = torch.stack([(y - x).double().square().sum() for x, y in zip(xs, ys)])
    var = float(sse.sum()) / (784 * len(xs))
    assert bound["recon_sigma"] == pytest.approx(math.sqrt(var), rel=1e-4)
    assert bound["recon_nats"] == pytest.approx(
        float((392 * math.log(2 * math.pi * var) + sse / (2 * var)).mean()), rel=1e-4
    )
    assert report["quality"]["mse"] == pytest.approx(float(sse.mean()) / 784, rel=1e-4)
    assert report["quality"]["psnr_db"] == pytest.approx(
        float(torch.stack([10 * torch.log10(4 / ((y - x).square().mean())) for x, y in zip(xs, ys)]).mean()), rel=1e-4
    )
    counts = np.bincount(np.concatenate([tok.encode(x).ravel() for x in xs]), minlength=64)
    (codebook,) = report["codebooks"]["codes"]
    assert codebook["perplexity"] == pytest.approx(perplexity(torch.from_numpy(counts)), rel=1e-9)
    assert codebook["used"] == pytest.approx((counts > 0).mean())
    # Pictures: originals above reconstructions, and the code usage.
    assert sorted(files_under(tmp_path / "plots")) == ["code-usage.png", "reconstructions.png"]
    grid = Image.open(tmp_path / "plots" / "reconstructions.png")
    assert grid.size[1] >= 2 * 28 and grid.size[0] >= 8 * 28
    assert min(Image.open(tmp_path / "plots" / "code-usage.png").size) > 200


def test_a_conditional_prior_measures_unlabelled_files_under_the_mixture_of_its_classes(models, tmp_path):
    """Without class folders the codes cost -log (1/C sum_c p(codes | c)): at most log C nats more than
    given the right class (and less when another class explains a digit's codes better)."""
    flat, labelled = tmp_path / "flat", tmp_path / "labelled"
    for digit in range(10):
        for path in sorted((DIGITS / "test" / str(digit)).iterdir())[:2]:
            (labelled / str(digit)).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, labelled / str(digit) / path.name)
            flat.mkdir(exist_ok=True)
            shutil.copy(path, flat / f"{digit}-{path.name}")
    model = models / "digits.safetensors"
    runs = run_parallel(
        None,
        {
            name: (["eval", "--json", "--model", model, "--data", folder], {})
            for name, folder in (("flat", flat), ("labelled", labelled))
        },
    )
    mixture, given = (json.loads(ok(runs[n]).stdout)["bound"] for n in ("flat", "labelled"))
    assert mixture["code_model"] == "prior (mixture over its classes)"
    assert mixture["code_nats"] <= given["code_nats"] + math.log(10)
    assert mixture["code_nats"] != pytest.approx(given["code_nats"], abs=0.1)
    assert mixture["recon_nats"] == pytest.approx(given["recon_nats"])


def test_without_a_prior_every_code_costs_log_k(image_model):
    report = evaluate("--model", image_model, "--data", SAMPLES / "images")
    assert report["bound"]["code_model"] == "uniform"
    assert report["bound"]["code_nats"] == pytest.approx(8 * 8 * math.log(64), rel=1e-9)  # 32 x 32 / hop 4
    assert report["bitrate"] == {"unit": "bits/image", "raw": 8 * 8 * 6}


def test_eval_of_a_vae_gives_the_elbo_and_the_importance_sampled_nll(models):
    model, data = models / "vae.safetensors", SAMPLES / "images"
    one = evaluate("--model", model, "--data", data, "--iw-samples", 1)["likelihood"]
    assert one["nll_nats"] == pytest.approx(-one["elbo_nats"], abs=1e-3)  # one sample: the same estimate
    report = evaluate("--model", model, "--data", data, "-k", 20)
    many = report["likelihood"]
    assert many["iw_samples"] == 20 and many["likelihood"] == "gaussian" and not many["binarized"]
    assert many["nll_nats"] < -many["elbo_nats"]  # log mean exp >= mean log, on the same samples
    dims = report["input_elements"]
    assert many["nll_bits_per_dim"] == pytest.approx(many["nll_nats"] * report["files"] / (dims * math.log(2)))
    assert 0 < many["nll_stderr_nats"] < many["nll_nats"]
    assert list(many["nll_nats_by_k"]) == ["2", "20"] and many["nll_nats_by_k"]["20"] == many["nll_nats"]
    two = evaluate("--model", model, "--data", data, "-k", 2)["likelihood"]  # one batch: the same first draws
    assert many["nll_nats_by_k"]["2"] == pytest.approx(two["nll_nats"], abs=1e-4)
    assert "bound" not in report and "codebooks" not in report and "mse" in report["quality"]


def test_eval_of_speech_reports_the_audio_metrics_and_draws_them(audio_model, tmp_path):
    report = evaluate("--model", audio_model, "--data", SAMPLES / "speech", "--plots", tmp_path / "plots")
    tok = vqtok.load(audio_model)
    xs, ys = reconstructions(tok, SAMPLES / "speech")
    assert report["quality"]["si_sdr_db"] == pytest.approx(
        float(torch.stack([si_sdr(y[None], x[None])[0] for x, y in zip(xs, ys)]).mean()), abs=1e-3
    )
    assert report["quality"]["log_mel_distance_db"] == pytest.approx(
        float(torch.stack([log_mel_distance(y[None], x[None], 8000)[0] for x, y in zip(xs, ys)]).mean()), abs=1e-3
    )
    assert report["quality"]["mr_stft"] > 0
    assert report["bitrate"] == {"unit": "bit/s", "raw": 125 * 6}  # 8 kHz / hop 64, codes of 64
    assert sorted(files_under(tmp_path / "plots")) == ["code-usage.png", "spectrograms.png", "waveforms.png"]
    for name in ("spectrograms.png", "waveforms.png"):
        assert min(Image.open(tmp_path / "plots" / name).size) > 300


def test_eval_of_residual_and_two_level_models_with_their_priors(models):
    rvq, v2 = models / "speech-rvq.safetensors", models / "speech.safetensors"
    runs = run_parallel(
        None,
        {
            "all": (["eval", "--json", "--model", rvq, "--data", SAMPLES / "speech"], {}),
            "first": (["eval", "--json", "--model", rvq, "--data", SAMPLES / "speech", "--n-q", 1], {}),
            "v2": (
                [
                    "eval",
                    "--json",
                    "--model",
                    v2,
                    "--prior",
                    models / "speech-prior.safetensors",
                    "--data",
                    SAMPLES / "speech",
                ],
                {},
            ),
        },
    )
    every, first, v2 = (json.loads(ok(runs[n]).stdout) for n in ("all", "first", "v2"))
    assert every["bitrate"]["raw"] == 2 * 750 and first["bitrate"]["raw"] == 750 and first["n_q"] == 1
    assert len(every["codebooks"]["codes"]) == 2 and len(first["codebooks"]["codes"]) == 1
    assert every["bitrate"]["entropy_coded"] > 0 and every["bound"]["code_model"] == "prior"
    assert "entropy_coded" not in first["bitrate"] and first["bound"]["code_model"].startswith("uniform")
    assert set(v2["codebooks"]) == {"top", "bottom"} and v2["bound"]["code_model"] == "prior"
    assert v2["bitrate"]["raw"] == pytest.approx(125 * 6 + 62.5 * 6)


def test_bad_eval_input_is_a_clear_error_and_writes_nothing(models, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLES / "images", data)
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("x")
    cvae = tmp_path / "cvae.safetensors"
    ok(
        run_cli(
            "train",
            "--modality",
            "image",
            "--arch",
            "cvae",
            "--data",
            DIGITS / "train",
            "-o",
            cvae,
            "--steps",
            1,
            "image.size=16",
            "image.channels=1",
            "model.width=8",
            "model.latent_dim=4",
        )
    )
    image, rvq = models / "images-v2.safetensors", models / "speech-rvq.safetensors"
    cases = {
        "broken file": (["--model", image, "--data", data, "--plots", tmp_path / "plots"], 1, "broken.png"),
        "no files": (["--model", image, "--data", tmp_path / "empty"], 1, "empty folder"),
        "zero samples": (
            ["--model", models / "vae.safetensors", "--data", SAMPLES / "images", "-k", 0],
            2,
            "--iw-samples",
        ),
        "plots is a file": (
            ["--model", image, "--data", SAMPLES / "images", "--plots", tmp_path / "a-file"],
            2,
            "not a folder",
        ),
        "n_q too large": (["--model", rvq, "--data", SAMPLES / "speech", "--n-q", 3], 2, "use 1 to 2"),
        "cvae without classes": (["--model", cvae, "--data", SAMPLES / "images"], 2, "sub-folder"),
        "prior of another model": (
            ["--model", image, "--prior", models / "speech-prior.safetensors", "--data", SAMPLES / "images"],
            1,
            "model",
        ),
    }
    runs = run_parallel(None, {name: (["eval", "--json", *args], {}) for name, (args, _, _) in cases.items()})
    for name, (_, code, message) in cases.items():
        proc = runs[name]
        assert proc.returncode == code, (name, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert proc.stdout == b"", name
    assert not (tmp_path / "plots").exists()


def test_plot_draws_training_curves_and_refuses_bad_logs(models, tmp_path):
    prior_log, model_log = models / "digits.prior.metrics.jsonl", models / "digits.metrics.jsonl"
    proc = ok(run_cli("plot", prior_log, "-o", tmp_path / "prior.png"))
    assert "bits" in proc.stderr and "loss" in proc.stderr
    assert min(Image.open(tmp_path / "prior.png").size) > 300
    ok(run_cli("plot", prior_log, model_log, "--metrics", "loss", "-o", tmp_path / "both.png"))
    assert Image.open(tmp_path / "both.png").size[0] > 300
    (tmp_path / "bad.jsonl").write_text('{"step": 1, "loss": 2}\nnot json\n')
    cases = {
        "unknown metric": ([prior_log, "--metrics", "nope", "-o", tmp_path / "x.png"], 1, "bits"),
        "broken line": ([tmp_path / "bad.jsonl", "-o", tmp_path / "x.png"], 1, "bad.jsonl:2"),
        "missing log": ([tmp_path / "none.jsonl", "-o", tmp_path / "x.png"], 1, "none.jsonl"),
        "not png": ([prior_log, "-o", tmp_path / "x.jpg"], 2, ".png"),
    }
    runs = run_parallel(None, {name: (["plot", *args], {}) for name, (args, _, _) in cases.items()})
    for name, (_, code, message) in cases.items():
        assert runs[name].returncode == code and message in runs[name].stderr, (name, runs[name].stderr)
        assert "Traceback" not in runs[name].stderr
    assert sorted(files_under(tmp_path)) == ["bad.jsonl", "both.png", "prior.png"]


def test_eval_of_a_single_audio_file_at_another_sample_rate(audio_model, tmp_path):
    """One file is a data set too; a 16 kHz file is resampled to the model's 8 kHz like in encode."""
    x, rate = sf.read(sorted((SAMPLES / "speech").glob("*.wav"))[0], dtype="float32")
    wav = tmp_path / "one.wav"
    sf.write(wav, np.repeat(x, 2), rate * 2)
    report = evaluate("--model", audio_model, "--data", wav)
    assert report["files"] == 1 and math.isfinite(report["quality"]["si_sdr_db"])
