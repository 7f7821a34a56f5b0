"""The four families through the real CLI: every recipe, VAE latents, VQ-VAE-2 levels, sampling, bad input."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import (
    ROOT,
    SAMPLES,
    TINY_AUDIO,
    built_once,
    files_under,
    load_runs,
    ok,
    run_cli,
    run_cli_here,
    run_parallel,
    save_runs,
)
from PIL import Image

from vqtok.info import model_report

RECIPES = sorted((ROOT / "recipes").glob("*.toml"))
WAV = SAMPLES / "speech" / "demo-thanks.wav"
DIGIT = SAMPLES / "digits" / "test" / "7" / sorted(p.name for p in (SAMPLES / "digits" / "test" / "7").iterdir())[0]
PHOTO = SAMPLES / "images" / "hubble_deep_field.jpg"
FAST = ["--steps", 2, "--batch-size", 2, "train.log_every=1"]
TINY_VAE = [
    "image.size=28",
    "image.channels=1",
    "model.strides=[2,2,7]",
    "model.width=8",
    "model.max_width=16",
    "model.res_blocks=1",
    "model.latent_dim=4",
    "train.batch_size=8",
]


def _recipe(path: Path) -> dict:
    """The recipe, with the modality and [model] of the chain it starts from (a chain's later stages take
    them from the model the first stage made)."""
    recipe = tomllib.loads(path.read_text())
    if str(recipe.get("init", "")).endswith(".toml"):
        first = _recipe(path.parent / recipe["init"])
        recipe.setdefault("modality", first["modality"])
        recipe.setdefault("model", first.get("model", {}))
    return recipe


def _stage(path: Path) -> Path | None:
    """The recipe a chain recipe starts from (None for a recipe that starts from nothing)."""
    init = str(tomllib.loads(path.read_text()).get("init", ""))
    return path.parent / init if init.endswith(".toml") else None


def _input_for(recipe: dict) -> Path:
    if recipe["modality"] == "audio":
        return WAV
    return DIGIT if "digits" in recipe["data"] or "mnist" in recipe["data"] else PHOTO


def _data_args(path: Path) -> list:
    """The benchmark recipes train on bench/data (built by bench/data.py, not in a checkout): here they
    take the shipped samples of the same kind instead."""
    data = _recipe(path)["data"]
    if data.startswith("@") or (path.parent / data).exists():
        return []
    if _recipe(path)["modality"] == "audio":
        return ["--data", SAMPLES / "speech"]
    return ["--data", SAMPLES / "digits" / "train" if "mnist" in data else SAMPLES / "images"]


# ---- every recipe, a few steps, then encode, decode and info (in-process) ------------------------------------------


def _run_recipes(root: Path) -> None:
    """Train, encode and decode with every recipe through the command-line app, in this process (60
    commands: a subprocess each would spend most of the time starting Python and torch)."""

    def train(recipes: list[Path]) -> dict:
        # a chain starts from the few steps its first stage got here (its own data is not in a checkout)
        return {
            p.stem: run_cli_here(
                "train",
                "--recipe",
                p,
                "-o",
                root / f"{p.stem}.safetensors",
                *FAST,
                *_data_args(p),
                *(["--init", root / f"{_stage(p).stem}.safetensors"] if _stage(p) else []),
            )
            for p in recipes
        }

    trained = train([p for p in RECIPES if not _stage(p)])
    trained.update(train([p for p in RECIPES if _stage(p)]))
    encoded = {}
    for p in RECIPES:
        recipe, model = _recipe(p), root / f"{p.stem}.safetensors"
        label = ["--label", "7" if recipe["modality"] == "image" else "en"] if "cvae" in p.stem else []
        src = _input_for(recipe)
        encoded[f"{p.stem}/encode"] = run_cli_here(
            "encode", "--model", model, src, "-o", root / f"{p.stem}.npz", *label
        )
    decoded = {
        p.stem: run_cli_here(
            "decode",
            "--model",
            root / f"{p.stem}.safetensors",
            root / f"{p.stem}.npz",
            "-o",
            root / f"{p.stem}.out{_input_for(_recipe(p)).suffix}",
        )
        for p in RECIPES
    }
    for phase, runs in (("trained", trained), ("encoded", encoded), ("decoded", decoded)):
        save_runs(root / f"{phase}.json", runs)


@pytest.fixture(scope="module")
def recipe_runs(tmp_path_factory, worker_id):
    """Every recipe trained for 2 steps, then encode and decode (once per test run)."""
    root = built_once(tmp_path_factory, worker_id, "recipes", _run_recipes)
    return root, *(load_runs(root / f"{phase}.json") for phase in ("trained", "encoded", "decoded"))


def test_every_family_and_modality_has_a_recipe():
    pairs = {(_recipe(p)["modality"], _recipe(p).get("model", {}).get("arch", "vqvae")) for p in RECIPES}
    assert pairs >= {(m, f) for m in ("image", "audio") for f in ("vae", "cvae", "vqvae", "vqvae2")}
    for p in RECIPES:
        assert p.read_text().startswith(f"# vqtok train --recipe recipes/{p.name} "), p.name


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_encodes_decodes_and_reports(recipe_runs, recipe):
    root, trained, encoded, decoded = recipe_runs
    name, spec = recipe.stem, _recipe(recipe)
    ok(trained[name])
    report = model_report(root / f"{name}.safetensors")  # what `vqtok info --json` prints (tested on its own)
    arch = spec.get("model", {}).get("arch", "vqvae")
    assert report["family"] == arch and report["modality"] == spec["modality"]
    assert report["config"]["model"] == {**report["config"]["model"], **spec.get("model", {}), "arch": arch}
    ok(encoded[f"{name}/encode"])
    with np.load(root / f"{name}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
    expected = {"vqvae": {"codes"}, "vqvae2": {"top", "bottom"}, "vae": {"mean"}, "cvae": {"mean"}}[arch]
    assert set(arrays) == expected
    for a in arrays.values():
        assert a.dtype == (np.float32 if arch in ("vae", "cvae") else np.int16)
    ok(decoded[name])
    src, out = _input_for(spec), root / f"{name}.out{_input_for(spec).suffix}"
    if spec["modality"] == "audio":
        assert sf.info(out).frames == sf.info(src).frames
    else:
        assert Image.open(out).size == Image.open(src).size


# ---- VAE: latent means as float32 .npy, per-dimension KL, active units ---------------------------------


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae")
    model = root / "vae.safetensors"
    run_cli(
        "train",
        "--modality",
        "image",
        "--arch",
        "vae",
        "--data",
        SAMPLES / "digits" / "train",
        "-o",
        model,
        "--steps",
        30,
        *TINY_VAE,
        "vae.likelihood=bernoulli",
        "vae.kl_warmup_steps=20",
        "train.log_every=5",
    )
    return model


def test_vae_logs_elbo_terms_and_kl_per_dimension(vae):
    rows = [json.loads(line) for line in vae.with_name("vae.metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    for r in rows:
        assert r["elbo"] == pytest.approx(-(r["nll_recon"] + r["kl"]), rel=1e-3, abs=1e-3)
        assert len(r["kl_per_dim"]) == 4 and sum(r["kl_per_dim"]) == pytest.approx(r["kl"], rel=1e-3, abs=1e-3)
    assert rows[0]["kl_weight"] < rows[-1]["kl_weight"] == 1.0  # warm-up


def test_vae_info_shows_active_units_and_latents(vae):
    table = ok(run_cli("info", vae)).stderr
    assert "active units" in table and "of 4" in table and "ELBO" in table
    report = json.loads(ok(run_cli("info", "--json", vae)).stdout)
    assert report["decode"]["latents"] == {"mean": {"depth": 4, "hop": 28, "codebook_sizes": None}}
    assert 0 <= report["training"]["diagnostics"]["active_units"] <= 4


def test_vae_encodes_float32_means_and_decodes_them(vae, tmp_path):
    means = tmp_path / "z.npy"
    ok(run_cli("encode", "--model", vae, DIGIT, "-o", means))
    z = np.load(means, allow_pickle=False)
    assert z.dtype == np.float32 and z.shape == (4, 1, 1)
    ok(run_cli("decode", "--model", vae, means, "-o", tmp_path / "back.png"))
    assert Image.open(tmp_path / "back.png").size == (28, 28)
    np.save(tmp_path / "moved.npy", z + 3)  # any float latent decodes: the latent space is continuous
    ok(run_cli("decode", "--model", vae, tmp_path / "moved.npy", "-o", tmp_path / "moved.png"))
    assert (
        np.asarray(Image.open(tmp_path / "moved.png")).tobytes()
        != np.asarray(Image.open(tmp_path / "back.png")).tobytes()
    )


# ---- sampling ----------------------------------------------------------------------------------------


def test_vae_samples_a_grid_and_files_reproducibly(vae, tmp_path):
    ok(run_cli("sample", "--model", vae, "-n", 6, "--seed", 1, "-o", tmp_path / "a.png"))
    ok(run_cli("sample", "--model", vae, "-n", 6, "--seed", 1, "-o", tmp_path / "b.png"))
    ok(run_cli("sample", "--model", vae, "-n", 6, "--seed", 2, "-o", tmp_path / "c.png"))
    ok(run_cli("sample", "--model", vae, "-n", 6, "--seed", 1, "--temperature", 0, "-o", tmp_path / "cold.png"))
    pixels = {k: np.asarray(Image.open(tmp_path / f"{k}.png")) for k in ("a", "b", "c", "cold")}
    assert pixels["a"].shape == (28, 6 * 28 + 5 * 2)  # one row of six, 2 px apart
    assert np.array_equal(pixels["a"], pixels["b"]) and not np.array_equal(pixels["a"], pixels["c"])
    cold = pixels["cold"]
    assert all(np.array_equal(cold[:, :28], cold[:, i * 30 : i * 30 + 28]) for i in range(6))  # z = 0 for all
    ok(run_cli("sample", "--model", vae, "-n", 3, "-o", tmp_path / "folder"))
    assert files_under(tmp_path / "folder") == {"sample-000.png", "sample-001.png", "sample-002.png"}


def test_audio_vae_samples_wav_files_of_the_asked_length(tmp_path):
    model = tmp_path / "a.safetensors"
    run_cli(
        "train",
        "--modality",
        "audio",
        "--arch",
        "vae",
        "--data",
        SAMPLES / "speech",
        "-o",
        model,
        "--steps",
        3,
        *TINY_AUDIO,
    )
    ok(run_cli("sample", "--model", model, "-n", 2, "--seconds", 0.3, "-o", tmp_path / "babble"))
    wavs = sorted((tmp_path / "babble").iterdir())
    assert [w.name for w in wavs] == ["sample-000.wav", "sample-001.wav"]
    assert all(sf.info(w).frames == 2400 and sf.info(w).samplerate == 8000 for w in wavs)
    bad = run_cli("sample", "--model", model, "-n", 2, "-o", tmp_path / "one.wav", check=False)
    assert bad.returncode == 2 and "folder" in bad.stderr and not (tmp_path / "one.wav").exists()


def test_discrete_models_say_they_need_a_prior(tmp_path, audio_model):
    proc = run_cli("sample", "--model", audio_model, "-n", 2, "-o", tmp_path / "s", check=False)
    assert proc.returncode == 1 and "prior" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()


# ---- VQ-VAE-2 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vqvae2(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqvae2")
    model = root / "v2.safetensors"
    run_cli(
        "train",
        "--modality",
        "audio",
        "--arch",
        "vqvae2",
        "--data",
        SAMPLES / "speech",
        "-o",
        model,
        "--steps",
        3,
        *TINY_AUDIO,
        "vqvae2.top_strides=[4]",
    )
    return model


def test_vqvae2_audio_codes_are_npz_with_two_rates(vqvae2, tmp_path):
    proc = ok(run_cli("encode", "--model", vqvae2, WAV))  # stdout: .npz by default, the only format for two levels
    assert proc.stdout[:4] == b"PK\x03\x04"
    (tmp_path / "c.npz").write_bytes(proc.stdout)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        top, bottom, meta = z["top"], z["bottom"], json.loads(str(z["meta"][()]))
    frames = sf.info(WAV).frames
    assert bottom.shape == (1, -(-frames // 256) * 4) and top.shape == (1, -(-frames // 256))
    assert meta["size"] == [frames] and meta["family"] == "vqvae2"
    ok(run_cli("decode", "--model", vqvae2, tmp_path / "c.npz", "-o", tmp_path / "back.wav"))
    assert sf.info(tmp_path / "back.wav").frames == frames
    report = json.loads(ok(run_cli("info", "--json", vqvae2)).stdout)
    assert report["bitrate_bps"] == pytest.approx((8000 / 64 + 8000 / 256) * np.log2(64))


# ---- bad input ---------------------------------------------------------------------------------------


def _bad_files(folder: Path, vqvae2: Path) -> None:
    folder.mkdir()
    np.save(folder / "ints.npy", np.zeros((4, 1, 1), np.int16))
    np.save(folder / "floats.npy", np.zeros((1, 20), np.float32))
    np.save(folder / "wrong-dim.npy", np.zeros((3, 1, 1), np.float32))
    np.save(folder / "nan.npy", np.full((4, 1, 1), np.nan, np.float32))
    np.savez(folder / "mismatched.npz", top=np.zeros((1, 5), np.int16), bottom=np.zeros((1, 7), np.int16))
    np.save(folder / "bottom-only.npy", np.zeros((1, 8), np.int16))
    (folder / "flat").mkdir()
    (folder / "flat" / "a.wav").symlink_to(WAV)


BAD = {  # name: (args, exit code, what the one line must mention); {vae}, {v2}, {a}, {b}, {o} are filled in
    "unknown-arch": (
        ["train", "-m", "audio", "--data", "{speech}", "--arch", "nope", "-o", "{o}/m.safetensors"],
        2,
        "vqvae2",
    ),
    "vae-option-for-vqvae": (
        ["train", "-m", "audio", "--data", "{speech}", "-o", "{o}/m.safetensors", "vae.kl_weight=2"],
        2,
        "'vae'",
    ),
    "bad-likelihood": (
        [
            "train",
            "-m",
            "image",
            "--arch",
            "vae",
            "--data",
            "{digits}",
            "-o",
            "{o}/m.safetensors",
            "vae.likelihood=poisson",
        ],
        2,
        "likelihood",
    ),
    "model-n-q-for-vqvae2": (
        ["train", "-m", "audio", "--arch", "vqvae2", "--data", "{speech}", "-o", "{o}/m.safetensors", "model.n_q=2"],
        2,
        "n_q",
    ),
    "cvae-without-labels": (
        ["train", "-m", "audio", "--arch", "cvae", "--data", "{b}/flat", "-o", "{o}/m.safetensors", "--steps", "1"],
        2,
        "sub-folder",
    ),
    "quantizer-dropout-range": (
        ["train", "-m", "audio", "--data", "{speech}", "-o", "{o}/m.safetensors", "model.quantizer_dropout=1.5"],
        2,
        "quantizer_dropout",
    ),
    "n-q-for-vae": (["encode", "--model", "{vae}", "--n-q", "1", "{digit}", "-o", "{o}/z.npy"], 2, "--n-q"),
    "label-for-vae": (["encode", "--model", "{vae}", "--label", "7", "{digit}", "-o", "{o}/z.npy"], 2, "--label"),
    "int-codes-to-vae": (["decode", "--model", "{vae}", "{b}/ints.npy", "-o", "{o}/x.png"], 1, "ints.npy"),
    "wrong-latent-dim": (["decode", "--model", "{vae}", "{b}/wrong-dim.npy", "-o", "{o}/x.png"], 1, "wrong-dim.npy"),
    "nan-latents": (["decode", "--model", "{vae}", "{b}/nan.npy", "-o", "{o}/x.png"], 1, "NaN"),
    "float-latents-to-vqvae": (["decode", "--model", "{a}", "{b}/floats.npy", "-o", "{o}/x.wav"], 1, "floats.npy"),
    "v2-to-npy": (["encode", "--model", "{v2}", "{wav}", "-o", "{o}/c.npy"], 2, ".npz"),
    "v2-bare-npy": (["decode", "--model", "{v2}", "{b}/bottom-only.npy", "-o", "{o}/x.wav"], 1, "top and bottom"),
    "v2-mismatched-levels": (
        ["decode", "--model", "{v2}", "{b}/mismatched.npz", "-o", "{o}/x.wav"],
        1,
        "do not fit together",
    ),
    "n-q-for-vqvae2": (["encode", "--model", "{v2}", "--n-q", "1", "{wav}", "-o", "{o}/c.npz"], 2, "--n-q"),
    "sample-bad-suffix": (["sample", "--model", "{vae}", "-o", "{o}/x.txt"], 2, "x.txt"),
    "sample-zero": (["sample", "--model", "{vae}", "-n", "0", "-o", "{o}/x.png"], 2, "-n"),
    "sample-seconds-for-images": (["sample", "--model", "{vae}", "--seconds", "1", "-o", "{o}/x.png"], 2, "--seconds"),
}


@pytest.fixture(scope="module")
def bad_runs(vae, vqvae2, audio_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_families")
    _bad_files(root / "inputs", vqvae2)
    fill = {
        "vae": vae,
        "v2": vqvae2,
        "a": audio_model,
        "b": root / "inputs",
        "speech": SAMPLES / "speech",
        "digits": SAMPLES / "digits" / "train",
        "digit": DIGIT,
        "wav": WAV,
    }
    calls, outs = {}, {}
    for name, (args, _, _) in BAD.items():
        outs[name] = root / "out" / name
        outs[name].mkdir(parents=True)
        calls[name] = ([a.format(**fill, o=outs[name]) for a in args], {})
    procs = run_parallel(None, calls)
    return {name: (procs[name], outs[name]) for name in BAD}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_family_input_is_one_clear_line_and_writes_nothing(bad_runs, name):
    proc, out = bad_runs[name]
    _, code, mention = BAD[name]
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqtok: error: "), proc.stderr
    assert mention in lines[0], lines[0]
    assert files_under(out) == set()


def test_cvae_refuses_unknown_or_missing_labels_with_the_known_ones(recipe_runs, tmp_path):
    root = recipe_runs[0]
    model = root / "image-cvae.safetensors"
    np.save(tmp_path / "z.npy", np.zeros((8, 1, 1), np.float32))
    calls = {
        "unknown": ["sample", "--model", model, "--label", "eleven", "-o", tmp_path / "s.png"],
        "missing": ["decode", "--model", model, tmp_path / "z.npy", "-o", tmp_path / "x.png"],
        "encode-unknown": ["encode", "--model", model, "--label", "x", DIGIT, "-o", tmp_path / "z2.npy"],
    }
    procs = run_parallel(None, {k: (v, {}) for k, v in calls.items()})
    for name, proc in procs.items():
        assert proc.returncode == 2, (name, proc.stderr)
        assert "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert files_under(tmp_path) == {"z.npy"}
    ok(run_cli("decode", "--model", model, tmp_path / "z.npy", "--label", "3", "-o", tmp_path / "x.png"))
