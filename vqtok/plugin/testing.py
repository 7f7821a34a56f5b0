"""Test a vqtok plugin the way vqtok uses it: ``check_modality``, ``check_family`` and pytest fixtures.

Installed with vqtok as a pytest plugin (entry point ``pytest11``), so a plugin's own tests need no setup::

    from vqtok.testing import check_modality

    def test_mel_keeps_the_contract(tmp_path):
        check_modality(MelModality(), data=Path(__file__).parent / "data", workdir=tmp_path)

:func:`check_modality` runs the whole contract on real files (declarations, reading, streaming, training
examples, writing, bad input, a short training run, encode, decode, bitrate and ``vqtok info``) and
raises :class:`ContractError` listing every problem found, each saying what is wrong and where.

Fixtures: ``vqtok_data`` (an empty data folder to fill), ``vqtok_plugin`` (register a module or object
as an installed plugin for one test, in this process) and ``vqtok_cli`` (run ``vqtok`` in a subprocess,
optionally with plugins installed there the way pip installs them). This module imports torch only when
a check runs, so that every pytest session of a machine with vqtok installed stays fast to start.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

TINY_MODEL = {
    "width": 8,
    "max_width": 16,
    "latent_dim": 8,
    "codebook_size": 32,
    "res_blocks": 1,
    "strides": [2, 2],
}  # hop 4: a few seconds of training on a CPU
TINY_TRAIN = {
    "steps": 2,
    "batch_size": 2,
    "workers": 0,
    "log_every": 1,
    "checkpoint_every": 1000,
    "warmup_steps": 0,
    "device": "cpu",
}


class ContractError(AssertionError):
    """A plugin breaks the vqtok contract; the message lists each problem."""


def _plugin_object(name: str, modalities=(), families=()) -> types.SimpleNamespace:
    """A plugin made in place: the hooks returning ``modalities`` and ``families``."""
    import vqtok

    hooks = {}
    if modalities:
        hooks["vqtok_modalities"] = vqtok.hookimpl(lambda: list(modalities))
    if families:
        hooks["vqtok_families"] = vqtok.hookimpl(lambda: list(families))
    return types.SimpleNamespace(__name__=name, **hooks)


def _installed_as(modality):
    """The installed modality of the same name and class (a built-in checked by its own tests), or None."""
    from vqtok.plugin.registry import registry

    found = registry().modalities.get(modality.name)
    return found if found is not None and type(found) is type(modality) else None


# ---- check_modality --------------------------------------------------------------------------------------
def check_modality(
    modality, data: Path, options: dict | None = None, workdir: Path | None = None, train: bool = True
) -> None:
    """Run the modality contract on the files under ``data`` (at least one the modality reads; a few
    suffice) with the modality's ``options`` (its recipe table, e.g. ``{"n_mels": 64}``). ``workdir``
    (default: a temporary folder) receives the files the check writes. ``train=False`` skips the short
    training run and what needs a model. Raises :class:`ContractError` naming every problem."""
    from vqtok.plugin.registry import installed

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        plugin = _plugin_object(f"check_modality[{modality.name}]", modalities=[modality])
        builtin = _installed_as(modality)
        if builtin is not None:
            _check_modality(builtin, Path(data), options or {}, work, train, problems)
        else:
            with installed(plugin, f"under-test-{modality.name}"):
                _check_modality(modality, Path(data), options or {}, work, train, problems)
    if problems:
        raise ContractError(
            f"modality {modality.name!r} breaks the vqtok contract:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _check_modality(modality, data: Path, options: dict, work: Path, train: bool, problems: list[str]) -> None:
    from vqtok.errors import VqtokError
    from vqtok.plugin.modality import declaration_problems, find_files
    from vqtok.plugin.registry import registry

    problems += declaration_problems(modality)
    if problems:
        return
    failed = [p.status for p in registry().plugins if p.status != "ok" and modality.name in p.status]
    if modality.name not in registry().modalities:
        problems.append(f"vqtok does not load it as a plugin: {'; '.join(failed) or 'unknown reason'}")
        return
    try:
        files = find_files(data, modality)[:4]
    except VqtokError as e:
        problems.append(f"no data to check it on: {e}")
        return
    opts = _options(modality, options, problems)
    if opts is None:
        return
    tensors = [_check_reading(modality, path, opts, problems) for path in files]
    if problems:
        return
    _check_streaming(modality, files[0], opts, tensors[0], problems)
    _check_training_examples(modality, files, opts, problems)
    _check_writing(modality, tensors[0], opts, work, problems)
    _check_bad_input(modality, opts, work, problems)
    if train and not problems:
        _check_model(modality, data, files[0], options, work, problems)


def _options(modality, options: dict, problems: list[str]):
    from vqtok.config import resolve
    from vqtok.errors import VqtokError
    from vqtok.plugin.registry import get_modality

    try:
        return resolve({"modality": modality.name, modality.name: options}, get_modality=get_modality).options
    except VqtokError as e:
        problems.append(f"options {options}: {e}")
        return None


def _check_reading(modality, path: Path, opts, problems: list[str]):
    import torch

    try:
        x = modality.load(path, opts)
    except Exception as e:
        problems.append(f"load({path.name}) raised {type(e).__name__}: {e}")
        return None
    where = f"load({path.name})"
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
        problems.append(f"{where} returned {type(x).__name__} {getattr(x, 'dtype', '')}; it must be a float32 tensor")
        return None
    if x.ndim != modality.dims + 1:
        axes = "T" if modality.dims == 1 else "H, W"
        problems.append(f"{where} has shape {tuple(x.shape)}: dims = {modality.dims} needs (C, {axes})")
        return None
    if x.shape[0] != modality.channels(opts):
        problems.append(f"{where} has {x.shape[0]} channels, but channels() says {modality.channels(opts)}")
    if not bool(torch.isfinite(x).all()):
        problems.append(f"{where} holds NaN or infinite values")
    low, high = modality.value_range
    slack = 1e-3 * (high - low)
    if x.numel() and (x.min() < low - slack or x.max() > high + slack):
        problems.append(
            f"{where} spans [{x.min():.4g}, {x.max():.4g}], outside value_range {modality.value_range}: "
            "normalise in load (and undo it in save), or declare the range"
        )
    return x


def _check_streaming(modality, path: Path, opts, x, problems: list[str]) -> None:
    import torch

    length = modality.length(path, opts)
    if length != x.shape[-1]:
        problems.append(f"length({path.name}) = {length}, but load gives {x.shape[-1]} along the last axis")
    block = max(1, x.shape[-1] // 3)
    pieces = list(modality.stream(path, opts, block))
    if any(p.shape[-1] > block for p in pieces):
        problems.append(f"stream({path.name}, block={block}) yields pieces longer than the block")
    joined = torch.cat(pieces, dim=-1) if pieces else torch.zeros(0)
    if joined.shape != x.shape or not torch.allclose(joined, x, atol=1e-6):
        problems.append(f"stream({path.name}) pieces do not join to what load returns")


def _check_training_examples(modality, files: list[Path], opts, problems: list[str]) -> None:
    import torch

    shapes = set()
    for path in files:
        a = modality.training_example(path, opts, torch.Generator().manual_seed(1))
        b = modality.training_example(path, opts, torch.Generator().manual_seed(1))
        if a.shape != b.shape or not torch.equal(a, b):
            problems.append(
                f"training_example({path.name}) differs for the same generator seed: draw every "
                "random choice from the generator it is given"
            )
        shapes.add(tuple(a.shape))
    if len(shapes) > 1:
        problems.append(
            f"training examples have different shapes {sorted(shapes)}: every example of a run must "
            "have one shape (crop or pad them)"
        )
    size = modality.example_size(opts)
    if size is not None and shapes and list(next(iter(shapes))[1:]) != list(size):
        problems.append(f"example_size() says {size}, but training examples are {next(iter(shapes))[1:]}")


def _check_writing(modality, x, opts, work: Path, problems: list[str]) -> None:
    out = work / f"round-trip{modality.output_suffix()}"
    try:
        modality.save(x, out, opts)
    except Exception as e:
        problems.append(f"save(x, {out.name}) raised {type(e).__name__}: {e}")
        return
    if not modality.is_supported(out):
        return  # it writes a format it does not read (e.g. pictures of features): nothing to read back
    y = modality.load(out, opts)
    low, high = modality.value_range
    if y.shape != x.shape:
        problems.append(f"save then load changes the shape: {tuple(x.shape)} -> {tuple(y.shape)}")
    elif (y - x).abs().mean() > 0.02 * (high - low):
        problems.append(
            f"save then load changes the values by {(y - x).abs().mean():.4g} on average "
            f"(over 2% of value_range {modality.value_range})"
        )


def _check_bad_input(modality, opts, work: Path, problems: list[str]) -> None:
    from vqtok.errors import VqtokError

    bad = work / f"corrupt{modality.suffixes[0]}"
    bad.write_bytes(b"\x00\x01 this is not a " + modality.name.encode() + b" file \xff" * 8)
    for path, what in ((bad, "a corrupt file"), (work / f"missing{modality.suffixes[0]}", "a missing file")):
        try:
            modality.load(path, opts)
            problems.append(f"load of {what} ({path.name}) returned data instead of raising VqtokError")
        except VqtokError as e:
            if path.name not in str(e):
                problems.append(f"the error for {what} does not name the file: {e}")
        except Exception as e:
            problems.append(
                f"load of {what} raised {type(e).__name__}: {e}; raise vqtok.errors.VqtokError naming "
                "the file, so the user gets one clear line"
            )


def _check_model(modality, data: Path, path: Path, options: dict, work: Path, problems: list[str]) -> None:
    """Train a tiny model for two steps, then encode, decode, and read the bitrate back from the file."""
    from vqtok.codec import Tokenizer
    from vqtok.config import resolve
    from vqtok.info import model_report
    from vqtok.plugin.registry import get_modality
    from vqtok.train import Trainer

    config = resolve(
        {
            "modality": modality.name,
            "data": str(data),
            modality.name: options,
            "model": TINY_MODEL,
            "train": TINY_TRAIN,
        },
        get_modality=get_modality,
    )
    out = work / "check.safetensors"
    try:
        Trainer(config, modality, out).run()
    except Exception as e:
        problems.append(f"a two-step training run failed: {type(e).__name__}: {e}")
        return
    tok = Tokenizer.load(out)
    cf = tok.encode_file(path)
    back = work / f"decoded{modality.output_suffix()}"
    tok.decode_to_file(cf, back)
    if not back.is_file():
        problems.append(f"decode wrote no {back.name}")
    elif modality.is_supported(back):
        x, y = modality.load(path, config.options), modality.load(back, config.options)
        if x.shape != y.shape:
            problems.append(f"decode(encode({path.name})) has shape {tuple(y.shape)}, the input {tuple(x.shape)}")
    report = model_report(out)
    per_second = modality.time_axis(config.options)
    if per_second:
        positions = (
            per_second
            / tok.hop
            * math.prod(math.ceil(n / tok.hop) for n in (modality.example_size(config.options) or [0])[:-1])
        )
        expected = positions * sum(math.log2(k) for s in tok.specs.values() for k in s.codebook_sizes or [])
        if not math.isclose(report.get("bitrate_bps", -1), expected, rel_tol=1e-6):
            problems.append(f"vqtok info reports {report.get('bitrate_bps')} bit/s; the time axis gives {expected:g}")


# ---- check_family ----------------------------------------------------------------------------------------
def check_family(
    family, modality: str = "image", data: Path | None = None, options: dict | None = None, workdir: Path | None = None
) -> None:
    """Run the family contract with the built-in ``modality`` on ``data`` (default: the samples vqtok
    ships): build, train two steps, then encode and decode, checking the latents against
    ``family.latents()``. ``options``: the family's own table (``{"levels": [8, 5, 5]}``). Raises
    :class:`ContractError` naming every problem."""
    from vqtok.config import SAMPLES_DIR
    from vqtok.plugin.registry import installed

    data = Path(data) if data else SAMPLES_DIR / ("images" if modality == "image" else "speech")
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        installed(_plugin_object(f"check_family[{family.name}]", families=[family]), f"under-test-{family.name}"),
    ):
        _check_family(family, modality, data, options or {}, Path(workdir or tmp), problems)
    if problems:
        raise ContractError(
            f"family {family.name!r} breaks the vqtok contract:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _check_family(family, modality: str, data: Path, options: dict, work: Path, problems: list[str]) -> None:
    import torch

    from vqtok.codec import Tokenizer
    from vqtok.config import resolve
    from vqtok.plugin.modality import find_files
    from vqtok.plugin.registry import get_modality, registry
    from vqtok.train import Trainer

    if family.name not in registry().families:
        failed = [p.status for p in registry().plugins if p.status != "ok"]
        problems.append(f"vqtok does not load it as a family: {'; '.join(failed) or 'name it and subclass Family'}")
        return
    size = {"image": {"size": 32}, "audio": {"segment_seconds": 0.25}}.get(modality, {})
    recipe = {
        "modality": modality,
        "data": str(data),
        modality: size,
        "model": {**TINY_MODEL, "arch": family.name},
        "train": TINY_TRAIN,
    }
    if options:
        recipe[family.name] = options
    try:
        config = resolve(recipe, get_modality=get_modality)
        Trainer(config, get_modality(modality), work / "family.safetensors").run()
    except Exception as e:
        problems.append(f"a two-step training run failed: {type(e).__name__}: {e}")
        return
    tok = Tokenizer.load(work / "family.safetensors")
    path = find_files(data, tok.modality)[0]
    x = tok.modality.load(path, tok.config.options)
    if x.shape[-1] > 4096:
        x = x[..., :4096]
    with torch.no_grad():
        latents = tok.model.encode(tok.pad_to_hop(x[None]), None, None)
        for name, spec in tok.specs.items():
            if name not in latents:
                problems.append(f"encode returns no latent {name!r}, which latents() declares")
                continue
            t = latents[name]
            if t.shape[1] != spec.depth:
                problems.append(f"latent {name!r} has depth {t.shape[1]} (axis 1); latents() says {spec.depth}")
            if spec.discrete and (
                t.dtype.is_floating_point
                or t.min() < 0
                or any(t[:, q].max() >= k for q, k in enumerate(spec.codebook_sizes))
            ):
                problems.append(
                    f"latent {name!r}: codes must be integers within the codebook sizes {spec.codebook_sizes}"
                )
        y = tok.model.decode(latents, None)
    if y.shape != tok.pad_to_hop(x[None]).shape:
        problems.append(f"decode(encode(x)) has shape {tuple(y.shape)}, x {tuple(tok.pad_to_hop(x[None]).shape)}")


# ---- fixtures -------------------------------------------------------------------------------------------
def plugin_environment(folder: Path, plugins: dict[str, str], python_path: list[Path] = ()) -> dict:
    """Environment variables under which a subprocess sees ``plugins`` ({entry point name: module})
    installed as a package would install them: a ``.dist-info`` folder with ``entry_points.txt`` on the
    path, plus the folders of ``python_path``."""
    site = Path(folder) / "site"
    dist = site / "vqtok_test_plugins-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vqtok-test-plugins\nVersion: 1.0\n")
    lines = "".join(f"{name} = {module}\n" for name, module in plugins.items())
    (dist / "entry_points.txt").write_text(f"[vqtok]\n{lines}")
    path = os.pathsep.join([str(site), *map(str, python_path), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path}


@pytest.fixture
def vqtok_data(tmp_path) -> Path:
    """An empty folder for the files of a test's data set."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def vqtok_plugin():
    """``vqtok_plugin(module_or_object, name)``: register it as an installed plugin for this test, in
    this process (``vqtok.load``, ``vqtok.plugin.registry.get_modality`` ... see it)."""
    from contextlib import ExitStack

    from vqtok.plugin.registry import installed

    with ExitStack() as stack:
        yield lambda plugin, name="under-test": stack.enter_context(installed(plugin, name))


@pytest.fixture
def vqtok_cli(tmp_path):
    """``vqtok_cli(*args, plugins={name: module}, python_path=[...], check=True)``: run ``vqtok ARGS`` in a
    subprocess (stdout and stderr as text), with ``plugins`` installed there through a real entry point."""

    def run(*args, plugins: dict[str, str] | None = None, python_path=(), check: bool = True):
        env = {**os.environ, "COLUMNS": "200"}
        if plugins:
            env.update(plugin_environment(tmp_path, plugins, python_path))
        proc = subprocess.run([sys.executable, "-m", "vqtok", *map(str, args)], capture_output=True, text=True, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"vqtok {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run
