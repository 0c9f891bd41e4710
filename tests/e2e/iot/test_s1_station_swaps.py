"""S1, automated stations: authorize, dispense, return, through the real broker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .harness import IotPlatform, eventually

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Attempt:
    station_id: str
    customer_id: str
    returned_battery_id: str | None = None


def _any_station(p: IotPlatform) -> str:
    station = p.station_with(
        lambda s: bool(p.available(s["station_id"], "STANDARD")), "with a charged battery"
    )
    return str(station["station_id"])


def unknown_customer(p: IotPlatform) -> Attempt:
    known = {c["customer_id"] for c in p.customers()}
    assert "CUST-NOBODY" not in known
    return Attempt(_any_station(p), "CUST-NOBODY")


def suspended_service(p: IotPlatform) -> Attempt:
    c = p.customer(lambda c: c["service_state"] == "SUSPENDED", "suspended")
    return Attempt(_any_station(p), c["customer_id"])


def bad_standing(p: IotPlatform) -> Attempt:
    c = p.customer(
        lambda c: c["standing"] != "GOOD" and c["service_state"] == "ACTIVE", "in bad standing"
    )
    return Attempt(_any_station(p), c["customer_id"])


def exhausted_swap_quota(p: IotPlatform) -> Attempt:
    c = p.customer(
        lambda c: (
            c["plan"]["swap_quota"] == 1
            and c["standing"] == "GOOD"
            and c["service_state"] == "ACTIVE"
        ),
        "on a one-swap plan",
    )
    station_id = _any_station(p)
    held = p.issue_battery(c["customer_id"], station_id)  # the only swap of the period
    return Attempt(station_id, c["customer_id"], returned_battery_id=held)


def plan_battery_class_mismatch(p: IotPlatform) -> Attempt:
    c = p.customer(
        lambda c: (
            c["plan"]["battery_class"] == "HIGH_CAPACITY"
            and c["standing"] == "GOOD"
            and c["service_state"] == "ACTIVE"
        ),
        "on a high-capacity plan",
    )
    station = p.station_with(
        lambda s: (
            bool(p.available(s["station_id"])) and not p.available(s["station_id"], "HIGH_CAPACITY")
        ),
        "with only standard batteries charged",
    )
    return Attempt(station["station_id"], c["customer_id"])


def no_charged_battery(p: IotPlatform) -> Attempt:
    # The fewest charged batteries of all stations; a supervisor takes each out as damaged.
    station = min(p.stations(), key=lambda s: len(p.available(s["station_id"])))
    supervisor = next(
        x for x in p.personnel() if x["role"] == "SUPERVISOR" and station["region"] in x["regions"]
    )
    person = p.person(supervisor["person_id"])
    for battery in p.available(station["station_id"]):
        echo = person.report("report_damage", battery["asset_id"], note="cracked casing")
        assert echo["result"] == "accepted", echo
    assert p.available(station["station_id"]) == []
    return Attempt(station["station_id"], p.good_customers()[0])


REFUSALS: list[tuple[str, Callable[[IotPlatform], Attempt]]] = [
    ("unknown_customer", unknown_customer),
    ("service_suspended", suspended_service),
    ("bad_standing", bad_standing),
    ("swap_quota_exhausted", exhausted_swap_quota),
    ("battery_class_mismatch", plan_battery_class_mismatch),
    ("no_charged_battery", no_charged_battery),
]


@pytest.mark.parametrize(("reason", "given"), REFUSALS, ids=[r for r, _ in REFUSALS])
def test_authorize_is_refused_with_the_precise_reason_and_the_customer_is_told(
    platform: IotPlatform, reason: str, given: Callable[[IotPlatform], Attempt]
) -> None:
    # Given a customer and station for which exactly this check fails
    attempt = given(platform)
    before = platform.service_of(attempt.customer_id) if reason != "unknown_customer" else None
    station = platform.station(attempt.station_id)

    # When the station asks to authorize a swap
    sent = station.send(
        "authorize",
        {"customer_id": attempt.customer_id}
        | (
            {"returned_battery_id": attempt.returned_battery_id}
            if attempt.returned_battery_id
            else {}
        ),
    )
    answer = station.answer(sent).data

    # Then the answer refuses with that reason, names no battery, and nothing changed
    assert answer["decision"] == "REFUSED", answer
    assert answer["reason"] == reason, answer
    assert answer.get("detail"), answer
    assert "battery_id" not in answer
    logged = eventually(
        lambda: [s for s in platform.signals("rejected") if s["message_id"] == sent.message_id],
        bool,
        what="the refused call in the signal log",
    )
    assert logged[0]["reason_code"] == reason
    if before is None:
        return
    assert platform.service_of(attempt.customer_id) == before
    # and the customer is told why, with guidance, on the webhook and the notify topic
    hook = platform.hooks.wait_for(
        lambda h: (
            h.body["customer_id"] == attempt.customer_id
            and h.body["event"] == "swap_refused"
            and h.body["data"].get("code") == reason
        ),
        what=f"swap_refused ({reason}) webhook",
    )
    assert hook.body["data"]["guidance"]
    assert hook.headers["idempotency-key"] == hook.body["event_id"]
    notice = platform.wait_notice(attempt.customer_id, "swap_refused")
    assert notice.data["code"] == reason


def test_a_granted_swap_issues_the_named_battery_and_the_returned_one_charges_at_that_station(
    platform: IotPlatform,
) -> None:
    # Given a customer in good standing and two stations with charged batteries of their class
    customer_id = platform.good_customers()[0]
    first, second = [
        s["station_id"]
        for s in platform.stations()
        if len(platform.available(s["station_id"], "STANDARD")) >= 2
    ][:2]
    station = platform.station(first)

    # When the first station authorizes the customer
    granted = station.authorize(customer_id)

    # Then the answer names one of its charged batteries of the plan's class
    assert granted["decision"] == "GRANTED", granted
    battery = granted["battery_id"]
    assert battery in {a["asset_id"] for a in platform.available(first, "STANDARD")}
    # and nothing is issued before the station confirms the dispense
    assert platform.service_of(customer_id)["state"] == "ACTIVE"

    # When the station confirms the dispense
    confirmed = station.dispense(customer_id, battery)

    # Then BATTERY_ISSUED is applied, the battery is issued to the customer, usage counted
    assert confirmed["result"] == "accepted", confirmed
    service = platform.service_of(customer_id)
    assert (service["state"], service["battery_id"], service["swaps_used"]) == (
        "BATTERY_ISSUED",
        battery,
        1,
    )
    asset = platform.asset(battery)
    assert (asset["state"], asset["holder"], asset["station_id"]) == ("ISSUED", customer_id, None)
    # ARM is kept in step
    platform.wait_arm_asset(
        battery, lambda a: a["state"] == "ISSUED" and a["holder"] == customer_id
    )
    # and the customer is told, on the webhook and on the notify topic
    platform.hooks.wait_for(
        lambda h: (
            h.body["customer_id"] == customer_id
            and h.body["event"] == "battery_issued"
            and h.body["data"]["battery_id"] == battery
        ),
        what="battery_issued webhook",
    )
    assert platform.wait_notice(customer_id, "battery_issued").data["battery_id"] == battery

    # When the customer swaps that battery at the second station
    other = platform.station(second)
    again = other.authorize(customer_id, returned_battery_id=battery)
    assert again["decision"] == "GRANTED", again
    new_battery, freed_slot = again["battery_id"], again["slot"]
    swapped = other.dispense(customer_id, new_battery)

    # Then the returned battery is CHARGING in that station, the new one issued, usage counted
    assert swapped["result"] == "accepted", swapped
    assert swapped["returned_battery_id"] == battery
    returned = platform.asset(battery)
    assert (returned["state"], returned["station_id"], returned["holder"]) == (
        "CHARGING",
        second,
        None,
    )
    assert battery in {a["asset_id"] for a in platform.inventory(second)["items"]}
    service = platform.service_of(customer_id)
    assert (service["state"], service["battery_id"], service["swaps_used"]) == (
        "BATTERY_ISSUED",
        new_battery,
        2,
    )
    platform.wait_arm_asset(
        battery,
        lambda a: (
            (a["state"], a["station_id"], a["slot"], a["holder"])
            == ("CHARGING", second, freed_slot, None)
        ),
    )
    platform.wait_arm_asset(
        new_battery, lambda a: a["state"] == "ISSUED" and a["holder"] == customer_id
    )


def test_a_3_1_1_station_gets_its_answer_on_the_rtrn_twin_of_its_call_topic(
    platform: IotPlatform,
) -> None:
    # Given a station controller that speaks only MQTT 3.1.1 (no response topic, no
    # correlation data: the envelope carries the correlation id)
    customer_id = platform.good_customers()[0]
    station_id = _any_station(platform)
    station = platform.station(station_id, v5=False)

    # When it calls authorize, then dispense_confirm
    sent = station.send("authorize", {"customer_id": customer_id})
    answer = station.answer(sent)

    # Then each answer comes on rtrn/abs/station/{id}/{verb} with the call's correlation id
    assert answer.topic == f"{platform.prefix}/rtrn/abs/station/{station_id}/authorize"
    assert answer.envelope["correlation_id"] == sent.correlation_id
    assert answer.data["decision"] == "GRANTED"
    sent = station.send(
        "dispense_confirm", {"customer_id": customer_id, "battery_id": answer.data["battery_id"]}
    )
    confirmed = station.answer(sent)
    assert confirmed.topic == f"{platform.prefix}/rtrn/abs/station/{station_id}/dispense_confirm"
    assert confirmed.data["result"] == "accepted"
    assert platform.service_of(customer_id)["state"] == "BATTERY_ISSUED"


def test_a_plain_return_docks_the_battery_charging_and_the_service_is_active_again(
    platform: IotPlatform,
) -> None:
    # Given a customer holding a battery, and another station with a free slot
    customer_id = platform.good_customers()[0]
    taken_at = _any_station(platform)
    battery = platform.issue_battery(customer_id, taken_at)
    back_at = platform.station_with(
        lambda s: (
            s["station_id"] != taken_at and bool(platform.inventory(s["station_id"])["free_slots"])
        ),
        "with a free slot",
    )["station_id"]

    # When the customer returns it there without taking a new one
    returned = platform.station(back_at).call(
        "return_confirm", {"customer_id": customer_id, "battery_id": battery}
    )

    # Then the battery charges in one of that station's free slots, here and in ARM
    assert returned["result"] == "accepted", returned
    asset = platform.asset(battery)
    assert (asset["state"], asset["station_id"], asset["holder"], asset["slot"]) == (
        "CHARGING",
        back_at,
        None,
        returned["slot"],
    )
    platform.wait_arm_asset(
        battery,
        lambda a: (a["state"], a["station_id"], a["slot"]) == ("CHARGING", back_at, asset["slot"]),
    )
    # the service is ACTIVE without a battery, and the customer is thanked
    service = platform.service_of(customer_id)
    assert (service["state"], service["battery_id"]) == ("ACTIVE", None)
    platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_returned",
        what="battery_returned webhook",
    )
