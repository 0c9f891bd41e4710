"""S1: a customer at an automated station."""

from datetime import timedelta

import pytest

from iot_sync.app.ports import OutboxKind, SignalResult
from iot_sync.app.signals import FieldMessageKind, SourceKind
from iot_sync.domain.asset import AssetState
from iot_sync.domain.customer import SwapUsage
from iot_sync.domain.service import ServiceState

from ..fakes import T0, field_messages, outbox_events, signal


def authorize(customer_id, station_id="ST-1", **data):
    return signal(
        SourceKind.STATION,
        station_id,
        "authorize",
        {"customer_id": customer_id, **data},
        correlation_id="corr-auth",
        reply_to="resp/topic",
    )


def dispense(customer_id, battery_id, station_id="ST-1"):
    return signal(
        SourceKind.STATION,
        station_id,
        "dispense_confirm",
        {"customer_id": customer_id, "battery_id": battery_id},
    )


def replies(world):
    return field_messages(world.store, FieldMessageKind.STATION_REPLY)


def test_an_authorized_customer_is_granted_the_fullest_charged_battery(world):
    report = world.handler.handle([authorize("C-1")])

    assert report.outcomes[0].result is SignalResult.ACCEPTED
    [reply] = replies(world)
    assert reply["data"]["decision"] == "GRANTED"
    assert reply["data"]["battery_id"] == "BAT-1"
    assert reply["correlation_id"] == "corr-auth"
    assert reply["reply_to"] == "resp/topic"
    assert (reply["subject"], reply["name"]) == ("ST-1", "authorize")


def test_a_granted_battery_is_reserved_so_a_second_customer_gets_another(world):
    world.handler.handle([authorize("C-1"), authorize("C-2")])

    assert [r["data"]["battery_id"] for r in replies(world)] == ["BAT-1", "BAT-2"]
    assert world.store.assets["BAT-1"].reserved_for == "C-1"


def test_asking_again_gives_the_same_customer_the_same_battery(world):
    world.handler.handle([authorize("C-1")])
    world.handler.handle([authorize("C-1")])
    assert [r["data"]["battery_id"] for r in replies(world)] == ["BAT-1", "BAT-1"]


def test_a_reservation_lapses_after_its_time(world):
    world.handler.handle([authorize("C-1")])
    world.clock.advance(minutes=3)
    world.handler.handle([authorize("C-2")])
    assert replies(world)[1]["data"]["battery_id"] == "BAT-1"


@pytest.mark.parametrize(
    ("customer_id", "reason"),
    [
        ("C-NOBODY", "unknown_customer"),
        ("C-SUSP", "service_suspended"),
        ("C-OVER", "bad_standing"),
        ("C-HIGH", "battery_class_mismatch"),
    ],
)
def test_a_refusal_names_the_precise_reason_and_is_logged_as_rejected(world, customer_id, reason):
    report = world.handler.handle([authorize(customer_id)])

    [reply] = replies(world)
    assert reply["data"]["decision"] == "REFUSED"
    assert reply["data"]["reason"] == reason
    assert "battery_id" not in reply["data"]
    assert report.outcomes[0].result is SignalResult.REJECTED
    assert report.outcomes[0].reason_code == reason
    assert world.store.signal_log[-1].reason_code == reason


def test_an_exhausted_swap_quota_is_refused(world):
    sv = world.store.services["SV-1"]
    world.store.services["SV-1"] = type(sv)(
        sv.service_id, sv.customer_id, sv.state, usage=SwapUsage(3, T0 - timedelta(days=1))
    )
    world.handler.handle([authorize("C-1")])
    assert replies(world)[0]["data"]["reason"] == "swap_quota_exhausted"


def test_a_station_without_a_charged_battery_refuses(world):
    world.handler.handle([authorize("C-1", station_id="ST-2")])
    assert replies(world)[0]["data"]["reason"] == "no_charged_battery"


def test_a_refused_known_customer_is_told_what_to_do(world):
    world.handler.handle([authorize("C-OVER")])
    [notice] = field_messages(world.store, FieldMessageKind.CUSTOMER_NOTICE)
    assert notice["subject"] == "C-OVER" and notice["name"] == "swap_refused"
    assert "settle your account" in notice["data"]["message"]
    assert len(outbox_events(world.store, OutboxKind.WEBHOOK)) == 1


def test_an_authorize_without_customer_id_is_refused_naming_the_field(world):
    report = world.handler.handle([signal(SourceKind.STATION, "ST-1", "authorize", {})])
    assert report.outcomes[0].reason_code == "missing_field"
    assert "customer_id" in replies(world)[0]["data"]["detail"]
    assert field_messages(world.store, FieldMessageKind.ERROR)


def test_dispense_confirmation_issues_the_battery_and_counts_the_swap(world):
    world.handler.handle([authorize("C-1")])
    report = world.handler.handle([dispense("C-1", "BAT-1")])

    assert report.outcomes[0].result is SignalResult.ACCEPTED
    service = world.service_of("C-1")
    assert (service.state, service.battery_id, service.usage.swaps) == (
        ServiceState.BATTERY_ISSUED,
        "BAT-1",
        1,
    )
    asset = world.store.assets["BAT-1"]
    assert (asset.state, asset.holder, asset.station_id) == (AssetState.ISSUED, "C-1", None)
    [movement] = outbox_events(world.store, OutboxKind.ARM_MOVEMENT)
    assert movement.payload["state"] == "ISSUED" and movement.payload["holder"] == "C-1"
    [state] = field_messages(world.store, FieldMessageKind.SERVICE_STATE)
    assert state["subject"] == "SV-1" and state["data"]["state"] == "BATTERY_ISSUED"
    assert [n["name"] for n in field_messages(world.store, FieldMessageKind.CUSTOMER_NOTICE)] == [
        "battery_issued"
    ]
    assert [h.input for h in world.store.service_history] == ["BATTERY_ISSUED"]


