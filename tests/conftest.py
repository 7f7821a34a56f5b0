"""Shared test helpers: running the real CLI in a subprocess, registering test plugins, tiny models."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vqtok.testing import plugin_environment

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "vqtok" / "samples"
TEST_PLUGINS = Path(__file__).resolve().parent / "plugins"

# Small, fast settings shared by the CLI tests.
TINY_AUDIO = [
    "audio.sample_rate=8000",
    "audio.segment_seconds=0.25",
    "model.strides=[2,4,8]",
    "model.width=8",
    "model.max_width=32",
    "model.latent_dim=8",
    "model.codebook_size=64",
    "model.res_blocks=1",
    "train.batch_size=4",
    "train.log_every=5",
]
TINY_IMAGE = [
    "image.size=32",
    "model.strides=[2,2]",
    "model.width=8",
    "model.max_width=32",
    "model.latent_dim=8",
    "model.codebook_size=64",
    "model.res_blocks=1",
    "train.batch_size=4",
    "train.log_every=5",
]


# Each CLI call imports torch; where the environment forbids writing bytecode, that costs seconds per
# call. A private bytecode cache (outside the repo and site-packages) keeps the calls fast.
PYCACHE = Path(tempfile.gettempdir()) / "vqtok-test-pycache"

# How long any one subprocess of the suite may run. It only stops a hung call: a fixture that trains for a
# minute on a quiet machine took over ten on a loaded one with slower CPU kernels, and a limit near the
# typical time turns load into failures. CI's own limit (90 minutes) bounds the whole run.
SUBPROCESS_TIMEOUT = float(os.environ.get("VQTOK_TEST_TIMEOUT", 2400))


def cli_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("VQTOK_MODEL", None)
    env.update(
        {"OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONPYCACHEPREFIX": str(PYCACHE), "PYTHONDONTWRITEBYTECODE": ""}
    )
    env.update(extra or {})
    return env


def run_cli(
    *args,
    env=None,
    input: bytes | None = None,
    check: bool = True,
    cwd=None,
    timeout: float = SUBPROCESS_TIMEOUT,
    preexec_fn=None,
) -> subprocess.CompletedProcess:
    """Run ``vqtok ARGS`` in a real subprocess; stdout stays bytes, stderr is text."""
    proc = subprocess.run(
        [sys.executable, "-m", "vqtok", *map(str, args)],
        input=input,
        capture_output=True,
        env=env or cli_env(),
        cwd=cwd,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    proc.stderr = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"vqtok {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def run_cli_here(*args, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``vqtok ARGS`` in this process through the command line's own entry point (``vqtok.cli.main``:
    argument parsing, commands, one-line errors and exit codes), with stdin, stdout, stderr, ``sys.argv``
    and the environment swapped for the call: what a subprocess gives, without starting Python and
    importing torch again (about 4 s a call), for fixtures that run dozens of commands. stdout stays
    bytes, stderr is text."""
    from vqtok.cli import main

    out, err = io.BytesIO(), io.StringIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stdin = io.TextIOWrapper(io.BytesIO(input or b""), encoding="utf-8")
    argv = ["vqtok", *map(str, args)]
    import torch

    threads = torch.get_num_threads()  # a command may set it (corpus encoding does)
    saved = (sys.argv, sys.stdin, sys.stdout, sys.stderr, dict(os.environ))
    sys.argv, sys.stdin, sys.stdout, sys.stderr = argv, stdin, stdout, err
    os.environ.pop("VQTOK_MODEL", None)
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # what main() lets through: the traceback a subprocess would print
        err.write(traceback.format_exc())
        code = 1
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr, environ = saved
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
    stdout.flush()
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def run_parallel(env: dict | None, calls: dict[str, tuple]) -> dict[str, subprocess.CompletedProcess]:
    """Run independent CLI calls, ``{name: (args, keyword arguments of run_cli)}``: in this process, one
    after another (:func:`run_cli_here`), when they need no environment of their own (``env`` None, no
    keyword but ``input``); else as subprocesses, a few at a time."""
    if env is None and all(set(kw) <= {"input"} for _, kw in calls.values()):
        return {name: run_cli_here(*args, **kw) for name, (args, kw) in calls.items()}
    with ThreadPoolExecutor(max_workers=min(8, max(2, os.cpu_count() or 2))) as pool:
        futures = {
            name: pool.submit(run_cli, *args, **{"env": env, "check": False, **kw})
            for name, (args, kw) in calls.items()
        }
        return {name: f.result() for name, f in futures.items()}


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args[3:]} exited {proc.returncode}:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def files_under(folder: Path) -> set[str]:
    if not folder.exists():
        return set()
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def plugin_env(tmp_path: Path, plugins: dict[str, str]) -> dict:
    """An environment in which ``plugins`` ({entry point name: module}) are installed as a package
    would be (:func:`vqtok.testing.plugin_environment`), the test plugins on the path."""
    return cli_env(plugin_environment(tmp_path, plugins, [TEST_PLUGINS]))


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """In-process tests use tiny tensors: one intra-op thread is faster, and under ``pytest -n 2`` the
    workers do not fight each other for the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    return SAMPLES / "speech"


@pytest.fixture(scope="session")
def image_dir() -> Path:
    return SAMPLES / "images"


@pytest.fixture(scope="session")
def audio_model(tmp_path_factory, worker_id) -> Path:
    """A tiny audio model trained for a few steps on the shipped speech (trained once per test run)."""

    def build(root):
        run_cli(
            "train",
            "--modality",
            "audio",
            "--data",
            SAMPLES / "speech",
            "-o",
            root / "speech.safetensors",
            "--steps",
            10,
            *TINY_AUDIO,
        )

    return built_once(tmp_path_factory, worker_id, "audio-model", build) / "speech.safetensors"


@pytest.fixture(scope="session")
def image_model(tmp_path_factory, worker_id) -> Path:
    def build(root):
        run_cli(
            "train",
            "--modality",
            "image",
            "--data",
            SAMPLES / "images",
            "-o",
            root / "images.safetensors",
            "--steps",
            10,
            *TINY_IMAGE,
        )

    return built_once(tmp_path_factory, worker_id, "image-model", build) / "images.safetensors"


def built_once(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """A folder that ``build(folder)`` fills once per test run, shared by the xdist workers (the first
    builds it under a file lock, the others wait and reuse it), so that an expensive module fixture
    does not train the same models on every worker."""
    base = tmp_path_factory.getbasetemp()
    root = (base if worker_id == "master" else base.parent) / f"shared-{name}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / ".done").exists():
                build(root)
                (root / ".done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root


def save_runs(path: Path, runs: dict[str, subprocess.CompletedProcess]) -> None:
    """Keep CLI results in a JSON file, so that a :func:`built_once` folder can share them."""
    path.write_text(
        json.dumps(
            {
                name: {
                    "args": [str(a) for a in p.args],
                    "returncode": p.returncode,
                    "stdout": base64.b64encode(p.stdout).decode(),
                    "stderr": p.stderr,
                }
                for name, p in runs.items()
            }
        )
    )


def load_runs(path: Path) -> dict[str, subprocess.CompletedProcess]:
    return {
        name: subprocess.CompletedProcess(r["args"], r["returncode"], base64.b64decode(r["stdout"]), r["stderr"])
        for name, r in json.loads(path.read_text()).items()
    }


def torchrun(nproc: int) -> list[str]:
    """The command prefix that runs ``-m vqtok ...`` as ``nproc`` CPU processes on this machine."""
    exe = Path(sys.executable).parent / "torchrun"
    return [str(exe), "--standalone", "--nproc-per-node", str(nproc)]


def free_port() -> int:
    """A TCP port free on localhost just now (for a torchrun rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_nodes(nodes: int, port: int) -> list[list[str]]:
    """One launcher command prefix per "node", all on localhost, meeting by c10d rendezvous at ``port``:
    the flags a real multi-node run uses, each launcher with one process. On one machine every launcher
    would take itself for the endpoint's host and race to serve the rendezvous store, so the first is told
    it is the host and the others that they are not (``--rdzv-conf is_host=...``)."""
    exe = Path(sys.executable).parent / "torchrun"
    return [
        [
            str(exe),
            "--nnodes",
            str(nodes),
            "--nproc-per-node",
            "1",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
            "--rdzv-id",
            f"vqtok-test-{port}",
            "--rdzv-conf",
            f"is_host={'true' if node == 0 else 'false'}",
        ]
        for node in range(nodes)
    ]


def interrupt_after(
    args: list, metrics: Path, lines: int = 5, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``vqtok ARGS`` (under ``launcher``, e.g. :func:`torchrun`) and press Ctrl-C once its metrics log
    has ``lines`` lines: SIGINT to its whole process group, as a terminal sends it."""
    command = [*(launcher or [sys.executable]), "-m", "vqtok", *map(str, args)]
    proc = subprocess.Popen(
        command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + SUBPROCESS_TIMEOUT
    while not metrics.exists() or len(metrics.read_text().splitlines()) < lines:
        if proc.poll() is not None or time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(
                f"{metrics.name} never reached {lines} lines before the run ended or "
                f"{SUBPROCESS_TIMEOUT:.0f} s passed:\n{err.decode(errors='replace')}"
            )
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err.decode(errors="replace"))


# ---- trained models with priors, shared by test_prior.py and test_eval.py ----
DIGITS = SAMPLES / "digits"
# A small digit tokenizer: 28 x 28 -> 7 x 7 codes of 64 entries (about a minute on 2 cores).
DIGIT_VQVAE = [
    "--modality",
    "image",
    "--data",
    DIGITS / "train",
    "image.size=28",
    "image.channels=1",
    "model.strides=[2,2]",
    "model.width=32",
    "model.max_width=64",
    "model.latent_dim=16",
    "model.codebook_size=64",
    "model.res_blocks=1",
    "train.lr=2e-3",
    "--steps",
    300,
    "--batch-size",
    32,
]
# prior.eval_every=0 keeps the last weights: on 600 digits they overfit (held-out bits rise after about 250
# steps), and their samples are the more recognizable for it, which the class test below measures.
SMALL_PRIOR = ["prior.layers=6", "prior.eval_every=0", "train.log_every=5"]
TINY_PRIOR = ["prior.width=16", "prior.layers=3", "train.log_every=1", "--batch-size", 4]


def build_prior_models(root):
    """The models of the prior and eval tests: a digit vqvae with a class-conditional prior (--valid: the
    test digits), a tiny speech vqvae2 with its prior in a separate file, a tiny image vqvae2 and a
    tiny residual (n_q = 2) speech vqvae with priors in their files, and a tiny image vae."""
    digits, speech, vae = root / "digits.safetensors", root / "speech.safetensors", root / "vae.safetensors"
    trained = run_parallel(
        None,
        {
            "digits": (["train", *DIGIT_VQVAE, "-o", digits], {}),
            "speech": (
                [
                    "train",
                    "--modality",
                    "audio",
                    "--data",
                    SAMPLES / "speech",
                    "-o",
                    speech,
                    "--steps",
                    10,
                    "--arch",
                    "vqvae2",
                    "vqvae2.top_strides=[2]",
                    *TINY_AUDIO,
                ],
                {},
            ),
            "vae": (
                [
                    "train",
                    "--modality",
                    "image",
                    "--arch",
                    "vae",
                    "--data",
                    SAMPLES / "images",
                    "-o",
                    vae,
                    "--steps",
                    2,
                    "image.size=16",
                    "model.width=8",
                    "model.latent_dim=4",
                ],
                {},
            ),
            "images-v2": (
                [
                    "train",
                    "--modality",
                    "image",
                    "--arch",
                    "vqvae2",
                    "--data",
                    SAMPLES / "images",
                    "-o",
                    root / "images-v2.safetensors",
                    "--steps",
                    3,
                    *TINY_IMAGE,
                ],
                {},
            ),
            "speech-rvq": (
                [
                    "train",
                    "--modality",
                    "audio",
                    "--data",
                    SAMPLES / "speech",
                    "-o",
                    root / "speech-rvq.safetensors",
                    "--steps",
                    3,
                    "model.n_q=2",
                    *TINY_AUDIO,
                ],
                {},
            ),
        },
    )
    for proc in trained.values():
        ok(proc)
    (root / "digits-info-before.json").write_bytes(ok(run_cli("info", "--json", digits)).stdout)
    priors = run_parallel(
        None,
        {
            "digits": (
                [
                    "train-prior",
                    "--model",
                    digits,
                    "--data",
                    DIGITS / "train",
                    "--valid",
                    DIGITS / "test",
                    "--steps",
                    400,
                    *SMALL_PRIOR,
                ],
                {},
            ),
            "speech": (
                [
                    "train-prior",
                    "--model",
                    speech,
                    "--data",
                    SAMPLES / "speech",
                    "-o",
                    root / "speech-prior.safetensors",
                    "--steps",
                    10,
                    *TINY_PRIOR,
                ],
                {},
            ),
            "images-v2": (
                [
                    "train-prior",
                    "--model",
                    root / "images-v2.safetensors",
                    "--data",
                    SAMPLES / "images",
                    "--steps",
                    3,
                    *TINY_PRIOR,
                ],
                {},
            ),
            "speech-rvq": (
                [
                    "train-prior",
                    "--model",
                    root / "speech-rvq.safetensors",
                    "--data",
                    SAMPLES / "speech",
                    "--steps",
                    3,
                    *TINY_PRIOR,
                ],
                {},
            ),
        },
    )
    for name, proc in priors.items():
        (root / f"{name}-prior.log").write_text(ok(proc).stderr)


@pytest.fixture(scope="session")
def prior_models(tmp_path_factory, worker_id) -> Path:
    """The folder of :func:`build_prior_models`, built once per test run."""
    return built_once(tmp_path_factory, worker_id, "prior-models", build_prior_models)
