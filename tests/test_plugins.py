"""The plugin system through the real CLI: built-ins, a broken plugin, a conflict, a third-party modality."""

from __future__ import annotations

import json
import shutil

import numpy as np
from conftest import SAMPLES, TEST_PLUGINS, TINY_IMAGE, files_under, plugin_env, run_cli


def test_builtin_plugins_are_listed_with_origin_and_status():
    err = run_cli("plugins").stderr
    for name in ("image", "audio"):
        line = next(ln for ln in err.splitlines() if f" {name} " in ln and "vqtok_" in ln)
        assert "vqtok" in line and "0.1.0" in line and "ok" in line, line
    assert "default model @audio:" in err and "speech-8k-voices.safetensors" in err and "(missing)" not in err
    assert "shipped model @digits:" in err and "mnist-vqvae.safetensors" in err


def test_broken_plugin_warns_once_and_everything_else_works(tmp_path):
    env = plugin_env(tmp_path, {"broken": "broken_plugin"})
    proc = run_cli("plugins", env=env)
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("vqtok: warning")]
    assert len(warnings) == 1 and "'broken'" in warnings[0] and "ModuleNotFoundError" in warnings[0]
    assert "failed" in proc.stderr and " image " in proc.stderr
    out = tmp_path / "m.safetensors"
    run_cli("train", "--modality", "image", "--data", SAMPLES / "images", "-o", out, "--steps", 1, *TINY_IMAGE, env=env)
    assert out.exists()


