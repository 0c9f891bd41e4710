"""`make run-stack`: every process on its own against PostgreSQL, RabbitMQ and Mosquitto.

Runs `fleetops run-stack` as a user would (ports and database names moved by settings only,
so it never meets a developer's own stack), waits until it says it is ready, uses each
API once, then stops it with SIGTERM and checks that nothing it started is left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fleetops_devstack import databases
from fleetops_devstack.cli import mint
from fleetops_devstack.mqtt_broker import accepts_connections
from fleetops_devstack.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]

READY_LINE = "is ready"


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def mosquitto() -> None:
    if not accepts_connections("127.0.0.1", 1883, timeout=2):
        if databases.under_ci():
            pytest.fail("CI=true and Mosquitto is not reachable on 127.0.0.1:1883", pytrace=False)
        pytest.skip("Mosquitto is not running on this laptop (CI requires it)")


@pytest.fixture
def stack_databases(postgres_available: bool, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if not postgres_available:
        pytest.skip("run-stack needs PostgreSQL (CI requires it)")
    server = databases.DEFAULT_SERVER
    with (
        databases.fresh_database(server, prefix="stack", sqlite_dir=tmp_path) as device_change,
        databases.fresh_database(server, prefix="stack_iot", sqlite_dir=tmp_path) as iot,
    ):
        yield device_change, iot


def _wait_for_line(log: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if READY_LINE in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"run-stack exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"run-stack not ready in {timeout_s} s:\n{log.read_text()[-3000:]}")


def test_run_stack_starts_every_process_on_the_real_servers_and_stops_them_all(
    rabbitmq: str, mosquitto: None, stack_databases: tuple[str, str], tmp_path: Path
) -> None:
    # Given free ports and fresh databases, set the way an operator would: by settings
    ports = {
        name: free_port()
        for name in (
            "THINGSPACE_SIM_PORT",
            "DEVICE_CHANGE_PORT",
            "IOT_SYNC_PORT",
            "IOT_SYNC_CONSUME_PORT",
            "ARM_SIM_PORT",
        )
    }
    client_id = f"run-stack-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "FLEETOPS_STACK_DATABASE_URL": stack_databases[0],
        "FLEETOPS_STACK_IOT_DATABASE_URL": stack_databases[1],
        "IOT_SYNC_MQTT__CLIENT_ID": client_id,
    }
    fleetops = shutil.which("fleetops", path=str(Path(sys.executable).parent)) or "fleetops"
    log = tmp_path / "run-stack.log"

    # When `fleetops run-stack` starts
    proc = subprocess.Popen(
        [fleetops, "run-stack", "--fleet-size", "300", "--workers", "1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        _wait_for_line(log, proc, timeout_s=180)
        token = mint("demo", "operator")
        auth = {"Authorization": f"Bearer {token}"}

        # Then device-change answers from PostgreSQL with the simulator's fleet
        devices = httpx.get(
            f"http://127.0.0.1:{ports['DEVICE_CHANGE_PORT']}/v1/devices?limit=5",
            headers=auth,
            timeout=10,
        )
        assert devices.status_code == 200, devices.text
        assert devices.json()["items"]
        # and iot-sync lists the stations it pulled from ARM
        stations = httpx.get(
            f"http://127.0.0.1:{ports['IOT_SYNC_PORT']}/v1/stations", headers=auth, timeout=10
        )
        assert stations.status_code == 200, stations.text
        assert stations.json()["items"]
        # and its consumer, a process of its own, is subscribed
        consumer = httpx.get(f"http://127.0.0.1:{ports['IOT_SYNC_CONSUME_PORT']}/readyz")
        assert consumer.json() == {"status": "ready"}
    finally:
        # When it gets SIGTERM
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"run-stack did not stop on SIGTERM:\n{log.read_text()[-3000:]}")

    # Then everything it started is gone: no port answers any more
    still = [name for name, port in ports.items() if _answers(port)]
    assert not still, f"still answering after SIGTERM: {still}"
