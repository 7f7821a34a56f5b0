"""`vqtok export`: a model file for shipping, network and prior weights in bfloat16, codebooks float32."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
from conftest import SAMPLES, files_under, run_cli

import vqtok
from vqtok.files.model import read_model

SPEECH = SAMPLES / "speech" / "agent-alreadyon.wav"


def test_export_halves_the_file_and_keeps_the_codebooks_float32(prior_models, tmp_path):
    source = prior_models / "images-v2.safetensors"  # a vqvae2 whose prior is inside the file
    out = tmp_path / "shipped.safetensors"
    proc = run_cli("export", source, "-o", out)
    assert "bfloat16" in proc.stderr and out.name in proc.stderr
    assert out.stat().st_size < 0.6 * source.stat().st_size
    before, after = read_model(source), read_model(out)
    assert before.tensors.keys() == after.tensors.keys()
    for name, t in after.tensors.items():
        if name.endswith(".codebook") or name.endswith(".ema_count"):
            assert t.dtype == torch.float32 and torch.equal(t, before.tensors[name]), name
        elif name.endswith(".weight"):
            assert t.dtype == torch.bfloat16, name
            assert torch.equal(t, before.tensors[name].to(torch.bfloat16)), name
    assert any(k.startswith("prior.") and v.dtype == torch.bfloat16 for k, v in after.tensors.items())
    assert after.meta["export"] == {
        "dtype": "bfloat16",
        "from_model_hash": before.meta["model_hash"],
        "from_file": source.name,
    }
    assert after.meta["model_hash"] != before.meta["model_hash"]  # codes name the weights that made them
    assert "stored as" in run_cli("info", out).stderr
    run_cli("sample", "--model", out, "-n", 2, "-o", tmp_path / "samples")  # the prior in bfloat16 still samples
    assert len(files_under(tmp_path / "samples")) == 2


def test_an_exported_model_codes_and_decodes_as_the_float32_one_did(audio_model, tmp_path):
    out = tmp_path / "shipped.safetensors"
    run_cli("export", audio_model, "-o", out)
    x, rate = sf.read(SPEECH, dtype="float32")
    signal = torch.from_numpy(x)[None]  # (channels, samples)
    full, shipped = vqtok.load(audio_model), vqtok.load(out)
    assert all(p.dtype == torch.float32 for p in shipped.model.parameters())  # widened on load, computes in float32
    with torch.no_grad():
        codes_full, codes_shipped = full.encode(signal), shipped.encode(signal)
        agree = float(np.mean(codes_full == codes_shipped))
        err_full = ((full.decode(codes_full)[..., : len(x)] - signal) ** 2).mean().item()
        err_shipped = ((shipped.decode(codes_shipped)[..., : len(x)] - signal) ** 2).mean().item()
    assert agree > 0.9, agree
    assert abs(err_shipped - err_full) < 0.02 * err_full, (err_full, err_shipped)


def test_codes_of_the_float32_model_are_refused_by_its_export(audio_model, tmp_path):
    out = tmp_path / "shipped.safetensors"
    run_cli("export", audio_model, "-o", out)
    run_cli("encode", "--model", audio_model, SPEECH, "-o", tmp_path / "codes.npz")
    proc = run_cli("decode", "--model", out, tmp_path / "codes.npz", "-o", tmp_path / "back.wav", check=False)
    assert proc.returncode == 1 and "made by model" in proc.stderr and not (tmp_path / "back.wav").exists()


def test_export_refuses_a_bad_dtype_the_source_itself_and_a_broken_file(audio_model, tmp_path):
    source_bytes = audio_model.read_bytes()
    bad_dtype = run_cli("export", audio_model, "-o", tmp_path / "a.safetensors", "--dtype", "int8", check=False)
    assert bad_dtype.returncode == 2 and "bfloat16" in bad_dtype.stderr
    same = run_cli("export", audio_model, "-o", audio_model, check=False)
    assert same.returncode == 2 and "another file" in same.stderr
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(audio_model.read_bytes()[:5000])
    broken = run_cli("export", truncated, "-o", tmp_path / "b.safetensors", check=False)
    assert broken.returncode == 1 and "truncated.safetensors" in broken.stderr
    assert files_under(tmp_path) == {"truncated.safetensors"}  # nothing written
    assert audio_model.read_bytes() == source_bytes
