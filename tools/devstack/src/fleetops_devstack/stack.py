"""The process sets of `fleetops run` (embedded) and `fleetops run-stack` (real servers)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from fleetops_devstack.processes import VAR, Process

SIM_PORT = int(os.environ.get("THINGSPACE_SIM_PORT", "8101"))
API_PORT = int(os.environ.get("DEVICE_CHANGE_PORT", "8001"))
# the embedded default's callback receiver (`device-change receive-callbacks`)
CALLBACK_RECEIVER_PORT = int(os.environ.get("DEVICE_CHANGE_CALLBACK_RECEIVER_PORT", "8011"))
STACK_DATABASE_URL = os.environ.get(
    "FLEETOPS_STACK_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/fleetops"
)
STACK_BROKER_URL = os.environ.get("FLEETOPS_STACK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")

# iot-sync and its partners (issue 3): all configurable, these are the contract's defaults
IOT_PORT = int(os.environ.get("IOT_SYNC_PORT", "8002"))
IOT_CONSUME_PORT = int(os.environ.get("IOT_SYNC_CONSUME_PORT", "8012"))  # its ingest stats
ARM_SIM_PORT = int(os.environ.get("ARM_SIM_PORT", "8103"))
EMBEDDED_MQTT_PORT = int(os.environ.get("FLEETOPS_EMBEDDED_MQTT_PORT", "1884"))
STACK_MQTT_HOST = os.environ.get("FLEETOPS_STACK_MQTT_HOST", "127.0.0.1")
STACK_MQTT_PORT = int(os.environ.get("FLEETOPS_STACK_MQTT_PORT", "1883"))
STACK_IOT_DATABASE_URL = os.environ.get(
    "FLEETOPS_STACK_IOT_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/fleetops_iot"
)
# `python -m` needs a __main__ guard iot-sync's cli does not have; its console script does this
IOT_SYNC_CLI = ["-c", "from iot_sync.entrypoints.cli import app; app()"]


@dataclass(frozen=True)
class IotPorts:
    """Where the iot part of a process set listens."""

    api: int = IOT_PORT
    arm_sim: int = ARM_SIM_PORT
    mqtt_host: str = "127.0.0.1"
    mqtt: int = EMBEDDED_MQTT_PORT


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


def embedded_broker(port: int = EMBEDDED_MQTT_PORT, *, name: str = "mqtt-broker") -> Process:
    """amqtt (MQTT 3.1.1 only) in a process of its own, so it never shares iot-sync's GIL."""
    return Process(
        name,
        ["-m", "fleetops_devstack.mqtt_broker", str(port)],
        ready_mqtt=("127.0.0.1", port),
    )


# What a broker in front of iot-sync needs (see services/iot-sync/docs/topics.md): no cap on
# a session's queue (Mosquitto's default 1,000 drops QoS 1 messages once iot-sync falls
# behind), and an in-flight window as large as iot-sync's Receive Maximum.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence {persistence}
persistence_location {directory}/
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 1000
max_inflight_bytes 0
log_dest file {directory}/mosquitto.log
log_type error
log_type warning
"""


def private_mosquitto(
    port: int, directory: Path, *, name: str = "mosquitto", persistence: bool = False
) -> Process:
    """A Mosquitto of our own on `port`, configured as production needs (not the defaults)."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "mosquitto.conf"
    conf.write_text(
        MOSQUITTO_CONF.format(
            port=port, directory=directory, persistence="true" if persistence else "false"
        )
    )
    return Process(
        name,
        ["-c", str(conf)],
        program=shutil.which("mosquitto") or "mosquitto",
        ready_mqtt=("127.0.0.1", port),
    )


def arm_simulator(
    port: int = ARM_SIM_PORT, *, name: str = "arm-sim", extra: dict[str, str] | None = None
) -> Process:
    return Process(
        name,
        ["-m", "arm_sim.cli", "serve", "--port", str(port)],
        env={"ARM_SIM_PORT": str(port), **(extra or {})},
        ready_url=f"http://127.0.0.1:{port}/_sim/config",
    )


