"""The assembled process: migrate, seed, pull ARM, relay in the background, report ready."""

import time

import pytest
from fastapi.testclient import TestClient

from iot_sync.entrypoints.runtime import build_app
from iot_sync.settings import IotSyncSettings

from .conftest import ASSETS, STATIONS
from .fakes import FakeArm, FakeFieldPublisher, FakeNotifier

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_process_gets_ready_and_relays_replies_after_commit(tmp_path):
    settings = IotSyncSettings(
        database_url=f"sqlite:///{tmp_path / 'run.db'}",
        mqtt_in_process=False,
        log_json=False,
        relay_every_s=0.1,
    )
    publisher, arm = FakeFieldPublisher(), FakeArm(STATIONS, ASSETS)
    app = build_app(settings, publisher=publisher, arm=arm, notifier=FakeNotifier())
    with TestClient(app) as client:
        assert wait_for(lambda: client.get("/readyz").status_code == 200)
        token = app.state.container.tokens.mint(tenant="demo", role="operator")
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "items": [
                {
                    "topic": "call/abs/station/ST-0001/authorize",
                    "envelope": {
                        "id": "run-1",
                        "ts": "2026-11-23T12:00:00+00:00",
                        "seq": 1,
                        "correlation_id": "corr-run-1",
                        "data": {"customer_id": "CUST-0001"},
                    },
                }
            ]
        }
        assert client.post("/v1/signals", json=body, headers=headers).status_code == 200
        assert wait_for(lambda: any(m.correlation_id == "corr-run-1" for m in publisher.sent))
        reply = next(m for m in publisher.sent if m.correlation_id == "corr-run-1")
        assert reply.data["decision"] == "GRANTED"
        stations = client.get("/v1/stations", headers=headers).json()["items"]
        assert len(stations) == len(STATIONS)
