"""The CLI's allocator setting (vqtok.allocator): applied on glibc, left alone when the user set their own."""

import os
import subprocess
import sys

import pytest

CHECK = "from vqtok.allocator import keep_freed_memory; print(keep_freed_memory())"


def run_check(env: dict) -> str:
    return subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="mallopt is glibc's"
)
def test_settings_take_effect_on_glibc():
    assert run_check(clean_env()) == "True"


@pytest.mark.parametrize("var", ["MALLOC_ARENA_MAX", "GLIBC_TUNABLES"])
def test_the_users_own_allocator_settings_win(var):
    assert run_check({**clean_env(), var: "glibc.malloc.arena_max=2" if var == "GLIBC_TUNABLES" else "2"}) == "False"
