"""A message that keeps killing its worker is set aside, listed, and replayed by an admin."""

from __future__ import annotations

import time

import dramatiq
import pytest

from device_change.app.submit import SEND_BATCH

from .platform import running_platform

pytestmark = [pytest.mark.e2e]


def test_a_message_delivered_too_often_is_dead_lettered_and_replays_to_completion(
    fresh_database_url,
):
    with running_platform(
        fresh_database_url, fleet_size=200, in_process_workers=False, max_deliveries=3
    ) as platform:
        container = platform.api.server.config.app.container
        broker = container.broker
        iccids = platform.active_iccids(5)
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
        # Given the send message was already delivered 3 times, each time killing its worker
        queued = _wait_for_queued(broker, SEND_BATCH)
        for _ in range(3):
            container.delivery_log.record_delivery(
                queued.message_id, queue=queued.queue_name, actor=queued.actor_name
            )
        # When a worker receives it a fourth time
        worker = dramatiq.Worker(broker, worker_threads=2)
        worker.start()
        try:
            letters = _wait_for(lambda: platform.http.get("/v1/admin/dead-letters").json())
            # Then it is set aside with the reason, and nothing reached the carrier
            assert [d["message_id"] for d in letters] == [queued.message_id]
            assert "delivered 4 times" in letters[0]["reason"]
            assert platform.sim_stats()["changes_applied"] == 0
            state = platform.http.get(f"/v1/bulk-changes/{bulk_id}").json()
            assert state["counts"]["PENDING"] == 5 and not state["finished_at"]
            # When an operator may not replay it, but an admin does
            operator = platform.token_for("operator")
            refused = platform.http.post(
                f"/v1/admin/dead-letters/{letters[0]['id']}/replay",
                headers={"Authorization": f"Bearer {operator}"},
            )
            assert refused.status_code == 403
            replayed = platform.http.post(f"/v1/admin/dead-letters/{letters[0]['id']}/replay")
            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["replayed_at"]
            # Then the bulk change completes, each device changed once
            finished = platform.wait_finished(bulk_id, timeout_s=60)
        finally:
            worker.stop()
        assert finished["status"] == "COMPLETED"
        assert finished["counts"]["SUCCEEDED"] == 5
        assert platform.sim_stats()["changes_applied"] == 5


def _wait_for_queued(broker: dramatiq.Broker, actor_name: str) -> dramatiq.Message:
    queue = broker.queues["device_change.carrier"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for encoded in list(queue.queue):
            message = dramatiq.Message.decode(encoded)
            if message.actor_name == actor_name:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no {actor_name} message was queued")


def _wait_for(read, timeout_s: float = 15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("nothing appeared in time")
