"""`device-change` command line: serve the API, run a worker, migrate, sync, mint tokens."""

from __future__ import annotations

import typer
import uvicorn
from starlette.types import ASGIApp

from device_change.settings import DeviceChangeSettings
from fleetops_common.process import quieten_garbage_collector, tune_memory_allocator

app = typer.Typer(help="Fleetops device-change service", no_args_is_help=True)


@app.command()
def serve(
    host: str | None = None, port: int | None = None, workers_in_process: bool | None = None
) -> None:
    """Serve the API (and, on the embedded default, the queue workers in the same process)."""
    from device_change.entrypoints.runtime import build_app

    updates: dict[str, object] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    if workers_in_process is not None:
        updates["in_process_workers"] = workers_in_process
    tune_memory_allocator()  # before any thread starts
    settings = DeviceChangeSettings().model_copy(update=updates)
    _serve(build_app(settings), settings.host, settings.port)


@app.command("receive-callbacks")
def receive_callbacks(port: int | None = None) -> None:
    """Take the carrier's callbacks in a process of their own (`serve` starts it when
    CALLBACK_RECEIVER_PORT is set; run it yourself to scale callbacks separately)."""
    from device_change.entrypoints.receiver import (
        build_callback_receiver,
        exit_with_parent,
        settings_from_parent,
    )

    tune_memory_allocator()  # before any thread starts
    settings = settings_from_parent()
    if port:
        settings = settings.model_copy(update={"callback_receiver_port": port})
    if not settings.callback_receiver_port:
        raise typer.BadParameter("give --port or DEVICE_CHANGE_CALLBACK_RECEIVER_PORT")
    receiver = build_callback_receiver(settings)
    exit_with_parent()
    _serve(receiver, settings.host, settings.callback_receiver_port)


def _serve(asgi: ASGIApp, host: str, port: int) -> None:
    quieten_garbage_collector()  # after start-up, before the load
    uvicorn.run(asgi, host=host, port=port, log_config=None, access_log=False)


@app.command()
def worker() -> None:
    """Consume the device-change queues (run as many as you like)."""
    from device_change.entrypoints.runtime import run_worker

    run_worker()


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply the database migrations."""
    from device_change.adapters.db.migrate import upgrade

    upgrade(DeviceChangeSettings().database_url, revision)
    typer.echo(f"migrated to {revision}")


@app.command()
def token(tenant: str = "demo", role: str = "operator", subject: str | None = None) -> None:
    """Print a bearer token for TENANT with ROLE (viewer, operator, admin)."""
    from fleetops_common.auth import TokenService

    s = DeviceChangeSettings()
    tokens = TokenService(s.jwt_secret, issuer=s.jwt_issuer, audience=s.jwt_audience)
    typer.echo(tokens.mint(tenant=tenant, role=role, subject=subject))


if __name__ == "__main__":
    app()
