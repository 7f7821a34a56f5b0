"""``vqtok compress`` / ``decompress``: the codes come back exactly, in about the bits the prior predicts,
across processes and thread counts; a damaged, foreign or future .vqz is a clear error and writes nothing."""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from conftest import DIGITS, SAMPLES, cli_env, ok, run_cli, run_cli_here

import vqtok
from vqtok.codec.compression import Codec, unigram_masses
from vqtok.errors import VqtokError
from vqtok.files.vqz import container_bytes, parse_container

SPEECH = SAMPLES / "speech" / "auth-incorrect.wav"
PHOTO = SAMPLES / "images" / "coffee.png"


@pytest.fixture(scope="module")
def models(prior_models):
    """Trained models with priors (conftest.build_prior_models)."""
    return prior_models


def _round_trip(tok, path, n_q=None):
    """Encode ``path``, compress, serialize, parse, decompress: (codes, container, codes back, meta back)."""
    cf = tok.encode_file(path, n_q)
    codes = tok.from_file_arrays(cf, str(path))
    box = Codec(tok).compress(codes, cf.meta)
    back, meta = Codec(tok).decompress(parse_container(container_bytes(box), "x.vqz"), "x.vqz")
    assert meta == cf.meta
    return codes, box, back


@pytest.mark.parametrize(
    "model,prior,data",
    [
        ("speech.safetensors", "speech-prior.safetensors", SPEECH),  # two levels, 1-D, prior in its own file
        ("images-v2.safetensors", None, PHOTO),  # two levels, 2-D
        ("speech-rvq.safetensors", None, SPEECH),  # two residual codebooks
    ],
)
def test_codes_come_back_exactly_in_the_bits_the_prior_predicts(models, model, prior, data):
    tok = vqtok.load(models / model, prior=models / prior if prior else None)
    codes, box, back = _round_trip(tok, data)
    assert set(back) == set(codes) and all(torch.equal(back[k], codes[k]) for k in codes)
    assert box.header["coder"] == "prior"
    coded = 8 * sum(map(len, box.chunks))
    expected = Codec(tok).estimated_bits(codes)
    # the range coder ends each chunk on a 32-bit word and the masses are rounded: a little over -log2 p
    assert expected <= coded <= 1.02 * expected + 64 * len(box.chunks), (coded, expected)


def test_class_conditional_prior_codes_with_the_best_label_and_fewer_bits_than_raw(models):
    tok = vqtok.load(models / "digits.safetensors")
    path = next((DIGITS / "test" / "7").iterdir())
    codes, box, back = _round_trip(tok, path)
    assert torch.equal(back["codes"], codes["codes"])
    assert box.header["label"] in range(10)
    raw = codes["codes"].numel() * 6  # 64 entries: 6 bits a code
    assert 8 * sum(map(len, box.chunks)) < raw


def test_fewer_codebooks_than_the_prior_models_are_coded_with_the_models_code_counts(models):
    tok = vqtok.load(models / "speech-rvq.safetensors")
    codes, box, back = _round_trip(tok, SPEECH, n_q=1)
    assert box.header["coder"] == "unigram" and torch.equal(back["codes"], codes["codes"])
    masses = unigram_masses(tok.model.code_counts()["codes"][0])
    expected = float(-np.log2(masses[codes["codes"][0].numpy()] / masses.sum()).sum())
    coded = 8 * sum(map(len, box.chunks))
    assert expected <= coded <= 1.02 * expected + 64 * len(box.chunks), (coded, expected)


def test_a_family_without_code_counts_is_coded_at_log2_k_and_a_unigram_file_needs_the_counts(models, monkeypatch):
    tok = vqtok.load(models / "speech-rvq.safetensors")
    unigram = _round_trip(tok, SPEECH, n_q=1)[1]
    monkeypatch.setattr(type(tok.model), "code_counts", lambda self: None)
    codes, box, back = _round_trip(tok, SPEECH, n_q=1)
    assert box.header["coder"] == "uniform" and torch.equal(back["codes"], codes["codes"])
    raw = codes["codes"].numel() * math.log2(tok.specs["codes"].codebook_sizes[0])
    assert 8 * sum(map(len, box.chunks)) <= raw + 64 * len(box.chunks)
    with pytest.raises(VqtokError, match="coded unigram"):
        Codec(tok).decompress(unigram, "x.vqz")


