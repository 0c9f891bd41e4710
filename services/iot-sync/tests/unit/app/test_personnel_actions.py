"""S2: field personnel scan batteries and report their condition."""

from dataclasses import replace

from iot_sync.app.ports import OutboxKind, SignalResult
from iot_sync.app.signals import FieldMessageKind, SourceKind
from iot_sync.domain.asset import AssetState
from iot_sync.domain.service import ServiceState

from ..fakes import field_messages, outbox_events, signal


def act(person, action, asset_id="BAT-1", **data):
    return signal(SourceKind.PERSONNEL, person, action, {"asset_id": asset_id, **data})


def echoes(world):
    return field_messages(world.store, FieldMessageKind.PERSONNEL_ECHO)


def issue(world, battery_id="BAT-1", customer_id="C-1", region="region-1"):
    """Given the battery is with the customer (as after a swap)."""
    s = world.store
    s.assets[battery_id] = replace(
        s.assets[battery_id],
        state=AssetState.ISSUED,
        holder=customer_id,
        station_id=None,
        slot=None,
        region=region,
        last_seen_at=world.clock.now(),
    )
    sv = world.service_of(customer_id)
    s.services[sv.service_id] = replace(
        sv, state=ServiceState.BATTERY_ISSUED, battery_id=battery_id
    )


def test_a_scan_answers_the_battery_context_with_its_holder_service(world):
    issue(world)
    world.handler.handle([act("P-AGENT", "asset_scan")])

    [echo] = echoes(world)
    assert echo["subject"] == "P-AGENT" and echo["name"] == "asset_scan"
    assert echo["data"]["result"] == "accepted"
    context = echo["data"]["context"]
    assert (context["state"], context["holder"]) == ("ISSUED", "C-1")
    assert context["service"] == {
        "service_id": "SV-1",
        "customer_id": "C-1",
        "state": "BATTERY_ISSUED",
    }


def test_a_technician_reports_damage_in_their_region_and_it_is_audited(world):
    report = world.handler.handle([act("P-TECH", "report_damage", note="cracked case")])

    assert report.outcomes[0].result is SignalResult.ACCEPTED
    assert world.store.assets["BAT-1"].state is AssetState.DAMAGED
    [entry] = world.store.audit
    assert (entry.person_id, entry.action, entry.asset_id, entry.result) == (
        "P-TECH",
        "report_damage",
        "BAT-1",
        "accepted",
    )
    [history] = world.store.asset_history
    assert history.actor == "P-TECH" and history.to_state == "DAMAGED"
    assert outbox_events(world.store, OutboxKind.ARM_MOVEMENT)[0].payload["state"] == "DAMAGED"
    assert echoes(world)[0]["data"]["state"] == "DAMAGED"


def test_a_batch_of_personnel_actions_writes_its_audit_lines_at_once(world):
    issue(world)
    world.handler.handle(
        [
            act("P-AGENT", "asset_scan"),
            act("P-TECH", "report_damage", note="cracked case"),
            act("P-AGENT", "asset_scan", asset_id="BAT-404"),
        ]
    )
    assert [(e.person_id, e.action, e.result) for e in world.store.audit] == [
        ("P-AGENT", "asset_scan", "accepted"),
        ("P-TECH", "report_damage", "accepted"),
        ("P-AGENT", "asset_scan", "rejected"),
    ]
    assert world.store.audit_writes == 1


def test_damage_to_a_battery_in_a_customers_hands_is_told_to_the_customer(world):
    issue(world)
    world.handler.handle([act("P-TECH", "report_damage")])
    assert [n["name"] for n in field_messages(world.store, FieldMessageKind.CUSTOMER_NOTICE)] == [
        "battery_damaged"
    ]


def test_a_role_that_may_not_report_is_refused_echoed_and_audited(world):
    issue(world)
    report = world.handler.handle([act("P-TECH", "report_lost")])

    assert report.outcomes[0].reason_code == "role_not_allowed"
    echo = echoes(world)[0]["data"]
    assert (echo["action"], echo["result"], echo["asset_id"], echo["reason"]) == (
        "report_lost",
        "rejected",
        "BAT-1",
        "role_not_allowed",
    )
    assert world.store.audit[0].result == "rejected"
    assert world.store.assets["BAT-1"].state is AssetState.ISSUED


def test_a_person_outside_their_assigned_region_is_refused(world):
    report = world.handler.handle([act("P-FAR", "report_damage")])
    assert report.outcomes[0].reason_code == "outside_assignment"
    assert world.store.assets["BAT-1"].state is AssetState.AVAILABLE


def test_an_unknown_person_is_refused(world):
    assert (
        world.handler.handle([act("P-NOBODY", "asset_scan")]).outcomes[0].reason_code
        == "unknown_person"
    )


def test_a_report_lost_declares_the_loss_and_starts_settlement(world):
    issue(world)
    world.handler.handle([act("P-AGENT", "report_lost", note="customer says stolen")])

    assert world.store.assets["BAT-1"].state is AssetState.LOST
    assert world.service_of("C-1").state is ServiceState.BATTERY_LOST
    [settlement] = outbox_events(world.store, OutboxKind.SETTLEMENT)
    assert settlement.payload["evidence"] == "manual_report"
    assert (
        settlement.payload["battery_id"] == "BAT-1" and settlement.payload["customer_id"] == "C-1"
    )
    assert world.store.service_history[-1].actor == "P-AGENT"


def test_a_recovery_gives_battery_found_and_the_options_to_continue(world):
    issue(world)
    world.handler.handle([act("P-AGENT", "report_lost")])
    world.handler.handle([act("P-AGENT", "report_recovered")])

    asset = world.store.assets["BAT-1"]
    assert (asset.state, asset.holder) == (AssetState.IN_INSPECTION, "P-AGENT")
    service = world.service_of("C-1")
    assert (service.state, service.battery_id) == (ServiceState.BATTERY_FOUND, None)
    found = field_messages(world.store, FieldMessageKind.CUSTOMER_NOTICE)[-1]
    assert found["name"] == "battery_found" and found["data"]["options"] == ["continue", "cancel"]


def test_recovering_a_battery_that_is_not_lost_is_refused(world):
    report = world.handler.handle([act("P-AGENT", "report_recovered")])
    assert report.outcomes[0].reason_code == "condition_not_applicable"


def test_a_report_without_an_asset_id_is_refused_naming_the_field(world):
    report = world.handler.handle([signal(SourceKind.PERSONNEL, "P-TECH", "report_damage", {})])
    assert report.outcomes[0].reason_code == "missing_field"
    assert field_messages(world.store, FieldMessageKind.ERROR)
