"""A bulk change of a few thousand devices with the carrier misbehaving in every way at once."""

import pytest

from .platform import running_platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_every_line_succeeds_and_no_device_changes_twice(fresh_database_url):
    with running_platform(
        fresh_database_url, fleet_size=3000, max_devices_per_request=50, carrier_rate_limit_per_s=60
    ) as platform:
        iccids = platform.active_iccids(2000)
        # Given a carrier that throttles (our limiter allows more than it does), fails 5xx,
        # loses and duplicates callbacks and delivers them out of order
        platform.configure_sim(
            rate_limit_per_s=3,
            max_devices_per_request=100,
            error_rate=0.1,
            callback_loss_rate=0.05,
            callback_duplicate_rate=0.2,
            callback_reorder=True,
            callback_delay_ms=50,
            callback_jitter_ms=300,
        )
        platform.sim_http.post("/_sim/reset-stats").raise_for_status()
        # When 2,000 devices are suspended in one bulk change
        bulk = platform.http.post(
            "/v1/bulk-changes",
            json={
                "change_type": "update_device_status",
                "devices": [{"iccid": i} for i in iccids],
                "params": {"target_status": "SUSPENDED"},
            },
        )
        assert bulk.status_code == 202, bulk.text
        state = platform.wait_finished(bulk.json()["id"], timeout_s=240)
        stats = platform.sim_stats()
        # Then every line succeeded, each device was changed exactly once
        failed = platform.http.get(
            f"/v1/bulk-changes/{bulk.json()['id']}/lines", params={"status": "FAILED"}
        ).json()["items"]
        assert state["status"] == "COMPLETED", (state["counts"], failed[:3])
        assert state["counts"]["SUCCEEDED"] == 2000
        assert stats["changes_applied"] == 2000
        assert stats["devices_changed_more_than_once"] == 0
        # and the faults really happened
        assert stats["throttled"] > 0
        assert stats.get("errors_injected", 1) > 0
        assert stats.get("callbacks_lost", 1) > 0
        assert stats.get("callbacks_duplicated", 1) > 0
        # and the inventory shows the new status
        sample = platform.http.get(f"/v1/devices/{iccids[0]}").json()
        assert sample["status"] == "SUSPENDED"
        history = platform.http.get(f"/v1/devices/{iccids[0]}/history").json()["items"]
        assert history[0]["changed"]["status"] == ["ACTIVE", "SUSPENDED"]
        assert history[0]["bulk_change_id"] == bulk.json()["id"]
