"""train.channels_last and train.compile change how fast a run goes, never what it learns or stores."""

from __future__ import annotations

import torch
from conftest import SAMPLES, TINY_IMAGE, run_cli

from vqtok import config
from vqtok.files.model import read_model
from vqtok.plugin.families import build_model
from vqtok.plugin.registry import get_modality
from vqtok.train.speed import compile_networks, wants_channels_last


def test_compile_picks_the_conv_networks_and_keeps_the_state_dict_names():
    cfg = config.resolve(
        {"modality": "image", "model": {"arch": "vqvae2", "width": 8, "max_width": 16}}, get_modality=get_modality
    )
    model = build_model(cfg, get_modality("image"), [])
    names = list(model.state_dict())
    compiled = compile_networks(model)
    assert sorted(compiled) == ["bottom_encoder", "decoder", "top_decoder", "top_encoder"]  # no quantizer
    assert list(model.state_dict()) == names  # checkpoints and model files look the same


def test_channels_last_is_chosen_for_2d_nets_on_cuda_only():
    image = build_model(config.resolve({"modality": "image"}, get_modality=get_modality), get_modality("image"), [])
    audio = build_model(config.resolve({"modality": "audio"}, get_modality=get_modality), get_modality("audio"), [])
    assert wants_channels_last("auto", torch.device("cuda"), image)
    assert not wants_channels_last("auto", torch.device("cuda"), audio)
    assert not wants_channels_last("auto", torch.device("cpu"), image)
    assert wants_channels_last(True, torch.device("cpu"), image)


def test_a_channels_last_run_trains_the_same_weights(tmp_path):
    runs = {}
    for layout in ("true", "false"):
        out = tmp_path / f"{layout}.safetensors"
        run_cli(
            "train",
            "--modality",
            "image",
            "--data",
            SAMPLES / "images",
            "-o",
            out,
            "--steps",
            4,
            *TINY_IMAGE,
            f"train.channels_last={layout}",
            "train.workers=0",
        )
        runs[layout] = read_model(out).section("model")
    for name, t in runs["false"].items():
        assert torch.allclose(runs["true"][name].float(), t.float(), atol=1e-4, rtol=1e-3), name
    assert read_model(tmp_path / "true.safetensors").meta["config"]["train"]["channels_last"] is True
