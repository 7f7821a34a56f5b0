"""Faults during training, with real subprocesses: kill -9, SIGTERM, a torn log line, two runs into one
output, a diverging loss."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import torch
from conftest import SAMPLES, SUBPROCESS_TIMEOUT, TINY_IMAGE, cli_env, run_cli

import vqtok

ARGS = [
    "train",
    "--modality",
    "image",
    "--data",
    SAMPLES / "images",
    "--seed",
    5,
    *TINY_IMAGE,
    "train.log_every=1",
    "train.checkpoint_every=4",
]


def start(args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vqtok", *map(str, args)], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for_lines(metrics, lines: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + SUBPROCESS_TIMEOUT
    while not metrics.exists() or len(metrics.read_text().splitlines()) < lines:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1].decode()
        time.sleep(0.02)


def weights(path):
    return vqtok.load(path).model.state_dict()


def test_kill_9_then_resume_loses_at_most_one_interval_and_ends_as_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight.safetensors"
    run_cli(*ARGS, "--steps", 30, "-o", straight)
    out, metrics = tmp_path / "killed.safetensors", tmp_path / "killed.metrics.jsonl"
    proc = start([*ARGS, "--steps", 30, "-o", out])
    wait_for_lines(metrics, 10, proc)
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate()
    with metrics.open("a") as f:
        f.write('{"step": 11, "loss": 0.1')  # a line torn by the kill
    checkpoint = tmp_path / "killed.ckpt.safetensors"
    assert checkpoint.exists() and not out.exists()
    run_cli(*ARGS, "--steps", 30, "-o", out, "--resume")
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, 31))
    a, b = weights(straight), weights(out)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert not checkpoint.exists()


def test_sigterm_saves_a_checkpoint_and_exits_143_saying_how_to_resume(tmp_path):
    out, metrics = tmp_path / "m.safetensors", tmp_path / "m.metrics.jsonl"
    proc = start([*ARGS, "--steps", 10**6, "-o", out])  # long: it is stopped first
    wait_for_lines(metrics, 3, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 143 and "--resume" in err.decode()
    assert (tmp_path / "m.ckpt.safetensors").exists() and not vqtok.load(out).meta["training"]["completed"]


def test_a_second_run_into_the_same_output_is_refused_until_the_first_is_gone(tmp_path):
    out, metrics = tmp_path / "m.safetensors", tmp_path / "m.metrics.jsonl"
    first = start([*ARGS, "--steps", 10**6, "-o", out])  # long: it is killed first
    wait_for_lines(metrics, 5, first)
    second = run_cli(*ARGS, "--steps", 5, "-o", out, check=False)
    assert second.returncode == 2 and "is being written by another run (pid" in second.stderr
    first.kill()  # a dead process holds no lock, even though its lock file may remain
    first.communicate()
    run_cli(*ARGS, "--steps", 3, "-o", out)  # a new run may write there now
    assert vqtok.load(out).meta["training"]["completed"]


def test_a_diverging_loss_stops_with_a_clear_line_and_writes_no_model(tmp_path):
    out = tmp_path / "m.safetensors"
    proc = run_cli(
        *ARGS, "--steps", 200, "-o", out, "train.lr=1e30", "train.warmup_steps=0", "train.grad_clip=0", check=False
    )
    assert proc.returncode == 1 and "training diverged at step" in proc.stderr and "lower train.lr" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_kill_9_of_train_prior_then_resume_ends_as_an_uninterrupted_run(prior_models, tmp_path):
    from conftest import DIGITS, TINY_PRIOR

    for name in ("straight", "killed"):
        (tmp_path / f"{name}.safetensors").write_bytes((prior_models / "digits.safetensors").read_bytes())
    args = [
        "train-prior",
        "--data",
        DIGITS / "test",
        "--steps",
        24,
        "--seed",
        2,
        *TINY_PRIOR,
        "train.checkpoint_every=4",
        "prior.eval_every=4",
    ]
    run_cli(*args, "--model", tmp_path / "straight.safetensors")
    killed, metrics = tmp_path / "killed.safetensors", tmp_path / "killed.prior.metrics.jsonl"
    proc = start([*args, "--model", killed])
    wait_for_lines(metrics, 10, proc)
    proc.kill()
    proc.communicate()
    with metrics.open("a") as f:
        f.write('{"step": 11, "lo')  # torn by the kill
    run_cli(*args, "--model", killed, "--resume")
    logs = [(tmp_path / f"{n}.prior.metrics.jsonl").read_text().splitlines() for n in ("straight", "killed")]
    losses = [{r["step"]: r["loss"] for r in map(json.loads, log)} for log in logs]
    assert sorted(losses[0]) == sorted(losses[1]) == list(range(1, 25))
    assert all(abs(losses[0][s] - losses[1][s]) <= 1e-5 * max(1.0, losses[0][s]) for s in losses[0])
    priors = [vqtok.load(tmp_path / f"{n}.safetensors").meta["prior"] for n in ("straight", "killed")]
    assert priors[0]["training"]["kept"] == priors[1]["training"]["kept"]
