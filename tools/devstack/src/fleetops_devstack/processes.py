"""Start, watch and stop the platform's processes on this machine."""

from __future__ import annotations

import os
import signal
import socket
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
    # how `start_in_order` knows the process is up: an URL answering 200, or an MQTT broker
    ready_url: str | None = None
    ready_mqtt: tuple[str, int] | None = None
    # start only once every process before it is ready (it connects to them once, at start)
    after_previous: bool = False
    # a program other than this Python (e.g. `mosquitto`); argv then follows it
    program: str | None = None

    def start(self, *, quiet: bool = False) -> None:
        VAR.mkdir(exist_ok=True)
        log = open(VAR / f"{self.name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.popen = subprocess.Popen(
            [self.program or sys.executable, *self.argv],
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


def _mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def mqtt_answers(host: str, port: int, *, timeout: float = 1.0) -> bool:
    """An MQTT 3.1.1 CONNECT (clean session, a user name) gets a CONNACK that accepts it.

    A bare TCP probe would do, but amqtt logs every connection that sends nothing as an error.
    """
    body = (
        _mqtt_string("MQTT")
        + bytes([4, 0x82, 0, 10])  # level 4, user name + clean session, keepalive 10 s
        + _mqtt_string(f"devstack-probe-{os.getpid()}")
        + _mqtt_string("devstack")
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(bytes([0x10, len(body)]) + body)
            connack = sock.recv(4)
            sock.sendall(bytes([0xE0, 0]))  # DISCONNECT
    except OSError:
        return False
    return len(connack) == 4 and connack[0] == 0x20 and connack[3] == 0


def wait_until_mqtt(
    host: str, port: int, *, timeout_s: float, watch: Sequence[Process] = ()
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in watch:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited early (see var/{p.name}.log)")
        if mqtt_answers(host, port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no MQTT broker on {host}:{port} after {timeout_s:.0f} s")


def wait_ready(process: Process, *, timeout_s: float, watch: Sequence[Process] = ()) -> None:
    if process.ready_url:
        wait_until_ok(process.ready_url, timeout_s=timeout_s, watch=watch)
    elif process.ready_mqtt:
        host, port = process.ready_mqtt
        wait_until_mqtt(host, port, timeout_s=timeout_s, watch=watch)


def start_in_order(
    processes: Sequence[Process], *, timeout_s: float = 180, quiet: bool = False
) -> None:
    """Start each process; one marked `after_previous` waits until those before it are ready.

    Returns once every process with a readiness check passes it; on failure the caller stops
    what was started (`stop_all`).
    """
    started: list[Process] = []
    for p in processes:
        if p.after_previous:
            for before in started:
                wait_ready(before, timeout_s=timeout_s, watch=started)
        p.start(quiet=quiet)
        started.append(p)
    for p in started:
        wait_ready(p, timeout_s=timeout_s, watch=started)


def stop_all(processes: Sequence[Process]) -> None:
    for p in reversed(processes):
        p.stop()
