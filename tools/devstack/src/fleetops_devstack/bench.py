"""device-change benchmarks: real processes over loopback, figures printed on one line.

carrier-bound: the simulator at 5 requests/s and 50 devices per request, 200 ms latency,
callbacks 1-3 s later; a 10,000-device status change. The ceiling is 5 x 50 = 250 devices/s.

platform-bound: no rate limit, no latency, large requests; 100,000 devices end to end
(submit -> every line settled by its callback), plus peak memory at 1,000 and 100,000
(fresh processes on the same fleet each time).

Both run device-change on the embedded default (SQLite, in-process workers); `--stack` puts
its database on PostgreSQL (a fresh database per run, dropped afterwards).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from rich.console import Console

from fleetops_devstack.databases import create_database, drop_database
from fleetops_devstack.processes import VAR, Process, stop_all, wait_until_ok
from fleetops_devstack.servers import free_port
from fleetops_devstack.stack import STACK_DATABASE_URL, device_change_env, remove_sqlite

CEILING_REQ_PER_S = 5
CEILING_DEVICES_PER_REQUEST = 50


@dataclass
class MemoryWatch:
    processes: list[Process]
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MemoryWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for name, proc in measured(self.processes):
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[name] = max(self.peaks.get(name, 0), rss)


def measured(processes: list[Process]) -> list[tuple[str, psutil.Process]]:
    """The processes under test and the children they started (device-change's callback
    receiver), each with the name it is reported under."""
    out: list[tuple[str, psutil.Process]] = []
    for p in processes:
        try:
            proc = psutil.Process(p.pid)
            children = proc.children(recursive=True)
        except (psutil.Error, AssertionError):
            continue
        out.append((p.name, proc))
        for child in children:
            try:
                receiver = "receive-callbacks" in child.cmdline()
            except psutil.Error:
                continue
            out.append((f"{p.name}-receiver" if receiver else f"{p.name}-{child.pid}", child))
    return out


def cpu_seconds(processes: list[Process]) -> dict[str, float]:
    """User + system CPU each process (and child) has used so far, its threads included."""
    used: dict[str, float] = {}
    for name, proc in measured(processes):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        used[name] = times.user + times.system
    return used


@dataclass
class Platform:
    """A simulator and a device-change process on free ports, for one benchmark run."""

    fleet_size: int
    sim_config: dict[str, Any]
    service_env: dict[str, str]
    stack: bool = False  # device-change's database on PostgreSQL instead of SQLite
    processes: list[Process] = field(default_factory=list)

    def __enter__(self) -> Platform:
        self.sim_port, self.api_port = free_port(), free_port()
        if self.stack:
            self.database_url = create_database(STACK_DATABASE_URL, f"bench_{self.api_port}")
        else:
            self.database_url = f"sqlite:///{VAR / f'bench-{self.api_port}.db'}"
        env = {
            **device_change_env(port=self.api_port, sim_port=self.sim_port),
            "DEVICE_CHANGE_DATABASE_URL": self.database_url,
            "DEVICE_CHANGE_BROKER_URL": "stub://",
            "DEVICE_CHANGE_LOG_LEVEL": "WARNING",
            # as `make run`: callbacks parsed and stored in a process of their own
            "DEVICE_CHANGE_CALLBACK_RECEIVER_PORT": str(free_port()),
            **self.service_env,
        }
        self.processes = [
            Process(
                "bench-thingspace-sim",
                [
                    "-m",
                    "thingspace_sim.cli",
                    "serve",
                    "--port",
                    str(self.sim_port),
                    "--fleet-size",
                    str(self.fleet_size),
                ],
            ),
            Process(
                "bench-device-change", ["-m", "device_change.entrypoints.cli", "serve"], env=env
            ),
        ]
        self.processes[0].start(quiet=True)
        wait_until_ok(f"{self.sim}/_sim/config", timeout_s=60, watch=self.processes[:1])
        httpx.put(f"{self.sim}/_sim/config", json=self.sim_config, timeout=10).raise_for_status()
        self.processes[1].start(quiet=True)
        wait_until_ok(f"{self.api}/readyz", timeout_s=600, watch=self.processes)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_all(self.processes)
        if self.stack:
            drop_database(STACK_DATABASE_URL, f"bench_{self.api_port}")
            return
        remove_sqlite(VAR / f"bench-{self.api_port}.db")

    @property
    def sim(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def _token() -> str:
    from fleetops_devstack.cli import mint

    return mint("demo", "operator")


def active_iccids(api: str, token: str, count: int) -> list[str]:
    out: list[str] = []
    cursor = None
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}) as http:
        while len(out) < count:
            params: dict[str, Any] = {"status": "ACTIVE", "limit": 2000}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/devices", params=params, timeout=60).raise_for_status().json()
            out += [d["iccid"] for d in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
    if len(out) < count:
        raise RuntimeError(f"only {len(out)} ACTIVE devices in the fleet, {count} needed")
    return out[:count]


def run_bulk(platform: Platform, count: int, *, timeout_s: float) -> dict[str, Any]:
    token = _token()
    iccids = active_iccids(platform.api, token, count)
    httpx.post(f"{platform.sim}/_sim/reset-stats", timeout=10).raise_for_status()
    body = {
        "change_type": "update_device_status",
        "devices": [{"iccid": i} for i in iccids],
        "params": {"target_status": "SUSPENDED"},
    }
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=platform.api, headers=headers, timeout=300) as http:
        cpu_before = cpu_seconds(platform.processes)
        t0 = time.monotonic()
        bulk = http.post("/v1/bulk-changes", json=body).raise_for_status().json()
        submitted = time.monotonic() - t0
        all_sent_s: float | None = None
        while True:
            state = http.get(f"/v1/bulk-changes/{bulk['id']}").raise_for_status().json()
            if all_sent_s is None and state["counts"]["PENDING"] == 0:
                all_sent_s = time.monotonic() - t0  # every line is at the carrier
            if state["finished_at"]:
                break
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"bulk change not finished after {timeout_s:.0f} s: {state}")
            time.sleep(0.25)
        elapsed = time.monotonic() - t0
    cpu_after = cpu_seconds(platform.processes)
    stats = httpx.get(f"{platform.sim}/_sim/stats", timeout=10).json()
    return {
        "elapsed_s": elapsed,
        "submit_s": submitted,
        "all_sent_s": all_sent_s if all_sent_s is not None else elapsed,
        "state": state,
        "stats": stats,
        "cpu_s": {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after},
    }


def carrier_bound(console: Console, devices: int | None, *, stack: bool = False) -> str:
    count = devices or 10_000
    sim_config = {
        "rate_limit_per_s": CEILING_REQ_PER_S,
        "max_devices_per_request": CEILING_DEVICES_PER_REQUEST,
        "latency_ms": 200,
        "callback_delay_ms": 1000,
        "callback_jitter_ms": 2000,
    }
    env = {
        "DEVICE_CHANGE_CARRIER_RATE_LIMIT_PER_S": str(CEILING_REQ_PER_S),
        "DEVICE_CHANGE_MAX_DEVICES_PER_REQUEST": str(CEILING_DEVICES_PER_REQUEST),
    }
    console.print(f"carrier-bound: {count} devices, sim {sim_config}")
    with Platform(int(count * 1.4) + 100, sim_config, env, stack) as platform:
        r = run_bulk(platform, count, timeout_s=count / 100 + 120)
    counts = r["state"]["counts"]
    per_min = count / r["elapsed_s"] * 60
    ceiling = CEILING_REQ_PER_S * CEILING_DEVICES_PER_REQUEST
    ratio = (count / r["elapsed_s"]) / ceiling
    return (
        f"bench carrier-bound: devices={count} elapsed_s={r['elapsed_s']:.1f} "
        f"submit_s={r['submit_s']:.1f} all_sent_s={r['all_sent_s']:.1f} "
        f"devices_per_min={per_min:.0f} ratio_to_ceiling={ratio:.2f} "
        f"(ceiling {ceiling}/s) throttled_429={r['stats'].get('throttled')} "
        f"succeeded={counts['SUCCEEDED']} failed={counts['FAILED']} "
        f"changed_more_than_once={r['stats'].get('devices_changed_more_than_once')}"
    )


def platform_bound(console: Console, devices: int | None, *, stack: bool = False) -> str:
    count = devices or 100_000
    sim_config = {
        "rate_limit_per_s": 0,
        "max_devices_per_request": 10_000,
        "latency_ms": 0,
        "callback_delay_ms": 0,
        "callback_jitter_ms": 0,
    }
    env = {
        "DEVICE_CHANGE_CARRIER_RATE_LIMIT_PER_S": "0",
        "DEVICE_CHANGE_MAX_DEVICES_PER_REQUEST": "10000",
    }
    results: dict[int, dict[str, Any]] = {}
    # One fleet size for every run, so the memory figures differ only by the bulk's size
    # (a larger fleet synced at start costs device-change memory of its own).
    fleet = int(count * 1.3) + 100
    for size in sorted({1_000, count}):
        console.print(f"platform-bound: {size} devices of a fleet of {fleet}")
        with Platform(fleet, sim_config, env, stack) as platform:
            with MemoryWatch(platform.processes) as mem:
                r = run_bulk(platform, size, timeout_s=size / 100 + 300)
            r["memory"] = dict(mem.peaks)
        results[size] = r
    big = results[count]
    stats = big["stats"]
    per_min = count / big["elapsed_s"] * 60
    memory = " ".join(
        f"peak_rss_mb[{name.removeprefix('bench-')}@{size}]={rss / 2**20:.0f}"
        for size, r in results.items()
        for name, rss in r["memory"].items()
    )
    return (
        f"bench platform-bound: devices={count} elapsed_s={big['elapsed_s']:.1f} "
        f"submit_s={big['submit_s']:.1f} devices_per_min={per_min:.0f} "
        f"callbacks_per_s={stats.get('callback_rate_per_s', 'n/a')} "
        f"callback_p99_ms={stats.get('callback_latency_p99_ms', 'n/a')} "
        f"succeeded={big['state']['counts']['SUCCEEDED']} {memory} {_cpu_figures(big, count)}"
    )


def _cpu_figures(run: dict[str, Any], devices: int) -> str:
    """CPU milliseconds each process spent per device, submit to last line settled: where the
    two cores went, and a figure that moves with the code rather than with the run's luck."""
    return " ".join(
        f"cpu_ms_per_device[{name.removeprefix('bench-')}]={used / devices * 1000:.2f}"
        for name, used in run["cpu_s"].items()
    )


def run_profile(
    profile: str, *, devices: int | None, console: Console, stack: bool = False
) -> None:
    runners = {"carrier": carrier_bound, "platform": platform_bound}
    if profile not in runners:
        raise SystemExit(f"unknown profile {profile!r}; choose carrier or platform")
    line = runners[profile](console, devices, stack=stack)
    line += f" database={'postgresql' if stack else 'sqlite'}"
    print(line)
