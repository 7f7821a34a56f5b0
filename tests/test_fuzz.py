"""A short, fixed-seed fuzz of every reader (fuzz/targets.py): arbitrary bytes near valid inputs are read
or refused with a VqtokError, never anything else. `python fuzz/run.py` runs the long, coverage-guided one."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(ROOT / "fuzz"))
import targets  # noqa: E402
from mutations import near  # noqa: E402


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_a_reader_refuses_bad_bytes_with_a_clear_error_only(target):
    seeds = targets.seeds(target)
    for seed in seeds:  # the seeds themselves are read
        targets.TARGETS[target](seed) if target != "override" else targets.check(target, seed)

    @settings(max_examples=80, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(near(seeds))
    def fuzz(data):
        targets.check(target, data)

    fuzz()


def test_a_code_file_whose_reader_fails_without_a_message_is_still_a_clear_error():
    """Found by the atheris run: a mutated .npz on which zipfile raises an EOFError with no message; the
    error line took the message's first line, which did not exist (an IndexError escaped)."""
    import base64
    import zlib

    from vqtok.errors import VqtokError
    from vqtok.files.codes import parse_codes

    found = zlib.decompress(
        base64.b64decode(
            "eNoL8GZm0WWAAEUGsyar0P9QwMkgwpCcn5JarJdXUMnIIMAwA6oMRk/2C/UNiGRkKGOoVgcqSy5St1JQt8k0UtdRUE/LLyopSsyLzy9KSQWJuyXm"
            "FKcCxYszEgtSgXwNIx0FM00dhVoFsgEXAwMjAxMDMwMLAysDGwM7AwcDJwMXAzdDAIqXni07wwjzEgeDSENuakkizEcCjBBVMBq7j0KNzYjyEmXe"
            "AfmoGugGJSDOBeJ8IE4B4kQgzgHiTCAuAeJKqBorIFaAskFqSqHqM6F6QeI6SGqKoXJVQJyKZkY0EJsAsQUQGwBxLBDXAnGANyOTLjNq8pgBTQGc"
            "DAjQAA4/eGJB1waKAlAQgzAHirbLIM9CIyTAm5UNJMoEhKAAkGUC8QBTCHGZ"
        )
    )
    with pytest.raises(VqtokError, match="fuzz.npz: not a vqtok code file"):
        parse_codes(found, "fuzz.npz")


def test_a_flac_declaring_billions_of_samples_is_refused_without_allocating_them(tmp_path):
    """Found by the atheris run: a 405-byte FLAC whose header declares 21 billion samples made the reader
    allocate 79 GiB for them at once (MemoryError). Audio is now read in pieces of at most
    ``READ_FRAMES``: the lie is found when the samples run out."""
    import base64
    import zlib

    from vqtok_audio import reading

    from vqtok.errors import VqtokError

    found = zlib.decompress(
        base64.b64decode(
            "eNpL80l0ZmBgUBJgEABSt4GIkYHhywcGxgnbb9368HvOwZOzRJatvK70TK+FgUFDAaimKDUttSj1B51AXnKqQk5mkpuPo7OCoZ6JnrGCkYGRsYGZ"
            "kTHQKQz/f5RwMDD2q0gwMPAcl8xTvcKwcE6YqpmStCSHj5uqWVbPszLLrhWhrVF1q17t/XV8Y2BQUNiJsy2LkwwNOjv8zLNcFaMPLQypWfrea+nx"
            "ElnurtOXlqumPbSY2dNySImTk3fSthW77GpC+yK0WLsWTdCLj+2a9OLKnbbHToIzWZoLpYTMXFW3hbZ2n676t/Fi6VUhRYsLPT2ChxIVJQWmTnry"
            "qeLHtnlcTV916yJiYl68WSk0SXElB9BcjhlnWZ6t1ZQVlfv1Ojb0Z+bjvRU/6ya6hJ3s5eXxSTFTZFBeBADE3N53"
        )
    )
    (tmp_path / "claims.flac").write_bytes(found)
    with pytest.raises(VqtokError, match="claims.flac: "):
        reading.load(tmp_path / "claims.flac", 8000)


def test_a_wav_declaring_a_sample_rate_of_386_mhz_is_refused_without_building_its_filter(tmp_path):
    """Found by the atheris run: a 400-sample WAV at 385,883,968 Hz made resampling to 8 kHz build a filter
    of many GB (out of memory). Rates whose filter passes 2^25 coefficients are refused, naming the file."""
    import numpy as np
    import soundfile as sf
    from vqtok_audio import reading

    from vqtok.errors import VqtokError

    for rate in (385_883_968, 44_101):  # a header's nonsense, and a real but coprime rate (1.4 GB filter)
        sf.write(tmp_path / "odd.wav", np.zeros(400, dtype=np.float32), rate)
        with pytest.raises(VqtokError, match=f"odd.wav: its sample rate, {rate} Hz, cannot be resampled"):
            reading.load(tmp_path / "odd.wav", 8000)
    sf.write(tmp_path / "fine.wav", np.zeros(400, dtype=np.float32), 192_000)
    assert reading.load(tmp_path / "fine.wav", 8000).shape == (1, 17)
