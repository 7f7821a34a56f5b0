"""Checks that need a CUDA GPU, run by ``bench/gpu_check.sh`` on a GPU machine (the CPU test suite in
``tests/`` cannot run them): the shipped models code the same on the GPU as on the CPU, a bf16 training
learns and keeps its codebooks float32, a prior trains, and torchrun runs over NCCL.

    python -m pytest bench/gpu -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import vqtok
from vqtok.files.model import read_model

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "vqtok" / "samples"
TINY_IMAGE = [
    "image.size=32",
    "model.strides=[2,2]",
    "model.width=16",
    "model.max_width=32",
    "model.latent_dim=8",
    "model.codebook_size=64",
    "train.batch_size=16",
    "train.log_every=10",
]


@pytest.fixture(autouse=True, scope="module")
def cuda():
    assert torch.cuda.is_available(), "these checks need a CUDA GPU (run bench/gpu_check.sh on a GPU machine)"


def vqtok_cli(*args, launcher=(sys.executable,)) -> subprocess.CompletedProcess:
    proc = subprocess.run([*launcher, "-m", "vqtok", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize(
    "name, path",
    [("@audio", SAMPLES / "speech" / "agent-alreadyon.wav"), ("@image", SAMPLES / "images" / "chelsea.png")],
)
def test_a_shipped_model_codes_on_the_gpu_as_on_the_cpu(name, path):
    if path.suffix == ".wav":
        x = torch.from_numpy(sf.read(path, dtype="float32")[0])[None]
    else:
        x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    cpu, gpu = vqtok.load(name, device="cpu"), vqtok.load(name, device="cuda")
    with torch.no_grad():
        codes_cpu, codes_gpu = cpu.encode(x), gpu.encode(x)
        agree = float(np.mean(np.asarray(codes_cpu) == np.asarray(codes_gpu)))
        y_cpu, y_gpu = cpu.decode(codes_cpu), gpu.decode(codes_cpu).cpu()
    # cuDNN's convolutions (TF32) round differently: a few codes near a tie may flip, never many
    assert agree > 0.97, agree
    assert torch.allclose(y_cpu, y_gpu, atol=2e-2), (y_cpu - y_gpu).abs().max()


def test_a_bf16_training_on_the_gpu_learns_and_keeps_float32_codebooks(tmp_path):
    out = tmp_path / "m.safetensors"
    vqtok_cli(
        "train",
        "--modality",
        "image",
        "--data",
        SAMPLES / "images",
        "-o",
        out,
        "--steps",
        200,
        "--device",
        "cuda",
        *TINY_IMAGE,
    )
    log = [json.loads(line) for line in out.with_name("m.metrics.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.6 * log[0]["loss"], (log[0]["loss"], log[-1]["loss"])
    mf = read_model(out)
    assert mf.meta["training"]["device"].startswith("cuda") and mf.meta["config"]["train"]["amp"]
    assert mf.tensors["model.quantizer.levels.0.codebook"].dtype == torch.float32
    vqtok_cli(
        "train-prior",
        "--model",
        out,
        "--data",
        SAMPLES / "images",
        "--steps",
        50,
        "--device",
        "cuda",
        "prior.width=32",
        "prior.layers=4",
        "train.batch_size=8",
    )
    vqtok_cli("sample", "--model", out, "-n", 4, "-o", tmp_path / "samples", "--device", "cuda")
    assert len(list((tmp_path / "samples").iterdir())) == 4


def test_torchrun_over_nccl_trains_and_saves_once(tmp_path):
    out = tmp_path / "ddp.safetensors"
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node", "1"]
    if not Path(torchrun[0]).exists():
        torchrun = [sys.executable, "-m", "torch.distributed.run", *torchrun[1:]]
    vqtok_cli(
        "train",
        "--modality",
        "image",
        "--data",
        SAMPLES / "images",
        "-o",
        out,
        "--steps",
        20,
        "--device",
        "cuda",
        *TINY_IMAGE,
        launcher=torchrun,
    )
    assert read_model(out).meta["training"]["world_size"] == 1
    assert os.path.getsize(out) > 0
