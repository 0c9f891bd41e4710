"""A small world for the use-case tests: one station, batteries, customers and staff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iot_sync.app.delivery import OutboxDelivery
from iot_sync.app.loss import LossDetection
from iot_sync.app.process import OrderingPolicy, ProcessSignalBatch
from iot_sync.domain.asset import AssetState
from iot_sync.domain.customer import Plan, Standing
from iot_sync.domain.evidence import AllowedArea, LossPolicy
from iot_sync.domain.personnel import Person, PersonnelRole
from iot_sync.domain.service import Service, ServiceState

from ..fakes import (
    FakeArm,
    FakeCustomerDirectory,
    FakeFieldPublisher,
    FakeNotifier,
    FakeSettlements,
    FakeUnitOfWorkFactory,
    FixedClock,
    Store,
    battery,
    customer,
    station,
)

HOLD = timedelta(seconds=30)
POLICY = LossPolicy(silence_timeout=timedelta(hours=2), dwell=timedelta(minutes=30))
AREAS = {"region-1": AllowedArea(-1.0, -1.0, 1.0, 1.0)}
HIGH = Plan("hc-10", battery_class="HIGH_CAPACITY", swap_quota=10)


class World:
    def __init__(self) -> None:
        self.clock = FixedClock()
        store = Store()
        store.stations = {"ST-1": station("ST-1"), "ST-2": station("ST-2", region="region-2")}
        store.assets = {
            "BAT-1": battery("BAT-1", slot=1, charge=100.0),
            "BAT-2": battery("BAT-2", slot=2, charge=98.0),
            "BAT-3": battery("BAT-3", slot=3, state=AssetState.CHARGING, charge=40.0),
        }
        store.services = {
            sv.service_id: sv
            for sv in [
                Service("SV-1", "C-1", ServiceState.ACTIVE),
                Service("SV-2", "C-2", ServiceState.ACTIVE),
                Service("SV-S", "C-SUSP", ServiceState.SUSPENDED),
                Service("SV-O", "C-OVER", ServiceState.ACTIVE),
                Service("SV-H", "C-HIGH", ServiceState.ACTIVE),
            ]
        }
        store.personnel = {
            "P-TECH": Person("P-TECH", "Tess", PersonnelRole.TECHNICIAN, frozenset({"region-1"})),
            "P-AGENT": Person("P-AGENT", "Abe", PersonnelRole.FIELD_AGENT, frozenset({"region-1"})),
            "P-FAR": Person("P-FAR", "Fay", PersonnelRole.SUPERVISOR, frozenset({"region-9"})),
        }
        self.uow_factory = FakeUnitOfWorkFactory(store)
        self.customers = FakeCustomerDirectory(
            [
                customer("C-1"),
                customer("C-2"),
                customer("C-SUSP"),
                customer("C-OVER", standing=Standing.OVERDUE),
                customer("C-HIGH", plan=HIGH),
            ]
        )
        self.handler = ProcessSignalBatch(
            uow_factory=self.uow_factory,
            clock=self.clock,
            customers=self.customers,
            ordering=OrderingPolicy(hold_for=HOLD),
            reservation_ttl=timedelta(minutes=2),
            allowed_areas=AREAS,
        )
        self.loss_detection = LossDetection(
            uow_factory=self.uow_factory, clock=self.clock, policy=POLICY
        )
        self.publisher = FakeFieldPublisher()
        self.arm = FakeArm()
        self.notifier = FakeNotifier()
        self.settlements = FakeSettlements()
        self.delivery = OutboxDelivery(
            uow_factory=self.uow_factory,
            clock=self.clock,
            publisher=self.publisher,
            arm=self.arm,
            notifier=self.notifier,
            settlements=self.settlements,
        )

    @property
    def store(self) -> Store:
        return self.uow_factory.store

    def service_of(self, customer_id: str) -> Service:
        return next(s for s in self.store.services.values() if s.customer_id == customer_id)


@pytest.fixture
def world() -> World:
    return World()