def iot_sync_env(
    *, ports: IotPorts, database_url: str, protocol: str, topic_prefix: str = ""
) -> dict[str, str]:
    return {
        "IOT_SYNC_PORT": str(ports.api),
        "IOT_SYNC_DATABASE_URL": database_url,
        "IOT_SYNC_ARM__BASE_URL": f"http://127.0.0.1:{ports.arm_sim}",
        "IOT_SYNC_MQTT__HOST": ports.mqtt_host,
        "IOT_SYNC_MQTT__PORT": str(ports.mqtt),
        "IOT_SYNC_MQTT__PROTOCOL": protocol,
        "IOT_SYNC_MQTT__TOPIC_PREFIX": topic_prefix,
        "IOT_SYNC_SEED_DEMO_DATA": "true",
        "IOT_SYNC_SYNC_ARM_ON_START": "true",
    }


def iot_sync(env: dict[str, str], *, port: int, name: str = "iot-sync") -> Process:
    """Started once the broker and ARM answer: its warm-up pulls ARM and connects MQTT once."""
    return _iot_sync_command("serve", env, ready_port=port, name=name)


def _iot_sync_command(command: str, env: dict[str, str], *, ready_port: int, name: str) -> Process:
    return Process(
        name,
        [*IOT_SYNC_CLI, command],
        env=env,
        ready_url=f"http://127.0.0.1:{ready_port}/readyz",
        after_previous=True,
    )


def split_consumer_env(env: dict[str, str], *, consume_port: int) -> dict[str, str]:
    """The API process (with the relay) without the consumer; `iot_sync_consumer` runs it."""
    return {
        **env,
        "IOT_SYNC_MQTT_IN_PROCESS": "false",
        "IOT_SYNC_CONSUME_PORT": str(consume_port),
    }


def iot_sync_consumer(
    env: dict[str, str], *, consume_port: int, name: str = "iot-sync-consumer"
) -> Process:
    """`iot-sync consume`, once the API process has migrated, seeded and pulled ARM."""
    return _iot_sync_command("consume", env, ready_port=consume_port, name=name)


def remove_sqlite(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-turn"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def embedded_iot_processes(
    *, ports: IotPorts | None = None, fresh: bool = True, db: Path | None = None, prefix: str = ""
) -> list[Process]:
    """The iot part of `make run`: amqtt, the ARM simulator, iot-sync on SQLite (3.1.1)."""
    ports = ports or IotPorts()
    VAR.mkdir(exist_ok=True)
    db = db or VAR / "iot-sync.db"
    if fresh:
        remove_sqlite(db)
    env = iot_sync_env(ports=ports, database_url=f"sqlite:///{db}", protocol="3.1.1")
    return [
        embedded_broker(ports.mqtt, name=f"{prefix}mqtt-broker"),
        arm_simulator(ports.arm_sim, name=f"{prefix}arm-sim"),
        iot_sync(env, port=ports.api, name=f"{prefix}iot-sync"),
    ]


def embedded_processes(*, fleet_size: int, fresh: bool) -> list[Process]:
    VAR.mkdir(exist_ok=True)
    db = VAR / "device-change.db"
    if fresh:
        remove_sqlite(db)
    env = {
        **device_change_env(),
        "DEVICE_CHANGE_DATABASE_URL": f"sqlite:///{db}",
        "DEVICE_CHANGE_BROKER_URL": "stub://",
        "DEVICE_CHANGE_IN_PROCESS_WORKERS": "true",
        "DEVICE_CHANGE_CALLBACK_RECEIVER_PORT": str(CALLBACK_RECEIVER_PORT),
    }
    return [
        simulator(fleet_size),
        Process("device-change", ["-m", "device_change.entrypoints.cli", "serve"], env=env),
        *embedded_iot_processes(fresh=fresh),
    ]


def ensure_postgres_database(url: str) -> None:
    """Create the stack's database if it does not exist yet."""
    from fleetops_devstack.databases import create_database

    create_database(url, make_url(url).database or "", if_missing=True)


def stack_iot_processes(*, protocol: str = "5") -> list[Process]:
    """iot-sync against PostgreSQL and Mosquitto (1883, v5) plus the ARM simulator; the MQTT
    consumer in a process of its own (`iot-sync consume`), the relay in the API process."""
    ensure_postgres_database(STACK_IOT_DATABASE_URL)
    ports = IotPorts(mqtt_host=STACK_MQTT_HOST, mqtt=STACK_MQTT_PORT)
    env = split_consumer_env(
        iot_sync_env(ports=ports, database_url=STACK_IOT_DATABASE_URL, protocol=protocol),
        consume_port=IOT_CONSUME_PORT,
    )
    return [
        arm_simulator(ports.arm_sim),
        iot_sync(env, port=ports.api),
        iot_sync_consumer(env, consume_port=IOT_CONSUME_PORT),
    ]


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
    return procs + stack_iot_processes()
