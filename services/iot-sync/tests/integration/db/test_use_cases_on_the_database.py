"""The batch handler and the relay over the real unit of work: S1 to S3 end to end in SQL."""

from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.adapters.db.customers import SqlCustomerDirectory
from iot_sync.adapters.db.seed import SeedCustomer, seed
from iot_sync.adapters.db.settlements import SqlSettlements
from iot_sync.app.arm import ArmAsset, ArmStation
from iot_sync.app.delivery import OutboxDelivery
from iot_sync.app.loss import LossDetection
from iot_sync.app.ports import SignalResult
from iot_sync.app.process import OrderingPolicy, ProcessSignalBatch
from iot_sync.app.signals import FieldMessageKind, MalformedSignal, Signal, SourceKind
from iot_sync.domain.asset import AssetState
from iot_sync.domain.customer import Customer, Plan, Standing
from iot_sync.domain.evidence import LossPolicy
from iot_sync.domain.service import ServiceState

from .conftest import uid

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


class Publisher:
    def __init__(self) -> None:
        self.sent = []

    def publish(self, messages):
        self.sent.extend(messages)


class Arm:
    def __init__(self) -> None:
        self.movements = []

    def apply_movement(self, movement):
        self.movements.append(movement)


class Notifier:
    def __init__(self) -> None:
        self.sent = []

    def notify(self, n):
        self.sent.append(n)


@pytest.fixture
def scene(uow_factory):
    engine = uow_factory.engine
    station, b1, b2, cid = uid("ST"), uid("BAT"), uid("BAT"), uid("CUST")
    seed(
        engine,
        customers=[
            SeedCustomer(
                Customer(
                    cid, "Ann", Standing.GOOD, Plan("p", battery_class="STANDARD", swap_quota=5)
                ),
                ServiceState.ACTIVE,
            )
        ],
        personnel=[],
    )
    with uow_factory() as uow:
        uow.stations.upsert_from_arm(
            [ArmStation(station, "S", "region-1", "site-1", 0, 0, 4, True)]
        )
        uow.assets.upsert_from_arm(
            [
                ArmAsset(b1, "STANDARD", "AVAILABLE", station, 1, None, 100.0, 1),
                ArmAsset(b2, "STANDARD", "AVAILABLE", station, 2, None, 90.0, 1),
            ]
        )
        uow.commit()
    clock = Clock()
    handler = ProcessSignalBatch(
        uow_factory=uow_factory, clock=clock, customers=SqlCustomerDirectory(engine),
        ordering=OrderingPolicy(hold_for=timedelta(seconds=30)),
        reservation_ttl=timedelta(minutes=2),
    )  # fmt: skip
    return {
        "uow": uow_factory,
        "station": station,
        "b1": b1,
        "b2": b2,
        "customer": cid,
        "handler": handler,
        "clock": clock,
        "engine": engine,
    }


def call(s, verb, data, seq=None):
    at = s["clock"].now()
    return Signal(
        uid("m"),
        f"call/abs/station/{s['station']}/{verb}",
        SourceKind.STATION,
        s["station"],
        verb,
        at,
        seq,
        data,
        at,
        correlation_id=uid("c"),
    )


