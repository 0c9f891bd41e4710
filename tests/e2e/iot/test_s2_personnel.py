"""S2, field personnel with a device scanner: scan for context, report a condition."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import IotPlatform, eventually

pytestmark = pytest.mark.e2e


def _person(p: IotPlatform, role: str, *, region: str, inside: bool = True) -> str:
    for person in p.personnel():
        in_region = region in person["regions"]
        if person["role"] == role and in_region == inside and (inside or not person["stations"]):
            return str(person["person_id"])
    raise AssertionError(f"no seeded {role} {'in' if inside else 'outside'} {region}")


def _issued(p: IotPlatform, customer_id: str) -> tuple[str, dict[str, Any]]:
    """Given: the customer holds a battery taken at a station of some region."""
    station = p.station_with(
        lambda s: bool(p.available(s["station_id"], "STANDARD")), "with a charged battery"
    )
    return p.issue_battery(customer_id, station["station_id"]), station


def test_a_scan_answers_with_the_asset_context_on_the_echo_topic(platform: IotPlatform) -> None:
    # Given a battery with a customer and a technician of its region
    customer_id = platform.good_customers()[0]
    battery, station = _issued(platform, customer_id)
    person_id = _person(platform, "TECHNICIAN", region=station["region"])
    person = platform.person(person_id)

    # When the technician scans it
    echo = person.act("asset_scan", {"asset_id": battery})

    # Then the echo topic answers with the battery's state, holder and service
    assert echo.topic == f"{platform.prefix}/echo/abs/personnel/{person_id}/asset_scan"
    assert echo.data["result"] == "accepted", echo.data
    context = echo.data["context"]
    assert (context["asset_id"], context["state"], context["holder"]) == (
        battery,
        "ISSUED",
        customer_id,
    )
    assert context["service"]["state"] == "BATTERY_ISSUED"
    assert context["service"]["customer_id"] == customer_id

    # When a battery in a slot is scanned, the context says where it is
    docked = platform.available(station["station_id"])[0]
    context = person.scan(docked["asset_id"])["context"]
    assert (context["station_id"], context["slot"], context["state"]) == (
        station["station_id"],
        docked["slot"],
        "AVAILABLE",
    )
    # and each scan is in the audit log under the person's id
    audit = platform.audit(person_id=person_id)
    assert {(e["action"], e["asset_id"], e["result"]) for e in audit} == {
        ("asset_scan", battery, "accepted"),
        ("asset_scan", docked["asset_id"], "accepted"),
    }


def test_a_damage_report_moves_the_battery_to_damaged_tells_its_holder_and_is_audited(
    platform: IotPlatform,
) -> None:
    # Given a battery with a customer and a technician of its region
    customer_id = platform.good_customers()[0]
    battery, station = _issued(platform, customer_id)
    person_id = _person(platform, "TECHNICIAN", region=station["region"])

    # When the technician reports it damaged
    echo = platform.person(person_id).report("report_damage", battery, note="swollen cell")

    # Then it is DAMAGED here and in ARM, its holder is told, and the audit keeps who did it
    assert (echo["result"], echo["state"]) == ("accepted", "DAMAGED"), echo
    assert platform.asset(battery)["state"] == "DAMAGED"
    platform.wait_arm_asset(battery, lambda a: a["state"] == "DAMAGED")
    platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_damaged",
        what="battery_damaged webhook",
    )
    platform.wait_notice(customer_id, "battery_damaged")
    [entry] = platform.audit(person_id=person_id, asset_id=battery)
    assert (entry["action"], entry["result"], entry["detail"]) == (
        "report_damage",
        "accepted",
        {"note": "swollen cell"},
    )
    assert entry["message_id"]


def test_loss_and_recovery_reports_apply_to_the_battery_and_its_holders_service(
    platform: IotPlatform,
) -> None:
    # Given a battery with a customer and a field agent of its region
    customer_id = platform.good_customers()[0]
    battery, station = _issued(platform, customer_id)
    agent = platform.person(_person(platform, "FIELD_AGENT", region=station["region"]))

    # When the agent reports it lost
    echo = agent.report("report_lost", battery, note="customer says it was stolen")

    # Then the battery is LOST, the service BATTERY_LOST, the customer told
    assert (echo["result"], echo["state"]) == ("accepted", "LOST"), echo
    assert platform.service_of(customer_id)["state"] == "BATTERY_LOST"
    platform.wait_arm_asset(battery, lambda a: a["state"] == "LOST")
    platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_lost",
        what="battery_lost webhook",
    )

    # When the agent later reports it recovered
    echo = agent.report("report_recovered", battery)

    # Then staff hold it for inspection and the service learns it was found
    assert (echo["result"], echo["state"]) == ("accepted", "IN_INSPECTION"), echo
    asset = platform.asset(battery)
    assert (asset["state"], asset["holder"]) == ("IN_INSPECTION", agent.person_id)
    assert platform.service_of(customer_id)["state"] == "BATTERY_FOUND"
    platform.hooks.wait_for(
        lambda h: h.body["customer_id"] == customer_id and h.body["event"] == "battery_found",
        what="battery_found webhook",
    )
    platform.wait_notice(customer_id, "battery_found")
    # and both reports are in the audit log with the agent's id
    audit = platform.audit(person_id=agent.person_id, asset_id=battery)
    assert sorted((e["action"], e["result"]) for e in audit) == [
        ("report_lost", "accepted"),
        ("report_recovered", "accepted"),
    ]


def test_a_report_is_refused_when_the_persons_role_or_region_does_not_allow_it(
    platform: IotPlatform,
) -> None:
    # Given a battery with a customer, a technician of its region and an agent of another
    customer_id = platform.good_customers()[0]
    battery, station = _issued(platform, customer_id)
    technician = platform.person(_person(platform, "TECHNICIAN", region=station["region"]))
    outsider = platform.person(
        _person(platform, "FIELD_AGENT", region=station["region"], inside=False)
    )

    # When the technician reports it lost (technicians may not)
    by_role = technician.report("report_lost", battery)
    # and the agent of another region reports it lost
    by_region = outsider.report("report_lost", battery)

    # Then both are refused with the reason on their echo topics
    assert (by_role["result"], by_role["reason"]) == ("rejected", "role_not_allowed"), by_role
    assert (by_region["result"], by_region["reason"]) == (
        "rejected",
        "outside_assignment",
    ), by_region
    # and nothing changed: the battery is still with the customer
    assert platform.asset(battery)["state"] == "ISSUED"
    assert platform.service_of(customer_id)["state"] == "BATTERY_ISSUED"
    assert platform.settlements() == []
    # and each refusal is audited under the person's id and in the signal log
    for person, reason in ((technician, "role_not_allowed"), (outsider, "outside_assignment")):
        [entry] = platform.audit(person_id=person.person_id)
        assert (entry["action"], entry["result"], entry["reason"]) == (
            "report_lost",
            "rejected",
            reason,
        )
    rejected = eventually(
        lambda: [s for s in platform.signals("rejected") if s["source_kind"] == "personnel"],
        lambda found: len(found) == 2,
        what="both refusals in the signal log",
    )
    assert {(s["source_id"], s["reason_code"]) for s in rejected} == {
        (technician.person_id, "role_not_allowed"),
        (outsider.person_id, "outside_assignment"),
    }
