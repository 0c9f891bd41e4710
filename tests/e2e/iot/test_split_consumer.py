"""`iot-sync consume`: the MQTT consumer apart from the API process, which relays."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fleetops_devstack.servers import free_port

from .conftest import StartPlatform
from .harness import IotPlatform

pytestmark = pytest.mark.e2e


def swap_at_a_station(platform: IotPlatform) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A good customer authorized at a station with a STANDARD battery, then the dispense
    confirmed: (customer id, the authorize answer, the dispense answer)."""
    customer_id = platform.good_customers()[0]
    station_id = next(
        s["station_id"]
        for s in platform.stations()
        if platform.available(s["station_id"], "STANDARD")
    )
    station = platform.station(station_id)
    granted = station.authorize(customer_id)
    assert granted["decision"] == "GRANTED", granted
    return customer_id, granted, station.dispense(customer_id, granted["battery_id"])


def test_a_swap_goes_through_when_the_consumer_runs_apart_from_the_api(
    start_platform: StartPlatform, fresh_database_url: str
) -> None:
    # Given iot-sync split as `make run-stack` runs it: the API process with the relay but
    # no consumer, and the consumer's parts (consumer, stats port) on their own. On
    # PostgreSQL the relay's sweep is an hour apart: only the consumer's commits wake it.
    stats_port = free_port()
    sweep_s = 3600.0 if fresh_database_url.startswith("postgresql") else 0.5
    platform = start_platform(mqtt_in_process=False, consume_port=stats_port, relay_every_s=sweep_s)
    stats = httpx.Client(base_url=f"http://127.0.0.1:{stats_port}", timeout=10)
    assert stats.get("/readyz").json() == {"status": "ready"}

    # When a station authorizes a customer and confirms the dispense
    customer_id, granted, confirmed = swap_at_a_station(platform)

    # Then the consumer applied both calls and answered each
    assert confirmed["result"] == "accepted", confirmed
    service = platform.service_of(customer_id)
    assert (service["state"], service["battery_id"]) == ("BATTERY_ISSUED", granted["battery_id"])
    # and counted them on its own stats port, not the API's
    assert stats.get("/ingest-stats").json()["signals"] == 2
    # and the API process's relay, woken by the consumer's commits, kept ARM in step and
    # told the customer
    platform.wait_arm_asset(
        granted["battery_id"], lambda a: a["state"] == "ISSUED" and a["holder"] == customer_id
    )
    assert (
        platform.wait_notice(customer_id, "battery_issued").data["battery_id"]
        == (granted["battery_id"])
    )
    stats.close()


def test_the_consumer_process_can_relay_instead_of_the_api(start_platform: StartPlatform) -> None:
    # Given the other layout: the relay beside the consumer, none in the API process
    platform = start_platform(
        mqtt_in_process=False,
        relay_in_process=False,
        consume_relays=True,
        consume_port=free_port(),
    )

    # When a station authorizes a customer and confirms the dispense
    customer_id, granted, confirmed = swap_at_a_station(platform)

    # Then both answers came back through the consumer's relay, which also kept ARM in step
    assert confirmed["result"] == "accepted", confirmed
    platform.wait_arm_asset(
        granted["battery_id"], lambda a: a["state"] == "ISSUED" and a["holder"] == customer_id
    )
