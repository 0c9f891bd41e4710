"""Carrier callbacks: acknowledged as soon as they are stored, settled in batches after."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from device_change.app.ports import CarrierDeviceOutcome, Clock, UnitOfWorkFactory
from device_change.app.processing import DeviceLineSettler, SettleReport

SETTLE_CALLBACKS = "settle_carrier_callbacks"


class CarrierCallbackIntake:
    def __init__(self, *, uow_factory: UnitOfWorkFactory, wake_settler: Callable[[], None]) -> None:
        self._uow_factory = uow_factory
        self._wake = wake_settler

    def accept(self, outcomes: Sequence[CarrierDeviceOutcome]) -> tuple[int, int]:
        """Store the outcomes durably; returns (new, duplicates)."""
        with self._uow_factory() as uow:
            new = uow.inbox.store(outcomes)
            uow.commit()
        if new:
            self._wake()
        return new, len(outcomes) - new


class CallbackSettlement:
    def __init__(self, *, uow_factory: UnitOfWorkFactory, clock: Clock, batch_size: int = 1000):
        self._uow_factory = uow_factory
        self._settler = DeviceLineSettler(clock=clock)
        self._batch_size = batch_size

    def drain_once(self) -> tuple[int, SettleReport]:
        """Settle up to one batch of stored callbacks; returns (how many taken, report)."""
        with self._uow_factory() as uow:
            claimed = uow.inbox.claim(self._batch_size)
            if not claimed:
                return 0, SettleReport()
            report = self._settler.settle(
                uow, [outcome for _, outcome in claimed], source="callback"
            )
            uow.inbox.mark_processed([row_id for row_id, _ in claimed])
            uow.commit()
        return len(claimed), report

    def drain(self) -> SettleReport:
        settled = ignored = pending = 0
        while True:
            taken, report = self.drain_once()
            settled += report.settled
            ignored += report.ignored
            pending += report.still_pending
            if taken < self._batch_size:
                return SettleReport(settled=settled, ignored=ignored, still_pending=pending)
