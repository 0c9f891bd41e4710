"""An in-test platform: the ThingSpace simulator and device-change on real loopback ports."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from device_change.bootstrap import Container
from device_change.entrypoints.runtime import build_app
from device_change.settings import DeviceChangeSettings
from fleetops_common.auth import TokenService
from fleetops_devstack.servers import ServerThread, free_port
from thingspace_sim import create_app as create_sim_app
from thingspace_sim.config import SimConfig

RABBIT = os.environ.get("FLEETOPS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


class Platform:
    def __init__(self, sim: ServerThread, api: ServerThread, settings: DeviceChangeSettings):
        self.sim, self.api, self.settings = sim, api, settings
        self.tokens = TokenService(
            settings.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        self.token = self.tokens.mint(tenant="demo", role="admin")
        self.http = httpx.Client(
            base_url=api.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        )
        self.sim_http = httpx.Client(base_url=sim.url, timeout=30)
        self.container: Container | None = None  # the API process's wiring, to look inside

    def token_for(self, role: str) -> str:
        return self.tokens.mint(tenant="demo", role=role)

    def configure_sim(self, **config: Any) -> None:
        self.sim_http.put("/_sim/config", json=config).raise_for_status()

    def sim_stats(self) -> dict[str, Any]:
        return dict(self.sim_http.get("/_sim/stats").raise_for_status().json())

    def active_iccids(self, count: int) -> list[str]:
        out: list[str] = []
        cursor = None
        while len(out) < count:
            params: dict[str, Any] = {"status": "ACTIVE", "limit": 2000}
            if cursor:
                params["cursor"] = cursor
            page = self.http.get("/v1/devices", params=params).raise_for_status().json()
            out += [d["iccid"] for d in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(out) >= count, f"only {len(out)} ACTIVE devices"
        return out[:count]

    def wait_finished(self, bulk_id: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.http.get(f"/v1/bulk-changes/{bulk_id}").raise_for_status().json()
            if state["finished_at"]:
                return dict(state)
            assert time.monotonic() < deadline, f"not finished in {timeout_s} s: {state}"
            time.sleep(0.2)


def wait_ready(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready")


@contextmanager
def running_platform(
    database_url: str, *, fleet_size: int = 3000, **overrides: Any
) -> Iterator[Platform]:
    sim_port, api_port = free_port(), free_port()
    sim_app = create_sim_app(SimConfig(port=sim_port, fleet_size=fleet_size))
    values: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": "stub://",
        "port": api_port,
        "public_url": f"http://127.0.0.1:{api_port}",
        "log_json": True,
        "log_level": "WARNING",
        "first_poll_after_s": 2.0,
        "reconcile_delay_s": 0.5,
        "retry_base_delay_s": 0.05,
        "carrier_rate_limit_per_s": 0,
        "max_devices_per_request": 100,
        **overrides,
    }
    settings = DeviceChangeSettings(**values)
    settings.thingspace.base_url = f"http://127.0.0.1:{sim_port}/api/m2m"
    settings.thingspace.oauth_url = f"http://127.0.0.1:{sim_port}/api/ts/v1/oauth2/token"
    api_app = build_app(settings)
    with (
        ServerThread(sim_app, port=sim_port) as sim,
        ServerThread(api_app, port=api_port) as api,
    ):
        wait_ready(api.url)
        platform = Platform(sim, api, settings)
        platform.container = api_app.container
        try:
            yield platform
        finally:
            platform.http.close()
            platform.sim_http.close()
