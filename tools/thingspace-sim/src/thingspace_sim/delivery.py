"""Deliver callbacks: one per device, delayed, maybe lost, duplicated or reordered, retried."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from thingspace_sim.state import RESPONSE_KEY, DeviceOutcome, SimRequest, SimState


def envelope(
    state: SimState, request: SimRequest, outcome: DeviceOutcome, creds: dict[str, str], count: int
) -> dict[str, Any]:
    device = outcome.device
    ids = [{"id": outcome.iccid, "kind": "Iccid"}]
    if device.imei:
        ids.append({"id": device.imei, "kind": "Imei"})
    body: dict[str, Any] = {
        "username": creds.get("username", ""),
        "password": creds.get("password", ""),
        "requestId": request.id,
        "deviceIds": ids,
        "status": outcome.status,
        "callbackCount": count,
        "maxCallbackThreshold": 4,
    }
    if outcome.ok:
        inner: dict[str, Any] = {"deviceIds": [{"id": device.iccid, "kind": "iccid"}]}
        if device.msisdn:
            inner["deviceIds"].append({"id": device.msisdn, "kind": "msisdn"})
        if request.action == "deviceId":
            inner["servicePlan"] = device.plan
        body["deviceResponse"] = {RESPONSE_KEY[request.action]: inner}
    else:
        assert outcome.fault is not None
        body["faultResponse"] = {"faultcode": outcome.fault.code, "faultstring": outcome.fault.text}
    return body


class CallbackDelivery:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], int]] = asyncio.Queue()
        self.workers: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # aiohttp rather than httpx for the one hot client path of the simulator: at
        # thousands of callbacks a second httpx's per-request cost was most of its CPU.
        concurrency = self.state.config.callback_concurrency
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self.workers = [asyncio.create_task(self._work(self.session)) for _ in range(concurrency)]

    async def stop(self) -> None:
        for w in self.workers:
            w.cancel()
        if self.session is not None:
            await self.session.close()

    def schedule(self, request: SimRequest) -> None:
        """At each device's due time: settle it at the carrier, then maybe call back."""
        f = self.state.faults
        loop = asyncio.get_running_loop()
        outcomes = list(request.outcomes)
        if f.callback_reorder:
            self.state.rng.shuffle(outcomes)
        base = f.callback_delay_ms / 1000
        for i, outcome in enumerate(outcomes):
            jitter = self.state.rng.uniform(0, f.callback_jitter_ms / 1000)
            order_nudge = 0 if f.callback_reorder else i * 1e-6
            loop.call_later(base + jitter + order_nudge, self._due, request, outcome)

    def _due(self, request: SimRequest, outcome: DeviceOutcome) -> None:
        self.state.settle(request, outcome)
        creds = self.state.callbacks.get(
            (outcome.device.account or request_account(self.state), "CarrierService")
        )
        if not creds:
            return
        f = self.state.faults
        if self.state.rng.random() < f.callback_loss_rate:
            self.state.stats.callbacks_lost += 1
            return
        copies = 2 if self.state.rng.random() < f.callback_duplicate_rate else 1
        if copies == 2:
            self.state.stats.callbacks_duplicated += 1
        for _ in range(copies):
            self.queue.put_nowait(
                (creds["url"], envelope(self.state, request, outcome, creds, 1), 1)
            )

    async def _work(self, session: aiohttp.ClientSession) -> None:
        while True:
            url, body, count = await self.queue.get()
            started = time.perf_counter()
            try:
                async with session.post(url, json=body) as r:
                    await r.read()
                    ok = 200 <= r.status < 300
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            stats = self.state.stats
            if ok:
                now = time.monotonic()
                stats.callbacks_sent += 1
                stats.first_callback_at = stats.first_callback_at or now
                stats.last_callback_at = now
                if len(stats.callback_latencies_ms) < 500_000:
                    stats.callback_latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                stats.callbacks_failed += 1
                if count < 4:  # maxCallbackThreshold: redeliver later
                    body = {**body, "callbackCount": count + 1}
                    asyncio.get_running_loop().call_later(
                        self.state.faults.callback_retry_delay_ms / 1000,
                        self.queue.put_nowait,
                        (url, body, count + 1),
                    )


def request_account(state: SimState) -> str:
    return state.config.account_name
