"""Recipes that chain (``init = "other.toml"``): one command builds every stage, through the real CLI."""

from __future__ import annotations

import hashlib

from conftest import SAMPLES, interrupt_after, run_cli

import vqtok
from vqtok import config
from vqtok.plugin.registry import get_modality

FIRST = """
modality = "image"
data = "{data}"
[image]
size = 32
[model]
strides = [2, 2]
width = 8
max_width = 16
latent_dim = 8
codebook_size = 32
res_blocks = 1
[train]
steps = {steps}
batch_size = 4
log_every = 1
"""
SECOND = """
init = "first.toml"
data = "{data}"
[train]
steps = 6
batch_size = 4
lr = 1e-4
log_every = 1
"""


def write_chain(folder, first_steps: int = 8):
    folder.mkdir(exist_ok=True)
    (folder / "first.toml").write_text(FIRST.format(data=SAMPLES / "images", steps=first_steps))
    (folder / "second.toml").write_text(SECOND.format(data=SAMPLES / "images"))
    return folder / "second.toml"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_command_builds_the_chain_records_it_and_never_overwrites_a_stage_it_did_not_make(tmp_path):
    recipe = write_chain(tmp_path / "recipes")
    out = tmp_path / "models" / "final.safetensors"
    out.parent.mkdir()
    proc = run_cli("train", "--recipe", recipe, "-o", out)
    first = tmp_path / "models" / "first.safetensors"
    assert "stage first.toml: training" in proc.stderr and first.is_file() and out.is_file()

    stage = vqtok.load(first).meta
    assert stage["training"]["completed"] and stage["training"]["steps"] == 8
    final = vqtok.load(out).meta
    assert final["config"]["init"] == str(first) and final["config"]["train"]["lr"] == 1e-4
    started = final["training"]["started_from"]
    assert started["config"] == stage["config"] and started["steps"] == 8 and started["completed"]
    expected = config.resolve(config.read_recipe(recipe.parent / "first.toml"), get_modality=get_modality)
    assert config.from_dict(started["config"], get_modality).to_dict()["model"] == expected.to_dict()["model"]

    before = digest(first)
    again = run_cli("train", "--recipe", recipe, "-o", out)
    assert "built by it already" in again.stderr and digest(first) == before  # the stage is reused

    write_chain(recipe.parent, first_steps=9)  # the first recipe changed: its model is not overwritten
    refused = run_cli("train", "--recipe", recipe, "-o", out, check=False)
    assert refused.returncode == 2 and "not a finished model of that recipe" in refused.stderr
    assert digest(first) == before


def test_an_interrupted_stage_resumes_and_the_chain_goes_on(tmp_path):
    recipe = write_chain(tmp_path / "recipes", first_steps=400)
    out = tmp_path / "final.safetensors"
    proc = interrupt_after(["train", "--recipe", recipe, "-o", out], tmp_path / "first.metrics.jsonl", lines=3)
    assert proc.returncode == 130 and "--resume" in proc.stderr and not out.exists()
    assert (tmp_path / "first.ckpt.safetensors").exists()
    refused = run_cli("train", "--recipe", recipe, "-o", out, check=False)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    run_cli("train", "--recipe", recipe, "-o", out, "--resume")
    assert vqtok.load(tmp_path / "first.safetensors").meta["training"]["steps"] == 400
    assert vqtok.load(out).meta["training"]["completed"]


def test_recipes_that_start_from_each_other_are_refused(tmp_path):
    (tmp_path / "a.toml").write_text('init = "b.toml"\n')
    (tmp_path / "b.toml").write_text('init = "a.toml"\n')
    proc = run_cli("train", "--recipe", tmp_path / "a.toml", "-o", tmp_path / "m.safetensors", check=False)
    assert proc.returncode == 2 and "loop" in proc.stderr
    missing = run_cli("train", "--init", tmp_path / "none.toml", "-o", tmp_path / "m.safetensors", check=False)
    assert missing.returncode == 2 and "no such recipe" in missing.stderr
