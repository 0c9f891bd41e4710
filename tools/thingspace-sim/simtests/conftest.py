from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from fleetops_devstack.servers import ServerThread
from thingspace_sim import SimConfig, create_app

ACCOUNT = "0000123456-00001"


class Receiver:
    """A callback listener: stores every callback it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post("/callbacks")
        async def receive(request: Request) -> dict[str, str]:
            body = await request.json()
            with self.lock:
                self.bodies.append(body)
            return {"ok": "yes"}


@pytest.fixture
def sim() -> Iterator[ServerThread]:
    with ServerThread(create_app(SimConfig(fleet_size=200))) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, ServerThread]]:
    r = Receiver()
    with ServerThread(r.app) as server:
        yield r, server


def session(base: str) -> httpx.Client:
    """An httpx client holding a token and a session, as a ThingSpace client would."""
    token = httpx.post(
        f"{base}/api/ts/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("fleetops-sim-client", "fleetops-sim-secret"),
    ).json()["access_token"]
    session_token = httpx.post(
        f"{base}/api/m2m/v1/session/login",
        json={"username": "fleetops", "password": "fleetops-sim-password"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["sessionToken"]
    return httpx.Client(
        base_url=f"{base}/api/m2m",
        headers={"Authorization": f"Bearer {token}", "VZ-M2M-Token": session_token},
        timeout=30,
    )
