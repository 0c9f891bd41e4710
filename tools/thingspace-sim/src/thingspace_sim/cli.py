"""`thingspace-sim serve`: run the simulator."""

from __future__ import annotations

import typer
import uvicorn

from fleetops_common.process import quieten_garbage_collector
from thingspace_sim.app import create_app
from thingspace_sim.config import SimConfig

app = typer.Typer(help="ThingSpace simulator", no_args_is_help=True)


@app.command()
def serve(host: str | None = None, port: int | None = None, fleet_size: int | None = None) -> None:
    updates: dict[str, object] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    if fleet_size:
        updates["fleet_size"] = fleet_size
    config = SimConfig().model_copy(update=updates)
    api = create_app(config)
    quieten_garbage_collector()  # after start-up, before the load
    uvicorn.run(
        api,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def version() -> None:
    typer.echo("thingspace-sim 0.1.0")


if __name__ == "__main__":
    app()
