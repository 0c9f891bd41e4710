"""Continuity: restarts lose nothing, duplicates change nothing, each sender in seq order."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .harness import IotPlatform, eventually

pytestmark = pytest.mark.e2e


def _station_with_standard(p: IotPlatform, count: int = 1) -> dict[str, Any]:
    return p.station_with(
        lambda s: len(p.available(s["station_id"], "STANDARD")) >= count,
        f"with {count} charged standard batteries",
    )


def _logged(p: IotPlatform, message_id: str) -> dict[str, Any]:
    return eventually(
        lambda: [s for s in p.signals() if s["message_id"] == message_id],
        bool,
        what=f"{message_id} in the signal log",
    )[0]


def test_what_a_station_publishes_while_iot_sync_is_down_is_applied_after_the_restart(
    platform: IotPlatform,
) -> None:
    # Given a customer authorized at a station, and a battery charging somewhere
    customer_id = platform.good_customers()[0]
    station_info = _station_with_standard(platform)
    station = platform.station(station_info["station_id"])
    granted = station.authorize(customer_id)
    assert granted["decision"] == "GRANTED", granted
    charging = next(
        a
        for s in platform.stations()
        for a in platform.inventory(s["station_id"])["items"]
        if a["state"] == "CHARGING"
    )
    bms = platform.tracker(charging["asset_id"], region=charging["region"])

    # When iot-sync stops, and meanwhile the station confirms the dispense and the battery
    # management system reports a full charge
    platform.stop_iot_sync()
    dispense = station.send(
        "dispense_confirm", {"customer_id": customer_id, "battery_id": granted["battery_id"]}
    )
    charged_id = bms.charge(99.0)
    # and iot-sync starts again under the same client id (its persistent session)
    platform.restart_iot_sync()

    # Then the station gets its answer and both messages took effect
    confirmed = station.answer(dispense).data
    assert confirmed["result"] == "accepted", confirmed
    service = platform.service_of(customer_id)
    assert (service["state"], service["battery_id"]) == ("BATTERY_ISSUED", granted["battery_id"])
    platform.wait_asset(charging["asset_id"], "AVAILABLE")
    assert _logged(platform, dispense.message_id)["result"] == "accepted"
    assert _logged(platform, charged_id)["result"] == "accepted"
    platform.wait_arm_asset(granted["battery_id"], lambda a: a["state"] == "ISSUED")


def test_replays_and_duplicates_change_nothing(platform: IotPlatform) -> None:
    # Given a swap applied from a station's calls with seq 1 and 2
    customer_id = platform.good_customers()[0]
    station_info = _station_with_standard(platform, count=2)
    station = platform.station(station_info["station_id"])
    granted = station.authorize(customer_id)
    dispense = station.send(
        "dispense_confirm", {"customer_id": customer_id, "battery_id": granted["battery_id"]}
    )
    assert station.answer(dispense).data["result"] == "accepted"
    other = next(
        a["asset_id"]
        for a in platform.available(station.station_id, "STANDARD")
        if a["asset_id"] != granted["battery_id"]
    )
    service_before = platform.service_of(customer_id)
    other_before = platform.asset(other)

    # When the station replays the dispense (same id, same seq), sends a new message with
    # an old seq (a second dispense of another battery), and an old authorize again
    station.send(
        "dispense_confirm",
        {"customer_id": customer_id, "battery_id": granted["battery_id"]},
        seq=dispense.seq,
        message_id=dispense.message_id,
    )
    stale_dispense = station.send(
        "dispense_confirm", {"customer_id": customer_id, "battery_id": other}, seq=dispense.seq
    )
    stale_authorize = station.send("authorize", {"customer_id": customer_id}, seq=1)
    # and then a fresh call (refused: bad standing), which comes out after all of them
    bad = platform.customer(lambda c: c["standing"] != "GOOD", "in bad standing")["customer_id"]
    assert station.authorize(bad)["reason"] == "bad_standing"
    platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == bad and h.body["event"] == "swap_refused",
        what="the fresh call's notice",
    )

    # Then each of them is logged as a duplicate with its reason
    duplicates = {s["message_id"]: s["reason_code"] for s in platform.signals("duplicate")}
    assert duplicates == {
        dispense.message_id: "duplicate_id",
        stale_dispense.message_id: "stale_seq",
        stale_authorize.message_id: "stale_seq",
    }
    # and nothing changed: the service, the other battery, usage, what the customer was told
    assert platform.service_of(customer_id) == service_before
    assert platform.asset(other) == other_before
    assert platform.arm_asset(other)["state"] == "AVAILABLE"
    assert platform.hooks.events_for(customer_id) == ["battery_issued"]
    assert len(platform.notices(customer_id, "battery_issued")) == 1


def test_out_of_order_messages_from_one_station_are_applied_in_seq_order(
    platform: IotPlatform,
) -> None:
    # Given a station iot-sync has heard from (seq 1)
    customer_id = platform.good_customers()[0]
    station_info = _station_with_standard(platform)
    station = platform.station(station_info["station_id"])
    first = station.authorize(platform.good_customers()[1])
    assert first["decision"] == "GRANTED", first
    battery = next(
        a["asset_id"]
        for a in platform.available(station.station_id, "STANDARD")
        if a["reserved_for"] is None
    )

    # When its dispense confirmation (seq 3) arrives before the authorization (seq 2)
    dispense = station.send(
        "dispense_confirm", {"customer_id": customer_id, "battery_id": battery}, seq=3
    )
    held = eventually(
        lambda: [s for s in platform.signals("held") if s["message_id"] == dispense.message_id],
        bool,
        what="the early dispense held back",
    )
    assert held[0]["reason_code"] == "held_for_gap"
    authorize = station.send("authorize", {"customer_id": customer_id}, seq=2)

    # Then the authorization was applied first: it was granted (after the dispense it would
    # be refused, the customer then holding a battery), and the dispense after it
    assert station.answer(authorize).data["decision"] == "GRANTED"
    confirmed = station.answer(dispense).data
    assert confirmed["result"] == "accepted", confirmed
    service = platform.service_of(customer_id)
    assert (service["state"], service["battery_id"]) == ("BATTERY_ISSUED", battery)
    assert _logged(platform, dispense.message_id)["result"] == "accepted"

    # and a battery's older reading (seq 2 after seq 3) does not overwrite the newer one
    charging = next(
        a for a in platform.inventory(station.station_id)["items"] if a["state"] == "CHARGING"
    )
    bms = platform.tracker(charging["asset_id"], region=station_info["region"])
    assert _logged(platform, bms.charge(40.0, seq=1))["result"] == "accepted"
    assert _logged(platform, bms.charge(97.0, seq=3))["result"] == "accepted"
    older = bms.charge(12.0, seq=2)
    assert _logged(platform, older)["reason_code"] == "stale_seq"
    asset = platform.wait_asset(charging["asset_id"], "AVAILABLE")
    assert asset["charge_pct"] == 97.0


@pytest.mark.slow
def test_a_gap_that_never_fills_is_given_up_after_the_hold_back_time(
    start_platform: Any,
) -> None:
    # Given iot-sync holding messages after a seq gap for at most 1.5 s
    hold_s = 1.5
    platform: IotPlatform = start_platform(hold_for_s=hold_s)
    station = platform.station(_station_with_standard(platform)["station_id"])
    customer_id = platform.good_customers()[0]
    assert station.authorize(platform.good_customers()[1])["decision"] == "GRANTED"

    # When seq 2 is lost for good and seq 3 arrives
    started = time.monotonic()
    sent = station.send("authorize", {"customer_id": customer_id}, seq=3)

    # Then it is answered, but only once the hold-back time has passed
    answer = station.answer(sent)
    assert time.monotonic() - started >= hold_s
    assert answer.data["decision"] == "GRANTED"
    # and the lost message turning up after all counts as stale
    late = station.send("authorize", {"customer_id": customer_id}, seq=2)
    assert _logged(platform, late.message_id)["reason_code"] == "stale_seq"
