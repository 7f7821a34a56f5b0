"""End to end: the real ``vqtok`` CLI in subprocesses, on real files.

Every CLI call pays for importing torch, so the calls that do not depend on each other run a few at a
time (``run_parallel``) inside module fixtures, and the tests check what those calls left behind.
Bytecode goes to a cache in the test's temporary folder, so that only the first call compiles torch.
"""

from __future__ import annotations

import io
import json
import math
import os
import pty
import shutil
import subprocess
import sys
import threading
import tty
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from conftest import (
    SAMPLES,
    SUBPROCESS_TIMEOUT,
    TINY_AUDIO,
    TINY_IMAGE,
    cli_env,
    files_under,
    ok,
    run_cli_here,
    run_parallel,
)
from PIL import Image
from rich.console import Console

from vqtok.cli.model_table import _print_table
from vqtok.info import model_report
from vqtok.plugin.defaults import model_path


def _tiny(settings: list[str], key: str):
    return json.loads(next(s.split("=", 1)[1] for s in settings if s.startswith(key + "=")))


AUDIO_RATE = _tiny(TINY_AUDIO, "audio.sample_rate")  # 8000, the rate of the shipped speech
AUDIO_HOP = math.prod(_tiny(TINY_AUDIO, "model.strides"))
AUDIO_K = _tiny(TINY_AUDIO, "model.codebook_size")
IMAGE_HOP = math.prod(_tiny(TINY_IMAGE, "model.strides"))
IMAGE_SIZE = _tiny(TINY_IMAGE, "image.size")
IMAGE_K = _tiny(TINY_IMAGE, "model.codebook_size")

WAV = SAMPLES / "speech" / "demo-thanks.wav"
FLAC = SAMPLES / "speech" / "vm-opts.flac"
OGG = SAMPLES / "speech-ogg" / "demo-thanks.ogg"
JPEG = SAMPLES / "images" / "hubble_deep_field.jpg"  # 192 x 167: padded to the hop
GRAY = SAMPLES / "images" / "text.png"  # 8-bit grayscale, 192 x 74


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """``cli_env()``, with its bytecode cache warmed on the second core while the first trains a model
    (session-scoped and listed before the models in the fixtures below)."""
    env = cli_env()
    warm = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import vqtok.cli, vqtok.codec.file_io, vqtok.info, vqtok.train; "
            "from vqtok.plugin.registry import get_modality; get_modality('audio')",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield env
    warm.wait()


def npy(data: bytes) -> np.ndarray:
    assert data[:6] == b"\x93NUMPY", data[:40]
    return np.load(io.BytesIO(data), allow_pickle=False)


def npz(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"codes", "meta"}, z.files
        return z["codes"], json.loads(str(z["meta"][()]))


