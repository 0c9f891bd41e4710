"""Keep the inventory in step with the carrier: its plan list and its device list."""

from __future__ import annotations

from dataclasses import dataclass

from device_change.app.ports import CarrierDirectory, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class SyncReport:
    devices: int
    rate_plans: int
    pages: int


class InventorySync:
    def __init__(self, *, uow_factory: UnitOfWorkFactory, carriers: CarrierDirectory) -> None:
        self._uow_factory = uow_factory
        self._carriers = carriers

    def sync(self, tenant: str) -> SyncReport:
        """Pull the carrier's plans and devices; running it again changes nothing new."""
        account = self._carriers.for_tenant(tenant)
        account.rate_limiter.acquire()
        plans = account.gateway.rate_plans()
        with self._uow_factory() as uow:
            uow.plans.replace(tenant, plans)
            uow.commit()
        devices = pages = 0
        pages_iter = account.gateway.iter_devices()
        while True:
            account.rate_limiter.acquire()
            page = next(pages_iter, None)
            if page is None:
                break
            with self._uow_factory() as uow:
                devices += uow.devices.upsert_from_carrier(tenant, page)
                uow.commit()
            pages += 1
        return SyncReport(devices=devices, rate_plans=len(plans), pages=pages)
