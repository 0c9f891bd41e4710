"""Customers' services: state, history, and the back-office inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fleetops_common.problems import PROBLEM_RESPONSES
from iot_sync.app.errors import InvalidInput, NotFound
from iot_sync.domain.service import ServiceInput
from iot_sync.entrypoints.api.deps import Operator, Services, Viewer
from iot_sync.entrypoints.api.schemas import (
    ServiceHistoryOut,
    ServiceHistoryPage,
    ServiceInputIn,
    ServiceOut,
    ServicePage,
)

router = APIRouter(prefix="/v1/services", tags=["services"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=ServicePage, summary="Services, optionally of one customer")
def list_services(
    _: Viewer,
    c: Services,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ServicePage:
    with c.uow_factory() as uow:
        found = uow.services.find(customer_id=customer_id, limit=limit)
    return ServicePage(items=[ServiceOut.of(s) for s in found])


@router.get("/{service_id}", response_model=ServiceOut, summary="One service's current state")
def get_service(service_id: str, _: Viewer, c: Services) -> ServiceOut:
    with c.uow_factory() as uow:
        found = uow.services.get(service_id)
    if found is None:
        raise NotFound(f"no service {service_id}")
    return ServiceOut.of(found)


@router.get(
    "/{service_id}/history",
    response_model=ServiceHistoryPage,
    summary="Every transition of the service: input, before, after, cause, actor",
)
def service_history(
    service_id: str,
    _: Viewer,
    c: Services,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> ServiceHistoryPage:
    with c.uow_factory() as uow:
        if uow.services.get(service_id) is None:
            raise NotFound(f"no service {service_id}")
        entries = uow.services.history(service_id, limit=limit)
    return ServiceHistoryPage(
        service_id=service_id, items=[ServiceHistoryOut.of(e) for e in entries]
    )


@router.post(
    "/{service_id}/inputs",
    response_model=ServiceOut,
    summary="Apply a back-office input (deposit, settlement, continue, cancel)",
)
def apply_input(
    service_id: str, body: ServiceInputIn, principal: Operator, c: Services
) -> ServiceOut:
    try:
        event = ServiceInput(body.input)
    except ValueError:
        raise InvalidInput("input", f"{body.input!r} is not a service input") from None
    return ServiceOut.of(c.service_requests.apply(service_id, event, actor=principal.subject))
