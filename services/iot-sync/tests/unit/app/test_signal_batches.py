"""The batch handler: one transaction per batch, dedup, per-sender order, compression."""

from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.app.ports import SignalResult
from iot_sync.app.signals import FieldMessageKind, MalformedSignal, SourceKind
from iot_sync.domain.asset import AssetState
from iot_sync.domain.service import ServiceState

from ..fakes import T0, field_messages, signal
from .conftest import HOLD


def station_call(verb, seq, **data):
    return signal(SourceKind.STATION, "ST-1", verb, data, seq=seq)


def results(report):
    return [o.result for o in report.outcomes]


def test_a_whole_batch_is_one_unit_of_work_with_one_commit(world):
    batch = [
        signal(SourceKind.BMS, "BAT-1", "telemetry", {"charge_pct": 99.0}, seq=i) for i in range(50)
    ]
    world.handler.handle(batch)
    assert world.uow_factory.opened == 1
    assert len(world.store.signal_log) == 50


def test_every_signal_lands_in_the_log_with_its_result(world):
    ok = station_call("authorize", 1, customer_id="C-1")
    refused = station_call("authorize", 2, customer_id="C-NOBODY")
    report = world.handler.handle([ok, refused, ok])
    assert results(report) == [SignalResult.ACCEPTED, SignalResult.REJECTED, SignalResult.DUPLICATE]
    assert [r.result for r in world.store.signal_log] == results(report)


def test_a_replayed_message_id_changes_nothing(world):
    dispense = station_call("dispense_confirm", None, customer_id="C-1", battery_id="BAT-1")
    world.handler.handle([dispense])
    before = (world.service_of("C-1"), len(world.store.outbox))
    report = world.handler.handle([dispense])
    assert report.outcomes[0].result is SignalResult.DUPLICATE
    assert (world.service_of("C-1"), len(world.store.outbox)) == before
    assert world.service_of("C-1").usage.swaps == 1


def test_messages_without_seq_are_claimed_by_id_before_the_duplicate_check(world):
    # no sender cursor serializes them, so two consumers could both take one in
    unordered = station_call("dispense_confirm", None, customer_id="C-1", battery_id="BAT-1")
    ordered = station_call("authorize", 7, customer_id="C-1")
    telemetry = signal(SourceKind.BMS, "BAT-2", "telemetry", {"charge_pct": 50.0}, seq=3)

    world.handler.handle([ordered, unordered, telemetry])
    world.handler.handle([telemetry])

    assert world.store.claimed_ids == [[unordered.message_id]]


def test_a_seq_already_applied_under_a_new_message_id_changes_nothing(world):
    world.handler.handle(
        [station_call("dispense_confirm", 5, customer_id="C-1", battery_id="BAT-1")]
    )
    report = world.handler.handle(
        [station_call("dispense_confirm", 5, customer_id="C-1", battery_id="BAT-1")]
    )
    assert report.outcomes[0].reason_code == "stale_seq"
    assert world.service_of("C-1").usage.swaps == 1


def test_out_of_order_messages_of_one_sender_apply_in_seq_order(world):
    # The station sent dispense (3) then return (4); they arrive reversed in one batch.
    world.handler.handle([station_call("authorize", 2, customer_id="C-2")])
    dispense = station_call("dispense_confirm", 3, customer_id="C-2", battery_id="BAT-1")
    give_back = station_call("return_confirm", 4, customer_id="C-2", battery_id="BAT-1")
    report = world.handler.handle([give_back, dispense])

    assert results(report) == [SignalResult.ACCEPTED, SignalResult.ACCEPTED]
    assert world.service_of("C-2").state is ServiceState.ACTIVE
    assert world.store.assets["BAT-1"].state is AssetState.CHARGING


def test_dispensing_another_battery_frees_the_one_reserved_for_the_customer(world):
    world.handler.handle([station_call("authorize", 1, customer_id="C-1")])
    world.handler.handle(
        [station_call("dispense_confirm", 2, customer_id="C-1", battery_id="BAT-2")]
    )
    assert world.store.assets["BAT-1"].reserved_for is None


def test_a_message_after_a_gap_is_held_durably_until_the_missing_one_arrives(world):
    world.handler.handle([station_call("authorize", 1, customer_id="C-1")])
    late = station_call("dispense_confirm", 3, customer_id="C-1", battery_id="BAT-1")
    report = world.handler.handle([late])
    assert results(report) == [SignalResult.HELD]
    assert world.service_of("C-1").state is ServiceState.ACTIVE
    assert world.store.held["station/ST-1"]

    world.clock.advance(seconds=5)
    world.handler.handle([station_call("authorize", 2, customer_id="C-2")])

    assert world.service_of("C-1").state is ServiceState.BATTERY_ISSUED
    assert world.store.held["station/ST-1"] == []
    assert [r.result for r in world.store.signal_log if r.message_id == late.message_id] == [
        SignalResult.ACCEPTED
    ]
    assert world.store.last_seqs["station/ST-1"] == 3


