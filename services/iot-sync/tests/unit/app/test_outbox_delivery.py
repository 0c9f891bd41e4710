"""The relay: everything leaves after commit, once per event id."""

from contextlib import contextmanager
from dataclasses import replace

from iot_sync.app.arm import ArmAsset
from iot_sync.app.delivery import OutboxDelivery
from iot_sync.app.signals import FieldMessageKind, SourceKind

from ..fakes import signal
from .test_personnel_actions import issue


def swap(world):
    world.handler.handle(
        [
            signal(SourceKind.STATION, "ST-1", "authorize", {"customer_id": "C-1"}),
            signal(
                SourceKind.STATION,
                "ST-1",
                "dispense_confirm",
                {"customer_id": "C-1", "battery_id": "BAT-1"},
            ),
        ]
    )


def arm_knows(world, *asset_ids):
    for asset_id in asset_ids:
        a = world.store.assets[asset_id]
        world.arm.assets[asset_id] = ArmAsset(
            asset_id,
            a.battery_class,
            a.state.value,
            a.station_id,
            a.slot,
            a.holder,
            a.charge_pct,
            1,
        )


def test_nothing_leaves_before_the_relay_runs_after_commit(world):
    swap(world)
    assert world.publisher.sent == [] and world.arm.movements == []


def test_the_relay_publishes_replies_moves_arm_and_calls_the_webhook(world):
    arm_knows(world, "BAT-1")
    swap(world)
    report = world.delivery.deliver_pending()

    kinds = [m.kind for m in world.publisher.sent]
    assert kinds.count(FieldMessageKind.STATION_REPLY) == 2
    assert FieldMessageKind.SERVICE_STATE in kinds and FieldMessageKind.CUSTOMER_NOTICE in kinds
    [movement] = world.arm.movements
    assert (movement.asset_id, movement.state, movement.holder) == ("BAT-1", "ISSUED", "C-1")
    assert world.arm.assets["BAT-1"].state == "ISSUED"
    [webhook] = world.notifier.sent
    assert webhook.customer_id == "C-1" and webhook.event == "battery_issued"
    assert report.delivered == len(world.store.outbox)
    assert world.delivery.deliver_pending().delivered == 0


def test_arm_movements_use_the_outbox_event_id_as_movement_id(world):
    arm_knows(world, "BAT-1")
    swap(world)
    world.delivery.deliver_pending()
    event_ids = {row["event"].event_id for row in world.store.outbox}
    assert world.arm.movements[0].movement_id in event_ids


def test_a_redelivery_after_a_crash_is_dropped_by_the_receivers_so_it_counts_once(world):
    arm_knows(world, "BAT-1")
    swap(world)
    world.delivery.deliver_pending()
    for row in world.store.outbox:  # as if the relay died before marking them delivered
        row["delivered"] = False
    world.delivery.deliver_pending()
    assert len(world.arm.movements) == 1
    assert len({m.message_id for m in world.publisher.sent}) == len(world.publisher.sent) // 2


def test_an_unavailable_arm_is_retried_later_and_keeps_each_batterys_order(world):
    arm_knows(world, "BAT-1", "BAT-2")
    swap(world)
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
    world.arm.unavailable = True
    report = world.delivery.deliver_pending()
    assert report.retried == 2 and world.arm.movements == []

    world.arm.unavailable = False
    world.clock.advance(seconds=5)
    world.delivery.deliver_pending()
    assert [(m.asset_id, m.state) for m in world.arm.movements] == [
        ("BAT-1", "ISSUED"),
        ("BAT-1", "CHARGING"),
    ]


def test_a_movement_arm_refuses_is_given_up_not_retried_forever(world):
    arm_knows(world, "BAT-1")
    swap(world)
    world.arm.reject_code = "INVALID_TRANSITION"
    report = world.delivery.deliver_pending()
    assert report.given_up == 1
    dead = [row for row in world.store.outbox if row["dead"]]
    assert "INVALID_TRANSITION" in dead[0]["error"]


def test_a_broker_outage_leaves_field_messages_for_the_next_round(world):
    arm_knows(world, "BAT-1")
    swap(world)
    world.publisher.fail = True
    world.delivery.deliver_pending()
    world.publisher.fail = False
    world.clock.advance(seconds=5)
    world.delivery.deliver_pending()
    assert any(m.kind is FieldMessageKind.STATION_REPLY for m in world.publisher.sent)


def test_a_loss_starts_one_settlement_through_the_settlements_port(world):
    issue(world)
    arm_knows(world, "BAT-1")
    world.handler.handle(
        [signal(SourceKind.PERSONNEL, "P-AGENT", "report_lost", {"asset_id": "BAT-1"})]
    )
    world.delivery.deliver_pending()
    world.delivery.deliver_pending()
    [started] = world.settlements.started
    assert (started.customer_id, started.battery_id, started.evidence) == (
        "C-1",
        "BAT-1",
        "manual_report",
    )


class RecordingTrace:
    def __init__(self, arm) -> None:
        self.arm = arm
        self.seen: list[tuple[str | None, int]] = []

    @contextmanager
    def resume(self, traceparent):
        self.seen.append((traceparent, len(self.arm.movements)))
        yield


def test_arm_calls_continue_the_trace_of_the_signal_that_caused_them(world):
    arm_knows(world, "BAT-1")
    trace = RecordingTrace(world.arm)
    delivery = OutboxDelivery(
        uow_factory=world.uow_factory,
        clock=world.clock,
        publisher=world.publisher,
        arm=world.arm,
        notifier=world.notifier,
        settlements=world.settlements,
        trace=trace,
    )
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    dispense = signal(
        SourceKind.STATION,
        "ST-1",
        "dispense_confirm",
        {"customer_id": "C-1", "battery_id": "BAT-1"},
    )
    world.handler.handle([replace(dispense, traceparent=parent)])
    delivery.deliver_pending()
    assert (parent, 0) in trace.seen  # entered before the ARM call was made
    assert all(traceparent == parent for traceparent, _ in trace.seen)
    assert len(world.arm.movements) == 1
