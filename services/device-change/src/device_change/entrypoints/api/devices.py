"""The inventory: devices, their audit trail, the carrier's plans, and the sync."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from device_change.app.errors import NotFound
from device_change.domain.device import Device, DeviceStatus
from device_change.entrypoints.api.bulk_changes import Services
from device_change.entrypoints.api.schemas import (
    DeviceOut,
    DevicePage,
    HistoryEntryOut,
    HistoryPage,
    RatePlanOut,
    SyncOut,
)
from fleetops_common.auth import Principal, Role, require_principal, require_role
from fleetops_common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["inventory"], responses=PROBLEM_RESPONSES)
Viewer = Annotated[Principal, Depends(require_principal)]
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]


def device_out(d: Device) -> DeviceOut:
    return DeviceOut(
        iccid=d.iccid,
        imei=d.imei,
        msisdn=d.msisdn,
        status=d.status,
        rate_plan=d.rate_plan,
        account_name=d.account_name,
    )


@router.get("/devices", response_model=DevicePage, summary="This tenant's devices, paged")
def list_devices(
    principal: Viewer,
    c: Services,
    status: DeviceStatus | None = None,
    rate_plan: str | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 100,
    cursor: str | None = None,
) -> DevicePage:
    with c.uow_factory.reader() as uow:
        page = uow.devices.list(
            principal.tenant, status=status, rate_plan=rate_plan, limit=limit, cursor=cursor
        )
    return DevicePage(items=[device_out(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/devices/{iccid}", response_model=DeviceOut, summary="One device")
def get_device(iccid: str, principal: Viewer, c: Services) -> DeviceOut:
    with c.uow_factory.reader() as uow:
        found = uow.devices.get_many(principal.tenant, [iccid]).get(iccid)
    if found is None:
        raise NotFound(f"no device with ICCID {iccid}")
    return device_out(found)


@router.get(
    "/devices/{iccid}/history",
    response_model=HistoryPage,
    summary="Audit trail: what changed, before and after, who, when, which bulk change",
)
def device_history(
    iccid: str,
    principal: Viewer,
    c: Services,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> HistoryPage:
    with c.uow_factory.reader() as uow:
        if iccid not in uow.devices.get_many(principal.tenant, [iccid]):
            raise NotFound(f"no device with ICCID {iccid}")
        page = uow.audit.history(principal.tenant, iccid, limit=limit, cursor=cursor)
    items = [
        HistoryEntryOut(
            at=e.at,
            action=e.action,
            actor=e.actor,
            before=dict(e.before),
            after=dict(e.after),
            changed={
                k: [e.before.get(k), e.after.get(k)]
                for k in sorted(set(e.before) | set(e.after))
                if e.before.get(k) != e.after.get(k)
            },
            bulk_change_id=e.bulk_change_id,
            carrier_request_id=e.carrier_request_id,
        )
        for e in page.items
    ]
    return HistoryPage(items=items, next_cursor=page.next_cursor)


@router.get("/rate-plans", response_model=list[RatePlanOut], summary="The carrier's plan list")
def list_rate_plans(principal: Viewer, c: Services) -> list[RatePlanOut]:
    with c.uow_factory.reader() as uow:
        plans = uow.plans.all(principal.tenant)
    return [RatePlanOut(code=p.code, name=p.name, size_kb=p.size_kb) for p in plans.values()]


@router.post(
    "/inventory/sync", response_model=SyncOut, summary="Pull the carrier's plans and devices"
)
def sync_inventory(principal: Operator, c: Services) -> SyncOut:
    report = c.inventory_sync.sync(principal.tenant)
    return SyncOut(devices=report.devices, rate_plans=report.rate_plans, pages=report.pages)
