"""Process tuning: glibc's allocator takes the settings; elsewhere nothing is attempted."""

import platform
import sys

import pytest

from fleetops_common import process


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_accepts_the_allocator_settings():
    assert process.tune_memory_allocator() is True
    assert process.tune_memory_allocator(process.AllocatorTuning(arenas=4)) is True


def test_without_glibc_nothing_is_tuned(monkeypatch):
    monkeypatch.setattr(process, "_glibc", lambda: None)
    assert process.tune_memory_allocator() is False


def test_a_setting_glibc_refuses_is_reported(monkeypatch):
    class RefusingLibc:
        def mallopt(self, param, value):
            return 0 if param == process._M_ARENA_MAX else 1

    monkeypatch.setattr(process, "_glibc", lambda: RefusingLibc())
    assert process.tune_memory_allocator() is False
