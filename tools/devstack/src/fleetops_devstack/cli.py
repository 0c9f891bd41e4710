"""`fleetops`: run the platform locally, mint tokens, run the benchmarks."""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from fleetops_devstack.processes import VAR, Process, start_in_order, stop_all, wait_until_ok
from fleetops_devstack.stack import (
    API_PORT,
    ARM_SIM_PORT,
    CALLBACK_RECEIVER_PORT,
    EMBEDDED_MQTT_PORT,
    IOT_CONSUME_PORT,
    IOT_PORT,
    SIM_PORT,
    STACK_MQTT_HOST,
    STACK_MQTT_PORT,
    embedded_processes,
    stack_processes,
)

app = typer.Typer(help="Fleetops developer commands", no_args_is_help=True)
console = Console()


def mint(tenant: str, role: str) -> str:
    from device_change.settings import DeviceChangeSettings
    from fleetops_common.auth import TokenService

    s = DeviceChangeSettings()
    return TokenService(s.jwt_secret, issuer=s.jwt_issuer, audience=s.jwt_audience).mint(
        tenant=tenant, role=role
    )


@app.command()
def token(
    tenant: Annotated[str, typer.Option()] = "demo",
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "operator",
) -> None:
    """Print only a bearer token for TENANT and ROLE."""
    print(mint(tenant, role))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything, as Ctrl-C does


def _serve(
    processes: list[Process], title: str, *, mqtt: str, consumer: str = "", receiver: str = ""
) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        start_in_order(processes)
        wait_until_ok(f"http://127.0.0.1:{SIM_PORT}/_sim/config", timeout_s=60, watch=processes)
        wait_until_ok(f"http://127.0.0.1:{API_PORT}/readyz", timeout_s=180, watch=processes)
        console.print(
            Panel.fit(
                f"[bold]{title}[/bold] is ready\n\n"
                f"device-change API   http://127.0.0.1:{API_PORT}   (docs: /docs, /openapi.json)\n"
                f"{receiver}"
                f"ThingSpace sim      http://127.0.0.1:{SIM_PORT}   (control: /_sim/config)\n"
                f"iot-sync API        http://127.0.0.1:{IOT_PORT}   (docs: /docs, /v1/stations)\n"
                f"{consumer}"
                f"ARM sim             http://127.0.0.1:{ARM_SIM_PORT}   (control: /_sim/config)\n"
                f"MQTT broker         {mqtt}\n"
                f"logs                {VAR}/\n\n"
                f"operator token for tenant demo:\n{mint('demo', 'operator')}\n\n"
                'try:  curl -H "Authorization: Bearer $TOKEN" '
                f"'http://127.0.0.1:{API_PORT}/v1/devices?limit=5'\n"
                "Ctrl-C stops everything.",
                title="Fleetops",
            )
        )
        while all(p.alive() for p in processes):
            time.sleep(0.5)
        dead = [p.name for p in processes if not p.alive()]
        console.print(f"[red]stopped: {', '.join(dead)} exited[/red]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stop_all(processes)


@app.command()
def run(
    fleet_size: Annotated[int, typer.Option(help="devices the simulator seeds")] = 2000,
    fresh: Annotated[bool, typer.Option(help="start from an empty database")] = True,
) -> None:
    """The embedded default: SQLite, in-process broker and workers, the ThingSpace simulator;
    iot-sync with the embedded MQTT broker (amqtt) and the ARM simulator."""
    _serve(
        embedded_processes(fleet_size=fleet_size, fresh=fresh),
        "Fleetops (embedded)",
        mqtt=f"mqtt://127.0.0.1:{EMBEDDED_MQTT_PORT}   (amqtt, MQTT 3.1.1, any user name)",
        receiver=f"callback receiver   http://127.0.0.1:{CALLBACK_RECEIVER_PORT}   "
        "(carrier callbacks, a child of the API)\n",
    )


@app.command("run-stack")
def run_stack(
    fleet_size: Annotated[int, typer.Option()] = 2000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 2,
) -> None:
    """Each process separately, against PostgreSQL and RabbitMQ (settings only); iot-sync
    against PostgreSQL and Mosquitto (MQTT 5) with the ARM simulator."""
    _serve(
        stack_processes(fleet_size=fleet_size, workers=workers),
        "Fleetops (stack)",
        mqtt=f"mqtt://{STACK_MQTT_HOST}:{STACK_MQTT_PORT}   (Mosquitto, MQTT 5)",
        consumer=f"iot-sync consumer   http://127.0.0.1:{IOT_CONSUME_PORT}   (/ingest-stats)\n",
    )


@app.command()
def bench(
    profile: Annotated[str, typer.Argument(help="carrier, platform (device-change) or iot")],
    devices: Annotated[int | None, typer.Option(help="override the device count")] = None,
    rate: Annotated[float, typer.Option(help="iot: signals/s offered")] = 5000.0,
    duration: Annotated[float, typer.Option(help="iot: measured seconds")] = 30.0,
    warmup: Annotated[float, typer.Option(help="iot: seconds of load before measuring")] = 5.0,
    protocol: Annotated[
        str | None, typer.Option(help="iot: MQTT 5 or 3.1.1 [5 on Mosquitto, 3.1.1 on amqtt]")
    ] = None,
    broker_host: Annotated[str, typer.Option(help="iot: MQTT broker host")] = "127.0.0.1",
    broker_port: Annotated[
        int | None, typer.Option(help="iot: an existing broker [default: our own, free port]")
    ] = None,
    stack: Annotated[
        bool | None,
        typer.Option(
            "--stack/--embedded",
            help="iot: PostgreSQL + Mosquitto, or SQLite + amqtt [--stack when CI=true]; "
            "carrier, platform: device-change on PostgreSQL, or SQLite [SQLite]",
        ),
    ] = None,
    publishers: Annotated[int, typer.Option(help="iot: telemetry publisher processes")] = 2,
    swap_rate: Annotated[float, typer.Option(help="iot: swaps started per second")] = 25.0,
    setting: Annotated[
        list[str] | None, typer.Option(help="iot: extra iot-sync setting NAME=VALUE")
    ] = None,
) -> None:
    """Run a benchmark profile; prints its figures on one line at the end."""
    if profile == "iot":
        from fleetops_devstack.bench_iot import IotBenchOptions, run_iot

        options = IotBenchOptions(
            rate=rate,
            duration_s=duration,
            warmup_s=warmup,
            protocol=protocol,
            broker_host=broker_host,
            broker_port=broker_port,
            stack=stack,
            publishers=publishers,
            swap_rate=swap_rate,
            env=dict(s.split("=", 1) for s in setting or []),
        )
        print(run_iot(options, console=console))
        return
    from fleetops_devstack.bench import run_profile

    run_profile(profile, devices=devices, console=console, stack=bool(stack))