def test_shipped_speech_default_round_trips_across_processes_and_thread_counts(tmp_path):
    """Compress with one thread in one process, decompress with two in another: the same codes as encode."""
    wav = tmp_path / "talk.wav"
    wav.write_bytes(SPEECH.read_bytes())
    ok(run_cli("compress", wav, "-o", tmp_path / "talk.vqz", env=cli_env({"OMP_NUM_THREADS": "1"})))
    two = cli_env({"OMP_NUM_THREADS": "2"})
    ok(run_cli("decompress", tmp_path / "talk.vqz", "--codes", "-o", tmp_path / "back.npz", env=two))
    ok(run_cli("encode", wav, "-o", tmp_path / "direct.npz", env=two))
    assert (tmp_path / "back.npz").read_bytes() == (tmp_path / "direct.npz").read_bytes()
    assert (tmp_path / "talk.vqz").stat().st_size < (tmp_path / "direct.npz").stat().st_size


def test_shipped_photo_and_digit_defaults_decompress_to_what_decode_gives(tmp_path):
    digit = next((DIGITS / "test" / "3").iterdir())
    for name, src, model in [("photo", PHOTO, "@image"), ("digit", digit, "@digits")]:
        vqz, out, direct = tmp_path / f"{name}.vqz", tmp_path / f"{name}.png", tmp_path / f"{name}-direct.png"
        ok(run_cli_here("compress", src, "--model", model, "-o", vqz))
        ok(run_cli_here("decompress", vqz, "-o", out))  # the .vqz names the shipped model
        ok(run_cli_here("encode", src, "--model", model, "-o", tmp_path / f"{name}.npz"))
        ok(run_cli_here("decode", tmp_path / f"{name}.npz", "--model", model, "-o", direct))
        assert out.read_bytes() == direct.read_bytes()


