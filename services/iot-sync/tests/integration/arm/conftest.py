"""The real ARM simulator over HTTP (uvicorn in a thread, free port) and a gateway onto it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arm_sim import SimConfig, create_app
from fleetops_devstack.servers import ServerThread
from iot_sync.adapters.arm.gateway import HttpArmGateway
from iot_sync.adapters.arm.settings import ArmSettings

SIM = SimConfig(stations=6, slots_per_station=4, batteries=16, seed=11)


class Sim:
    """The simulator's control calls (not part of ARM)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.control = httpx.Client(base_url=f"{url}/_sim", timeout=10)

    def configure(self, **faults: Any) -> None:
        self.control.put("/config", json=faults).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.control.get("/stats").json())

    def reset_stats(self) -> None:
        self.control.post("/reset-stats").raise_for_status()

    def expire_tokens(self) -> None:
        self.control.post("/expire-tokens").raise_for_status()


class RecordingSleep:
    """Sleeps for real (Retry-After must really pass) and remembers each wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def sim() -> Iterator[Sim]:
    with ServerThread(create_app(SIM)) as server:
        s = Sim(server.url)
        yield s
        s.control.close()


def settings_for(url: str, **overrides: Any) -> ArmSettings:
    base = {
        "base_url": url,
        "client_id": SIM.client_id,
        "client_secret": SIM.client_secret,
        "read_timeout_s": 0.5,
        "connect_timeout_s": 0.5,
        "page_size": 5,
        "max_attempts": 4,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    return ArmSettings(**{**base, **overrides})


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def gateway(sim: Sim, sleeps: RecordingSleep) -> Iterator[HttpArmGateway]:
    with HttpArmGateway(settings_for(sim.url), sleep=sleeps) as gw:
        yield gw
