"""The ARM API, simulated (see README.md: the contract), plus the `/_sim/…` control calls."""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from arm_sim.auth import TokenCheck, TokenStore
from arm_sim.config import Faults, SimConfig
from arm_sim.faults import FaultPlan
from arm_sim.inventory import STATES, Inventory, Movement, Page, Refused
from arm_sim.stats import SimStats

API = "/arm/v1"
State = Literal["AVAILABLE", "CHARGING", "ISSUED", "DAMAGED", "LOST", "IN_INSPECTION", "RETIRED"]
assert set(STATES) == set(State.__args__)  # type: ignore[attr-defined]


class MovementBody(BaseModel):
    movement_id: str = Field(min_length=1, max_length=200)
    state: State
    occurred_at: AwareDatetime
    station_id: str | None = None
    slot: int | None = None
    holder: str | None = None
    reason: str | None = Field(default=None, max_length=500)
    expected_version: int | None = None
    charge_pct: float | None = Field(default=None, ge=0, le=100)  # an extension, optional


def error(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status, headers=headers)


def _cursor(kind: str, last_id: str | None) -> str | None:
    if last_id is None:
        return None
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def _after(kind: str, cursor: str | None) -> str | None:
    """The id a cursor points after; Refused(400) if it is not one of ours for `kind`."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    prefix, _, last_id = raw.partition(":")
    if prefix != kind or not last_id:
        raise Refused(400, "INVALID_CURSOR", "cursor is not one this list gave out")
    return last_id


def _page_json(kind: str, page: Page) -> dict[str, Any]:
    return {"items": page.items, "next_cursor": _cursor(kind, page.last_id)}


def create_app(config: SimConfig | None = None) -> FastAPI:
    config = config or SimConfig()
    stats = SimStats()
    inventory = Inventory(config, stats, clock=lambda: datetime.now(UTC))
    tokens = TokenStore(lifetime_s=config.token_lifetime_s)
    faults = FaultPlan(config.faults, seed=config.seed)

    app = FastAPI(title="ARM simulator", version="0.1.0")
    app.state.inventory = inventory
    app.state.stats = stats
    app.state.tokens = tokens
    app.state.faults = faults

    # ---- errors in ARM's shape -------------------------------------------------------

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
            for e in exc.errors()
        ]
        return error(400, "VALIDATION_ERROR", "the request is not valid", {"errors": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return error(exc.status_code, code, str(exc.detail))

    # ---- the gateway in front of /arm/v1: auth, throttling, faults --------------------

    @app.middleware("http")
    async def gateway(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(f"{API}/"):
            return await call_next(request)
        stats.bump("requests")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        check = tokens.check(token.strip()) if scheme.lower() == "bearer" else TokenCheck.UNKNOWN
        if check is not TokenCheck.VALID:
            stats.bump("unauthorized")
            expired = check is TokenCheck.EXPIRED
            return error(
                401,
                "TOKEN_EXPIRED" if expired else "UNAUTHORIZED",
                "the access token has expired" if expired else "a valid bearer token is required",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        retry_after = faults.throttle()
        if retry_after is not None:
            stats.bump("throttled")
            return error(
                429,
                "RATE_LIMITED",
                "too many requests",
                {"retry_after_s": retry_after},
                headers={"Retry-After": str(retry_after)},
            )
        if faults.faults.latency_ms:
            await asyncio.sleep(faults.faults.latency_ms / 1000)
        if faults.inject_error():
            stats.bump("errors_injected")
            return error(503, "UNAVAILABLE", "ARM is unavailable, try again later")
        response = await call_next(request)
        hold = faults.hold_answer()
        if hold is not None:
            # Whatever the call did is done (a movement is applied); only the answer is
            # late, so the client cannot tell and must retry with the same movement_id.
            stats.bump("timeouts_injected")
            await asyncio.sleep(hold)
        return response

    # ---- OAuth2 client credentials ---------------------------------------------------

    @app.post("/oauth2/token")
    async def issue_token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, basic = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(basic.strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            return error(400, "UNSUPPORTED_GRANT_TYPE", "grant_type must be client_credentials")
        known = secrets.compare_digest(client_id, config.client_id) and secrets.compare_digest(
            client_secret, config.client_secret
        )
        if not known:
            return error(401, "INVALID_CLIENT", "unknown client or wrong secret")
        token, lifetime = tokens.issue()
        stats.bump("tokens_issued")
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    # ---- inventory -------------------------------------------------------------------

    @app.get(f"{API}/stations")
    async def list_stations(
        cursor: str | None = None,
        limit: int | None = Query(None, ge=1, le=config.max_page_size),
    ) -> dict[str, Any]:
        page = inventory.list_stations(
            after=_after("stations", cursor), limit=limit or config.default_page_size
        )
        return _page_json("stations", page)

    @app.get(f"{API}/stations/{{station_id}}")
    async def get_station(station_id: str) -> dict[str, Any]:
        return inventory.get_station(station_id)

    @app.get(f"{API}/assets")
    async def list_assets(
        station_id: str | None = None,
        state: State | None = None,
        cursor: str | None = None,
        limit: int | None = Query(None, ge=1, le=config.max_page_size),
    ) -> dict[str, Any]:
        page = inventory.list_assets(
            station_id=station_id,
            state=state,
            after=_after("assets", cursor),
            limit=limit or config.default_page_size,
        )
        return _page_json("assets", page)

    @app.get(f"{API}/assets/{{asset_id}}")
    async def get_asset(asset_id: str) -> dict[str, Any]:
        return inventory.get_asset(asset_id)

    @app.post(f"{API}/assets/{{asset_id}}/movements")
    async def move_asset(asset_id: str, body: MovementBody) -> JSONResponse:
        asset, replayed = inventory.apply_movement(asset_id, Movement(**body.model_dump()))
        headers = {"Idempotent-Replay": "true"} if replayed else {}
        return JSONResponse(asset, 200, headers=headers)

    # ---- simulator control (not ARM) -------------------------------------------------

    @app.get("/_sim/config")
    async def get_config() -> dict[str, Any]:
        return faults.faults.model_dump()

    @app.put("/_sim/config")
    async def put_config(changes: dict[str, Any]) -> JSONResponse:
        unknown = sorted(set(changes) - set(Faults.model_fields))
        if unknown:
            return error(400, "VALIDATION_ERROR", f"unknown settings: {', '.join(unknown)}")
        try:
            updated = Faults.model_validate({**faults.faults.model_dump(), **changes})
        except ValidationError as exc:
            return error(400, "VALIDATION_ERROR", str(exc))
        faults.update(updated)
        return JSONResponse(updated.model_dump())

    @app.get("/_sim/stats")
    async def get_stats() -> dict[str, Any]:
        return stats.as_dict()

    @app.post("/_sim/reset-stats")
    async def reset_stats() -> dict[str, Any]:
        stats.reset()
        return stats.as_dict()

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        inventory.reset()
        faults.reset()
        stats.reset()
        return {"status": "reset"}

    @app.post("/_sim/expire-tokens")
    async def expire_tokens() -> dict[str, int]:
        return {"expired": tokens.expire_all()}

    @app.put("/_sim/stations/{station_id}")
    async def set_station(station_id: str, changes: dict[str, Any]) -> JSONResponse:
        online = changes.get("online")
        if not isinstance(online, bool):
            return error(400, "VALIDATION_ERROR", 'give {"online": true | false}')
        return JSONResponse(inventory.set_online(station_id, online=online))

    return app
