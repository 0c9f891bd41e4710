"""S3, tracking and recovery: a loss only on evidence, its settlement, and what follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .harness import IotPlatform, eventually

pytestmark = pytest.mark.e2e

SILENCE_S = 2.0
DWELL_S = 2.0


def _history(p: IotPlatform, asset_id: str, move: str) -> datetime:
    """When the battery first made this move."""
    items = p.get(f"/v1/assets/{asset_id}/history")["items"]
    moments = [datetime.fromisoformat(e["at"]) for e in items if e["move"] == move]
    assert moments, f"{asset_id} never made the move {move}: {items}"
    return min(moments)


def _service_inputs(p: IotPlatform, customer_id: str) -> list[str]:
    service_id = p.service_of(customer_id)["service_id"]
    return [h["input"] for h in p.get(f"/v1/services/{service_id}/history")["items"]]


def _settlement(p: IotPlatform, battery: str) -> dict[str, Any]:
    found = eventually(
        lambda: [s for s in p.settlements() if s["battery_id"] == battery],
        bool,
        what=f"a settlement for {battery}",
    )
    assert len(found) == 1, found
    return found[0]


def _region_box(p: IotPlatform, region: str) -> list[float]:
    stations = [s for s in p.stations() if s["region"] == region]
    lats = [s["latitude"] for s in stations]
    lons = [s["longitude"] for s in stations]
    return [min(lats) - 0.05, min(lons) - 0.05, max(lats) + 0.05, max(lons) + 0.05]


@pytest.mark.slow
def test_silence_while_issued_declares_a_loss_and_a_later_sighting_finds_it_for_continuation(
    start_platform: Any,
) -> None:
    # Given iot-sync declaring a loss after 2 s without a tracking signal
    platform: IotPlatform = start_platform(loss_silence_timeout_s=SILENCE_S)
    customer_id = platform.good_customers()[0]
    station = platform.station_with(
        lambda s: bool(platform.available(s["station_id"], "STANDARD")), "with a battery"
    )
    # and a battery handed over whose tracker then says nothing
    battery = platform.issue_battery(customer_id, station["station_id"])
    service_id = platform.service_of(customer_id)["service_id"]

    # When the silence lasts longer than the timeout
    platform.wait_asset(battery, "LOST")

    # Then the loss was declared no earlier than the timeout after the hand-over
    issued_at = _history(platform, battery, "ISSUE")
    assert _history(platform, battery, "DECLARE_LOST") - issued_at >= timedelta(seconds=SILENCE_S)
    # the service is BATTERY_LOST, ARM has it LOST, a settlement started on silence evidence
    assert platform.service_of(customer_id)["state"] == "BATTERY_LOST"
    platform.wait_arm_asset(battery, lambda a: a["state"] == "LOST")
    settlement = _settlement(platform, battery)
    assert (settlement["service_id"], settlement["customer_id"], settlement["evidence"]) == (
        service_id,
        customer_id,
        "silence",
    )
    platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_lost",
        what="battery_lost webhook",
    )

    # When the tracker speaks again (and keeps speaking)
    tracker = platform.tracker(battery, region=station["region"], site=station["site"])
    with tracker.reporting(station["latitude"], station["longitude"]):
        # Then the battery is sighted: ISSUED with its holder, the service BATTERY_FOUND
        asset = platform.wait_asset(battery, "ISSUED")
        assert asset["holder"] == customer_id
        assert platform.wait_service(customer_id, "BATTERY_FOUND")["battery_id"] == battery
        found = platform.hooks.wait_for(
            lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_found",
            what="battery_found webhook",
        )
        assert found.body["data"]["options"] == ["continue", "cancel"]

        # When the customer asks to continue
        continued = platform.service_input(service_id, "CONTINUE_SERVICE_REQUESTED")

        # Then the service carries on with the battery in hand, and ARM agrees
        assert (continued["state"], continued["battery_id"]) == ("BATTERY_ISSUED", battery)
        platform.wait_arm_asset(
            battery, lambda a: a["state"] == "ISSUED" and a["holder"] == customer_id
        )
    assert len([s for s in platform.settlements() if s["battery_id"] == battery]) == 1


@pytest.mark.slow
def test_one_gps_jump_outside_the_area_is_no_loss_but_staying_outside_for_the_dwell_time_is(
    start_platform: Any,
) -> None:
    # Given region-wide allowed areas and a 2 s dwell time (silence would take a minute)
    platform: IotPlatform = start_platform()
    region = platform.stations()[0]["region"]
    area = _region_box(platform, region)
    platform.restart_iot_sync(
        allowed_areas={region: area}, loss_dwell_s=DWELL_S, loss_silence_timeout_s=60.0
    )
    inside = ((area[0] + area[2]) / 2, (area[1] + area[3]) / 2)
    outside = (area[2] + 1.0, area[3] + 1.0)
    # and two customers each holding a battery taken in that region
    stations = [
        s
        for s in platform.stations()
        if s["region"] == region and platform.available(s["station_id"], "STANDARD")
    ]
    jumpy_customer, wandering_customer = platform.good_customers()[:2]
    jumpy = platform.issue_battery(jumpy_customer, stations[0]["station_id"])
    wandering = platform.issue_battery(wandering_customer, stations[1]["station_id"])
    jumpy_tracker = platform.tracker(jumpy, region=region)
    wandering_tracker = platform.tracker(wandering, region=region)

    # When one tracker reports a single position far outside between positions inside
    jumpy_tracker.position(*inside)
    jumpy_tracker.position(*outside)
    with jumpy_tracker.reporting(*inside):
        # and the other reports only positions outside, from now on
        started = datetime.now(UTC)
        with wandering_tracker.reporting(*outside):
            # Then the one that stayed outside is declared lost, not before the dwell time
            platform.wait_asset(wandering, "LOST")
        declared = _history(platform, wandering, "DECLARE_LOST")
        assert declared - started >= timedelta(seconds=DWELL_S)
        assert _settlement(platform, wandering)["evidence"] == "outside_area"
        # (its tracker's last positions may already have sighted it again: BATTERY_FOUND)
        assert "BATTERY_LOST" in _service_inputs(platform, wandering_customer)
        # and the one with the single jump, older than that run, is still with its customer
        assert platform.asset(jumpy)["state"] == "ISSUED"
        assert platform.service_of(jumpy_customer)["state"] == "BATTERY_ISSUED"
    assert [s["battery_id"] for s in platform.settlements()] == [wandering]


def test_a_manual_loss_report_starts_settlement_and_recovery_lets_the_customer_continue(
    platform: IotPlatform,
) -> None:
    # Given a customer holding a battery and a field agent of its region
    customer_id = platform.good_customers()[0]
    station = platform.station_with(
        lambda s: bool(platform.available(s["station_id"], "STANDARD")), "with a battery"
    )
    battery = platform.issue_battery(customer_id, station["station_id"])
    service_id = platform.service_of(customer_id)["service_id"]
    agent_id = next(
        p["person_id"]
        for p in platform.personnel()
        if p["role"] == "FIELD_AGENT" and station["region"] in p["regions"]
    )
    agent = platform.person(agent_id)

    # When the agent reports the battery lost
    assert agent.report("report_lost", battery, note="left at a bus stop")["result"] == "accepted"

    # Then a settlement starts on the manual report
    settlement = _settlement(platform, battery)
    assert (settlement["service_id"], settlement["evidence"], settlement["detail"]) == (
        service_id,
        "manual_report",
        "left at a bus stop",
    )
    assert platform.service_of(customer_id)["state"] == "BATTERY_LOST"

    # When the agent recovers it and the customer asks to continue
    assert agent.report("report_recovered", battery)["result"] == "accepted"
    assert platform.service_of(customer_id)["state"] == "BATTERY_FOUND"
    continued = platform.service_input(service_id, "CONTINUE_SERVICE_REQUESTED")

    # Then the service is ACTIVE without a battery (staff have it), so the customer may swap
    assert (continued["state"], continued["battery_id"]) == ("ACTIVE", None)
    platform.wait_arm_asset(battery, lambda a: a["state"] == "IN_INSPECTION")
    other = platform.station_with(
        lambda s: bool(platform.available(s["station_id"], "STANDARD")), "with a battery"
    )
    assert platform.station(other["station_id"]).authorize(customer_id)["decision"] == "GRANTED"
