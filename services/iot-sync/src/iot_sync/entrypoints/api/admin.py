"""Operations: health, readiness, ARM sync and reconciliation, recorded settlements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fleetops_common.problems import PROBLEM_RESPONSES
from iot_sync.entrypoints.api.deps import Admin, Services, Viewer
from iot_sync.entrypoints.api.schemas import (
    DriftOut,
    ReconciliationOut,
    SettlementOut,
    SettlementPage,
    SyncOut,
)

health = APIRouter(tags=["health"])
router = APIRouter(prefix="/v1", tags=["operations"], responses=PROBLEM_RESPONSES)


@health.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", summary="Ready: migrated, seeded and the ARM inventory pulled")
def readyz(request: Request) -> JSONResponse:
    ready = bool(getattr(request.app.state, "ready", False))
    return JSONResponse(
        {"status": "ready" if ready else "starting"}, status_code=200 if ready else 503
    )


@router.post("/admin/arm-sync", response_model=SyncOut, summary="Pull ARM's inventory now")
def arm_sync(_: Admin, c: Services) -> SyncOut:
    report = c.inventory_sync.run()
    return SyncOut(
        stations=report.stations,
        assets_seen=report.assets_seen,
        assets_changed=report.assets_changed,
    )


@router.post(
    "/admin/reconcile",
    response_model=ReconciliationOut,
    summary="Compare our battery states with ARM's and report the drift",
)
def reconcile(_: Admin, c: Services) -> ReconciliationOut:
    report = c.reconciliation.run()
    return ReconciliationOut(
        checked=report.checked,
        in_step=report.in_step,
        drifts=[
            DriftOut(asset_id=d.asset_id, kind=d.kind, ours=d.ours, arm=d.arm)
            for d in report.drifts
        ],
    )


@router.get(
    "/settlements",
    response_model=SettlementPage,
    summary="Loss charges started (recorded locally until billing-adapter takes them)",
)
def settlements(
    _: Viewer,
    c: Services,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SettlementPage:
    rows = c.settlements.recorded(customer_id=customer_id, limit=limit)
    return SettlementPage(items=[SettlementOut(**row) for row in rows])


@router.get(
    "/admin/ingest-stats",
    summary="What the MQTT consumer committed, with a histogram of publish-to-commit latency",
    description="Counters since the process started. `latency_ms_histogram` maps whole "
    "milliseconds from the envelope's `ts` to the batch's commit onto signal counts; "
    "subtract two snapshots for a window. Empty when the consumer runs in another process.",
)
def ingest_stats(_: Viewer, c: Services) -> dict[str, object]:
    return c.ingest.snapshot()
