"""Process assembly: the iot-sync process (API, MQTT consumer, relay, jobs)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI

from fleetops_common.logging import configure_logging
from fleetops_common.telemetry import (
    instrument_fastapi,
    instrument_httpx,
    instrument_sqlalchemy,
    setup_tracing,
)
from iot_sync.adapters.db.migrate import upgrade
from iot_sync.adapters.db.seed import seed
from iot_sync.bootstrap import BackgroundWork, Container, bootstrap
from iot_sync.entrypoints.api.app import create_api
from iot_sync.settings import IotSyncSettings

SERVICE = "iot-sync"
log = structlog.get_logger(SERVICE)


def prepare(settings: IotSyncSettings, **collaborators: Any) -> Container:
    """Logging, tracing, migrations, seed, wiring: what every iot-sync process does first."""
    configure_logging(level=settings.log_level, json=settings.log_json, service=SERVICE)
    setup_tracing(SERVICE, exporter=settings.tracing_exporter)
    instrument_httpx()
    upgrade(settings.database_url)
    container = bootstrap(settings, **collaborators)
    if settings.seed_demo_data:
        seed(container.engine)
    instrument_sqlalchemy(container.engine)
    return container


def warm_up(container: Container, app: FastAPI, stack: list[Any]) -> None:
    """Pull ARM's inventory, connect MQTT, then report ready."""
    s = container.settings
    try:
        if s.sync_arm_on_start:
            report = container.inventory_sync.run()
            log.info("arm inventory pulled", stations=report.stations, assets=report.assets_seen)
        start = getattr(container.publisher, "start", None)
        if s.relay_in_process and callable(start):  # only the relay publishes
            start()
            stack.append(container.publisher)
        if s.mqtt_in_process:
            from iot_sync.adapters.mqtt.consumer import MqttSignalConsumer

            consumer = MqttSignalConsumer(s.mqtt, container.consume)
            consumer.start()
            stack.append(consumer)
        app.state.ready = True
        log.info("ready")
    except Exception:
        log.exception("warm-up failed; /readyz stays 503")


def build_app(settings: IotSyncSettings | None = None, **collaborators: Any) -> FastAPI:
    settings = settings or IotSyncSettings()
    container = prepare(settings, **collaborators)
    background = BackgroundWork(container, relay=settings.relay_in_process)
    started: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background.start()
        threading.Thread(target=warm_up, args=(container, app, started), daemon=True).start()
        yield
        for part in reversed(started):
            for name in ("stop", "close"):
                stop = getattr(part, name, None)
                if callable(stop):
                    stop()
                    break
        background.stop()
        container.engine.dispose()

    app = create_api(container)
    app.router.lifespan_context = lifespan
    instrument_fastapi(app)
    return app
