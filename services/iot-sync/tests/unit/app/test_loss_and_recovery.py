"""S3: loss only on evidence, settlement, and recovery."""

from dataclasses import replace
from datetime import timedelta

from iot_sync.app.ports import OutboxKind
from iot_sync.app.signals import FieldMessageKind, SourceKind
from iot_sync.domain.asset import AssetState
from iot_sync.domain.evidence import EvidenceKind
from iot_sync.domain.service import ServiceState

from ..fakes import field_messages, outbox_events, signal
from .test_personnel_actions import issue


def gps(world, lat, lon, battery_id="BAT-1", seq=None, minutes=0.0):
    at = world.clock.now() + timedelta(minutes=minutes)
    return signal(
        SourceKind.GPS,
        battery_id,
        "telemetry",
        {"latitude": lat, "longitude": lon},
        seq=seq,
        at=at,
        region="region-1",
    )


def test_silence_longer_than_the_timeout_declares_the_battery_lost(world):
    issue(world)
    world.clock.advance(hours=2)
    [declared] = world.loss_detection.run()

    assert declared.asset_id == "BAT-1" and declared.evidence.kind is EvidenceKind.SILENCE
    assert world.store.assets["BAT-1"].state is AssetState.LOST
    assert world.service_of("C-1").state is ServiceState.BATTERY_LOST
    assert outbox_events(world.store, OutboxKind.SETTLEMENT)[0].payload["evidence"] == "silence"


def test_a_battery_that_keeps_talking_is_not_lost(world):
    issue(world)
    world.clock.advance(hours=1)
    world.handler.handle([gps(world, 0.1, 0.1)])
    world.clock.advance(hours=1, minutes=30)
    assert world.loss_detection.run() == []
    assert world.store.assets["BAT-1"].state is AssetState.ISSUED


def test_outside_the_area_for_the_dwell_time_declares_the_loss(world):
    issue(world)
    world.handler.handle([gps(world, 5.0, 5.0, seq=1), gps(world, 5.1, 5.0, seq=2, minutes=10)])
    world.clock.advance(minutes=31)
    world.handler.handle([gps(world, 5.2, 5.0, seq=3)])
    [declared] = world.loss_detection.run()
    assert declared.evidence.kind is EvidenceKind.OUTSIDE_AREA


def test_a_single_gps_jump_back_inside_resets_the_dwell(world):
    issue(world)
    world.handler.handle(
        [
            gps(world, 5.0, 5.0, seq=1),
            gps(world, 0.0, 0.0, seq=2, minutes=20),
            gps(world, 5.0, 5.0, seq=3, minutes=21),
        ]
    )
    world.clock.advance(minutes=35)
    assert world.loss_detection.run() == []
    assert world.store.assets["BAT-1"].outside_since == world.clock.now() - timedelta(minutes=14)


def test_a_single_gps_jump_outside_is_not_a_loss(world):
    issue(world)
    world.handler.handle([gps(world, 5.0, 5.0, seq=1), gps(world, 0.0, 0.0, seq=2, minutes=1)])
    world.clock.advance(hours=1)
    world.handler.handle([gps(world, 0.1, 0.1, seq=3)])
    assert world.loss_detection.run() == []


def test_a_lost_battery_heard_again_is_sighted_and_the_service_gets_battery_found(world):
    issue(world)
    world.clock.advance(hours=2)
    world.loss_detection.run()
    world.clock.advance(minutes=5)
    world.handler.handle([gps(world, 0.2, 0.2)])

    assert world.store.assets["BAT-1"].state is AssetState.ISSUED
    service = world.service_of("C-1")
    assert (service.state, service.battery_id) == (ServiceState.BATTERY_FOUND, "BAT-1")
    notices = [n["name"] for n in field_messages(world.store, FieldMessageKind.CUSTOMER_NOTICE)]
    assert notices == ["battery_lost", "battery_found"]


def test_a_tracker_reading_older_than_the_loss_is_not_a_sighting(world):
    issue(world)
    world.clock.advance(hours=2)
    world.loss_detection.run()
    world.handler.handle([gps(world, 0.2, 0.2, minutes=-30)])
    assert world.store.assets["BAT-1"].state is AssetState.LOST


def test_a_lost_battery_returned_at_a_station_is_found_and_returned(world):
    issue(world)
    world.clock.advance(hours=2)
    world.loss_detection.run()
    world.handler.handle(
        [
            signal(
                SourceKind.STATION,
                "ST-1",
                "return_confirm",
                {"customer_id": "C-1", "battery_id": "BAT-1"},
            )
        ]
    )
    assert world.service_of("C-1").state is ServiceState.ACTIVE
    assert world.store.assets["BAT-1"].state is AssetState.CHARGING
    assert [h.input for h in world.store.service_history][-2:] == [
        "BATTERY_FOUND",
        "BATTERY_RETURNED",
    ]


def test_loss_detection_ignores_batteries_in_stations(world):
    world.store.assets["BAT-1"] = replace(
        world.store.assets["BAT-1"], last_seen_at=world.clock.now() - timedelta(days=3)
    )
    world.clock.advance(hours=3)
    assert world.loss_detection.run() == []