def test_a_folder_compresses_file_by_file_and_names_the_bad_one(models, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i, path in enumerate(sorted((DIGITS / "test" / "1").iterdir())[:2]):
        (src / ("sub" if i else "") / path.name).write_bytes(path.read_bytes())
    (src / "broken.png").write_bytes(b"not a png")
    proc = run_cli_here("compress", src, "--model", models / "digits.safetensors", "-o", tmp_path / "out")
    said = proc.stderr.replace("\n", "")  # the console may wrap long paths anywhere
    assert proc.returncode == 1 and "broken.png: not an image" in said and "1 failed" in said, proc.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.vqz"))
    assert len(written) == 2 and any(w.startswith("sub/") for w in written)
    ok(run_cli_here("decompress", tmp_path / "out", "--model", models / "digits.safetensors", "-o", tmp_path / "png"))
    assert len(list((tmp_path / "png").rglob("*.png"))) == 2


def _corrupt(data: bytes, how: str) -> bytes:
    header_len = struct.unpack_from("<I", data, 6)[0]
    if how == "truncated":
        return data[:-7]
    if how == "payload byte":
        return data[:-3] + bytes([data[-3] ^ 0x10]) + data[-2:]
    if how == "header byte":
        at = 10 + header_len // 2
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
    if how == "future version":
        return data[:4] + struct.pack("<H", 9) + data[6:]
    return b"RIFF" + data[4:]  # not a .vqz


@pytest.mark.parametrize(
    "how,message",
    [
        ("truncated", "truncated"),
        ("payload byte", "chunk 1 of 1 is damaged"),
        ("header byte", "header is damaged"),
        ("future version", "newer than this vqtok reads"),
        ("not a vqz", "not a .vqz file"),
    ],
)
def test_a_damaged_or_future_vqz_is_refused_and_nothing_is_written(models, tmp_path, how, message):
    digits = models / "digits.safetensors"
    good = tmp_path / "good.vqz"
    ok(run_cli_here("compress", next((DIGITS / "test" / "5").iterdir()), "--model", digits, "-o", good))
    bad = tmp_path / "bad.vqz"
    bad.write_bytes(_corrupt(good.read_bytes(), how))
    proc = run_cli_here("decompress", bad, "--model", digits, "-o", tmp_path / "out.png")
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vqz", "good.vqz"]


def test_the_header_is_deflated_with_the_format_dictionary_and_version_1_files_still_read(models):
    tok = vqtok.load(models / "digits.safetensors")
    cf = tok.encode_file(next((DIGITS / "test" / "5").iterdir()))
    codes = tok.from_file_arrays(cf, "digit")
    data = container_bytes(Codec(tok).compress(codes, cf.meta))
    header = parse_container(data, "x.vqz").header
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    stored = struct.unpack_from("<I", data, 6)[0]
    assert struct.unpack_from("<H", data, 4)[0] == 2 and stored < len(text) / 2, (stored, len(text))
    # the same file as version 1 wrote it: the JSON as it is
    chunks = data[10 + stored + 4 :]
    old = b"".join([data[:4], struct.pack("<HI", 1, len(text)), text, struct.pack("<I", zlib.crc32(text)), chunks])
    back, meta = Codec(tok).decompress(parse_container(old, "old.vqz"), "old.vqz")
    assert torch.equal(back["codes"], codes["codes"]) and meta == cf.meta


def test_foreign_model_out_of_range_codes_and_overwriting_the_input_are_refused(models, tmp_path):
    digits, other = models / "digits.safetensors", models / "images-v2.safetensors"
    vqz = tmp_path / "d.vqz"
    ok(run_cli_here("compress", next((DIGITS / "test" / "2").iterdir()), "--model", digits, "-o", vqz))
    cases = {
        "another model": (["decompress", vqz, "--model", other, "-o", tmp_path / "x.png"], "compressed with model"),
        "onto itself": (["decompress", vqz, "--model", digits, "--codes", "-o", vqz], "overwrite its input"),
        "no model": (["decompress", vqz, "-o", tmp_path / "x.png"], "not a shipped one"),
        "out of range": (
            ["compress", tmp_path / "big.npy", "--model", digits, "-o", tmp_path / "big.vqz"],
            "lies outside",
        ),
        "neither media nor codes": (
            ["compress", tmp_path / "notes.txt", "--model", digits, "-o", tmp_path / "notes.vqz"],
            "nor a code file (.npy/.npz)",
        ),
    }
    np.save(tmp_path / "big.npy", np.full((7, 7), 999, dtype=np.int16))
    (tmp_path / "notes.txt").write_text("not an image")
    before = sorted(p.name for p in tmp_path.iterdir())
    for what, (args, message) in cases.items():
        proc = run_cli_here(*args)
        assert proc.returncode != 0 and message in proc.stderr, (what, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_header_without_what_compress_writes_is_refused(models):
    from vqtok.errors import VqtokError
    from vqtok.files.vqz import Container

    tok = vqtok.load(models / "digits.safetensors")
    path = next((DIGITS / "test" / "4").iterdir())
    cf = tok.encode_file(path)
    box = Codec(tok).compress(tok.from_file_arrays(cf, str(path)), cf.meta)
    for damage in ({"window": None}, {"shapes": 7}, {"label": 99}, {"coder": "zip"}):
        header = {**box.header, **damage}  # a well-formed container (its CRCs fit) with a wrong header
        data = container_bytes(Container(header, box.chunks))
        with pytest.raises(VqtokError, match="damaged|do not fit"):
            Codec(tok).decompress(parse_container(data, "x.vqz"), "x.vqz")


def test_info_reads_a_vqz_header_without_the_model(models, tmp_path):
    import json

    vqz = tmp_path / "d.vqz"
    ok(
        run_cli_here(
            "compress", next((DIGITS / "test" / "6").iterdir()), "--model", models / "digits.safetensors", "-o", vqz
        )
    )
    facts = json.loads(ok(run_cli_here("info", "--json", vqz)).stdout)
    assert (
        facts["bytes"] == vqz.stat().st_size and facts["coder"] == "prior" and facts["shapes"] == {"codes": [1, 7, 7]}
    )
    assert facts["bits_per_pixel"] == pytest.approx(8 * vqz.stat().st_size / (28 * 28))
    assert "coded" in ok(run_cli_here("info", vqz)).stderr
