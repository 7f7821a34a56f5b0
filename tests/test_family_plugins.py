"""Model families from third-party plugins: the ``fsq`` plugin (tests/plugins/vqtok_fsq) trains, encodes
and decodes images and audio through the real CLI; its options, a missing plugin, a family name claimed
twice and a hook that breaks the contract are clear errors. Plus the FSQ quantizer itself, in process."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SAMPLES, TEST_PLUGINS, cli_env, plugin_env, run_cli
from PIL import Image
from torch.nn import functional as F

TINY = ["model.width=8", "model.max_width=16", "model.res_blocks=1", "train.batch_size=4"]
IMAGE = ["--modality", "image", "--data", SAMPLES / "images", "image.size=32", "model.strides=[2,2]", *TINY]
AUDIO = [
    "--modality",
    "audio",
    "--data",
    SAMPLES / "speech",
    "audio.sample_rate=8000",
    "audio.segment_seconds=0.25",
    "model.strides=[2,4,8]",
    *TINY,
]
PHOTO = SAMPLES / "images" / "hubble_deep_field.jpg"  # 192 x 167: the height is no multiple of the hop
SPEECH = SAMPLES / "speech" / "at-tone-time-exactly.wav"  # 28181 samples at 8 kHz, no multiple of the hop


def train_fsq(env, out, *args, check=True):
    return run_cli("train", "--arch", "fsq", "-o", out, "--steps", 5, *args, env=env, check=check)


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def read_npz(path) -> tuple[np.ndarray, dict]:
    """The codes and the metadata of an .npz code file."""
    with np.load(path, allow_pickle=False) as f:
        return f["codes"], json.loads(str(f["meta"]))


def warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("vqtok: warning")]


def plugin_row(listing: str, plugin: str) -> list[str]:
    """The cells of ``plugin``'s row in the ``vqtok plugins`` table."""
    for line in listing.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == plugin:
            return cells[1:-1]
    raise AssertionError(f"no row for plugin {plugin!r} in:\n{listing}")


@pytest.fixture(scope="module")
def fsq_env(tmp_path_factory):
    return plugin_env(tmp_path_factory.mktemp("fsq_env"), {"fsq": "vqtok_fsq"})