def test_only_the_dispense_confirmation_applies_battery_issued(world):
    world.handler.handle([authorize("C-1")])
    assert world.service_of("C-1").state is ServiceState.ACTIVE
    assert world.store.assets["BAT-1"].state is AssetState.AVAILABLE


def test_a_swap_returns_the_held_battery_which_starts_charging_in_the_freed_slot(world):
    world.handler.handle([authorize("C-1"), dispense("C-1", "BAT-1")])
    world.handler.handle([authorize("C-1", returned_battery_id="BAT-1")])
    assert replies(world)[-1]["data"]["battery_id"] == "BAT-2"
    world.handler.handle([dispense("C-1", "BAT-2")])

    service = world.service_of("C-1")
    assert (service.state, service.battery_id, service.usage.swaps) == (
        ServiceState.BATTERY_ISSUED,
        "BAT-2",
        2,
    )
    returned = world.store.assets["BAT-1"]
    assert (returned.state, returned.station_id, returned.slot, returned.holder) == (
        AssetState.CHARGING,
        "ST-1",
        2,
        None,
    )
    moves = [
        (m.payload["asset_id"], m.payload["state"])
        for m in outbox_events(world.store, OutboxKind.ARM_MOVEMENT)
    ]
    assert moves == [("BAT-1", "ISSUED"), ("BAT-2", "ISSUED"), ("BAT-1", "CHARGING")]
    assert [h.input for h in world.store.service_history] == [
        "BATTERY_ISSUED",
        "BATTERY_RETURNED",
        "BATTERY_ISSUED",
    ]


def test_a_customer_holding_a_battery_is_refused_unless_returning_it(world):
    world.handler.handle([authorize("C-1"), dispense("C-1", "BAT-1")])
    world.handler.handle([authorize("C-1")])
    assert replies(world)[-1]["data"]["reason"] == "battery_not_returned"


def test_dispensing_a_battery_reserved_for_someone_else_is_rejected_and_reported(world):
    world.handler.handle([authorize("C-1")])
    report = world.handler.handle([dispense("C-2", "BAT-1")])
    assert report.outcomes[0].reason_code == "battery_reserved"
    assert replies(world)[-1]["data"]["result"] == "rejected"
    assert (
        field_messages(world.store, FieldMessageKind.ERROR)[0]["data"]["reason"]
        == "battery_reserved"
    )
    assert world.service_of("C-2").state is ServiceState.ACTIVE


def test_a_plain_return_ends_the_issue_and_docks_the_battery_in_a_free_slot(world):
    world.handler.handle([authorize("C-1"), dispense("C-1", "BAT-1")])
    report = world.handler.handle(
        [
            signal(
                SourceKind.STATION,
                "ST-2",
                "return_confirm",
                {"customer_id": "C-1", "battery_id": "BAT-1"},
            )
        ]
    )
    assert report.outcomes[0].result is SignalResult.ACCEPTED
    assert world.service_of("C-1").state is ServiceState.ACTIVE
    asset = world.store.assets["BAT-1"]
    assert (asset.state, asset.station_id, asset.slot, asset.region) == (
        AssetState.CHARGING,
        "ST-2",
        1,
        "region-2",
    )


def test_returning_a_battery_the_customer_does_not_hold_is_rejected(world):
    report = world.handler.handle(
        [
            signal(
                SourceKind.STATION,
                "ST-1",
                "return_confirm",
                {"customer_id": "C-1", "battery_id": "BAT-2"},
            )
        ]
    )
    assert report.outcomes[0].reason_code == "battery_not_held"


def test_an_unknown_station_verb_is_rejected(world):
    report = world.handler.handle([signal(SourceKind.STATION, "ST-1", "teleport", {})])
    assert report.outcomes[0].reason_code == "unknown_verb"


def test_an_authorization_replayed_after_it_expired_reserves_nothing(world):
    from dataclasses import replace

    late = replace(authorize("C-1"), expires_at=T0 - timedelta(seconds=1))
    report = world.handler.handle([late])
    assert report.outcomes[0].reason_code == "call_expired"
    assert world.store.assets["BAT-1"].reserved_for is None


def test_a_batch_of_station_calls_asks_the_customer_directory_once(world):
    # Given three calls of three customers (one unknown) in one batch
    batch = [authorize("C-1"), authorize("C-2", station_id="ST-2"), authorize("C-NOBODY")]

    report = world.handler.handle(batch)

    # Then the directory was asked once, for all of them, and each call got its own answer
    assert world.customers.lookups == [["C-1", "C-2", "C-NOBODY"]]
    assert [o.reason_code for o in report.outcomes] == [
        None,
        "no_charged_battery",
        "unknown_customer",
    ]


def test_calls_of_one_batch_see_what_earlier_calls_of_it_changed(world):
    # Given a grant and its dispense confirmation in the same batch (prefetched together)
    world.handler.handle([authorize("C-1")])
    world.handler.handle([dispense("C-1", "BAT-1"), authorize("C-2")])

    # Then the second customer is not offered the battery that just left the station
    assert world.store.assets["BAT-1"].holder == "C-1"
    assert world.store.assets["BAT-2"].reserved_for == "C-2"