def test_a_swap_is_authorized_dispensed_and_delivered(scene):
    s = scene
    report = s["handler"].handle(
        [
            call(s, "authorize", {"customer_id": s["customer"]}, 1),
            call(s, "dispense_confirm", {"customer_id": s["customer"], "battery_id": s["b1"]}, 2),
        ]
    )
    assert [o.result for o in report.outcomes] == [SignalResult.ACCEPTED, SignalResult.ACCEPTED]

    with s["uow"]() as uow:
        service = uow.services.for_customers([s["customer"]])[s["customer"]]
        asset = uow.assets.get_many([s["b1"]])[s["b1"]]
        assert [h.input for h in uow.services.history(service.service_id, limit=10)] == [
            "BATTERY_ISSUED"
        ]
        assert [h.to_state for h in uow.assets.history(s["b1"], limit=10)] == ["ISSUED"]
    assert (service.state, service.battery_id, service.usage.swaps) == (
        ServiceState.BATTERY_ISSUED,
        s["b1"],
        1,
    )
    assert (asset.state, asset.holder) == (AssetState.ISSUED, s["customer"])

    publisher, arm, notifier = Publisher(), Arm(), Notifier()
    delivery = OutboxDelivery(
        uow_factory=s["uow"],
        clock=s["clock"],
        publisher=publisher,
        arm=arm,
        notifier=notifier,
        settlements=SqlSettlements(s["engine"]),
    )
    while delivery.deliver_pending().delivered:
        pass
    mine = [
        m for m in publisher.sent if m.subject in (s["station"], s["customer"], service.service_id)
    ]
    replies = [m.data for m in mine if m.kind is FieldMessageKind.STATION_REPLY]
    assert replies[0]["decision"] == "GRANTED"
    assert [(m.asset_id, m.state) for m in arm.movements if m.asset_id == s["b1"]] == [
        (s["b1"], "ISSUED")
    ]
    assert any(n.customer_id == s["customer"] for n in notifier.sent)


def test_duplicates_and_out_of_order_messages_hold_on_the_database(scene):
    s = scene
    authorize = call(s, "authorize", {"customer_id": s["customer"]}, 10)
    dispense = call(
        s, "dispense_confirm", {"customer_id": s["customer"], "battery_id": s["b2"]}, 12
    )
    s["handler"].handle([authorize])
    held = s["handler"].handle([dispense])
    assert held.outcomes[0].result is SignalResult.HELD
    again = s["handler"].handle([dispense, authorize])
    assert [o.result for o in again.outcomes] == [SignalResult.DUPLICATE, SignalResult.DUPLICATE]

    s["clock"].at += timedelta(seconds=31)
    s["handler"].release_overdue()
    with s["uow"]() as uow:
        service = uow.services.for_customers([s["customer"]])[s["customer"]]
        log = uow.signal_log.page(results=[SignalResult.ACCEPTED], limit=50, cursor=None).items
    assert (service.state, service.battery_id) == (ServiceState.BATTERY_ISSUED, s["b2"])
    assert dispense.message_id in {r.message_id for r in log}


def test_telemetry_loss_and_sighting_on_the_database(scene):
    s = scene
    s["handler"].handle(
        [call(s, "dispense_confirm", {"customer_id": s["customer"], "battery_id": s["b1"]})]
    )
    s["clock"].at += timedelta(hours=3)
    [lost] = [
        d
        for d in LossDetection(
            uow_factory=s["uow"],
            clock=s["clock"],
            policy=LossPolicy(timedelta(hours=2), timedelta(minutes=30)),
            batch_size=10_000,
        ).run()
        if d.asset_id == s["b1"]
    ]
    assert lost.evidence.kind.value == "silence"

    s["clock"].at += timedelta(minutes=1)
    at = s["clock"].now()
    gps = Signal(
        uid("m"),
        f"dt/arm/gps/region-1/site-1/{s['b1']}",
        SourceKind.GPS,
        s["b1"],
        "telemetry",
        at,
        1,
        {"latitude": 0.1, "longitude": 0.1},
        at,
        region="region-1",
    )
    bad = MalformedSignal("dt/arm/gps/region-1/site-1/x", "malformed_json", "not JSON", at)
    report = s["handler"].handle([gps, bad])
    assert [o.result for o in report.outcomes] == [SignalResult.ACCEPTED, SignalResult.MALFORMED]
    with s["uow"]() as uow:
        assert (
            uow.services.for_customers([s["customer"]])[s["customer"]].state
            is ServiceState.BATTERY_FOUND
        )
        asset = uow.assets.get_many([s["b1"]])[s["b1"]]
    assert (asset.state, asset.last_seen_at) == (AssetState.ISSUED, at)
