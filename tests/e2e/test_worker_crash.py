"""Kill a worker process mid-run: the bulk change still completes, no line lost or doubled."""

import os
import signal
import subprocess
import sys
import time

import pika
import pytest

from .platform import RABBIT, running_platform

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

QUEUES = [
    "device_change.carrier",
    "device_change.carrier.DQ",
    "device_change.carrier.XQ",
    "device_change.callbacks",
    "device_change.callbacks.DQ",
    "device_change.callbacks.XQ",
]


def purge_queues() -> None:
    conn = pika.BlockingConnection(pika.URLParameters(RABBIT))
    ch = conn.channel()
    for q in QUEUES:
        try:
            ch.queue_purge(q)
        except pika.exceptions.ChannelClosedByBroker:
            ch = conn.channel()
    conn.close()


def start_worker(platform, database_url):
    env = {
        **os.environ,
        "DEVICE_CHANGE_DATABASE_URL": database_url,
        "DEVICE_CHANGE_BROKER_URL": RABBIT,
        "DEVICE_CHANGE_THINGSPACE__BASE_URL": platform.settings.thingspace.base_url,
        "DEVICE_CHANGE_THINGSPACE__OAUTH_URL": platform.settings.thingspace.oauth_url,
        "DEVICE_CHANGE_CARRIER_RATE_LIMIT_PER_S": "5",
        "DEVICE_CHANGE_MAX_DEVICES_PER_REQUEST": "50",
        "DEVICE_CHANGE_FIRST_POLL_AFTER_S": "3",
        "DEVICE_CHANGE_RECONCILE_DELAY_S": "0.5",
        "DEVICE_CHANGE_WORKER_THREADS": "4",
        "DEVICE_CHANGE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "device_change.entrypoints.cli", "worker"],
        env=env,
        start_new_session=True,
    )


def test_bulk_change_survives_a_killed_worker(fresh_database_url, postgres_available):
    assert postgres_available, "this test runs against PostgreSQL and RabbitMQ"
    purge_queues()
    with running_platform(
        fresh_database_url,
        fleet_size=2000,
        broker_url=RABBIT,
        in_process_workers=False,
        carrier_rate_limit_per_s=5,
        max_devices_per_request=50,
    ) as platform:
        platform.configure_sim(
            rate_limit_per_s=5,
            max_devices_per_request=50,
            latency_ms=100,
            callback_delay_ms=300,
            callback_jitter_ms=700,
        )
        iccids = platform.active_iccids(1000)
        platform.sim_http.post("/_sim/reset-stats").raise_for_status()
        first = start_worker(platform, fresh_database_url)
        second = None
        try:
            r = platform.http.post(
                "/v1/bulk-changes",
                json={
                    "change_type": "update_device_status",
                    "devices": [{"iccid": i} for i in iccids],
                    "params": {"target_status": "SUSPENDED"},
                },
            )
            bulk_id = r.json()["id"]
            # Given the first worker has sent part of the carrier requests
            deadline = time.monotonic() + 60
            while True:
                counts = platform.http.get(f"/v1/bulk-changes/{bulk_id}").json()["counts"]
                if counts["SUBMITTED"] + counts["SUCCEEDED"] >= 200:
                    break
                assert time.monotonic() < deadline, counts
                time.sleep(0.1)
            # When it is killed without warning, mid-run, and another worker takes over
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            assert counts["SUCCEEDED"] + counts["SUBMITTED"] < 1000
            second = start_worker(platform, fresh_database_url)
            state = platform.wait_finished(bulk_id, timeout_s=240)
        finally:
            for proc in (first, second):
                if proc and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
        stats = platform.sim_stats()
        # Then no line is lost or doubled
        assert state["status"] == "COMPLETED", state
        assert state["counts"]["SUCCEEDED"] == 1000
        assert stats["changes_applied"] == 1000
        assert stats["devices_changed_more_than_once"] == 0