@pytest.fixture(scope="module")
def image_fsq(fsq_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("image_fsq") / "fsq.safetensors"
    train_fsq(fsq_env, out, *IMAGE)
    return out


# ---- the plugin through the CLI --------------------------------------------------------------------
def test_plugins_lists_the_family_under_its_plugin(fsq_env):
    proc = run_cli("plugins", env=fsq_env)
    plugin, modalities, families, commands, package, version, module, status = plugin_row(proc.stderr, "fsq")
    assert (modalities, families, commands, package, version, module, status) == (
        "-",
        "fsq",
        "-",
        "vqtok-test-plugins",
        "1.0",
        "vqtok_fsq",
        "ok",
    )
    assert not [w for w in warnings(proc.stderr) if "fsq" in w]


def test_fsq_image_model_trains_encodes_and_decodes(fsq_env, image_fsq, tmp_path):
    log = [json.loads(line) for line in image_fsq.with_name("fsq.metrics.jsonl").read_text().splitlines()]
    final = log[-1]
    assert final["step"] == 5 and 1 <= final["perplexity0"] <= 4 * 8 * 8 and 0 < final["usage0"] <= 1
    assert "recon" in final

    table = run_cli("info", image_fsq, env=fsq_env).stderr
    assert "family" in table and " fsq " in table and "1000 entries" in table
    info = json.loads(run_cli("info", "--json", image_fsq, env=fsq_env).stdout)
    assert info["family"] == "fsq" and info["config"]["fsq"] == {"levels": [8, 5, 5, 5]}
    assert info["decode"]["latents"]["codes"]["codebook_sizes"] == [1000]
    assert info["decode"]["levels"] == [8, 5, 5, 5]

    run_cli("encode", "--model", image_fsq, PHOTO, "-o", tmp_path / "codes.npz", env=fsq_env)
    codes, meta = read_npz(tmp_path / "codes.npz")
    assert codes.dtype == np.int16 and codes.shape == (math.ceil(167 / 4), 192 // 4)
    assert 0 <= codes.min() and codes.max() < 1000 and meta["family"] == "fsq"
    run_cli("decode", "--model", image_fsq, tmp_path / "codes.npz", "-o", tmp_path / "back.png", env=fsq_env)
    assert Image.open(tmp_path / "back.png").size == Image.open(PHOTO).size

    proc = run_cli("encode", "--model", image_fsq, "--n-q", 1, PHOTO, env=fsq_env, check=False)
    assert proc.returncode == 2 and "--n-q applies to residual VQ models" in proc.stderr


def test_a_plugin_family_with_discrete_codes_gets_a_prior_and_samples(fsq_env, image_fsq, tmp_path):
    model = tmp_path / "fsq.safetensors"
    model.write_bytes(image_fsq.read_bytes())
    run_cli(
        "train-prior",
        "--model",
        model,
        "--data",
        SAMPLES / "images",
        "--steps",
        3,
        "prior.width=8",
        "prior.layers=2",
        "--batch-size",
        2,
        env=fsq_env,
    )
    info = json.loads(run_cli("info", "--json", model, env=fsq_env).stdout)
    assert info["prior"]["levels"] == ["codes"]
    assert info["prior"]["entropy"]["bits_per_code"]["uniform"]["codes"] == pytest.approx(math.log2(1000))
    run_cli("sample", "--model", model, "-n", 2, "--top-k", 50, "-o", tmp_path / "s.png", env=fsq_env)
    assert Image.open(tmp_path / "s.png").size[0] > Image.open(tmp_path / "s.png").size[1]


def test_fsq_audio_model_trains_encodes_and_decodes(fsq_env, tmp_path):
    model = tmp_path / "speech.safetensors"
    train_fsq(fsq_env, model, *AUDIO)
    run_cli("encode", "--model", model, SPEECH, "-o", tmp_path / "codes.npz", env=fsq_env)
    codes, meta = read_npz(tmp_path / "codes.npz")
    assert codes.dtype == np.int16 and codes.shape == (1, math.ceil(28181 / 64))
    assert 0 <= codes.min() and codes.max() < 1000 and meta["family"] == "fsq"
    run_cli("decode", "--model", model, tmp_path / "codes.npz", "-o", tmp_path / "back.wav", env=fsq_env)
    back = sf.info(tmp_path / "back.wav")
    assert (back.frames, back.samplerate) == (28181, 8000)


def test_levels_override_changes_the_codebook(fsq_env, tmp_path):
    model = tmp_path / "small.safetensors"
    train_fsq(fsq_env, model, *IMAGE, "fsq.levels=[4,4]")
    info = json.loads(run_cli("info", "--json", model, env=fsq_env).stdout)
    assert info["decode"]["latents"]["codes"]["codebook_sizes"] == [16]
    assert info["config"]["fsq"] == {"levels": [4, 4]} and info["decode"]["latent_dim"] == 2
    codes = load_npy(run_cli("encode", "--model", model, PHOTO, env=fsq_env).stdout)
    assert codes.dtype == np.int16 and 0 <= codes.min() and codes.max() < 16


@pytest.mark.parametrize(
    "override, says",
    [
        ("fsq.levels=[1]", "fsq.levels must be a non-empty list of integers >= 2"),
        ("fsq.levels=[4,2.5]", "fsq.levels must be int"),
        ("fsq.depth=3", "unknown key fsq.depth; known keys of [fsq]: levels"),
    ],
)
def test_a_bad_fsq_option_is_a_one_line_usage_error(fsq_env, tmp_path, override, says):
    proc = train_fsq(fsq_env, tmp_path / "m.safetensors", *IMAGE, override, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqtok: error:") and says in lines[0], proc.stderr
    assert not (tmp_path / "m.safetensors").exists()


def test_fsq_without_the_plugin_names_the_installed_families(tmp_path):
    proc = train_fsq(cli_env(), tmp_path / "m.safetensors", *IMAGE, check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "unknown model family 'fsq' (--arch)" in line and "vqtok plugins" in line
    installed = line.split("installed:")[1].split("(")[0].replace(",", " ").split()
    assert set(installed) >= {"vqvae", "vqvae2", "vae", "cvae"} and "fsq" not in installed


def test_an_fsq_table_for_another_arch_is_an_unknown_section(fsq_env, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'modality = "image"\ndata = {json.dumps(str(SAMPLES / "images"))}\n\n[fsq]\nlevels = [4, 4]\n')
    proc = run_cli(
        "train",
        "--recipe",
        recipe,
        "--arch",
        "vqvae",
        "-o",
        tmp_path / "m.safetensors",
        "--steps",
        1,
        env=fsq_env,
        check=False,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "unknown section or key 'fsq'" in line
    assert "[fsq] holds the options of model.arch 'fsq', and this run's model.arch is 'vqvae'" in line


def test_two_plugins_claiming_one_family_is_an_error_naming_both(tmp_path):
    env = plugin_env(tmp_path, {"copycat": "copycat_family"})
    proc = run_cli(
        "train", "--arch", "vqvae", *IMAGE, "-o", tmp_path / "m.safetensors", "--steps", 1, env=env, check=False
    )
    assert proc.returncode == 1
    message = proc.stderr.strip().splitlines()[-1]
    assert "model family 'vqvae' is claimed by several plugins: copycat, families" in message
    assert not (tmp_path / "m.safetensors").exists()
    listing = run_cli("plugins", env=env).stderr
    assert "conflict: model family 'vqvae' is claimed by copycat, families" in listing
    assert plugin_row(listing, "copycat")[2] == "vqvae (conflict)"
    assert "vqvae (conflict)" in plugin_row(listing, "families")[2]
    assert "vqvae2" in plugin_row(listing, "families")[2] and plugin_row(listing, "image")[-1] == "ok"


def test_a_hook_returning_a_non_family_fails_that_plugin_only(tmp_path):
    env = plugin_env(tmp_path, {"fsq": "vqtok_fsq", "notfamily": "copycat_family.not_a_family"})
    listing = run_cli("plugins", env=env).stderr
    (warning,) = warnings(listing)
    assert "'notfamily'" in warning and "TypeError" in warning and "not a named vqtok Family subclass" in warning
    assert plugin_row(listing, "notfamily")[-1].startswith("failed")
    assert plugin_row(listing, "fsq")[-1] == "ok"
    out = tmp_path / "m.safetensors"
    proc = run_cli("train", "--arch", "fsq", *IMAGE, "-o", out, "--steps", 1, env=env)
    assert len(warnings(proc.stderr)) == 1 and out.exists()


# ---- the quantizer, in process ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fsq():
    sys.path.insert(0, str(TEST_PLUGINS))
    try:
        import vqtok_fsq
    finally:
        sys.path.remove(str(TEST_PLUGINS))
    return vqtok_fsq


def make(fsq, levels, dims=2, in_channels=3, strides=(2, 2)):
    from vqtok.config import ModelConfig

    cfg = ModelConfig(arch="fsq", width=8, max_width=16, res_blocks=1, strides=list(strides))
    return fsq.FSQ(dims, in_channels, cfg, fsq.FSQOptions(list(levels)))


def mse(x_hat, x):
    return {"recon": F.mse_loss(x_hat, x)}


def test_rounding_is_straight_through(fsq):
    torch.manual_seed(0)
    model = make(fsq, [8, 5, 5, 5])
    step = model(torch.randn(2, 3, 16, 16), recon=mse)
    step.loss.backward()
    first = model.encoder.net[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    assert set(step.metrics) >= {"recon", "perplexity0", "usage0"}
    assert 1 <= step.metrics["perplexity0"] <= 2 * 4 * 4 and 0 < step.metrics["usage0"] <= 1

    z = (3 * torch.randn(2, 4, 5, 5)).requires_grad_()
    values, _ = model.quantize(z)
    half_width = torch.tensor([4, 2, 2, 2]).view(1, 4, 1, 1)
    on_grid = values.detach() * half_width
    assert torch.equal(on_grid, on_grid.round())  # the forward value is rounded ...
    values.sum().backward()
    assert (z.grad > 0).all()  # ... yet every entry has the gradient of the smooth bound


@pytest.mark.parametrize("levels", [[4, 3, 2], [8, 5, 5, 5], [7]])
def test_codes_cover_the_mixed_radix_range(fsq, levels):
    model = make(fsq, levels)
    d, size = len(levels), math.prod(levels)
    z = 2.5 * torch.randn(1, d, 200_000, generator=torch.Generator().manual_seed(0))
    values, codes = model.quantize(z)
    assert codes.shape == (1, 1, z.shape[-1]) and codes.dtype == torch.int64
    assert sorted(codes.unique().tolist()) == list(range(size))
    half_width = torch.tensor(levels).view(1, d, 1) // 2
    digits = (values * half_width).round().long() + half_width
    expected = sum(digits[:, i] * math.prod(levels[:i]) for i in range(d))
    assert torch.equal(codes[:, 0], expected)  # d_0 + L_0 * (d_1 + L_1 * (d_2 + ...))
    assert torch.equal(model.values(codes), values)
    assert int(model.quantize(torch.full((1, d, 1), -50.0))[1]) == 0
    assert int(model.quantize(torch.full((1, d, 1), 50.0))[1]) == size - 1


@pytest.mark.parametrize(
    "dims, in_channels, strides, shape", [(2, 3, (2, 2), (2, 3, 16, 24)), (1, 1, (2, 4), (2, 1, 64))]
)
def test_encode_then_decode_equals_the_eval_forward(fsq, dims, in_channels, strides, shape):
    torch.manual_seed(0)
    model = make(fsq, [7, 6], dims, in_channels, strides).eval()
    x = torch.randn(*shape)
    latents = model.encode(x)
    assert set(latents) == set(model.latents()) == {"codes"}
    assert latents["codes"].shape == (shape[0], 1, *[s // model.hop for s in shape[2:]])
    with torch.no_grad():
        x_hat = model(x, recon=mse).x_hat
    torch.testing.assert_close(model.decode(latents), x_hat, atol=1e-5, rtol=1e-5)


def test_options_are_validated(fsq):
    from vqtok.errors import UsageError

    for bad in ([], [1], [8, 0]):
        with pytest.raises(UsageError, match="fsq.levels"):
            fsq.FSQOptions(bad)
    assert fsq.FSQOptions().levels == [8, 5, 5, 5]
    with pytest.raises(UsageError, match="--n-q applies to residual VQ models"):
        make(fsq, [4, 4]).encode(torch.zeros(1, 3, 8, 8), n_q=1)


def test_a_family_written_for_hook_api_2_1_still_reads_the_old_names_with_a_deprecation_warning():
    from vqtok.config import ModelConfig
    from vqtok.models.base import LatentSpec

    cfg = ModelConfig(width=12, max_width=24)
    with pytest.warns(DeprecationWarning, match="ModelConfig.channels is now called width"):
        assert cfg.channels == 12
    with pytest.warns(DeprecationWarning, match="ModelConfig.max_channels is now called max_width"):
        assert cfg.max_channels == 24
    with pytest.warns(DeprecationWarning, match="LatentSpec.channels is now called depth"):
        assert LatentSpec(3, 4, [8, 8, 8]).channels == 3
