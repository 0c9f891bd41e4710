from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arm_sim import SimConfig, create_app
from fleetops_devstack.servers import ServerThread

SMALL = SimConfig(stations=5, slots_per_station=4, batteries=14, seed=7)
WHEN = "2025-06-01T10:00:00Z"


class Arm:
    """A client of the simulator over real HTTP: the ARM API with a token, and the controls."""

    def __init__(self, url: str, config: SimConfig) -> None:
        self.url = url
        self.config = config
        self.token = self.fetch_token()
        self.http = httpx.Client(
            base_url=f"{url}/arm/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        self.sim = httpx.Client(base_url=f"{url}/_sim", timeout=10)

    def fetch_token(self) -> str:
        r = httpx.post(
            f"{self.url}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
            },
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def configure(self, **faults: Any) -> None:
        self.sim.put("/config", json=faults).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.sim.get("/stats").json())

    def asset(self, asset_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/assets/{asset_id}").json())

    def move(self, asset_id: str, **body: Any) -> httpx.Response:
        body.setdefault("occurred_at", WHEN)
        return self.http.post(f"/assets/{asset_id}/movements", json=body)

    def first_asset(self, state: str) -> dict[str, Any]:
        page = self.http.get("/assets", params={"state": state, "limit": 1}).json()
        return dict(page["items"][0])

    def free_slot(self) -> tuple[str, int]:
        for station in self.all_pages("/stations"):
            detail = self.http.get(f"/stations/{station['station_id']}").json()
            for slot in detail["slots"]:
                if slot["asset_id"] is None:
                    return detail["station_id"], slot["slot"]
        raise AssertionError("no free slot in the seeded inventory")

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self.http.get(path, params=query).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    def close(self) -> None:
        self.http.close()
        self.sim.close()


def start(config: SimConfig) -> ServerThread:
    return ServerThread(create_app(config))


@pytest.fixture
def arm() -> Iterator[Arm]:
    with start(SMALL) as server:
        client = Arm(server.url, SMALL)
        yield client
        client.close()
