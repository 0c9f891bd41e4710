import pytest

from device_change.app.callbacks import CallbackSettlement, CarrierCallbackIntake
from device_change.app.cancel import BulkChangeCancellation
from device_change.app.processing import CarrierBatchPoller, CarrierBatchSender, RetryPolicy
from device_change.app.submit import BulkChangeSubmission, SubmissionPolicy
from device_change.domain.device import Device, DeviceStatus, RatePlan

from ..fakes import (
    FakeCarrier,
    FakeUnitOfWorkFactory,
    FixedClock,
    NoTrace,
    OneAccount,
    make_iccid,
    make_imei,
)

TENANT = "demo"


class World:
    def __init__(self) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.clock = FixedClock()
        self.carrier = FakeCarrier()
        s = self.uow.store
        s.plans[TENANT] = {c: RatePlan(c, c) for c in ("M2M_4G_1GB", "M2M_4G_5GB")}
        for n in range(1, 11):
            self.add_device(n, DeviceStatus.ACTIVE)
        self.add_device(11, DeviceStatus.SUSPENDED)
        self.add_device(12, DeviceStatus.PENDING_ACTIVATION, msisdn=None)
        self.add_device(13, DeviceStatus.INVENTORY, msisdn=None)
        self.add_device(99, DeviceStatus.ACTIVE, tenant="other")
        retry = RetryPolicy(base_delay_s=0.01, reconcile_delay_s=1, first_poll_after_s=60)
        accounts = OneAccount(self.carrier)
        self.submission = BulkChangeSubmission(
            uow_factory=self.uow,
            clock=self.clock,
            policy=SubmissionPolicy(max_devices_per_request=4),
        )
        self._retry, self._accounts = retry, accounts
        self.sender = self.make_sender()
        self.poller = self.make_poller()
        self.cancellation = BulkChangeCancellation(uow_factory=self.uow, clock=self.clock)
        self.settlement = CallbackSettlement(uow_factory=self.uow, clock=self.clock)
        self.wakes = 0
        self.intake = CarrierCallbackIntake(uow_factory=self.uow, wake_settler=self._wake)

    def make_sender(self, **overrides):
        return CarrierBatchSender(
            uow_factory=self.uow,
            carriers=self._accounts,
            clock=self.clock,
            trace=NoTrace(),
            retry=self._retry,
            **overrides,
        )

    def make_poller(self, **overrides):
        return CarrierBatchPoller(
            uow_factory=self.uow,
            carriers=self._accounts,
            clock=self.clock,
            retry=self._retry,
            **overrides,
        )

    def _wake(self) -> None:
        self.wakes += 1

    def add_device(self, n, status, *, msisdn="default", tenant=TENANT):
        iccid = make_iccid(n)
        self.uow.store.devices[iccid] = Device(
            tenant,
            iccid,
            make_imei(n),
            f"55500{n:05d}" if msisdn == "default" else msisdn,
            status,
            "M2M_4G_1GB",
        )
        return iccid

    @property
    def store(self):
        return self.uow.store


@pytest.fixture
def world() -> World:
    return World()
