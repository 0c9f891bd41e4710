"""The signal log, and HTTP ingestion for sources that cannot speak MQTT."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from fleetops_common.problems import PROBLEM_RESPONSES, InvalidParam, Problem
from iot_sync.app.ports import SignalResult
from iot_sync.app.signals import MalformedSignal, Signal
from iot_sync.entrypoints.api.deps import Operator, Services, Viewer
from iot_sync.entrypoints.api.schemas import (
    SignalBatchIn,
    SignalBatchOut,
    SignalOutcomeOut,
    SignalPage,
    SignalRecordOut,
)

router = APIRouter(prefix="/v1/signals", tags=["signals"], responses=PROBLEM_RESPONSES)

# Malformed input is a rejection too (issue 3: "a logged, counted rejection"), so
# `?result=rejected` lists it beside what the validators refused; `?result=malformed`
# lists only the malformed.
REJECTIONS = (SignalResult.REJECTED, SignalResult.MALFORMED)


@router.get(
    "",
    response_model=SignalPage,
    summary="The signal log, newest first",
    description="`result=rejected` lists every rejection: refused by a validator "
    "(`result` rejected) and malformed input (`result` malformed), each with its reason.",
)
def list_signals(
    _: Viewer,
    c: Services,
    result: SignalResult | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> SignalPage:
    results = REJECTIONS if result is SignalResult.REJECTED else (result,) if result else None
    with c.uow_factory() as uow:
        page = uow.signal_log.page(results=results, limit=limit, cursor=cursor)
    return SignalPage(
        items=[SignalRecordOut.of(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    response_model=SignalBatchOut,
    summary="Ingest signals over HTTP: the same topics and envelope as over MQTT",
    description="All or nothing on form: if any item is malformed, the malformed ones are "
    "logged and answered on the error topic, nothing else is applied, and the answer is a "
    "422 problem naming each bad item. Otherwise the batch is applied in one transaction "
    "and each item's outcome (accepted, duplicate, rejected with reason, held) is returned. "
    "Station replies and personnel echoes go out on MQTT as usual.",
)
def ingest(body: SignalBatchIn, _: Operator, c: Services) -> SignalBatchOut:
    decoded: list[Signal | MalformedSignal] = [
        c.codec.decode(item.topic, json.dumps(item.envelope).encode()) for item in body.items
    ]
    malformed = [(i, d) for i, d in enumerate(decoded) if isinstance(d, MalformedSignal)]
    if malformed:
        c.handle_batch([d for _, d in malformed])
        raise Problem(
            status=422,
            title="Signal is malformed",
            detail=f"{malformed[0][1].reason}: {malformed[0][1].detail}",
            type_="malformed-signal",
            invalid_params=[
                InvalidParam(name=f"body.items[{i}].envelope", reason=f"{d.reason}: {d.detail}")
                for i, d in malformed
            ],
        )
    report = c.handle_batch(decoded)
    return SignalBatchOut(
        items=[
            SignalOutcomeOut(
                message_id=o.message_id,
                result=o.result.value,
                reason_code=o.reason_code,
                reason=o.reason,
            )
            for o in report.outcomes
        ],
        transitions=report.transitions,
    )
