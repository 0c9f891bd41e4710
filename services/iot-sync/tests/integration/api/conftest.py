"""The API through FastAPI's TestClient, over a migrated database, with fakes at the edges.

The database is SQLite built by the migrations (the API's own behaviour does not depend on
the dialect; the repositories are tested on both in `integration/db`). ARM, the MQTT
publisher and the webhook are in-memory fakes handed to `bootstrap`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from iot_sync.adapters.db.migrate import upgrade
from iot_sync.adapters.db.seed import seed
from iot_sync.app.arm import ArmAsset, ArmStation
from iot_sync.bootstrap import Container, bootstrap
from iot_sync.entrypoints.api.app import create_api
from iot_sync.settings import IotSyncSettings

from .fakes import FakeArm, FakeFieldPublisher, FakeNotifier

STATIONS = [
    ArmStation("ST-0001", "Westlands", "region-1", "site-1", -1.26, 36.80, 6, True),
    ArmStation("ST-0002", "Kilimani", "region-2", "site-2", -1.29, 36.78, 4, True),
]
ASSETS = [
    ArmAsset("BAT-000001", "STANDARD", "AVAILABLE", "ST-0001", 1, None, 100.0, 1),
    ArmAsset("BAT-000002", "STANDARD", "AVAILABLE", "ST-0001", 2, None, 97.0, 1),
    ArmAsset("BAT-000003", "HIGH_CAPACITY", "AVAILABLE", "ST-0001", 3, None, 99.0, 1),
    ArmAsset("BAT-000004", "STANDARD", "CHARGING", "ST-0002", 1, None, 30.0, 1),
]


@dataclass
class Api:
    client: TestClient
    container: Container
    arm: FakeArm
    publisher: FakeFieldPublisher

    def token(self, role: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.container.tokens.mint(tenant='demo', role=role)}"}


@pytest.fixture
def api(tmp_path) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path / 'iot-sync.db'}"
    upgrade(url)
    settings = IotSyncSettings(database_url=url, hold_for_s=30)
    arm, publisher = FakeArm(STATIONS, ASSETS), FakeFieldPublisher()
    container = bootstrap(settings, publisher=publisher, arm=arm, notifier=FakeNotifier())
    seed(container.engine)
    container.inventory_sync.run()
    app = create_api(container)
    with TestClient(app) as client:
        yield Api(client, container, arm, publisher)
    container.engine.dispose()
