"""`arm-sim serve`: run the ARM simulator."""

from __future__ import annotations

import typer
import uvicorn
from pydantic import ValidationError

from arm_sim.app import create_app
from arm_sim.config import SimConfig

app = typer.Typer(help="ARM asset-inventory simulator", no_args_is_help=True)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="interface to listen on [default: 127.0.0.1]"),
    port: int | None = typer.Option(None, help="port [default: 8103]"),
    stations: int | None = typer.Option(None, help="stations to seed [default: 20]"),
    slots_per_station: int | None = typer.Option(None, help="slots per station [default: 8]"),
    batteries: int | None = typer.Option(None, help="batteries to seed [default: 120]"),
    seed: int | None = typer.Option(None, help="seed of the inventory and the faults [7]"),
) -> None:
    """Serve the ARM API; options override ARM_SIM_* environment variables."""
    given = {
        "host": host,
        "port": port,
        "stations": stations,
        "slots_per_station": slots_per_station,
        "batteries": batteries,
        "seed": seed,
    }
    try:
        config = SimConfig(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        typer.echo(f"arm-sim: bad settings: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def version() -> None:
    typer.echo("arm-sim 0.1.0")


if __name__ == "__main__":
    app()
