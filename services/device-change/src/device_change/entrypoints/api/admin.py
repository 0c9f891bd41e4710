"""Operations: health, readiness, dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from device_change.app.errors import NotFound
from device_change.entrypoints.api.bulk_changes import Services
from device_change.entrypoints.api.schemas import DeadLetterOut
from fleetops_common.auth import Principal, Role, require_role
from fleetops_common.problems import PROBLEM_RESPONSES

health = APIRouter(tags=["health"])
router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=PROBLEM_RESPONSES)
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]


@health.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", summary="Ready: migrations applied and the demo fleet synced")
def readyz(request: Request) -> JSONResponse:
    ready = bool(getattr(request.app.state, "ready", False))
    return JSONResponse(
        {"status": "ready" if ready else "starting"}, status_code=200 if ready else 503
    )


@router.get("/dead-letters", response_model=list[DeadLetterOut], summary="Messages given up on")
def list_dead_letters(
    _: Admin, c: Services, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeadLetterOut]:
    return [DeadLetterOut(**row) for row in c.delivery_log.list_dead_letters(limit)]


@router.post(
    "/dead-letters/{dead_letter_id}/replay",
    response_model=DeadLetterOut,
    summary="Send a dead-lettered message again",
)
def replay_dead_letter(dead_letter_id: int, _: Admin, c: Services) -> DeadLetterOut:
    row = c.replay_dead_letter(dead_letter_id)
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return DeadLetterOut(**row)
