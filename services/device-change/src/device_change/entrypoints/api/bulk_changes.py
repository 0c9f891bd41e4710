"""Bulk changes: submit (JSON or CSV), follow, list lines, cancel."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from device_change.app.errors import InvalidRequest, NotFound
from device_change.app.ports import UnitOfWork
from device_change.app.submit import DeviceInput, SubmitBulkChange
from device_change.bootstrap import Container
from device_change.domain.bulk_change import BulkChange, LineStatus
from device_change.domain.changes import ChangeType
from device_change.entrypoints.api.schemas import (
    BulkChangeOut,
    BulkChangePage,
    BulkChangeRequest,
    CancelOut,
    Counts,
    DryRunOut,
    LineOut,
    LinePage,
    LineVerdictOut,
)
from fleetops_common.auth import Principal, Role, require_principal, require_role
from fleetops_common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/bulk-changes", tags=["bulk changes"], responses=PROBLEM_RESPONSES)

CSV_COLUMNS = {"iccid", "msisdn", "imei", "new_iccid", "new_imei"}
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
Viewer = Annotated[Principal, Depends(require_principal)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A retry with the same key returns the same bulk change",
    ),
]


async def container(request: Request) -> Container:
    # async: resolved on the event loop, no thread hop (it only reads app state)
    c: Container = request.app.state.container
    return c


Services = Annotated[Container, Depends(container)]


def bulk_out(uow: UnitOfWork, bulk: BulkChange) -> BulkChangeOut:
    """The public view of a bulk change, counts read in the caller's unit of work."""
    counts = uow.bulk_changes.line_counts(bulk.id)
    return BulkChangeOut(
        id=bulk.id,
        status=bulk.status,
        change_type=bulk.change_type,
        params=bulk.params,
        counts=Counts(**{s.value: counts.get(s, 0) for s in LineStatus}),
        total=bulk.total_lines,
        submitted_by=bulk.submitted_by,
        tenant=bulk.tenant,
        created_at=bulk.created_at,
        started_at=bulk.started_at,
        finished_at=bulk.finished_at,
        cancel_requested=bulk.cancel_requested,
    )


def _submit(
    c: Container,
    principal: Principal,
    *,
    change_type: ChangeType,
    devices: list[DeviceInput],
    params: dict[str, Any],
    dry_run: bool,
    key: str | None,
) -> JSONResponse:
    cmd = SubmitBulkChange(
        tenant=principal.tenant,
        submitted_by=principal.subject,
        change_type=change_type,
        devices=devices,
        params=params,
        dry_run=dry_run,
        idempotency_key=key,
    )
    if dry_run:
        result = c.submission.dry_run(cmd)
        out = DryRunOut(
            valid=result.valid,
            invalid=result.invalid,
            lines=[
                LineVerdictOut(
                    iccid=v.iccid,
                    valid=v.valid,
                    reason=v.reason,
                    action=v.action.value if v.action else None,
                )
                for v in result.lines
            ],
        )
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    submitted = c.submission.submit(cmd)
    with c.uow_factory() as uow:
        body = bulk_out(uow, submitted.bulk_change).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=202 if submitted.created else 200,
        headers={"Location": f"/v1/bulk-changes/{submitted.bulk_change.id}"},
    )


@router.post(
    "",
    status_code=202,
    response_model=BulkChangeOut,
    responses={
        200: {
            "model": DryRunOut,
            "description": "Dry run verdicts, or the bulk change "
            "an earlier request with the same Idempotency-Key created",
        }
    },
    summary="Submit a bulk change (or dry-run it)",
)
def submit_bulk_change(
    body: BulkChangeRequest, principal: Operator, c: Services, key: IdempotencyKey = None
) -> JSONResponse:
    devices = [DeviceInput(**row.model_dump()) for row in body.devices]
    return _submit(
        c,
        principal,
        change_type=body.change_type,
        devices=devices,
        params=body.params,
        dry_run=body.dry_run,
        key=key,
    )


