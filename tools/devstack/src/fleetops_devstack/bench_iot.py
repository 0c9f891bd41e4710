"""`fleetops bench iot`: iot-sync under a sustained, realistic MQTT load; one line of figures.

Set-up (everything on free ports, a fresh database, a topic prefix of its own):
- the broker: under CI=true (or `--stack`) a private Mosquitto (protocol 5) on a free port,
  configured as production needs it (`max_queued_messages 0`, in-flight 1,000: see
  `stack.private_mosquitto`), and PostgreSQL; else the embedded amqtt (MQTT 3.1.1) in its
  own process, and SQLite; `--broker-port` uses an existing broker instead;
- the ARM simulator with 200 stations and 1,200 batteries; iot-sync with 1,000 extra
  customers in good standing: on the stack `iot-sync serve` (API, relay, jobs) plus
  `iot-sync consume` (consumer); embedded one `iot-sync serve` doing it all.

Load, in processes of their own (so the publishers do not share iot-sync's GIL): telemetry
processes offering `rate` signals/s in all (batteries' bms and gps readings, station
telemetry and heartbeats, ~1 % personnel `asset_scan`), and one swap driver (customers
calling `authorize`, then `dispense_confirm` with the battery granted, ~`swap_rate`/s).

Figures, over the measured window (after `warmup_s`):
- signals/s committed, transitions/s: the counters of what iot-sync's MQTT handler
  committed (two snapshots, subtracted): `GET /ingest-stats` on the stats port of
  `iot-sync consume` on the stack (the consumer's own process, as in `make run-stack`),
  `GET /v1/admin/ingest-stats` of the one iot-sync process embedded;
- p50/p99 publish→commit: per signal, the batch's commit time minus the envelope's `ts`,
  which the publisher sets the moment it publishes (same machine, same clock); so it holds
  the broker, the consumer's queue and batching, the processing and the commit;
- swap round trip p50/p99 as the station sees it (authorize → answer, dispense → answer:
  commit plus the outbox relay's publish);
- peak RSS of iot-sync, CPU of iot-sync, of the publishers and of the broker (% of one core);
- integrity after the load has drained: every published message id in the signal log once
  (`lost`, `doubled`), and per customer the swaps the station saw accepted against the
  service's `swaps_used`, its battery and the BATTERY_ISSUED transitions in its history.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from sqlalchemy.engine import make_url

from fleetops_devstack.databases import create_database, drop_database, under_ci
from fleetops_devstack.processes import VAR, Process, start_in_order, stop_all
from fleetops_devstack.servers import free_port
from fleetops_devstack.stack import (
    IotPorts,
    arm_simulator,
    embedded_broker,
    iot_sync,
    iot_sync_consumer,
    iot_sync_env,
    private_mosquitto,
    remove_sqlite,
    split_consumer_env,
)

BENCH_DATABASE_URL = os.environ.get(
    "FLEETOPS_BENCH_IOT_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/fleetops_iot_bench",
)
STATIONS, SLOTS, BATTERIES = 200, 8, 1200
CUSTOMERS = 1000


@dataclass
class IotBenchOptions:
    rate: float = 5000.0
    duration_s: float = 30.0
    warmup_s: float = 5.0
    protocol: str | None = None  # default: 5 on Mosquitto, 3.1.1 on amqtt
    broker_host: str = "127.0.0.1"
    broker_port: int | None = None  # default: a broker of our own on a free port
    stack: bool | None = None  # default: CI=true
    publishers: int = 2
    swap_rate: float = 25.0  # swaps started per second (2 station calls each)
    env: dict[str, str] = field(default_factory=dict)  # extra IOT_SYNC_* settings


@dataclass
class Sampler:
    """Peak RSS and CPU seconds of the processes under test, sampled every 200 ms."""

    pids: dict[str, int]
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def cpu_now(self) -> dict[str, float]:
        out = {}
        for name, proc in self._procs.items():
            try:
                t = proc.cpu_times()
                out[name] = t.user + t.system
            except psutil.Error:
                out[name] = self.cpu.get(name, 0.0)
        out["postgres"] = _postgres_cpu_s()
        self.cpu.update(out)
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for name, proc in self._procs.items():
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _postgres_cpu_s() -> float:
    """CPU seconds of the machine's PostgreSQL processes (server and backends) that are alive:
    the database's share of the two cores, which iot-sync's own figure leaves out."""
    used = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            used += t.user + t.system
    return used


def _token() -> str:
    from fleetops_common.auth import TokenService
    from iot_sync.settings import IotSyncSettings

    s = IotSyncSettings()
    tokens = TokenService(s.jwt_secret, issuer=s.jwt_issuer, audience=s.jwt_audience)
    return tokens.mint(tenant="demo", role="operator")


def _fresh_postgres(url: str) -> None:
    name = make_url(url).database or ""
    drop_database(url, name)
    create_database(url, name)


def _seed_customers(database_url: str) -> list[str]:
    from iot_sync.adapters.db.engine import make_engine
    from iot_sync.adapters.db.seed import SeedCustomer, seed
    from iot_sync.domain.customer import Customer, Plan, Standing
    from iot_sync.domain.service import ServiceState

    plan = Plan("bench-unlimited", battery_class="STANDARD", swap_quota=100_000)
    ids = [f"CUST-B{n:05d}" for n in range(1, CUSTOMERS + 1)]
    customers = [
        SeedCustomer(Customer(c, f"Bench {c}", Standing.GOOD, plan), ServiceState.ACTIVE)
        for c in ids
    ]
    engine = make_engine(database_url)
    try:
        seed(engine, customers=customers, personnel=())
    finally:
        engine.dispose()
    return ids


def _plan(http: httpx.Client, customers: list[str]) -> dict[str, Any]:
    stations = http.get("/v1/stations").raise_for_status().json()["items"]
    batteries: list[dict[str, str]] = []
    for s in stations:
        inventory = http.get(f"/v1/stations/{s['station_id']}/inventory").raise_for_status()
        batteries += [
            {"id": a["asset_id"], "region": s["region"], "site": s["site"]}
            for a in inventory.json()["items"]
        ]
    return {
        "stations": [
            {"id": s["station_id"], "region": s["region"], "site": s["site"]} for s in stations
        ],
        "batteries": batteries,
        "customers": customers,
        "personnel": ["SUP-001"],
    }


def _percentile(histogram: dict[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms)
    return float(max(histogram))


def _window(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    hist_before = {int(k): v for k, v in before["latency_ms_histogram"].items()}
    hist = {
        int(k): v - hist_before.get(int(k), 0) for k, v in after["latency_ms_histogram"].items()
    }
    return {
        "signals": after["signals"] - before["signals"],
        "batches": after["batches"] - before["batches"],
        "transitions": after["transitions"] - before["transitions"],
        "histogram": {k: v for k, v in hist.items() if v > 0},
    }


def _integrity(database_url: str, tag: str, swaps: dict[str, list[str]]) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT message_id) FROM signal_log "
                    "WHERE message_id LIKE :tag"
                ),
                {"tag": f"{tag}-%"},
            ).one()
            results: dict[str, int] = dict(
                conn.execute(  # type: ignore[arg-type]
                    text(
                        "SELECT result, count(*) FROM signal_log WHERE message_id LIKE :tag "
                        "GROUP BY result"
                    ),
                    {"tag": f"{tag}-%"},
                ).all()
            )
            rejected: dict[str, int] = dict(
                conn.execute(  # type: ignore[arg-type]
                    text(
                        "SELECT coalesce(reason_code, '?'), count(*) FROM signal_log "
                        "WHERE message_id LIKE :tag AND result <> 'accepted' GROUP BY 1"
                    ),
                    {"tag": f"{tag}-%"},
                ).all()
            )
            services = {
                r.customer_id: r
                for r in conn.execute(
                    text(
                        "SELECT customer_id, service_id, swaps_used, battery_id FROM services "
                        "WHERE customer_id LIKE 'CUST-B%'"
                    )
                )
            }
            issued: dict[str, int] = dict(
                conn.execute(  # type: ignore[arg-type]
                    text(
                        "SELECT s.customer_id, count(*) FROM service_history h "
                        "JOIN services s ON s.service_id = h.service_id "
                        "WHERE h.input = 'BATTERY_ISSUED' AND s.customer_id LIKE 'CUST-B%' "
                        "GROUP BY s.customer_id"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    lost_swaps = doubled_swaps = wrong_battery = 0
    for customer_id, service in services.items():
        seen = swaps.get(customer_id, [])
        used, history = int(service.swaps_used), int(issued.get(customer_id, 0))
        lost_swaps += max(len(seen) - min(used, history), 0)
        doubled_swaps += max(max(used, history) - len(seen), 0)
        if seen and service.battery_id != seen[-1]:
            wrong_battery += 1
    return {
        "logged": int(rows[0]),
        "distinct": int(rows[1]),
        "results": results,
        "reasons": rejected,
        "lost_swaps": lost_swaps,
        "doubled_swaps": doubled_swaps,
        "wrong_battery": wrong_battery,
    }


def _wait_drained(http: httpx.Client, url: str, expected: int, *, timeout_s: float) -> int:
    """Committed signals once all `expected` are in, or nothing more came for 5 s."""
    deadline = time.monotonic() + timeout_s
    got, progress_at = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = int(http.get(url).json()["signals"])
        if now != got:
            got, progress_at = now, time.monotonic()
        if got >= expected or time.monotonic() - progress_at > 5:
            break
        time.sleep(0.5)
    return got


def run_iot(options: IotBenchOptions, *, console: Console) -> str:
    o = options
    stack = o.stack if o.stack is not None else under_ci()
    protocol = o.protocol or ("5" if stack else "3.1.1")
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    ports = IotPorts(
        api=free_port(),
        arm_sim=free_port(),
        mqtt_host=o.broker_host,
        mqtt=o.broker_port or free_port(),
    )
    own_broker = o.broker_port is None
    VAR.mkdir(exist_ok=True)
    sqlite_db = VAR / f"{tag}.db"
    if stack:
        database_url = BENCH_DATABASE_URL
        _fresh_postgres(database_url)
    else:
        database_url = f"sqlite:///{sqlite_db}"
    env = {
        **iot_sync_env(ports=ports, database_url=database_url, protocol=protocol, topic_prefix=tag),
        "IOT_SYNC_MQTT__CLIENT_ID": f"iot-sync-{tag}",
        "IOT_SYNC_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "true",
        **o.env,
    }
    arm_env = {
        "ARM_SIM_STATIONS": str(STATIONS),
        "ARM_SIM_SLOTS_PER_STATION": str(SLOTS),
        "ARM_SIM_BATTERIES": str(BATTERIES),
    }
    processes: list[Process] = []
    if own_broker and stack:
        processes.append(
            private_mosquitto(ports.mqtt, VAR / f"{tag}-mosquitto", name="bench-mqtt-broker")
        )
    elif own_broker:
        processes.append(embedded_broker(ports.mqtt, name="bench-mqtt-broker"))
    processes += [arm_simulator(ports.arm_sim, name="bench-arm-sim", extra=arm_env)]
    consume_port = free_port() if stack else None
    if consume_port is not None:
        # as in `make run-stack`: the consumer in its own process, the relay in the API's
        env = split_consumer_env(env, consume_port=consume_port)
        processes += [
            iot_sync(env, port=ports.api, name="bench-iot-sync-api"),
            iot_sync_consumer(env, consume_port=consume_port, name="bench-iot-sync"),
        ]
    else:
        processes += [iot_sync(env, port=ports.api, name="bench-iot-sync")]
    stats_url = (
        f"http://127.0.0.1:{consume_port}/ingest-stats"
        if consume_port is not None
        else f"http://127.0.0.1:{ports.api}/v1/admin/ingest-stats"
    )
    where = f"{'PostgreSQL' if stack else 'SQLite'} + " + (
        f"amqtt 127.0.0.1:{ports.mqtt}"
        if own_broker and not stack
        else f"Mosquitto {ports.mqtt_host}:{ports.mqtt}"
        + (" (private: max_queued_messages 0)" if own_broker else " (given)")
    )
    console.print(f"bench iot: {where}, MQTT {protocol}, {o.rate:,.0f} signals/s offered")
    loaders: list[subprocess.Popen[bytes]] = []
    try:
        start_in_order(processes, timeout_s=180, quiet=True)
        customers = _seed_customers(database_url)
        headers = {"Authorization": f"Bearer {_token()}"}
        with (
            httpx.Client(
                base_url=f"http://127.0.0.1:{ports.api}", headers=headers, timeout=30
            ) as http,
            tempfile.TemporaryDirectory() as tmp,
        ):
            plan_file = Path(tmp) / "plan.json"
            plan_file.write_text(json.dumps(_plan(http, customers)))
            total_s = o.warmup_s + o.duration_s
            common = [
                "--plan", str(plan_file), "--host", ports.mqtt_host, "--port", str(ports.mqtt),
                "--protocol", protocol, "--prefix", tag, "--duration", str(total_s),
            ]  # fmt: skip
            telemetry_rate = max(o.rate - 2 * o.swap_rate, 0) / o.publishers
            for n in range(o.publishers):
                loaders.append(
                    _loader(
                        [
                            "telemetry",
                            *common,
                            "--tag",
                            f"{tag}-t{n}",
                            "--seed",
                            str(n + 1),
                            "--part",
                            str(n),
                            "--parts",
                            str(o.publishers),
                            "--rate",
                            str(telemetry_rate),
                        ]
                    )
                )
            loaders.append(
                _loader(["swaps", *common, "--tag", f"{tag}-s", "--rate", str(o.swap_rate)])
            )
            pids = {"iot-sync": processes[-1].pid}  # the consumer's process when split
            if consume_port is not None:
                pids["iot-sync-api"] = processes[-2].pid
            if processes[0].name == "bench-mqtt-broker":
                pids["broker"] = processes[0].pid
            pids |= {f"load-{i}": p.pid for i, p in enumerate(loaders)}
            sampler = Sampler(pids)
            time.sleep(o.warmup_s)
            cpu0, before, t0 = (
                sampler.cpu_now(),
                http.get(stats_url).json(),
                time.time(),
            )
            time.sleep(o.duration_s)
            cpu1, after, t1 = (
                sampler.cpu_now(),
                http.get(stats_url).json(),
                time.time(),
            )
            results = [_collect(p) for p in loaders]
            published = sum(r["published"] for r in results)
            drained = _wait_drained(http, stats_url, published, timeout_s=120)
            sampler.stop()
        window = _window(before, after)
        swaps = next(r for r in results if r["role"] == "swaps")
        integrity = _integrity(database_url, tag, swaps["swaps"])
        console.print(
            f"swap refusals: {swaps['refusals']}; signal log: {integrity['results']} "
            f"{integrity['reasons']}"
        )
    finally:
        for p in loaders:
            if p.poll() is None:
                p.kill()
        stop_all(processes)
        if not stack:
            remove_sqlite(sqlite_db)
        if own_broker:
            shutil.rmtree(VAR / f"{tag}-mosquitto", ignore_errors=True)
        else:
            _end_session(ports, protocol, f"iot-sync-{tag}")
    seconds = t1 - t0
    cores = {name: (cpu1.get(name, 0) - cpu0.get(name, 0)) / seconds * 100 for name in cpu0}
    load_cpu = sum(v for k, v in cores.items() if k.startswith("load-"))
    lost = published - integrity["distinct"]
    doubled = integrity["logged"] - integrity["distinct"]
    ok = (
        lost == 0
        and doubled == 0
        and integrity["lost_swaps"] == 0
        and integrity["doubled_swaps"] == 0  # applied, but the station saw no answer
        and integrity["wrong_battery"] == 0
        and swaps["counts"]["unanswered"] == 0
    )
    signals_per_s = max(window["signals"] / seconds, 1e-9)
    p50 = _percentile(window["histogram"], 0.50)
    p99 = _percentile(window["histogram"], 0.99)
    counts = swaps["counts"]
    return (
        f"bench iot: stack={'postgresql+mosquitto' if stack else 'sqlite+amqtt'} mqtt={protocol} "
        f"offered_per_s={o.rate:.0f} window_s={seconds:.1f} "
        f"signals_per_s={signals_per_s:.0f} "
        f"transitions_per_s={window['transitions'] / seconds:.1f} "
        f"batch_avg={window['signals'] / max(window['batches'], 1):.0f} "
        f"p50_ms={p50} p99_ms={p99} "
        f"swap_rtt_p50_ms={_fmt(swaps['rtt_p50_ms'])} swap_rtt_p99_ms={_fmt(swaps['rtt_p99_ms'])} "
        f"peak_rss_mb[iot-sync]={sampler.peak_rss.get('iot-sync', 0) / 2**20:.0f} "
        f"cpu_pct[iot-sync]={cores.get('iot-sync', 0):.0f} "
        # what the code costs per signal: comparable across machines of different speed
        f"cpu_ms_per_signal[iot-sync]={cores.get('iot-sync', 0) * 10 / signals_per_s:.3f} "
        + (f"cpu_pct[iot-sync-api]={cores['iot-sync-api']:.0f} " if "iot-sync-api" in cores else "")
        + f"cpu_pct[publishers]={load_cpu:.0f}"
        + (f" cpu_pct[broker]={cores['broker']:.0f}" if "broker" in cores else "")
        + (f" cpu_pct[postgres]={cores['postgres']:.0f}" if stack else "")
        + f" published={published} committed_after_drain={drained} "
        f"swaps_accepted={counts['accepted']} swaps_refused={counts['refused']} "
        f"lost={lost} doubled={doubled} lost_swaps={integrity['lost_swaps']} "
        f"unconfirmed_swaps={integrity['doubled_swaps']} "
        f"integrity={'OK' if ok else 'FAILED'}"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _loader(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleetops_devstack.iot_load", *argv],
        stdout=subprocess.PIPE,
        env={**os.environ, "OTEL_SDK_DISABLED": "true"},
    )


def _collect(p: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, _ = p.communicate(timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"a load process failed ({p.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _end_session(ports: IotPorts, protocol: str, client_id: str) -> None:
    """Leave no persistent session of ours behind on a shared broker."""
    try:
        from iot_sync.adapters.mqtt.consumer import end_session
        from iot_sync.adapters.mqtt.settings import MqttSettings

        end_session(
            MqttSettings(host=ports.mqtt_host, port=ports.mqtt, protocol=protocol),
            client_id=client_id,
        )
    except Exception as exc:  # an embedded broker took the session with it
        print(f"(session {client_id} not ended: {exc!r})", file=sys.stderr)
