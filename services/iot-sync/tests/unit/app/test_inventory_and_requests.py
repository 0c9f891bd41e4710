"""ARM inventory sync and reconciliation; back-office service inputs."""

import pytest

from iot_sync.app.arm import ArmAsset, ArmStation
from iot_sync.app.errors import InvalidInput, NotFound, Refused
from iot_sync.app.inventory import ReconcileWithArm, SyncArmInventory
from iot_sync.app.service_requests import ServiceRequests
from iot_sync.domain.asset import AssetState
from iot_sync.domain.service import ServiceInput, ServiceState

from ..fakes import FakeArm, FakeUnitOfWorkFactory
from .test_personnel_actions import act, issue

ARM_STATIONS = [ArmStation("ST-9", "Nine", "region-1", "site-9", 1.0, 2.0, 4, True)]
ARM_ASSETS = [
    ArmAsset("BAT-91", "STANDARD", "AVAILABLE", "ST-9", 1, None, 100.0, 3),
    ArmAsset("BAT-92", "HIGH_CAPACITY", "CHARGING", "ST-9", 2, None, 20.0, 1),
]


def test_syncing_pulls_stations_and_batteries_into_our_tables():
    uow_factory = FakeUnitOfWorkFactory()
    report = SyncArmInventory(
        uow_factory=uow_factory, arm=FakeArm(ARM_STATIONS, ARM_ASSETS), chunk=1
    ).run()
    assert (report.stations, report.assets_seen, report.assets_changed) == (1, 2, 2)
    assert uow_factory.store.stations["ST-9"].slot_count == 4
    assert uow_factory.store.assets["BAT-92"].state is AssetState.CHARGING
    assert uow_factory.store.assets["BAT-92"].region == "region-1"  # its station's


def test_syncing_twice_changes_nothing_the_second_time():
    uow_factory = FakeUnitOfWorkFactory()
    sync = SyncArmInventory(uow_factory=uow_factory, arm=FakeArm(ARM_STATIONS, ARM_ASSETS))
    sync.run()
    before = dict(uow_factory.store.assets)
    assert sync.run().assets_changed == 0
    assert uow_factory.store.assets == before


def test_reconciliation_reports_every_kind_of_drift():
    uow_factory = FakeUnitOfWorkFactory()
    arm = FakeArm(ARM_STATIONS, ARM_ASSETS)
    SyncArmInventory(uow_factory=uow_factory, arm=arm).run()
    assert ReconcileWithArm(uow_factory=uow_factory, arm=arm).run().in_step

    del arm.assets["BAT-91"]
    arm.assets["BAT-93"] = ArmAsset("BAT-93", "STANDARD", "AVAILABLE", "ST-9", 3, None, 100.0, 1)
    arm.assets["BAT-92"] = ArmAsset("BAT-92", "HIGH_CAPACITY", "ISSUED", None, None, "C-1", 20.0, 2)
    report = ReconcileWithArm(uow_factory=uow_factory, arm=arm).run()
    assert {(d.asset_id, d.kind) for d in report.drifts} == {
        ("BAT-91", "missing_in_arm"),
        ("BAT-93", "missing_here"),
        ("BAT-92", "state"),
        ("BAT-92", "station"),
        ("BAT-92", "holder"),
    }


def requests(world):
    return ServiceRequests(uow_factory=world.uow_factory, clock=world.clock)


def test_a_confirmed_deposit_lifts_a_suspension(world):
    after = requests(world).apply("SV-S", ServiceInput.DEPOSIT_CONFIRMED, actor="billing")
    assert after.state is ServiceState.ACTIVE
    assert world.store.service_history[-1].actor == "billing"


def test_a_settled_loss_lets_the_customer_continue(world):
    issue(world)
    world.handler.handle([act("P-AGENT", "report_lost")])
    requests(world).apply("SV-1", ServiceInput.ASSET_SETTLEMENT_COMPLETE, actor="billing")
    after = requests(world).apply("SV-1", ServiceInput.CONTINUE_SERVICE_REQUESTED, actor="C-1")
    assert after.state is ServiceState.ACTIVE


def test_an_input_that_does_not_apply_is_refused_with_its_reason(world):
    with pytest.raises(Refused, match="does not apply"):
        requests(world).apply("SV-1", ServiceInput.ASSET_SETTLEMENT_COMPLETE, actor="billing")


def test_battery_inputs_only_come_from_the_field(world):
    with pytest.raises(InvalidInput):
        requests(world).apply("SV-1", ServiceInput.BATTERY_ISSUED, actor="ops")


def test_an_unknown_service_is_not_found(world):
    with pytest.raises(NotFound):
        requests(world).apply("SV-404", ServiceInput.SERVICE_CANCELLED, actor="ops")
