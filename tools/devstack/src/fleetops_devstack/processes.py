"""Start, watch and stop the platform's processes on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[4]
VAR = REPO / "var"


@dataclass
class Process:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self, *, quiet: bool = False) -> None:
        VAR.mkdir(exist_ok=True)
        log = open(VAR / f"{self.name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.popen = subprocess.Popen(
            [sys.executable, *self.argv],
            env={**os.environ, **self.env},
            stdout=log if quiet else None,
            stderr=subprocess.STDOUT if quiet else None,
            cwd=REPO,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.popen is not None
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_until_ok(url: str, *, timeout_s: float, watch: Sequence[Process] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        for p in watch:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited early (see var/{p.name}.log)")
        try:
            r = httpx.get(url, timeout=2.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s ({last})")


def stop_all(processes: Sequence[Process]) -> None:
    for p in reversed(processes):
        p.stop()
