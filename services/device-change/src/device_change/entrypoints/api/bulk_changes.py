"""Bulk changes: submit (JSON or CSV), follow, list lines, cancel."""

from __future__ import annotations

import json
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from device_change.app.errors import InvalidRequest, NotFound
from device_change.app.ports import UnitOfWork
from device_change.app.submit import DryRunResult, RequestedDevices, SubmitBulkChange
from device_change.bootstrap import Container
from device_change.domain.bulk_change import BulkChange, LineStatus
from device_change.domain.changes import ChangeType
from device_change.entrypoints.api.requested_devices import (
    CSV_COLUMNS,
    read_bulk_change_body,
    read_csv_devices,
    spool_body,
)
from device_change.entrypoints.api.schemas import (
    BulkChangeOut,
    BulkChangePage,
    CancelOut,
    Counts,
    DryRunOut,
    LineOut,
    LinePage,
)
from fleetops_common.auth import Principal, Role, require_principal, require_role
from fleetops_common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/bulk-changes", tags=["bulk changes"], responses=PROBLEM_RESPONSES)

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
    devices: RequestedDevices,
    params: dict[str, Any],
    dry_run: bool,
    key: str | None,
) -> Response:
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
        return _dry_run_response(c.submission.dry_run(cmd))
    submitted = c.submission.submit(cmd)
    with c.uow_factory() as uow:
        body = bulk_out(uow, submitted.bulk_change).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=202 if submitted.created else 200,
        headers={"Location": f"/v1/bulk-changes/{submitted.bulk_change.id}"},
    )


def _dry_run_response(result: DryRunResult) -> Response:
    """`DryRunOut`, encoded line by line: no model object per device line."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = ",".join(
        encode(
            {
                "iccid": v.iccid,
                "valid": v.valid,
                "reason": v.reason,
                "action": v.action.value if v.action else None,
            }
        )
        for v in result.lines
    )
    body = f'{{"valid":{result.valid},"invalid":{result.invalid},"lines":[{lines}]}}'
    return Response(body.encode(), status_code=200, media_type="application/json")


@router.post(
    "",
    status_code=202,
    response_model=BulkChangeOut,
    responses={
        200: {
            "model": DryRunOut,
            "description": "Dry run verdicts, or the bulk change "
            "an earlier request with the same Idempotency-Key created",
        },
        413: {**PROBLEM_RESPONSES[422], "description": "Body over 64 MiB"},
        415: {**PROBLEM_RESPONSES[422], "description": "Body is not application/json"},
    },
    # The body is read as a stream (see requested_devices), not by FastAPI, so it is
    # documented here; the app adds BulkChangeRequest to the document's schemas.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/BulkChangeRequest"}}
            },
        }
    },
    summary="Submit a bulk change (or dry-run it)",
)
async def submit_bulk_change(
    request: Request, principal: Operator, c: Services, key: IdempotencyKey = None
) -> Response:
    spooled = await spool_body(request)
    try:
        return await run_in_threadpool(_submit_json, c, principal, spooled, key)
    finally:
        spooled.close()


def _submit_json(
    c: Container, principal: Principal, spooled: IO[bytes], key: str | None
) -> Response:
    body = read_bulk_change_body(spooled)
    return _submit(
        c,
        principal,
        change_type=body.change_type,
        devices=body.devices,
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
) -> Response:
    try:
        parsed_params = json.loads(params or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequest("params", f"is not valid JSON: {exc.msg}") from None
    if not isinstance(parsed_params, dict):
        raise InvalidRequest("params", "must be a JSON object")

    def submit_csv() -> Response:
        # Starlette spooled the upload; it is read row by row, once per pass.
        return _submit(
            c,
            principal,
            change_type=change_type,
            devices=read_csv_devices(file.file),
            params=parsed_params,
            dry_run=dry_run,
            key=key,
        )

    return await run_in_threadpool(submit_csv)


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
