"""Build the device-change FastAPI application around a bootstrapped container."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from device_change.bootstrap import Container
from device_change.entrypoints.api import admin, bulk_changes, callbacks, devices
from device_change.entrypoints.api.errors import install_error_handlers
from device_change.entrypoints.api.schemas import BulkChangeRequest

DESCRIPTION = """
Bulk lifecycle changes of cellular devices on the carrier (Verizon ThingSpace).

Every `/v1` call needs `Authorization: Bearer <JWT>` carrying a tenant and a role
(viewer, operator, admin). Errors are RFC 9457 problem details.
"""


def _service_app(container: Container, *, title: str, description: str = "") -> FastAPI:
    """What every device-change HTTP process has: its wiring, problem details, health."""
    app = FastAPI(title=title, version="1.0.0", description=description)
    app.state.container = container
    app.state.token_service = container.tokens
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(admin.health)
    return app


def create_api(container: Container) -> FastAPI:
    app = _service_app(container, title="Fleetops device-change", description=DESCRIPTION)
    app.include_router(bulk_changes.router)
    app.include_router(devices.router)
    app.include_router(callbacks.router)
    app.include_router(admin.router)
    _document_streamed_bodies(app, [BulkChangeRequest])
    return app


def create_callback_api(container: Container) -> FastAPI:
    """The callback receiver's app: health and the callback route (for problem details)."""
    app = _service_app(container, title="Fleetops device-change: carrier callbacks")
    app.include_router(callbacks.router)
    app.state.ready = True
    return app


def _document_streamed_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the schemas of bodies our routes read as streams (FastAPI never sees them)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in schema.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
