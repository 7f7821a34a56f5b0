"""Fuzz vqtok's readers for a while: ``python fuzz/run.py [--target NAME ...] [--seconds N] [--engine E]``.

Engines: ``atheris`` (coverage-guided libFuzzer, ``pip install atheris``; each target runs in its own
process, its corpus kept in ``fuzz/corpus/<target>/`` and any crash written to ``fuzz/crashes/``), or
``hypothesis`` (mutations of valid inputs, :mod:`mutations`), the default where atheris is missing. A
target fails when a reader raises anything but ``VqtokError`` (see :mod:`targets`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets  # noqa: E402

INSTRUMENTED = [
    "vqtok",
    "vqtok_audio",
    "vqtok_image",
    "PIL",
    "numpy",
    "zipfile",
    "tomllib",
    "soundfile",
    "safetensors",
    "json",
]


def run_atheris(target: str, seconds: int) -> int:
    corpus = HERE / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(targets.seeds(target)):
        (corpus / f"seed-{i}").write_bytes(seed)
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    # the readers are imported inside instrument_imports (the plugins, lazily imported ones included, and the
    # Python parts of PIL, numpy's .npy reader, zipfile, tomllib and soundfile): coverage guides the fuzzer
    # through them too. torch itself is not instrumented (its size makes that take many minutes).
    child = (
        f"import sys, atheris; sys.path.insert(0, {str(HERE)!r})\n"
        f"with atheris.instrument_imports(include={INSTRUMENTED!r}):\n"
        "    import torch, numpy, zipfile, tomllib, json\n"
        "    import targets\n"
        f"    targets.load_readers({target!r})\n"
        f"atheris.Setup(sys.argv, lambda data: targets.check({target!r}, data))\n"
        "atheris.Fuzz()\n"
    )
    args = [
        sys.executable,
        "-c",
        child,
        str(corpus),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/{target}-",
        "-rss_limit_mb=4096",
        "-timeout=30",
    ]
    return subprocess.run(args).returncode


def run_hypothesis(target: str, seconds: int) -> int:
    from hypothesis import HealthCheck, given, settings
    from mutations import near

    seeds = targets.seeds(target)
    examples = 0

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(near(seeds))
    def one_round(data):
        nonlocal examples
        examples += 1
        targets.check(target, data)

    end = time.time() + seconds
    while time.time() < end:
        one_round()
    print(f"{target}: {examples} inputs in {seconds} s, no failure")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", nargs="*", default=list(targets.TARGETS), choices=list(targets.TARGETS))
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    try:
        import atheris  # noqa: F401

        default = "atheris"
    except ImportError:
        default = "hypothesis"
    parser.add_argument("--engine", choices=["atheris", "hypothesis"], default=default)
    args = parser.parse_args()
    run = run_atheris if args.engine == "atheris" else run_hypothesis
    failed = [t for t in args.target if run(t, args.seconds) != 0]
    print(f"{args.engine}: {len(args.target)} target(s), {args.seconds} s each; failed: {', '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
