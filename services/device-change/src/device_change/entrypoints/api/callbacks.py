"""Where ThingSpace posts its asynchronous answers: one callback per device.

Callbacks are the hottest path of the service: a bulk change of 100,000 devices brings
100,000 of them within a minute or two. So a well-formed callback takes a lane of its own
(`CarrierCallbackLane`, an ASGI wrapper around the application) that skips routing,
dependency injection, the generic HTTP middleware and a span per request; it waits for the
commit that stores the callback, and the intake traces that commit, linked to the carrier
calls its callbacks answer. The writer's answers come back to the event loop one wake-up
per group, not one per callback. Anything the lane does not recognise as a good callback
(wrong credentials, malformed body, another content type) falls through, with its body
intact, to the FastAPI route below, which gives the documented problem details. Both paths
share the checks and the storing.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import threading
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Body
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from device_change.adapters.thingspace.callbacks import (
    MalformedCallback,
    callback_credentials,
    parse_carrier_callback,
)
from device_change.app.callbacks import StoredCallback
from device_change.app.ports import CarrierDeviceOutcome
from device_change.bootstrap import Container
from device_change.entrypoints.api.bulk_changes import Services
from device_change.entrypoints.api.schemas import CallbackAck
from device_change.settings import CALLBACK_PATH
from fleetops_common.problems import PROBLEM_RESPONSES, InvalidParam, Problem

PATH = CALLBACK_PATH
MAX_CALLBACK_BYTES = 64 * 1024  # one device's callback is well under 2 KiB
STORE_TIMEOUT_S = 30.0

router = APIRouter(prefix="/v1/callbacks", tags=["carrier callbacks"], responses=PROBLEM_RESPONSES)
log = structlog.get_logger("device_change.callbacks")


def credentials_match(c: Container, body: dict[str, Any]) -> bool:
    username, password = callback_credentials(body)
    expected = c.settings.callback_username, c.settings.callback_password
    return hmac.compare_digest(username.encode(), expected[0].encode()) and hmac.compare_digest(
        password.encode(), expected[1].encode()
    )


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
    if not credentials_match(c, body):
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
    return await store_callback(c, outcomes)


async def store_callback(c: Container, outcomes: list[CarrierDeviceOutcome]) -> CallbackAck:
    accepted = await _stored(c, outcomes)
    return CallbackAck(accepted=accepted, duplicates=len(outcomes) - accepted)


async def _stored(c: Container, outcomes: list[CarrierDeviceOutcome]) -> int:
    """Hand the outcomes to the intake's writer and wait, without a thread, for the commit."""
    loop = asyncio.get_running_loop()
    stored: asyncio.Future[int] = loop.create_future()
    c.callback_intake.submit(outcomes, _WriterAnswers.of(loop).deliver_to(stored))
    return await stored


class _WriterAnswers:
    """Carries the intake writer's answers to the event loop, one wake-up per batch, and
    gives up on those not answered within `timeout_s`.

    The writer answers a whole group at once; `call_soon_threadsafe` per callback would
    write to the loop's wake-up pipe a thousand times for a group of a thousand. The
    deadlines are kept in arrival order and checked by one timer (once a second), where a timeout
    per request (`asyncio.timeout`) cost a seventh of the lane's time."""

    _current: tuple[asyncio.AbstractEventLoop, _WriterAnswers] | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float = STORE_TIMEOUT_S):
        self._loop = loop
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._waiting: list[tuple[asyncio.Future[int], int, BaseException | None]] = []
        self._deadlines: collections.deque[tuple[float, asyncio.Future[int]]] = collections.deque()
        self._watching = False
        self._check_every_s = min(1.0, timeout_s)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _WriterAnswers:
        current = cls._current
        if current is None or current[0] is not loop:
            current = cls._current = (loop, cls(loop))
        return current[1]

    def deliver_to(self, future: asyncio.Future[int]) -> StoredCallback:
        """The writer's `on_stored` for `future`; call on the event loop."""
        self._deadlines.append((self._loop.time() + self._timeout_s, future))
        if not self._watching:
            self._watching = True
            self._loop.call_later(self._check_every_s, self._give_up_on_overdue)

        def answer(new: int, error: BaseException | None) -> None:  # on the writer's thread
            with self._lock:
                self._waiting.append((future, new, error))
                wake = len(self._waiting) == 1
            if wake:
                self._loop.call_soon_threadsafe(self._hand_out)

        return answer

    def _give_up_on_overdue(self) -> None:
        now, deadlines = self._loop.time(), self._deadlines
        while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
            _, future = deadlines.popleft()
            if not future.done():
                future.set_exception(TimeoutError("callback not stored in time"))
        self._watching = bool(deadlines)
        if self._watching:
            self._loop.call_later(self._check_every_s, self._give_up_on_overdue)

    def _hand_out(self) -> None:
        with self._lock:
            answers, self._waiting = self._waiting, []
        for future, new, error in answers:
            if future.done():  # its caller was given up on, or went away
                continue
            if error is None:
                future.set_result(new)
            else:
                future.set_exception(error)


class CarrierCallbackLane:
    """ASGI wrapper: good ThingSpace callbacks straight to the intake, the rest to `app`."""

    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw, complete = await _read_body(receive)
        outcomes = self._good_callback(scope, raw) if complete else None
        if outcomes is None:
            await self.app(scope, _replay(raw, receive, complete), send)
            return
        try:
            accepted = await _stored(self.container, outcomes)
        except Exception as exc:  # not stored: the carrier must send it again
            log.exception("callback not stored", request_id=outcomes[0].request_id)
            refusal = Problem(
                status=503,
                title="Callback not stored; send it again",
                detail=f"{type(exc).__name__}: {exc}",
                type_="callback-not-stored",
                headers={"Retry-After": "5"},
            )
            await refusal.to_response(instance=PATH)(scope, receive, send)
            return
        payload = b'{"accepted":%d,"duplicates":%d}' % (accepted, len(outcomes) - accepted)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _good_callback(self, scope: Scope, raw: bytes) -> list[CarrierDeviceOutcome] | None:
        if not _is_json(scope):
            return None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:  # a ValueError: the app's route explains it
            return None
        if not isinstance(body, dict) or not credentials_match(self.container, body):
            return None
        try:
            return parse_carrier_callback(body)
        except MalformedCallback:
            return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";")[0].strip() == b"application/json")
    return False


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, or what arrived before it grew past MAX_CALLBACK_BYTES (incomplete)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_CALLBACK_BYTES:
            return b"".join(chunks), False


def _replay(raw: bytes, receive: Receive, complete: bool) -> Receive:
    """A `receive` that first hands back the body the lane already read."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": not complete}
        return await receive()

    return replay