@router.post(
    "/csv",
    status_code=202,
    response_model=BulkChangeOut,
    responses={200: {"model": DryRunOut}},
    summary="Submit a bulk change from a CSV file (header row names the columns)",
)
async def submit_bulk_change_csv(
    principal: Operator,
    c: Services,
    file: Annotated[
        UploadFile, File(description="CSV; columns among " + ", ".join(sorted(CSV_COLUMNS)))
    ],
    change_type: Annotated[ChangeType, Form()],
    params: Annotated[str, Form(description="JSON object of parameters")] = "{}",
    dry_run: Annotated[bool, Form()] = False,
    key: IdempotencyKey = None,
) -> JSONResponse:
    try:
        parsed_params = json.loads(params or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequest("params", f"is not valid JSON: {exc.msg}") from None
    if not isinstance(parsed_params, dict):
        raise InvalidRequest("params", "must be a JSON object")
    raw = await file.read()
    devices = parse_csv(raw)
    return await run_in_threadpool(
        _submit,
        c,
        principal,
        change_type=change_type,
        devices=devices,
        params=parsed_params,
        dry_run=dry_run,
        key=key,
    )


def parse_csv(raw: bytes) -> list[DeviceInput]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest("file", "must be UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise InvalidRequest("file", "is empty; the first row must name the columns")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise InvalidRequest("file", f"unknown column(s) {unknown}; allowed: {sorted(CSV_COLUMNS)}")
    reader.fieldnames = header
    devices: list[DeviceInput] = []
    for row_no, row in enumerate(reader, start=2):
        if None in row:
            raise InvalidRequest("file", f"row {row_no} has more values than the header")
        values = {k: (v or "").strip() or None for k, v in row.items()}
        if not any(values.values()):
            continue
        devices.append(DeviceInput(**values))
    if not devices:
        raise InvalidRequest("file", "has a header but no device rows")
    return devices


@router.get("", response_model=BulkChangePage, summary="This tenant's bulk changes, newest first")
def list_bulk_changes(
    principal: Viewer,
    c: Services,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> BulkChangePage:
    with c.uow_factory.reader() as uow:
        page = uow.bulk_changes.list_bulk_changes(principal.tenant, limit=limit, cursor=cursor)
        items = [bulk_out(uow, b) for b in page.items]
    return BulkChangePage(items=items, next_cursor=page.next_cursor)


def _get_bulk(uow: UnitOfWork, principal: Principal, bulk_change_id: str) -> BulkChange:
    bulk = uow.bulk_changes.get(principal.tenant, bulk_change_id)
    if bulk is None:
        raise NotFound(f"no bulk change {bulk_change_id} for tenant {principal.tenant}")
    return bulk


@router.get("/{bulk_change_id}", response_model=BulkChangeOut, summary="Status and counts")
def get_bulk_change(bulk_change_id: str, principal: Viewer, c: Services) -> BulkChangeOut:
    with c.uow_factory.reader() as uow:
        return bulk_out(uow, _get_bulk(uow, principal, bulk_change_id))


@router.get("/{bulk_change_id}/lines", response_model=LinePage, summary="Device lines, paged")
def list_lines(
    bulk_change_id: str,
    principal: Viewer,
    c: Services,
    status: LineStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> LinePage:
    with c.uow_factory.reader() as uow:
        _get_bulk(uow, principal, bulk_change_id)
        page = uow.bulk_changes.list_lines(
            bulk_change_id, status=status, limit=limit, cursor=cursor
        )
    return LinePage(
        items=[
            LineOut(
                seq=ln.seq,
                iccid=ln.iccid,
                status=ln.status,
                reason=ln.reason,
                action=ln.action.value if ln.action else None,
                carrier_request_id=ln.carrier_request_id,
                attempts=ln.attempts,
                request=ln.request,
            )
            for ln in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/{bulk_change_id}/cancel", response_model=CancelOut, summary="Stop lines not yet sent"
)
def cancel_bulk_change(
    bulk_change_id: str, principal: Operator, c: Services, response: Response
) -> CancelOut:
    bulk, cancelled = c.cancellation.cancel(tenant=principal.tenant, bulk_change_id=bulk_change_id)
    with c.uow_factory() as uow:
        return CancelOut(bulk_change=bulk_out(uow, bulk), cancelled_lines=cancelled)
