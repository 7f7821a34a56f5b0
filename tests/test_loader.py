"""Data loading in worker processes: the same batches and weights for any worker count, clean errors."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import time

import pytest
import torch
from conftest import SAMPLES, TINY_AUDIO, TINY_IMAGE
from safetensors import safe_open

from vqtok import config as cfg
from vqtok.errors import VqtokError
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer
from vqtok.train.data import TrainingSet
from vqtok.train.loader import LoaderDied, auto_workers, batch_stream


def _config(modality: str, data, overrides: list[str]) -> cfg.RunConfig:
    return cfg.resolve(None, overrides, {"modality": modality, "data": str(data)}, get_modality)


def _batches(data: TrainingSet, workers: int, start: int = 0, stop: int = 6) -> list:
    make = functools.partial(data.batch, size=4, seed=7, multiple=64)
    return list(batch_stream(make, start, stop, workers))


def test_batches_are_the_same_for_any_worker_count_and_start():
    config = _config("audio", SAMPLES / "speech", TINY_AUDIO)
    data = TrainingSet(SAMPLES / "speech", get_modality("audio"), config.options)
    alone, two = _batches(data, 0), _batches(data, 2)
    assert len(alone) == len(two) == 6
    for (xa, la), (xb, lb) in zip(alone, two):
        assert torch.equal(xa, xb) and torch.equal(la, lb)
    assert not torch.equal(alone[0][0], alone[1][0])  # the steps differ from each other
    resumed = _batches(data, 1, start=4)  # a resumed run: the same sequence from its step on
    assert all(torch.equal(a[0], b[0]) for a, b in zip(alone[4:], resumed))


def _train(tmp_path, name: str, workers: int) -> dict[str, torch.Tensor]:
    config = _config(
        "image",
        SAMPLES / "images",
        [*TINY_IMAGE, "train.steps=8", "train.batch_size=4", f"train.workers={workers}", "train.log_every=1"],
    )
    Trainer(config, get_modality("image"), tmp_path / f"{name}.safetensors").run()
    import vqtok

    return vqtok.load(tmp_path / f"{name}.safetensors").model.state_dict()


def test_training_with_workers_gives_the_same_weights(tmp_path):
    alone, two = _train(tmp_path, "alone", 0), _train(tmp_path, "two", 2)
    assert alone.keys() == two.keys()
    assert all(torch.equal(alone[k], two[k]) for k in alone)
    assert (tmp_path / "alone.metrics.jsonl").read_text() != ""


def test_a_bad_file_read_in_a_worker_is_the_same_one_line_error(tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    config = _config("audio", tmp_path, TINY_AUDIO)
    data = TrainingSet(tmp_path, get_modality("audio"), config.options)
    with pytest.raises(VqtokError) as in_process:
        _batches(data, 0)
    with pytest.raises(VqtokError) as in_worker:
        _batches(data, 2)
    assert str(in_worker.value) == str(in_process.value)
    assert "broken.wav" in str(in_worker.value) and "\n" not in str(in_worker.value)


def _dies_at_step_five(data: TrainingSet, step: int):
    if step == 5 and torch.utils.data.get_worker_info() is not None:
        time.sleep(1)  # the batches before it reach the main process (killed, a worker loses what it queued)
        os.kill(os.getpid(), signal.SIGKILL)
    return data.batch(step, 2, 0)


def test_a_killed_worker_ends_the_run_with_a_checkpoint_to_resume(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    shutil.copytree(SAMPLES / "images", data_dir)
    out = tmp_path / "m.safetensors"
    config = _config(
        "image",
        data_dir,
        [*TINY_IMAGE, "train.steps=8", "train.batch_size=2", "train.workers=1", "train.checkpoint_every=100"],
    )
    trainer = Trainer(config, get_modality("image"), out)
    monkeypatch.setattr(trainer, "batch_maker", lambda: functools.partial(_dies_at_step_five, trainer.data))
    with pytest.raises(LoaderDied) as died:
        trainer.run()
    assert "--resume" in str(died.value) and "worker" in str(died.value)
    with safe_open(out.with_name("m.ckpt.safetensors"), "pt") as ckpt:
        assert 1 <= int(ckpt.metadata()["step"]) <= 5  # the steps whose batches came back, whole
    assert not out.exists()


def test_auto_workers_leave_a_small_cpu_machine_to_the_model():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert auto_workers(cpu, cpus=2) == 0 and auto_workers(cpu, cpus=16) == 4
    assert auto_workers(gpu, cpus=2) == 1 and auto_workers(gpu, cpus=16) == 8


@pytest.mark.parametrize("bad", ["-1", '"many"', "true"])
def test_a_bad_worker_count_is_a_usage_error(bad):
    with pytest.raises(VqtokError, match="train.workers"):
        _config("image", SAMPLES / "images", [f"train.workers={bad}"])
