"""Process assembly: the API process (optionally with in-process workers) and worker processes."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dramatiq
import structlog
from fastapi import FastAPI

from device_change.adapters.db.migrate import upgrade
from device_change.bootstrap import Container, Housekeeper, bootstrap
from device_change.entrypoints.api.app import create_api
from device_change.entrypoints.api.callbacks import CarrierCallbackLane
from device_change.entrypoints.receiver import ChildCallbackReceiver
from device_change.settings import DeviceChangeSettings
from fleetops_common.logging import configure_logging
from fleetops_common.process import quieten_garbage_collector, tune_memory_allocator
from fleetops_common.telemetry import (
    instrument_fastapi,
    instrument_httpx,
    instrument_sqlalchemy,
    setup_tracing,
)

SERVICE = "device-change"
log = structlog.get_logger(SERVICE)


def prepare(settings: DeviceChangeSettings) -> Container:
    """Logging, tracing, migrations, wiring: what every device-change process does first."""
    configure_logging(level=settings.log_level, json=settings.log_json, service=SERVICE)
    setup_tracing(SERVICE, exporter=settings.tracing_exporter)
    instrument_httpx()
    upgrade(settings.database_url)
    container = bootstrap(settings)
    instrument_sqlalchemy(container.engine)
    return container


def warm_up(
    container: Container, app: FastAPI, receiver: ChildCallbackReceiver | None = None
) -> None:
    """Register the callback URL and sync the configured tenants, then report ready."""
    s = container.settings
    try:
        if receiver is not None:
            receiver.wait_ready()  # before the carrier is told to call it
        for tenant in s.sync_tenants_on_start:
            account = container.carriers.for_tenant(tenant)
            if s.register_callback_on_start:
                account.gateway.register_callback(
                    s.registered_callback_url(),
                    username=s.callback_username,
                    password=s.callback_password,
                )
            report = container.inventory_sync.sync(tenant)
            log.info(
                "tenant synced", tenant=tenant, devices=report.devices, rate_plans=report.rate_plans
            )
        app.state.ready = True
        log.info("ready")
    except Exception:
        log.exception("warm-up failed; /readyz stays 503")


def build_app(settings: DeviceChangeSettings | None = None) -> CarrierCallbackLane:
    """The API as an ASGI application: FastAPI behind the carrier callbacks' own lane."""
    settings = settings or DeviceChangeSettings()
    container = prepare(settings)
    worker: dramatiq.Worker | None = None
    keeper = Housekeeper(container)
    receiver = ChildCallbackReceiver(settings) if settings.callback_receiver_port else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal worker
        if settings.in_process_workers:
            worker = dramatiq.Worker(container.broker, worker_threads=settings.worker_threads)
            worker.start()
        keeper.start()
        if receiver is not None:
            receiver.start()  # after the migrations `prepare` ran, so it finds them applied
        threading.Thread(target=warm_up, args=(container, app, receiver), daemon=True).start()
        yield
        if receiver is not None:
            receiver.stop()
        keeper.stop()
        if worker is not None:
            worker.stop()
        container.broker.close()

    app = create_api(container)
    app.router.lifespan_context = lifespan
    instrument_fastapi(app)
    return CarrierCallbackLane(app, container)


def run_worker(settings: DeviceChangeSettings | None = None) -> None:
    """A worker process: consumes the queues until stopped (SIGTERM/SIGINT)."""
    import signal

    tune_memory_allocator()  # before any thread starts
    settings = settings or DeviceChangeSettings()
    container = prepare(settings)
    worker = dramatiq.Worker(container.broker, worker_threads=settings.worker_threads)
    keeper = Housekeeper(container)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    keeper.start()
    quieten_garbage_collector()
    log.info("worker started", threads=settings.worker_threads, broker=settings.broker_url)
    stop.wait()
    keeper.stop()
    worker.stop()
    container.broker.close()