def model_rate_length(path: Path) -> int:
    """Samples of an audio file at the model's rate (integer rate ratios only, as in these tests)."""
    info = sf.info(str(path))
    return -(-info.frames * AUDIO_RATE // info.samplerate)


# ---- audio: encode, decode, formats, stdin, folders, determinism ------------------------------------


@pytest.fixture(scope="module")
def audio(env, audio_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("audio_cli")
    tree = d / "tree"
    for src, rel in [(WAV, "a/demo-thanks.wav"), (FLAC, "a/b/vm-opts.flac"), (OGG, "c/demo-thanks.ogg")]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tree / rel)
    (tree / "notes.txt").write_text("not audio; skipped\n")
    shutil.copy(GRAY, tree / "c" / "cover.png")
    # 16 kHz input to the 8 kHz model: resampled, 24075 frames -> 12038 samples
    t = np.arange(24075) / 16000
    tone = d / "tone16k.wav"
    sf.write(tone, 0.4 * np.sin(2 * np.pi * 440 * t) * np.minimum(1, 4 * t), 16000, subtype="PCM_16")
    (d / "existing").mkdir()
    m = ["--model", audio_model]
    env_model = {**env, "VQTOK_MODEL": str(audio_model)}
    enc = run_parallel(
        env,
        {
            "stdout": (["encode", *m, WAV], {}),
            "stdin": (["encode", *m, "-", "-o", d / "from-stdin.npy"], {"input": WAV.read_bytes()}),
            # no --model: VQTOK_MODEL; -o an existing folder: the code file goes inside it
            "env_into_folder": (["encode", WAV, "-o", d / "existing"], {"env": env_model}),
            "npz": (["encode", *m, tone, "-o", d / "tone16k.npz"], {}),
            "tree_npy": (["encode", *m, tree, "-o", d / "out-npy"], {}),
            "tree_npz": (["encode", *m, tree, "-o", d / "out-npz", "--format", "npz"], {}),
        },
    )
    for proc in enc.values():
        ok(proc)
    (d / "codes.npy").write_bytes(enc["stdout"].stdout)
    back = d / "back"
    dec = run_parallel(
        env,
        {
            "npy": (["decode", *m, d / "codes.npy", "-o", back / "from-npy.wav"], {}),
            "stdin": (["decode", *m, "-", "-o", back / "from-stdin.wav"], {"input": enc["stdout"].stdout}),
            "wav": (["decode", *m, d / "out-npz/a/demo-thanks.npz", "-o", back / "wav.wav"], {}),
            "flac": (["decode", *m, d / "out-npz/a/b/vm-opts.npz", "-o", back / "flac.flac"], {}),
            "ogg": (["decode", *m, d / "out-npz/c/demo-thanks.npz", "-o", back / "ogg.wav"], {}),
            "tone": (["decode", *m, d / "tone16k.npz", "-o", back / "tone.wav"], {}),
        },
    )
    return SimpleNamespace(dir=d, tree=tree, tone=tone, back=back, enc=enc, dec=dec)


def test_audio_stdout_codes_are_int16_n_q_by_t(audio):
    codes = npy(audio.enc["stdout"].stdout)
    assert codes.dtype == np.int16
    assert codes.shape == (1, math.ceil(model_rate_length(WAV) / AUDIO_HOP))  # 2-D although n_q = 1
    assert 0 <= codes.min() and codes.max() < AUDIO_K
    assert audio.enc["stdout"].stderr.strip() == ""  # nothing but data on stdout, no chatter on stderr


@pytest.mark.parametrize("rel, src", [("a/demo-thanks", WAV), ("a/b/vm-opts", FLAC), ("c/demo-thanks", OGG)])
def test_audio_folder_codes_of_wav_flac_and_ogg(audio, rel, src):
    codes = npy((audio.dir / "out-npy" / (rel + ".npy")).read_bytes())
    expected = (1, math.ceil(model_rate_length(src) / AUDIO_HOP))
    assert codes.dtype == np.int16 and codes.shape == expected
    z_codes, meta = npz(audio.dir / "out-npz" / (rel + ".npz"))
    np.testing.assert_array_equal(z_codes, codes)
    assert z_codes.dtype == np.int16
    assert meta["modality"] == "audio" and meta["size"] == [model_rate_length(src)]
    assert meta["sample_rate"] == AUDIO_RATE and len(meta["model_hash"]) == 16


def test_audio_folder_output_mirrors_the_tree(audio):
    names = ["a/demo-thanks", "a/b/vm-opts", "c/demo-thanks"]  # notes.txt and cover.png are not audio
    assert files_under(audio.dir / "out-npy") == {n + ".npy" for n in names} | {"manifest.jsonl"}
    assert files_under(audio.dir / "out-npz") == {n + ".npz" for n in names} | {"manifest.jsonl"}
    assert "3 code file(s)" in audio.enc["tree_npy"].stderr


def test_audio_encoding_is_deterministic_whatever_the_route(audio):
    """One file to stdout, from stdin to -o FILE, with VQTOK_MODEL to -o FOLDER, and inside a folder:
    the same bytes every time."""
    reference = audio.enc["stdout"].stdout
    assert (audio.dir / "from-stdin.npy").read_bytes() == reference
    assert (audio.dir / "existing" / "demo-thanks.npy").read_bytes() == reference
    assert (audio.dir / "out-npy" / "a" / "demo-thanks.npy").read_bytes() == reference
    assert files_under(audio.dir / "existing") == {"demo-thanks.npy", "manifest.jsonl"}


def test_audio_npz_of_a_resampled_file(audio):
    codes, meta = npz(audio.dir / "tone16k.npz")
    assert meta["size"] == [12038] and meta["sample_rate"] == AUDIO_RATE
    assert codes.shape == (1, math.ceil(12038 / AUDIO_HOP)) and codes.dtype == np.int16


def test_audio_decode_of_npy_gives_t_times_hop_samples(audio):
    ok(audio.dec["npy"])
    t = npy(audio.enc["stdout"].stdout).shape[1]
    y, rate = sf.read(audio.back / "from-npy.wav", dtype="float32")
    assert rate == AUDIO_RATE and y.shape == (t * AUDIO_HOP,)
    assert np.isfinite(y).all() and np.abs(y).max() > 0


def test_audio_decode_reads_codes_from_stdin(audio):
    ok(audio.dec["stdin"])
    assert (audio.back / "from-stdin.wav").read_bytes() == (audio.back / "from-npy.wav").read_bytes()


@pytest.mark.parametrize(
    "name, out, src",
    [("wav", "wav.wav", WAV), ("flac", "flac.flac", FLAC), ("ogg", "ogg.wav", OGG), ("tone", "tone.wav", None)],
)
def test_audio_decode_of_npz_restores_the_exact_length(audio, name, out, src):
    ok(audio.dec[name])
    info = sf.info(str(audio.back / out))
    assert info.samplerate == AUDIO_RATE and info.channels == 1
    assert info.frames == (model_rate_length(src) if src else 12038)
    assert info.format == Path(out).suffix[1:].upper()
    assert not [p for p in audio.back.iterdir() if ".partial-" in p.name]


# ---- audio longer than one chunk: the Python API, in process -------------------------------------------


@pytest.mark.parametrize("chunk_samples", [4096, 1000])
def test_chunked_audio_has_no_seams(audio_model, tmp_path, monkeypatch, chunk_samples):
    import torch

    import vqtok
    import vqtok.codec.long_inputs

    tok = vqtok.load(audio_model)
    tone = tmp_path / "tone16k.wav"  # a resampled file too: the resampler streams as well
    t = np.arange(40001) / 16000
    sf.write(tone, 0.5 * np.sin(2 * np.pi * 300 * t * (1 + t)), 16000, subtype="PCM_16")
    for path in (WAV, tone):
        whole = tok.encode(tok.modality.load(path, tok.config.options))  # one piece, no chunking
        monkeypatch.setattr(vqtok.codec.long_inputs, "CHUNK_SAMPLES", chunk_samples)
        chunk = max(1, chunk_samples // tok.hop)
        assert whole.shape[1] > 3 * chunk, "the file must span several chunks"
        cf = tok.encode_file(path)
        np.testing.assert_array_equal(cf.arrays["codes"], whole)
        tok.decode_to_file(cf, tmp_path / "chunked.wav")
        monkeypatch.undo()
        tok.decode_to_file(cf, tmp_path / "at-once.wav")  # the default chunk holds this file whole
        chunked, rate = sf.read(tmp_path / "chunked.wav", dtype="float32")
        at_once, _ = sf.read(tmp_path / "at-once.wav", dtype="float32")
        direct = tok.decode(cf)[0].clamp(-1, 1).numpy()  # the tensor API, no file, no chunks
        assert rate == AUDIO_RATE and chunked.shape == at_once.shape == direct.shape == (cf.meta["size"][0],)
        lsb = 2 / 32768  # 16-bit WAV: rounding, plus float sums in another order
        np.testing.assert_allclose(chunked, at_once, rtol=0, atol=lsb)
        np.testing.assert_allclose(chunked, direct, rtol=0, atol=lsb)
        assert float(torch.from_numpy(chunked).abs().max()) > 0


# ---- images -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(env, image_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("image_cli")
    tree = d / "tree"
    (tree / "photos").mkdir(parents=True)
    (tree / "gray").mkdir()
    with Image.open(SAMPLES / "images" / "astronaut.png") as img:
        img.crop((40, 20, 101, 65)).save(tree / "photos" / "crop.png")  # 61 x 45, odd sizes
    shutil.copy(JPEG, tree / "photos" / "hubble.jpg")
    shutil.copy(GRAY, tree / "gray" / "text.png")
    (tree / "gray" / "README").write_text("skipped\n")
    m = ["--model", image_model]
    enc = run_parallel(
        env,
        {
            "stdout": (["encode", *m, tree / "photos" / "crop.png"], {}),
            "tree_npz": (["encode", *m, tree, "-o", d / "out", "--format", "npz"], {}),
        },
    )
    for proc in enc.values():
        ok(proc)
    (d / "crop.npy").write_bytes(enc["stdout"].stdout)
    back = d / "back"
    dec = run_parallel(
        env,
        {
            "npy": (["decode", *m, d / "crop.npy", "-o", back / "crop-npy.png"], {}),
            "png": (["decode", *m, d / "out/photos/crop.npz", "-o", back / "crop.png"], {}),
            "jpeg": (["decode", *m, d / "out/photos/hubble.npz", "-o", back / "hubble.jpg"], {}),
            "gray": (["decode", *m, d / "out/gray/text.npz", "-o", back / "text.png"], {}),
        },
    )
    return SimpleNamespace(dir=d, tree=tree, back=back, enc=enc, dec=dec)


def _grid(width: int, height: int) -> tuple[int, int]:
    return math.ceil(height / IMAGE_HOP), math.ceil(width / IMAGE_HOP)


@pytest.mark.parametrize(
    "rel, size", [("photos/crop", (61, 45)), ("photos/hubble", (192, 167)), ("gray/text", (192, 74))]
)
def test_image_codes_keep_the_image_size_not_the_training_size(images, rel, size):
    assert size != (IMAGE_SIZE, IMAGE_SIZE)
    codes, meta = npz(images.dir / "out" / (rel + ".npz"))
    assert codes.dtype == np.int16 and codes.shape == _grid(*size)  # (H', W'): n_q = 1 is dropped
    assert meta["modality"] == "image" and meta["size"] == [size[1], size[0]]


def test_image_folder_output_mirrors_the_tree(images):
    assert files_under(images.dir / "out") == {
        "photos/crop.npz",
        "photos/hubble.npz",
        "gray/text.npz",
        "manifest.jsonl",
    }


def test_image_stdout_codes_equal_the_folder_codes(images):
    codes = npy(images.enc["stdout"].stdout)
    assert codes.dtype == np.int16 and codes.shape == _grid(61, 45)
    np.testing.assert_array_equal(codes, npz(images.dir / "out/photos/crop.npz")[0])


def test_image_decode_of_npy_gives_the_padded_grid(images):
    ok(images.dec["npy"])
    with Image.open(images.back / "crop-npy.png") as img:
        h, w = _grid(61, 45)
        assert img.size == (w * IMAGE_HOP, h * IMAGE_HOP) and img.mode == "RGB"


@pytest.mark.parametrize(
    "name, out, size, fmt",
    [
        ("png", "crop.png", (61, 45), "PNG"),
        ("jpeg", "hubble.jpg", (192, 167), "JPEG"),
        ("gray", "text.png", (192, 74), "PNG"),
    ],
)
def test_image_decode_of_npz_restores_the_original_size(images, name, out, size, fmt):
    ok(images.dec[name])
    with Image.open(images.back / out) as img:
        assert img.size == size and img.format == fmt and img.mode == "RGB"  # the model is RGB
        assert np.asarray(img).std() > 0


# ---- stdout to a terminal ----------------------------------------------------------------------------


def _encode_to_pty(env, model, *flags) -> tuple[subprocess.Popen, bytearray, threading.Thread]:
    """``vqtok encode`` with its stdout on a terminal (raw mode); what it writes there is collected."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # bytes as written, no newline translation
    args = [sys.executable, "-m", "vqtok", "encode", "--model", str(model), *flags, str(WAV)]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    received = bytearray()

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            received.extend(chunk)
        os.close(master)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, received, reader


def test_binary_to_a_terminal_is_refused_unless_forced(env, audio_model, audio):
    refused, refused_out, r1 = _encode_to_pty(env, audio_model)
    forced, forced_out, r2 = _encode_to_pty(env, audio_model, "-f")
    refused_err = refused.communicate(timeout=SUBPROCESS_TIMEOUT)[1].decode()
    forced_err = forced.communicate(timeout=SUBPROCESS_TIMEOUT)[1].decode()
    r1.join(10)
    r2.join(10)
    assert refused.returncode == 2, refused_err
    assert "terminal" in refused_err and "Traceback" not in refused_err
    assert len(refused_err.strip().splitlines()) == 1
    assert bytes(refused_out) == b""
    assert forced.returncode == 0, forced_err
    assert bytes(forced_out) == audio.enc["stdout"].stdout


# ---- info ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def info(env, audio_model, image_model):
    return run_parallel(
        env,
        {
            "audio_table": (["info", audio_model], {}),
            "audio_json": (["info", "--json", audio_model], {}),
            "image_table": (["info", image_model], {}),
            "image_json": (["info", "--json", image_model], {}),
        },
    )


def test_info_table_goes_to_stderr(info):
    table = ok(info["audio_table"])
    assert table.stdout == b""
    for word in ("family", "vqvae", "modality", "audio", "bitrate", f"{AUDIO_RATE} Hz", "bit/s"):
        assert word in table.stderr, word
    bits = math.log2(AUDIO_K) * AUDIO_RATE / AUDIO_HOP
    assert f"{bits:g} bit/s" in table.stderr
    image = ok(info["image_table"])
    assert image.stdout == b"" and "image" in image.stderr and f"{IMAGE_SIZE} x {IMAGE_SIZE}" in image.stderr


def test_info_table_shows_the_about_words_as_written():
    """A recipe's words may hold brackets; rich would take "[...]" for markup and drop it."""
    report = {**model_report(model_path("@digits")), "about": "grey digits [changed from the recipe: x=1]"}
    out = io.StringIO()
    _print_table(Path("digits.safetensors"), report, Console(file=out, width=400))
    assert "grey digits [changed from the recipe: x=1]" in out.getvalue()


def test_info_json_goes_to_stdout(info, audio, images):
    for name, modality, code_file in [
        ("audio_json", "audio", audio.dir / "tone16k.npz"),
        ("image_json", "image", images.dir / "out/gray/text.npz"),
    ]:
        report = json.loads(ok(info[name]).stdout)
        assert report["family"] == "vqvae" and report["modality"] == modality
        assert report["decode"]["latents"]["codes"]["codebook_sizes"] == [AUDIO_K if modality == "audio" else IMAGE_K]
        assert report["decode"]["hop"] == (AUDIO_HOP if modality == "audio" else IMAGE_HOP)
        assert report["training"]["steps"] == report["config"]["train"]["steps"] >= 1
        assert report["model_hash"] == npz(code_file)[1]["model_hash"]  # what code files name
    assert json.loads(info["audio_json"].stdout)["bitrate_bps"] == math.log2(AUDIO_K) * AUDIO_RATE / AUDIO_HOP


# ---- errors: one line, the right exit code, no traceback, nothing written ----------------------------


@dataclass
class Bad:
    args: list
    code: int  # expected exit code
    mention: str  # what the message must name
    input: bytes | None = None


def _bad_inputs(folder: Path, audio_model: Path) -> None:
    folder.mkdir()
    (folder / "text.png").write_text("this is not an image\n")
    (folder / "text.wav").write_text("this is not a sound\n")
    (folder / "truncated.wav").write_bytes(WAV.read_bytes()[:20000])
    (folder / "empty").mkdir()
    (folder / "nothing-usable" / "sub").mkdir(parents=True)
    (folder / "nothing-usable" / "notes.txt").write_text("no audio here\n")
    (folder / "nothing-usable" / "sub" / "data.csv").write_text("1,2,3\n")
    (folder / "not-a-model.safetensors").write_text("hello\n")
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(4, 4)}, str(folder / "foreign.safetensors"), metadata={"name": "x"})
    with safe_open(str(audio_model), "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    for key in ("config", "decode"):
        without = {k: v for k, v in meta.items() if k != key}
        save_file(tensors, str(folder / f"no-{key}.safetensors"), metadata=without)
    model = audio_model.read_bytes()
    (folder / "truncated.safetensors").write_bytes(model[: len(model) - 1000])  # header intact, data cut
    np.save(folder / "too-big.npy", np.full((1, 20), AUDIO_K, np.int16))  # K itself: one past the end
    np.save(folder / "three-d.npy", np.zeros((1, 4, 5), np.int16))
    np.save(folder / "no-codebooks.npy", np.zeros((0, 20), np.int16))
    meta = {"modality": "audio", "model_hash": "0123456789abcdef", "size": [1000], "sample_rate": AUDIO_RATE}
    np.savez(folder / "other-model.npz", codes=np.zeros((1, 20), np.int16), meta=np.array(json.dumps(meta)))
    meta = {"modality": "image", "model_hash": "fedcba9876543210", "size": [40, 40]}
    np.savez(folder / "image-codes.npz", codes=np.zeros((10, 10), np.int16), meta=np.array(json.dumps(meta)))
    (folder / "clash" / "x").mkdir(parents=True)
    shutil.copy(WAV, folder / "clash" / "x" / "take.wav")
    shutil.copy(FLAC, folder / "clash" / "x" / "take.flac")


def _bad_cases(b: Path, out: Path, audio_model: Path, image_model: Path) -> dict[str, Bad]:
    """The cases, reading inputs from the folder ``b`` and writing (if they wrongly did) into ``out``."""
    a, i = ["--model", audio_model], ["--model", image_model]
    train = ["train", "--modality", "audio", "--steps", 1, "-o", out / "m.safetensors", *TINY_AUDIO]
    codes = out / "codes.npy"
    return {
        "text-as-png": Bad(["encode", *i, b / "text.png", "-o", codes], 1, "text.png"),
        "missing-input": Bad(["encode", *a, b / "no-such.wav", "-o", codes], 1, "no-such.wav"),
        "text-as-wav": Bad(["encode", *a, b / "text.wav", "-o", codes], 1, "text.wav"),
        "truncated-wav": Bad(["encode", *a, b / "truncated.wav", "-o", codes], 1, "truncated.wav"),
        "text-on-stdin": Bad(["encode", *a, "-", "-o", codes], 1, "<stdin>", input=b"not a sound\n"),
        "train-empty-folder": Bad([*train, "--data", b / "empty"], 1, f"{b / 'empty'}: an empty folder"),
        "train-no-supported-files": Bad([*train, "--data", b / "nothing-usable"], 1, "nothing-usable"),
        "model-not-safetensors": Bad(
            ["encode", "--model", b / "not-a-model.safetensors", WAV, "-o", codes], 1, "not-a-model.safetensors"
        ),
        "model-without-metadata": Bad(
            ["encode", "--model", b / "foreign.safetensors", WAV, "-o", codes], 1, "foreign.safetensors"
        ),
        "model-truncated": Bad(
            ["encode", "--model", b / "truncated.safetensors", WAV, "-o", codes], 1, "truncated.safetensors"
        ),
        "model-without-config": Bad(
            ["encode", "--model", b / "no-config.safetensors", WAV, "-o", codes], 1, "no-config.safetensors"
        ),
        "info-without-decode-facts": Bad(["info", b / "no-decode.safetensors"], 1, "no-decode.safetensors"),
        "image-to-audio-model": Bad(["encode", *a, GRAY, "-o", codes], 1, "text.png"),
        "wav-to-image-model": Bad(["encode", *i, WAV, "-o", codes], 1, "demo-thanks.wav"),
        "code-out-of-range": Bad(["decode", *a, b / "too-big.npy", "-o", out / "x.wav"], 1, "too-big.npy"),
        "codes-3d-for-audio": Bad(["decode", *a, b / "three-d.npy", "-o", out / "x.wav"], 1, "three-d.npy"),
        "codes-without-codebooks": Bad(
            ["decode", *a, b / "no-codebooks.npy", "-o", out / "x.wav"], 1, "no-codebooks.npy"
        ),
        "codes-of-another-model": Bad(["decode", *a, b / "other-model.npz", "-o", out / "x.wav"], 1, "other-model.npz"),
        "image-codes-to-audio-model": Bad(
            ["decode", *a, b / "image-codes.npz", "-o", out / "x.wav"], 1, "image-codes.npz"
        ),
        "junk-codes-on-stdin": Bad(["decode", *a, "-", "-o", out / "x.wav"], 1, "<stdin>", input=b"junk\n"),
        "too-many-codebooks": Bad(["encode", *a, "--n-q", 5, WAV, "-o", codes], 2, "--n-q 5"),
        "unknown-override-key": Bad([*train, "--data", SAMPLES / "speech", "model.nope=1"], 2, "model.nope"),
        "unknown-modality": Bad(
            ["train", "--modality", "nope", "--data", SAMPLES / "speech", "-o", out / "m.safetensors"], 2, "nope"
        ),
        "unknown-output-suffix": Bad(["decode", *a, b / "too-big.npy", "-o", out / "x.xyz"], 2, "x.xyz"),
        "no-model-for-these-files": Bad(["encode", b / "too-big.npy", "-o", codes], 2, "VQTOK_MODEL"),
        "two-inputs-one-output": Bad(["encode", *a, b / "clash", "-o", out / "codes"], 2, "take.npy"),
    }


BAD_CASES = list(_bad_cases(Path("b"), Path("o"), Path("a"), Path("i")))  # the names, for parametrize


@pytest.fixture(scope="module")
def bad_runs(env, audio_model, image_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_cli")
    _bad_inputs(root / "inputs", audio_model)
    cases = {}
    for name in BAD_CASES:
        out = root / "out" / name
        out.mkdir(parents=True)
        cases[name] = (_bad_cases(root / "inputs", out, audio_model, image_model)[name], out)
    # through vqtok.cli.main in this process: its one-line errors and exit codes, without 27 torch start-ups
    procs = {name: run_cli_here(*case.args, input=case.input) for name, (case, _) in cases.items()}
    return {name: (procs[name], *cases[name]) for name in BAD_CASES}


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_is_one_clear_line_and_writes_nothing(bad_runs, name):
    proc, case, out = bad_runs[name]
    assert proc.returncode == case.code, f"exit {proc.returncode}, expected {case.code}:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vqtok: error: ") and case.mention in lines[0], lines[0]
    assert "pickle" not in lines[0] and "vqtok-stdin-" not in lines[0]
    assert proc.stdout == b""
    assert files_under(out) == set()  # no output, no .partial- leftovers
