"""`iot-sync` command line: serve, consume, migrate, seed, ARM sync, reconcile, tokens."""

from __future__ import annotations

import typer
import uvicorn

from fleetops_common.process import quieten_garbage_collector
from iot_sync.settings import IotSyncSettings

app = typer.Typer(help="Fleetops iot-sync service", no_args_is_help=True)


@app.command()
def serve(host: str | None = None, port: int | None = None) -> None:
    """Serve the API, consume MQTT and run the relay and jobs in this process."""
    from iot_sync.entrypoints.runtime import build_app

    updates: dict[str, object] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    settings = IotSyncSettings().model_copy(update=updates)
    api = build_app(settings)
    quieten_garbage_collector()  # after start-up, before the load
    uvicorn.run(
        api,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


@app.command()
def consume() -> None:
    """Consume MQTT (and relay the outbox) in a process of its own; the API process then runs
    with IOT_SYNC_MQTT_IN_PROCESS=false. Ingest stats on IOT_SYNC_CONSUME_PORT."""
    from iot_sync.entrypoints.consume import run_consumer

    run_consumer(IotSyncSettings())


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply the database migrations."""
    from iot_sync.adapters.db.migrate import upgrade

    upgrade(IotSyncSettings().database_url, revision)
    typer.echo(f"migrated to {revision}")


@app.command("seed")
def seed_demo() -> None:
    """Seed the demo customers (in good standing and not), their services and personnel."""
    from iot_sync.adapters.db.engine import make_engine
    from iot_sync.adapters.db.seed import seed

    engine = make_engine(IotSyncSettings().database_url)
    seed(engine)
    engine.dispose()
    typer.echo("seeded")


@app.command("sync-arm")
def sync_arm() -> None:
    """Pull stations and batteries from ARM into iot-sync's tables."""
    from iot_sync.bootstrap import bootstrap

    report = bootstrap(IotSyncSettings()).inventory_sync.run()
    typer.echo(f"stations {report.stations}, batteries {report.assets_seen}, "
               f"changed {report.assets_changed}")  # fmt: skip


@app.command()
def reconcile() -> None:
    """Compare iot-sync's battery states with ARM's and print the drift."""
    from iot_sync.bootstrap import bootstrap

    report = bootstrap(IotSyncSettings()).reconciliation.run()
    for d in report.drifts:
        typer.echo(f"{d.asset_id}\t{d.kind}\tours={d.ours}\tarm={d.arm}")
    typer.echo(f"checked {report.checked}, drift {len(report.drifts)}")


@app.command()
def token(tenant: str = "demo", role: str = "operator", subject: str | None = None) -> None:
    """Print a bearer token for TENANT with ROLE (viewer, operator, admin)."""
    from fleetops_common.auth import TokenService

    s = IotSyncSettings()
    tokens = TokenService(s.jwt_secret, issuer=s.jwt_issuer, audience=s.jwt_audience)
    typer.echo(tokens.mint(tenant=tenant, role=role, subject=subject))
