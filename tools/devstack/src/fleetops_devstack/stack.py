"""The process sets of `fleetops run` (embedded) and `fleetops run-stack` (real servers)."""

from __future__ import annotations

import os

from fleetops_devstack.processes import VAR, Process

SIM_PORT = int(os.environ.get("THINGSPACE_SIM_PORT", "8101"))
API_PORT = int(os.environ.get("DEVICE_CHANGE_PORT", "8001"))
STACK_DATABASE_URL = os.environ.get(
    "FLEETOPS_STACK_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/fleetops"
)
STACK_BROKER_URL = os.environ.get("FLEETOPS_STACK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


def simulator(
    fleet_size: int, port: int = SIM_PORT, extra: dict[str, str] | None = None
) -> Process:
    return Process(
        "thingspace-sim",
        ["-m", "thingspace_sim.cli", "serve", "--port", str(port), "--fleet-size", str(fleet_size)],
        env={"THINGSPACE_SIM_PORT": str(port), **(extra or {})},
    )


def device_change_env(*, port: int = API_PORT, sim_port: int = SIM_PORT) -> dict[str, str]:
    return {
        "DEVICE_CHANGE_PORT": str(port),
        "DEVICE_CHANGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DEVICE_CHANGE_THINGSPACE__BASE_URL": f"http://127.0.0.1:{sim_port}/api/m2m",
        "DEVICE_CHANGE_THINGSPACE__OAUTH_URL": f"http://127.0.0.1:{sim_port}/api/ts/v1/oauth2/token",
    }


def embedded_processes(*, fleet_size: int, fresh: bool) -> list[Process]:
    VAR.mkdir(exist_ok=True)
    db = VAR / "device-change.db"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            (VAR / f"device-change.db{suffix}").unlink(missing_ok=True)
    env = {
        **device_change_env(),
        "DEVICE_CHANGE_DATABASE_URL": f"sqlite:///{db}",
        "DEVICE_CHANGE_BROKER_URL": "stub://",
        "DEVICE_CHANGE_IN_PROCESS_WORKERS": "true",
    }
    return [
        simulator(fleet_size),
        Process("device-change", ["-m", "device_change.entrypoints.cli", "serve"], env=env),
    ]


def ensure_postgres_database(url: str) -> None:
    """Create the stack's database if it does not exist yet."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def stack_processes(*, fleet_size: int, workers: int) -> list[Process]:
    ensure_postgres_database(STACK_DATABASE_URL)
    env = {
        **device_change_env(),
        "DEVICE_CHANGE_DATABASE_URL": STACK_DATABASE_URL,
        "DEVICE_CHANGE_BROKER_URL": STACK_BROKER_URL,
        "DEVICE_CHANGE_IN_PROCESS_WORKERS": "false",
    }
    procs = [
        simulator(fleet_size),
        Process("device-change", ["-m", "device_change.entrypoints.cli", "serve"], env=env),
    ]
    procs += [
        Process(
            f"device-change-worker-{n}", ["-m", "device_change.entrypoints.cli", "worker"], env=env
        )
        for n in range(1, workers + 1)
    ]
    return procs
