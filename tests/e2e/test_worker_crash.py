"""A worker process killed mid-run (SIGKILL) loses no line and applies no change twice.

Real RabbitMQ and PostgreSQL under CI: the API runs in this process, the queue workers run
as separate processes so one of them can be killed at the worst moment, while it holds
messages unacknowledged and carrier requests in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .platform import running_platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "device_change.entrypoints.cli", "worker"],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _print_open_work(database_url: str) -> None:
    """What is left unfinished, to tell a lost message from a wrong state."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        for sql in (
            "SELECT status, count(*) FROM carrier_batches GROUP BY status",
            "SELECT b.id, b.status, b.attempts, b.carrier_request_id, l.status, count(*) "
            "FROM carrier_batches b JOIN device_lines l ON l.batch_id = b.id "
            "WHERE b.status <> 'DONE' GROUP BY b.id, b.status, b.attempts, "
            "b.carrier_request_id, l.status",
            "SELECT id, status, finished_at FROM bulk_changes",
        ):
            print(sql, list(conn.execute(text(sql))))
    engine.dispose()


def test_a_killed_worker_loses_no_line_and_doubles_no_change(
    fresh_database_url, rabbitmq, tmp_path
):
    with running_platform(
        fresh_database_url,
        fleet_size=2000,
        broker_url=rabbitmq,
        in_process_workers=False,
        max_devices_per_request=50,
        carrier_rate_limit_per_s=8,
        reconcile_delay_s=0.5,
        first_poll_after_s=3.0,
    ) as platform:
        s = platform.settings
        env = {
            "DEVICE_CHANGE_DATABASE_URL": s.database_url,
            "DEVICE_CHANGE_BROKER_URL": rabbitmq,
            "DEVICE_CHANGE_CARRIER_RATE_LIMIT_PER_S": "8",
            "DEVICE_CHANGE_MAX_DEVICES_PER_REQUEST": "50",
            "DEVICE_CHANGE_RECONCILE_DELAY_S": "0.5",
            "DEVICE_CHANGE_FIRST_POLL_AFTER_S": "3",
            "DEVICE_CHANGE_RETRY_BASE_DELAY_S": "0.05",
            "DEVICE_CHANGE_LOG_LEVEL": "INFO",
            "DEVICE_CHANGE_THINGSPACE__BASE_URL": s.thingspace.base_url,
            "DEVICE_CHANGE_THINGSPACE__OAUTH_URL": s.thingspace.oauth_url,
        }
        iccids = platform.active_iccids(1000)
        # Given a carrier that is slow to answer and sometimes fails, so that requests and
        # retries are in flight whenever the worker dies
        platform.configure_sim(
            latency_ms=150, error_rate=0.1, callback_delay_ms=300, callback_jitter_ms=500
        )
        platform.sim_http.post("/_sim/reset-stats").raise_for_status()
        first = _worker(env, tmp_path / "worker-1.log")
        second: subprocess.Popen[bytes] | None = None
        try:
            bulk = platform.http.post(
                "/v1/bulk-changes",
                json={
                    "change_type": "update_device_status",
                    "devices": [{"iccid": i} for i in iccids],
                    "params": {"target_status": "SUSPENDED"},
                },
            )
            assert bulk.status_code == 202, bulk.text
            bulk_id = bulk.json()["id"]
            # When the worker is killed once a part of the change is at the carrier
            deadline = time.monotonic() + 60
            while True:
                counts = platform.http.get(f"/v1/bulk-changes/{bulk_id}").json()["counts"]
                if counts["SUBMITTED"] + counts["SUCCEEDED"] >= 200:
                    break
                assert time.monotonic() < deadline, f"no progress before the kill: {counts}"
                time.sleep(0.05)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
            assert counts["SUCCEEDED"] < 1000, "the kill came too late to prove anything"
            # and another worker takes over
            second = _worker(env, tmp_path / "worker-2.log")
            state = platform.wait_finished(bulk_id, timeout_s=180)
        except BaseException:
            for log in sorted(tmp_path.glob("worker-*.log")):
                print(f"---- {log.name}\n{log.read_text()[-6000:]}")
            _print_open_work(s.database_url)
            raise
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
        # Then every line succeeded and the carrier changed each device exactly once
        stats = platform.sim_stats()
        failed = platform.http.get(
            f"/v1/bulk-changes/{bulk_id}/lines", params={"status": "FAILED"}
        ).json()["items"]
        assert state["status"] == "COMPLETED", (state["counts"], failed[:3])
        assert state["counts"]["SUCCEEDED"] == 1000
        assert stats["changes_applied"] == 1000
        assert stats["devices_changed_more_than_once"] == 0