def test_a_held_message_is_applied_when_the_gap_stays_open_past_the_hold(world):
    world.handler.handle([station_call("authorize", 1, customer_id="C-1")])
    world.handler.handle(
        [station_call("dispense_confirm", 3, customer_id="C-1", battery_id="BAT-1")]
    )

    world.clock.advance(seconds=10)
    assert world.handler.release_overdue().outcomes == []
    world.clock.advance(seconds=HOLD.total_seconds())
    world.handler.release_overdue()

    assert world.service_of("C-1").state is ServiceState.BATTERY_ISSUED
    assert world.store.last_seqs["station/ST-1"] == 3


def test_a_redelivered_held_message_is_a_duplicate_not_a_second_hold(world):
    world.handler.handle([station_call("authorize", 1, customer_id="C-1")])
    late = station_call("dispense_confirm", 3, customer_id="C-1", battery_id="BAT-1")
    world.handler.handle([late])
    report = world.handler.handle([late])
    assert results(report) == [SignalResult.DUPLICATE]
    assert len(world.store.held["station/ST-1"]) == 1


def test_malformed_messages_are_logged_and_answered_on_the_error_topic(world):
    bad = MalformedSignal(
        topic="call/abs/station/ST-1/authorize",
        reason="malformed_json",
        detail="Expecting value at 1:1",
        received_at=T0,
        source_id="ST-1",
        payload_excerpt="{nope",
    )
    report = world.handler.handle([bad, station_call("authorize", None, customer_id="C-1")])

    assert results(report) == [SignalResult.MALFORMED, SignalResult.ACCEPTED]
    assert world.store.signal_log[0].reason_code == "malformed_json"
    [error] = field_messages(world.store, FieldMessageKind.ERROR)
    assert (error["subject"], error["name"], error["data"]["reason"]) == (
        "station",
        "ST-1",
        "malformed_json",
    )


def test_telemetry_is_compressed_to_the_newest_reading_per_battery(world):
    readings = [
        signal(
            SourceKind.BMS,
            "BAT-3",
            "telemetry",
            {"charge_pct": pct},
            seq=i,
            at=T0 + timedelta(seconds=i),
        )
        for i, pct in enumerate([41.0, 42.0, 43.0])
    ]
    report = world.handler.handle(readings)
    assert report.transitions == 0
    asset = world.store.assets["BAT-3"]
    assert (asset.charge_pct, asset.last_seen_at) == (43.0, T0 + timedelta(seconds=2))
    assert world.store.asset_history == []


def test_a_charging_battery_reaching_full_charge_becomes_available(world):
    world.handler.handle([signal(SourceKind.BMS, "BAT-3", "telemetry", {"charge_pct": 96.0})])
    assert world.store.assets["BAT-3"].state is AssetState.AVAILABLE
    assert world.store.asset_history[-1].move == "CHARGE_COMPLETE"


def test_stale_telemetry_is_a_duplicate_and_a_gap_in_telemetry_never_waits(world):
    world.handler.handle(
        [signal(SourceKind.BMS, "BAT-3", "telemetry", {"charge_pct": 50.0}, seq=10)]
    )
    report = world.handler.handle(
        [
            signal(SourceKind.BMS, "BAT-3", "telemetry", {"charge_pct": 45.0}, seq=9),
            signal(SourceKind.BMS, "BAT-3", "telemetry", {"charge_pct": 60.0}, seq=20),
        ]
    )
    assert results(report) == [SignalResult.DUPLICATE, SignalResult.ACCEPTED]
    assert world.store.assets["BAT-3"].charge_pct == 60.0


def test_telemetry_of_an_unknown_battery_or_with_bad_values_is_rejected(world):
    report = world.handler.handle(
        [
            signal(SourceKind.BMS, "BAT-404", "telemetry", {"charge_pct": 50.0}),
            signal(SourceKind.GPS, "BAT-1", "telemetry", {"latitude": "north", "longitude": 1.0}),
            signal(SourceKind.GPS, "BAT-1", "telemetry", {"longitude": 1.0}),
        ]
    )
    assert [o.reason_code for o in report.outcomes] == [
        "unknown_battery",
        "wrong_type",
        "missing_field",
    ]


def test_station_heartbeats_update_its_last_seen(world):
    at = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)
    world.handler.handle([signal(SourceKind.SSC, "ST-1", "heartbeat", {"online": True}, at=at)])
    assert world.store.stations["ST-1"].last_seen_at == at


def test_a_failed_batch_rolls_back_everything(world):
    class Boom(Exception):
        pass

    def explode(*_a, **_k):
        raise Boom

    world.handler._tracking.apply = explode  # a crash mid-batch, after the station call applied
    batch = [
        station_call("dispense_confirm", None, customer_id="C-1", battery_id="BAT-1"),
        signal(SourceKind.BMS, "BAT-3", "telemetry", {"charge_pct": 50.0}),
    ]
    with pytest.raises(Boom):
        world.handler.handle(batch)
    assert world.service_of("C-1").state is ServiceState.ACTIVE
    assert world.store.signal_log == [] and world.store.outbox == []
