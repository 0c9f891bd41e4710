"""Customers (standing and plan), field personnel, and the audit log of their actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fleetops_common.problems import PROBLEM_RESPONSES
from iot_sync.domain.service import Service, ServiceState
from iot_sync.entrypoints.api.deps import Services, Viewer
from iot_sync.entrypoints.api.schemas import (
    AuditOut,
    AuditPage,
    CustomerOut,
    CustomerPage,
    PersonnelPage,
    PersonOut,
)

router = APIRouter(prefix="/v1", tags=["customers and personnel"], responses=PROBLEM_RESPONSES)


@router.get("/customers", response_model=CustomerPage, summary="Customers, standing and plan")
def list_customers(_: Viewer, c: Services) -> CustomerPage:
    customers = c.customers.all()
    with c.uow_factory() as uow:
        # A plain read (no row locks): a listing must never wait for a batch.
        found = uow.services.find(customer_id=None, limit=100_000)
    services: dict[str, Service] = {}
    for s in found:
        if s.customer_id not in services or s.state is not ServiceState.CANCELLED:
            services[s.customer_id] = s
    return CustomerPage(items=[CustomerOut.of(x, services.get(x.customer_id)) for x in customers])


@router.get("/personnel", response_model=PersonnelPage, summary="Field personnel")
def list_personnel(_: Viewer, c: Services) -> PersonnelPage:
    with c.uow_factory() as uow:
        people = uow.personnel.all()
    return PersonnelPage(items=[PersonOut.of(p) for p in people])


@router.get("/audit", response_model=AuditPage, summary="Personnel actions, newest first")
def audit(
    _: Viewer,
    c: Services,
    person_id: str | None = None,
    asset_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    with c.uow_factory() as uow:
        entries = uow.audit.entries(person_id=person_id, asset_id=asset_id, limit=limit)
    return AuditPage(
        items=[
            AuditOut(
                person_id=e.person_id,
                action=e.action,
                asset_id=e.asset_id,
                result=e.result,
                reason=e.reason,
                at=e.at,
                message_id=e.message_id,
                detail=dict(e.detail),
            )
            for e in entries
        ]
    )