def test_two_plugins_claiming_one_modality_is_an_error_naming_both(tmp_path):
    env = plugin_env(tmp_path, {"copycat": "copycat_image"})
    proc = run_cli(
        "train",
        "--modality",
        "image",
        "--data",
        SAMPLES / "images",
        "-o",
        tmp_path / "m.safetensors",
        "--steps",
        1,
        *TINY_IMAGE,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    message = proc.stderr.strip().splitlines()[-1]
    assert "copycat" in message and "image" in message and "claimed by several plugins" in message
    assert not (tmp_path / "m.safetensors").exists()
    listing = run_cli("plugins", env=env).stderr
    assert "conflict" in listing and "audio" in listing  # the others still load


def _sensor_data(folder, n_files=6, length=600, channels=3):
    """Smooth random multichannel signals, half as .npy, half as .csv."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    t = np.arange(length)[:, None]
    for i in range(n_files):
        freq = rng.uniform(0.01, 0.05, size=channels)
        x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6, size=channels)).astype(np.float32)
        if i % 2:
            np.savetxt(folder / f"rec{i}.csv", x, delimiter=",")
        else:
            np.save(folder / f"rec{i}.npy", x)


def test_third_party_modality_trains_encodes_and_decodes_without_core_changes(tmp_path):
    env = plugin_env(tmp_path, {"sensor": "vqtok_sensor"})
    assert "sensor" in run_cli("plugins", env=env).stderr
    data = tmp_path / "recordings"
    _sensor_data(data)
    model = tmp_path / "sensor.safetensors"
    run_cli(
        "train",
        "--modality",
        "sensor",
        "--data",
        data,
        "-o",
        model,
        "--steps",
        150,
        "train.batch_size=8",
        "train.lr=3e-3",
        env=env,
    )
    no_critic = run_cli(
        "train",
        "--modality",
        "sensor",
        "--data",
        data,
        "-o",
        tmp_path / "gan.safetensors",
        "adversarial.weight=1",
        env=env,
        check=False,
    )  # the plugin offers no discriminator
    assert no_critic.returncode == 2 and "sensor modality has no discriminator" in no_critic.stderr
    assert not (tmp_path / "gan.safetensors").exists()
    codes = run_cli("encode", "--model", model, data / "rec1.csv", env=env).stdout
    np_codes = np.load(__import__("io").BytesIO(codes), allow_pickle=False)
    assert np_codes.shape == (1, 600 // 4) and np_codes.dtype == np.int16
    (tmp_path / "codes.npy").write_bytes(codes)
    run_cli("decode", "--model", model, tmp_path / "codes.npy", "-o", tmp_path / "back.csv", env=env)
    back = np.loadtxt(tmp_path / "back.csv", delimiter=",")
    original = np.loadtxt(data / "rec1.csv", delimiter=",")
    assert back.shape == original.shape
    # 30 steps already beat predicting zeros by a wide margin on these smooth signals
    assert np.mean((back - original) ** 2) < 0.5 * np.mean(original**2)
    info = run_cli("info", "--json", model, env=env).stdout
    assert b'"modality": "sensor"' in info
    proc = run_cli("eval", "--json", "--model", model, "--data", data, "--plots", tmp_path / "plots", env=env)
    quality = json.loads(proc.stdout)["quality"]  # the defaults and the plugin's own metric
    assert set(quality) == {"mse", "psnr_db", "max_abs_error"} and "max_abs_error" in proc.stderr
    assert quality["mse"] < 0.5 * 0.5 and quality["max_abs_error"] < 2  # sine power is 1/2
    assert files_under(tmp_path / "plots") == {"code-usage.png"}  # no preview offered: code usage only

    # its default model: declared, but not installed yet, then shipped with a copy of the package
    missing = run_cli("encode", data / "rec1.csv", env=env, check=False)
    assert missing.returncode == 1 and "default sensor model" in missing.stderr and not missing.stdout
    shipped = tmp_path / "site" / "vqtok_sensor"  # first on the path: this copy is what imports
    shutil.copytree(TEST_PLUGINS / "vqtok_sensor", shipped, ignore=shutil.ignore_patterns("__pycache__"))
    (shipped / "default").mkdir()
    shutil.copy(model, shipped / "default" / "sensor.safetensors")
    assert run_cli("encode", data / "rec1.csv", env=env).stdout == codes  # no --model
    assert '"modality": "sensor"' in run_cli("info", "--json", "@sensor", env=env).stdout.decode()


def test_a_bug_inside_a_plugin_is_one_line_naming_it_and_the_traceback_with_debug(tmp_path):
    env = plugin_env(tmp_path, {"sensor": "vqtok_sensor", "buggy": "buggy_sensor"})
    data = tmp_path / "data"
    _sensor_data(data)
    args = (
        "train",
        "--modality",
        "buggy",
        "--data",
        data,
        "-o",
        tmp_path / "m.safetensors",
        "--steps",
        1,
        "train.workers=0",
    )
    proc = run_cli(*args, env=env, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "ZeroDivisionError" in lines[-1] and "plugin 'buggy'" in lines[-1], lines[-1]
    debug = run_cli("--debug", *args, env=env, check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "buggy_sensor/__init__.py" in debug.stderr and "_scale" in debug.stderr  # into the plugin's code
    assert not (tmp_path / "m.safetensors").exists()


def test_a_misspelled_or_unmarked_hook_is_reported_with_the_plugins_name(tmp_path):
    env = plugin_env(tmp_path, {"typo": "misspelled_hooks"})
    proc = run_cli("plugins", env=env)
    warning = next(ln for ln in proc.stderr.splitlines() if ln.startswith("vqtok: warning"))
    assert "'typo'" in warning and "vqtok_modality is marked" in warning and "no vqtok hook" in warning
    assert "vqtok_families is not marked" in proc.stderr
    row = next(ln for ln in proc.stderr.splitlines() if " typo " in ln)
    assert "failed" in row


def test_a_plugin_adds_commands_shown_in_help_and_plugins(tmp_path):
    env = plugin_env(tmp_path, {"greeter": "greeter"})
    help_text = run_cli("--help", env=env).stdout.decode()
    assert "corpus-stats" in help_text and "hello" in help_text
    assert run_cli("hello", "--name", "vqtok", env=env).stdout.decode().strip() == "hello vqtok"
    (tmp_path / "d").mkdir()
    for i in range(3):
        (tmp_path / "d" / f"{i}.txt").write_text("x")
    assert run_cli("corpus-stats", "count", tmp_path / "d", env=env).stdout.decode().strip() == "3"
    listing = json.loads(run_cli("plugins", "--json", env=env).stdout)
    greeter = next(p for p in listing["plugins"] if p["name"] == "greeter")
    assert greeter["commands"] == ["corpus-stats", "hello", "train"] and greeter["hooks"] == ["vqtok_commands"]
    assert greeter["status"] == "ok" and greeter["distribution"] == "vqtok-test-plugins"
    # the built-in train is vqtok's; the plugin's is refused with a warning when commands are listed
    assert "plugin's command 'train'" in run_cli("--help", env=env).stderr
    proc = run_cli("train", "--help", env=env)
    assert b"the plugin's train ran" not in proc.stdout and b"--recipe" in proc.stdout


def test_a_plugin_for_another_hook_api_is_refused_saying_so(tmp_path):
    env = plugin_env(tmp_path, {"old": "old_api"})
    proc = run_cli("plugins", "--json", env=env)
    old = next(p for p in json.loads(proc.stdout)["plugins"] if p["name"] == "old")
    assert old["status"].startswith("failed") and "hook API 1" in old["status"] and "hook API 2." in old["status"]
    assert "'old'" in proc.stderr
