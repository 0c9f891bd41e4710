"""Where ThingSpace posts its asynchronous answers: one callback per device."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from opentelemetry import trace

from device_change.adapters.thingspace.callbacks import (
    MalformedCallback,
    callback_credentials,
    parse_carrier_callback,
)
from device_change.app.ports import CarrierDeviceOutcome
from device_change.bootstrap import Container
from device_change.entrypoints.api.bulk_changes import Services
from device_change.entrypoints.api.schemas import CallbackAck
from fleetops_common.problems import PROBLEM_RESPONSES, InvalidParam, Problem
from fleetops_common.telemetry import link_from

router = APIRouter(prefix="/v1/callbacks", tags=["carrier callbacks"], responses=PROBLEM_RESPONSES)
_tracer = trace.get_tracer("device_change.callbacks")


@router.post(
    "/thingspace",
    response_model=CallbackAck,
    summary="ThingSpace CarrierService callback (acknowledged once stored)",
    description=(
        "ThingSpace authenticates only by echoing the username and password given at callback "
        "registration inside the body; a mismatch is refused with 401 so the carrier retries "
        "later. Duplicates are acknowledged and ignored."
    ),
)
async def thingspace_callback(body: Annotated[dict[str, Any], Body()], c: Services) -> CallbackAck:
    # Async on purpose: the hottest endpoint waits for its group commit on the event loop
    # instead of holding a thread of the pool per callback.
    username, password = callback_credentials(body)
    expected = c.settings.callback_username, c.settings.callback_password
    if not (
        hmac.compare_digest(username.encode(), expected[0].encode())
        and hmac.compare_digest(password.encode(), expected[1].encode())
    ):
        raise Problem(status=401, title="Callback credentials do not match", type_="bad-callback")
    try:
        outcomes = parse_carrier_callback(body)
    except MalformedCallback as exc:
        raise Problem(
            status=422,
            title="Callback is not valid",
            detail=str(exc),
            type_="validation-error",
            invalid_params=[InvalidParam(name="body", reason=str(exc))],
        ) from exc
    request_id = outcomes[0].request_id if outcomes else None
    links = []
    if request_id:
        # the database only on a cache miss, and then off the event loop
        traceparent = c.cached_traceparent(request_id) or await run_in_threadpool(
            c.request_traceparent, request_id
        )
        link = link_from(traceparent)
        if link is not None:
            links.append(link)
    with _tracer.start_as_current_span(
        "thingspace callback", links=links, attributes={"thingspace.request_id": request_id or ""}
    ):
        accepted = await _stored(c, outcomes)
    return CallbackAck(accepted=accepted, duplicates=len(outcomes) - accepted)


async def _stored(c: Container, outcomes: list[CarrierDeviceOutcome]) -> int:
    """Hand the outcomes to the intake's writer and wait, without a thread, for the commit."""
    loop = asyncio.get_running_loop()
    stored: asyncio.Future[int] = loop.create_future()

    def settle(new: int, error: BaseException | None) -> None:
        if not stored.done():
            if error is None:
                stored.set_result(new)
            else:
                stored.set_exception(error)

    def from_writer(new: int, error: BaseException | None) -> None:
        loop.call_soon_threadsafe(settle, new, error)

    c.callback_intake.submit(outcomes, from_writer)
    return await asyncio.wait_for(stored, timeout=30)
