"""Cancel a bulk change: lines not yet sent to the carrier end CANCELLED."""

from __future__ import annotations

from device_change.app.errors import Conflict, NotFound
from device_change.app.ports import Clock, UnitOfWorkFactory
from device_change.app.processing import DeviceLineSettler
from device_change.domain.bulk_change import BulkChange


class BulkChangeCancellation:
    def __init__(self, *, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._settler = DeviceLineSettler(clock=clock)

    def cancel(self, *, tenant: str, bulk_change_id: str) -> tuple[BulkChange, int]:
        """Returns the bulk change and how many lines this call cancelled."""
        with self._uow_factory() as uow:
            repo = uow.bulk_changes
            bulk = repo.get(tenant, bulk_change_id)
            if bulk is None:
                raise NotFound(f"no bulk change {bulk_change_id}")
            if bulk.status.finished:
                raise Conflict(f"bulk change {bulk_change_id} already ended {bulk.status.value}")
            bulk.cancel_requested = True
            repo.save(bulk)
            cancelled = repo.cancel_unsent(bulk_change_id)
            self._settler.finish_if_done(uow, bulk_change_id)
            uow.commit()
            refreshed = repo.get(tenant, bulk_change_id)
        return (refreshed or bulk), cancelled
