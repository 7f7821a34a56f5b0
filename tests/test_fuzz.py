"""A short, fixed-seed fuzz of every reader (fuzz/targets.py): arbitrary bytes near valid inputs are read
or refused with a VqtokError, never anything else. `python fuzz/run.py` runs the long, coverage-guided one."""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings

from conftest import ROOT

sys.path.insert(0, str(ROOT / "fuzz"))
import targets  # noqa: E402
from mutations import near  # noqa: E402


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_a_reader_refuses_bad_bytes_with_a_clear_error_only(target):
    seeds = targets.seeds(target)
    for seed in seeds:  # the seeds themselves are read
        targets.TARGETS[target](seed) if target != "override" else targets.check(target, seed)

    @settings(max_examples=80, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(near(seeds))
    def fuzz(data):
        targets.check(target, data)

    fuzz()
