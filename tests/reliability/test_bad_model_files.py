"""Model files that are readable safetensors but must not be used: wrong dtypes, NaN/Inf weights, missing or
extra tensors, wrong shapes, pickles. Each is one clean line from the real CLI, exit 1, and no output."""

from __future__ import annotations

import pickle
import re

import pytest
import torch
from conftest import SAMPLES, run_cli, run_parallel

import vqtok
from vqtok.errors import VqtokError
from vqtok.files.model import read_model, write_model

PHOTO = SAMPLES / "images" / "chelsea.png"


def rewritten(model, path, change) -> None:
    """``model`` written again to ``path`` (with a fresh, consistent hash) after ``change(tensors)``."""
    mf = read_model(model)
    tensors = dict(mf.tensors)
    change(tensors)
    meta = {
        k: v
        for k, v in mf.meta.items()
        if k not in ("format", "format_version", "vqtok_version", "model_hash", "content_hash")
    }
    write_model(path, tensors, meta)


def first_weight(tensors) -> str:
    return next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point() and v.dim() > 1)


def set_first(value):
    def change(tensors):
        name = first_weight(tensors)
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[3] = value

    return change


def to_int8(tensors):
    name = first_weight(tensors)
    tensors[name] = tensors[name].to(torch.int8)


def drop(tensors):
    del tensors[first_weight(tensors)]


def add(tensors):
    tensors["model.surplus.weight"] = torch.ones(3)


def reshape(tensors):
    name = first_weight(tensors)
    tensors[name] = tensors[name].reshape(-1)


CASES = {
    "nan weight": (set_first(float("nan")), "holds NaN or Inf"),
    "inf weight": (set_first(float("inf")), "holds NaN or Inf"),
    "int8 where float": (to_int8, "is torch.int8; the model needs torch.float32"),
    "missing tensor": (drop, "weights do not match"),
    "extra tensor": (add, "weights do not match"),
    "wrong shape": (reshape, "weights do not match"),
}


@pytest.fixture(scope="module")
def bad_weight_runs(image_model, tmp_path_factory):
    """Each case's model file, and ``vqtok encode`` run with it (all at once)."""
    folder = tmp_path_factory.mktemp("bad-weights")
    calls = {}
    for i, (case, (change, _)) in enumerate(CASES.items()):
        bad = folder / f"bad{i}.safetensors"
        rewritten(image_model, bad, change)
        calls[case] = (["encode", "--model", bad, PHOTO, "-o", folder / f"codes{i}.npz"], {})
    return folder, run_parallel(None, calls)


@pytest.mark.parametrize("case", CASES)
def test_a_model_file_with_bad_weights_is_refused_and_nothing_is_written(bad_weight_runs, case):
    folder, runs = bad_weight_runs
    proc, (_, message), i = runs[case], CASES[case], list(CASES).index(case)
    assert proc.returncode == 1 and message in proc.stderr and f"bad{i}.safetensors" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (folder / f"codes{i}.npz").exists()


def test_a_pickle_named_like_a_model_is_never_unpickled(tmp_path):
    witness = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return (open, (str(witness), "w"))

    for name in ("model.pt", "model.ckpt", "model.safetensors"):
        bad = tmp_path / name
        bad.write_bytes(pickle.dumps(RunsCode()))
        proc = run_cli("encode", "--model", bad, PHOTO, "-o", tmp_path / "codes.npz", check=False)
        assert proc.returncode == 1 and str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not witness.exists() and not (tmp_path / "codes.npz").exists()


def _with_meta(model, path, modality: str | None = None, arch: str | None = None) -> None:
    """``model`` written again to ``path`` claiming another modality or family."""
    mf = read_model(model)
    meta = {
        k: v
        for k, v in mf.meta.items()
        if k not in ("format", "format_version", "vqtok_version", "model_hash", "content_hash")
    }
    if modality:
        meta["modality"] = modality
    if arch:
        meta["config"] = {**meta["config"], "model": {**meta["config"]["model"], "arch": arch}}
    write_model(path, dict(mf.tensors), meta)


@pytest.mark.parametrize(
    "modality, arch, message",
    [
        ("sensor", None, "needs unknown modality 'sensor'"),
        ("os:system", None, "needs unknown modality 'os:system'"),  # a name, never an import path
        (None, "fsq", "needs unknown model family 'fsq'"),
        (None, "vqtok.cli:main", "needs unknown model family 'vqtok.cli:main'"),
    ],
)
def test_a_model_of_a_modality_or_family_not_installed_says_which(image_model, tmp_path, modality, arch, message):
    bad = tmp_path / "elsewhere.safetensors"
    _with_meta(image_model, bad, modality, arch)
    with pytest.raises(VqtokError, match=re.escape(f"{bad}: {message}")) as raised:
        vqtok.load(bad)
    assert "see 'vqtok plugins'" in str(raised.value)  # what is installed, and where to look
