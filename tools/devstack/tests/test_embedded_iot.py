"""The iot part of `make run`: amqtt, the ARM simulator and iot-sync on SQLite, on free ports."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleetops_devstack.processes import start_in_order, stop_all
from fleetops_devstack.servers import free_port
from fleetops_devstack.stack import IotPorts, embedded_iot_processes

pytestmark = pytest.mark.e2e

WAIT_S = 10.0


def _token() -> str:
    from fleetops_common.auth import TokenService
    from iot_sync.settings import IotSyncSettings

    s = IotSyncSettings()
    tokens = TokenService(s.jwt_secret, issuer=s.jwt_issuer, audience=s.jwt_audience)
    return tokens.mint(tenant="demo", role="operator")


@pytest.fixture(scope="module")
def iot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IotPorts, httpx.Client]]:
    ports = IotPorts(api=free_port(), arm_sim=free_port(), mqtt=free_port())
    db: Path = tmp_path_factory.mktemp("iot") / "iot-sync.db"
    processes = embedded_iot_processes(ports=ports, db=db, prefix="test-")
    try:
        start_in_order(processes, timeout_s=60, quiet=True)
        headers = {"Authorization": f"Bearer {_token()}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{ports.api}", headers=headers, timeout=WAIT_S
        ) as http:
            yield ports, http
    finally:
        stop_all(processes)


def test_iot_sync_is_ready_with_stations_from_arm_and_seeded_customers(
    iot: tuple[IotPorts, httpx.Client],
) -> None:
    _, http = iot

    assert http.get("/readyz").status_code == 200
    assert http.get("/v1/stations").json()["items"]
    standings = {c["standing"] for c in http.get("/v1/customers").json()["items"]}
    assert "GOOD" in standings
    assert standings - {"GOOD"}
    assert http.get("/v1/personnel").json()["items"]


def test_a_station_authorize_call_is_answered_over_the_embedded_broker(
    iot: tuple[IotPorts, httpx.Client],
) -> None:
    # Given a station with a charged standard battery and a paho 3.1.1 client as the station
    # When it asks to authorize a customer in good standing
    correlation, answer = _authorize(iot, customer_id="CUST-0001", seq=1)

    # Then the answer names a battery, under the call's correlation id
    assert answer["correlation_id"] == correlation
    assert answer["data"]["decision"] == "GRANTED"
    assert answer["data"]["battery_id"]


def _authorize(
    iot: tuple[IotPorts, httpx.Client], *, customer_id: str, seq: int
) -> tuple[str, dict[str, Any]]:
    ports, http = iot
    station_id = next(
        s["station_id"]
        for s in http.get("/v1/stations").json()["items"]
        if any(
            a["state"] == "AVAILABLE" and a["battery_class"] == "STANDARD"
            for a in http.get(f"/v1/stations/{s['station_id']}/inventory").json()["items"]
        )
    )
    answers: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    station = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}", protocol=4
    )
    station.username_pw_set("station")
    subscribed = threading.Event()
    station.on_message = lambda _c, _u, message: answers.put(message)
    station.on_subscribe = lambda *_: subscribed.set()
    station.connect(ports.mqtt_host, ports.mqtt)
    station.loop_start()
    try:
        station.subscribe(f"rtrn/abs/station/{station_id}/authorize", qos=1)
        assert subscribed.wait(WAIT_S)
        correlation = uuid.uuid4().hex
        envelope = {
            "id": f"test-{correlation}",
            "ts": datetime.now(UTC).isoformat(),
            "seq": seq,
            "correlation_id": correlation,
            "data": {"customer_id": customer_id},
        }
        station.publish(
            f"call/abs/station/{station_id}/authorize", json.dumps(envelope), qos=1
        ).wait_for_publish(WAIT_S)
        answer: dict[str, Any] = json.loads(answers.get(timeout=WAIT_S).payload)
    finally:
        station.disconnect()
        station.loop_stop()
    return correlation, answer


def test_committed_signals_are_counted_with_their_publish_to_commit_latency(
    iot: tuple[IotPorts, httpx.Client],
) -> None:
    # Given a station call that was answered, so committed
    _, http = iot
    _authorize(iot, customer_id="CUST-0002", seq=2)

    # When the consumer's counters are read
    stats = http.get("/v1/admin/ingest-stats").json()

    # Then what it committed is there, each signal in the latency histogram
    assert stats["signals"] >= 1
    assert stats["batches"] >= 1
    assert sum(stats["latency_ms_histogram"].values()) == stats["signals"] - stats["malformed"]
