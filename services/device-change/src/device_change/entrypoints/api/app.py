"""Build the device-change FastAPI application around a bootstrapped container."""

from __future__ import annotations

from fastapi import FastAPI

from device_change.bootstrap import Container
from device_change.entrypoints.api import admin, bulk_changes, callbacks, devices
from device_change.entrypoints.api.errors import install_error_handlers

DESCRIPTION = """
Bulk lifecycle changes of cellular devices on the carrier (Verizon ThingSpace).

Every `/v1` call needs `Authorization: Bearer <JWT>` carrying a tenant and a role
(viewer, operator, admin). Errors are RFC 9457 problem details.
"""


def create_api(container: Container) -> FastAPI:
    app = FastAPI(title="Fleetops device-change", version="1.0.0", description=DESCRIPTION)
    app.state.container = container
    app.state.token_service = container.tokens
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(admin.health)
    app.include_router(bulk_changes.router)
    app.include_router(devices.router)
    app.include_router(callbacks.router)
    app.include_router(admin.router)
    return app
