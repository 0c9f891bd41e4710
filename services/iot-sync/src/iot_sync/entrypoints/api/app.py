"""Build the iot-sync FastAPI application around a bootstrapped container."""

from __future__ import annotations

from fastapi import FastAPI

from iot_sync.bootstrap import Container
from iot_sync.entrypoints.api import admin, assets, people, services, signals
from iot_sync.entrypoints.api.errors import install_error_handlers

DESCRIPTION = """
The hub between battery-swap stations, batteries, field personnel, BSS and ARM.

Every `/v1` call needs `Authorization: Bearer <JWT>` (the same tokens as device-change;
viewer reads, operator ingests signals and applies service inputs, admin syncs ARM).
Errors are RFC 9457 problem details.
"""


def create_api(container: Container) -> FastAPI:
    app = FastAPI(title="Fleetops iot-sync", version="1.0.0", description=DESCRIPTION)
    app.state.container = container
    app.state.token_service = container.tokens
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(admin.health)
    app.include_router(services.router)
    app.include_router(assets.router)
    app.include_router(signals.router)
    app.include_router(people.router)
    app.include_router(admin.router)
    return app
