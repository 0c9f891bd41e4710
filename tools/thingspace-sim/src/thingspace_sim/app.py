"""The ThingSpace Connectivity Management API, simulated: same paths, payloads, auth, errors."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from thingspace_sim.config import Faults, SimConfig
from thingspace_sim.delivery import CallbackDelivery
from thingspace_sim.fleet import PLANS, SimDevice
from thingspace_sim.state import PREFIX, SimState

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACTIONS = {"activate", "suspend", "restore", "deactivate"}


def error(code: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"errorCode": f"{PREFIX}.{code}", "errorMessage": message}, status)


def fault(code: str, message: str, status: int = 401) -> JSONResponse:
    return JSONResponse(
        {"fault": {"code": code, "message": message, "description": message}}, status
    )


def create_app(config: SimConfig | None = None) -> FastAPI:
    config = config or SimConfig()
    state = SimState(config)
    delivery = CallbackDelivery(state)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await delivery.start()
        yield
        await delivery.stop()

    app = FastAPI(title="ThingSpace simulator", lifespan=lifespan)
    app.state.sim = state

    # ---- gateway: auth, throttling, faults on every /api/m2m call ------------------------

    @app.middleware("http")
    async def gateway(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/api/m2m/"):
            return await call_next(request)
        bearer = request.headers.get("authorization", "")
        if not bearer.lower().startswith("bearer "):
            return fault("900902", "Missing Credentials")
        if bearer[7:] != state.access_token or time.monotonic() > state.access_expires:
            return fault("900901", "Invalid Credentials")
        if not path.endswith("/session/login"):
            token = request.headers.get("vz-m2m-token")
            if not token:
                return error("REQUEST_FAILED.SessionToken.Format", "Session token missing")
            if not GUID.match(token) or token not in state.sessions:
                return error("INPUT_INVALID.SessionToken.Invalid", "Session token invalid")
            if time.monotonic() - state.sessions[token] > config.session_idle_timeout_s:
                return error("REQUEST_FAILED.SessionToken.Expired", "Session token expired")
            state.sessions[token] = time.monotonic()
        f = state.faults
        state.stats.requests += 1
        if not state.bucket.take(f.rate_limit_per_s):
            state.stats.throttled += 1
            return JSONResponse(
                {
                    "fault": {
                        "code": "900800",
                        "message": "Message throttled out",
                        "description": "You have exceeded your quota",
                    }
                },
                429,
                headers={"Retry-After": "1"},
            )
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if state.rng.random() < f.error_rate:
            state.stats.errors_injected += 1
            return error(
                "REQUEST_FAILED.UnexpectedError",
                "Service unavailable, try later",
                state.rng.choice([500, 503]),
            )
        response = await call_next(request)
        if state.rng.random() < f.timeout_rate:
            state.stats.timeouts_injected += 1
            await asyncio.sleep(f.timeout_hold_ms / 1000)  # applied, but the answer is late
        return response

    # ---- OAuth and session -----------------------------------------------------------------

    @app.post("/api/ts/v1/oauth2/token")
    async def oauth_token(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("basic "):
            return fault("900902", "Missing Credentials")
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return fault("900901", "Invalid Credentials")
        ok = config.accept_any_credentials or (
            client_id == config.client_id and secret == config.client_secret
        )
        if not ok:
            return fault("900901", "Invalid Credentials")
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "grant_type must be client_credentials",
                },
                400,
            )
        if state.access_token is None or time.monotonic() > state.access_expires:
            state.access_token = secrets.token_hex(16)
            state.access_expires = time.monotonic() + config.token_lifetime_s
        return JSONResponse(
            {
                "access_token": state.access_token,
                "token_type": "bearer",
                "expires_in": int(state.access_expires - time.monotonic()),
                "scope": "default",
            }
        )

    @app.post("/api/m2m/v1/session/login")
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        if state.failed_logins >= 5:
            return error("REQUEST_FAILED.UserLocked", "The user is locked; contact support")
        ok = config.accept_any_credentials or (
            body.get("username") == config.username and body.get("password") == config.password
        )
        if not ok:
            state.failed_logins += 1
            return error("INPUT_INVALID.Login.Invalid", "Invalid username or password")
        state.failed_logins = 0
        token = str(uuid.uuid4())
        state.sessions = {token: time.monotonic()}  # a newer login replaces the older one
        return JSONResponse({"sessionToken": token})

    @app.post("/api/m2m/v1/session/logout")
    async def logout(request: Request) -> JSONResponse:
        token = request.headers.get("vz-m2m-token", "")
        state.sessions.pop(token, None)
        return JSONResponse({"sessionToken": token})

    # ---- devices -------------------------------------------------------------------------

    @app.post("/api/m2m/v1/devices/actions/list")
    async def list_devices(request: Request) -> JSONResponse:
        body = await request.json() if await request.body() else {}
        account = body.get("accountName")
        single = body.get("deviceId")
        wanted_state = str(body.get("currentState") or "").lower()
        wanted_plan = body.get("servicePlan")
        value = str(single.get("id")) if single else None

        def matches(d: SimDevice) -> bool:
            return (
                (not account or d.account == account)
                and (value is None or value in (d.iccid, d.imei, d.msisdn))
                and (not wanted_state or d.state == wanted_state)
                and (not wanted_plan or d.plan == wanted_plan)
            )

        size = min(
            int(body.get("maxNumberOfDevices") or config.max_list_page_size),
            config.max_list_page_size,
        )
        found = state.device_by_id(value) if value is not None else None
        if found is not None:
            candidates: Iterable[SimDevice] = [found]
        else:
            candidates = state.devices_after(str(body.get("largestDeviceIdSeen") or ""))
        page: list[SimDevice] = []
        more = False
        for device in candidates:
            if not matches(device):
                continue
            if len(page) == size:
                more = True
                break
            page.append(device)
        answer = {"hasMoreData": more, "devices": [state.device_json(d) for d in page]}
        if page:
            answer[config.last_seen_field] = page[-1].iccid
        return JSONResponse(answer, 202 if more and config.status_202_on_more_data else 200)

    async def _action(request: Request, action: str, entries_key: str = "devices") -> JSONResponse:
        body = await request.json()
        entries = body.get(entries_key)
        if entries and (body.get("groupName")):
            return error(
                "INPUT_INVALID.RequestUndefined", "Give devices or accountName/groupName, not both"
            )
        if not entries:
            return error("INPUT_INVALID.RequestUndefined", "devices is required")
        if len(entries) > state.faults.max_devices_per_request:
            return error(
                "INPUT_INVALID.NumberofDevices",
                f"At most {state.faults.max_devices_per_request} devices per request",
            )
        if action == "deactivate" and body.get("reasonCode") != "FF":
            return error("INPUT_INVALID.ReasonCode.Invalid", "reasonCode must be FF")
        if action == "activate" and not (body.get("servicePlan") and body.get("mdnZipCode")):
            return error("INPUT_INVALID.RequestUndefined", "servicePlan and mdnZipCode required")
        request_record = state.open_request(action, body, entries)
        delivery.schedule(request_record)
        return JSONResponse({"requestId": request_record.id})

    def _route_for(action: str) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def route(request: Request) -> JSONResponse:
            return await _action(request, action)

        return route

    for name in sorted(ACTIONS):
        app.add_api_route(
            f"/api/m2m/v1/devices/actions/{name}", _route_for(name), methods=["POST"], name=name
        )

    @app.put("/api/m2m/v1/devices/actions/plan")
    async def change_plan(request: Request) -> JSONResponse:
        return await _action(request, "plan")

    async def _change_id(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("change4gOption") not in (
            "ChangeICCID",
            "ChangeIMEI",
            "ChangeIMEIandICCID",
            "ChangeMSISDN",
            "3Gto4G",
            "4Gto3G",
            "ChangeIMEIandEID",
        ):
            return error("INPUT_INVALID.RequestUndefined", "unknown change4gOption")
        record = state.open_request("deviceId", body, [{"deviceIds": body.get("deviceIds")}])
        delivery.schedule(record)
        return JSONResponse({"requestId": record.id})

    app.add_api_route(
        "/api/m2m/v1/devices/{service_type}/actions/deviceId", _change_id, methods=["PUT"]
    )
    app.add_api_route("/api/m2m/v1/devices/actions/deviceid", _change_id, methods=["PUT"])

    @app.post("/api/m2m/v1/devices/actions/add")
    async def add_devices(request: Request) -> JSONResponse:
        body = await request.json()
        out = []
        for entry in body.get("devicesToAdd") or []:
            ids = {
                str(i.get("kind", "")).lower(): str(i.get("id"))
                for i in entry.get("deviceIds") or []
            }
            iccid = ids.get("iccid")
            if not iccid or iccid in state.devices:
                out.append(
                    {
                        "deviceIds": entry.get("deviceIds"),
                        "response": "Error. Device already exists.",
                    }
                )
                continue
            state.add_device(
                SimDevice(
                    iccid=iccid,
                    imei=ids.get("imei", ""),
                    msisdn=None,
                    state="pre-active",
                    plan=PLANS[0]["code"],
                    account=body.get("accountName") or config.account_name,
                    created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
            )
            out.append({"deviceIds": entry.get("deviceIds"), "response": "Success"})
        return JSONResponse(out)

    @app.get("/api/m2m/v1/plans/{account}")
    async def plans(account: str) -> JSONResponse:
        return JSONResponse(list(state.plans.values()))

    @app.get("/api/m2m/v1/accounts/{account}/requests/{request_id}/status")
    async def request_status_v1(account: str, request_id: str) -> JSONResponse:
        req = state.requests.get(request_id)
        if req is None:
            return error("REQUEST_FAILED.RequestNotFound", "request not found")
        statuses = {o.status for o in req.outcomes}
        status = (
            "Pending"
            if "Pending" in statuses
            else ("Failed" if "Failed" in statuses else "Success")
        )
        return JSONResponse({"requestId": request_id, "status": status})

    @app.get("/api/m2m/v2/accounts/{account}/requests/{request_id}/status")
    async def request_status_v2(account: str, request_id: str) -> JSONResponse:
        req = state.requests.get(request_id)
        if req is None:
            return error("REQUEST_FAILED.RequestNotFound", "request not found")
        subs = [
            {"ids": [{"id": o.iccid, "kind": "iccid"}], "status": o.status} for o in req.outcomes
        ]
        statuses = {o.status for o in req.outcomes}
        status = (
            "Pending"
            if "Pending" in statuses
            else ("Failed" if "Failed" in statuses else "Success")
        )
        return JSONResponse({"requestId": request_id, "status": status, "subRequests": subs})

    @app.post("/api/m2m/v1/callbacks/{account}")
    async def register_callback(account: str, request: Request) -> JSONResponse:
        body = await request.json()
        if not body.get("name") or not body.get("url"):
            return error("INPUT_INVALID.RequestUndefined", "name and url are required")
        state.callbacks[(account, body["name"])] = {
            "url": body["url"],
            "username": body.get("username") or "",
            "password": body.get("password") or "",
        }
        return JSONResponse({"accountName": account, "serviceName": body["name"]})

    @app.get("/api/m2m/v1/callbacks/{account}")
    async def list_callbacks(account: str) -> JSONResponse:
        return JSONResponse(
            [
                {"accountName": a, "serviceName": n, **v}
                for (a, n), v in state.callbacks.items()
                if a == account
            ]
        )

    @app.delete("/api/m2m/v1/callbacks/{account}/name/{service}")
    async def deregister(account: str, service: str) -> JSONResponse:
        state.callbacks.pop((account, service), None)
        return JSONResponse({"accountName": account, "serviceName": service})

    @app.api_route("/api/m2m/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def unknown(rest: str) -> JSONResponse:
        return fault("900906", "No matching resource found for given API Request", 400)

    # ---- simulator control (not part of ThingSpace) ----------------------------------------

    @app.get("/_sim/config")
    async def get_config() -> dict[str, Any]:
        return state.faults.model_dump()

    @app.put("/_sim/config")
    async def put_config(changes: dict[str, Any]) -> Any:
        merged = {**state.faults.model_dump(), **changes}
        try:
            state.faults = Faults.model_validate(merged)
        except ValueError as exc:
            return JSONResponse({"title": "invalid config", "detail": str(exc)}, 422)
        return state.faults.model_dump()

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        return state.stats.as_dict()

    @app.post("/_sim/reset-stats")
    async def reset_stats() -> dict[str, Any]:
        from thingspace_sim.state import Stats

        state.stats = Stats()
        return state.stats.as_dict()

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.get("/_sim/devices/{iccid}")
    async def sim_device(iccid: str) -> JSONResponse:
        d = state.devices.get(iccid)
        if d is None:
            return JSONResponse({"detail": "unknown device"}, 404)
        return JSONResponse(
            {
                **state.device_json(d),
                "appliedChanges": d.applied_changes,
                "pendingRequest": d.pending_request,
            }
        )

    return app
