"""The load of `fleetops bench iot`, one process per role (`python -m fleetops_devstack.iot_load`).

- `telemetry`: batteries (bms, gps) and stations (ssc telemetry and heartbeats) publishing at
  a fixed offered rate; each sender belongs to one process, so its `seq` rises in order.
  Also personnel `asset_scan` reports. Every envelope's `ts` is the moment of publishing.
- `swaps`: customers swapping at stations, each swap `authorize` → answer → `dispense_confirm`
  → answer; the station calls of one station carry a rising `seq`.

Each prints one JSON line at the end: what it published, what it saw, its CPU seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import resource
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def connect(host: str, port: int, protocol: str, client_id: str) -> mqtt.Client:
    v5 = protocol == "5"
    client = (
        mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if v5
        else mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
    )
    client.username_pw_set("bench")  # amqtt wants a user name; Mosquitto ignores it
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"no CONNACK from {host}:{port}")
    return client


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length integer, as a packet's remaining length is written."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


class RawPublisher:
    """QoS 1 PUBLISH packets written straight to a socket, PUBACKs counted by a reader thread.

    A field device is no Python program: paho spends ~200 µs of CPU per publish, which on 2
    cores would take from iot-sync what the benchmark means to measure. This costs a few µs.
    """

    def __init__(self, host: str, port: int, protocol: str, client_id: str) -> None:
        self.v5 = protocol == "5"
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        level = 5 if self.v5 else 4
        # flags: user name + clean session/start; keepalive 60 s; v5: no properties
        variable = _utf8("MQTT") + bytes([level, 0x82, 0, 60]) + (b"\x00" if self.v5 else b"")
        payload = _utf8(client_id) + _utf8("bench")
        body = variable + payload
        self.sock.sendall(b"\x10" + remaining_length(len(body)) + body)
        connack = self.sock.recv(64)
        if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
            raise SystemExit(f"broker refused the load publisher: {connack!r}")
        self.sock.settimeout(None)
        self.mid = 0
        self.sent = 0
        self.acked = 0
        self.pending: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.mid = self.mid % 65535 + 1
        body = _utf8(topic) + self.mid.to_bytes(2, "big") + (b"\x00" if self.v5 else b"")
        body += payload
        self.pending.append(b"\x32" + remaining_length(len(body)) + body)  # PUBLISH, QoS 1
        self.sent += 1

    def flush(self) -> None:
        if self.pending:
            self.sock.sendall(b"".join(self.pending))
            self.pending.clear()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= 2:
                length, shift, i = 0, 0, 1
                while True:  # remaining length, variable byte integer
                    if i >= len(buffer):
                        break
                    byte = buffer[i]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not byte & 0x80:
                        break
                else:
                    break
                if len(buffer) < i + length:
                    break
                if buffer[0] >> 4 == 4:  # PUBACK
                    self.acked += 1
                buffer = buffer[i + length :]

    def close(self, timeout_s: float = 30) -> None:
        self.flush()
        deadline = time.time() + timeout_s
        while self.acked < self.sent and time.time() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
            self.sock.close()


@dataclass
class Sender:
    topic: str
    seq: int = 0


def run_telemetry(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    prefix = f"{args.prefix}/" if args.prefix else ""
    rng = random.Random(args.seed)
    # each sender belongs to one telemetry process: its `seq` rises in publishing order
    mine = slice(args.part, None, args.parts)
    batteries = [
        Sender(f"{prefix}dt/arm/{app}/{b['region']}/{b['site']}/{b['id']}")
        for b in plan["batteries"][mine]
        for app in ("bms", "gps")
    ]
    stations = [
        Sender(f"{prefix}dt/arm/ssc/{s['region']}/{s['site']}/{s['id']}")
        for s in plan["stations"][mine]
    ]
    # a supervisor of region-1 and region-2 scanning batteries there
    people = plan.get("personnel", [])
    scanned = {"region-1", "region-2"}
    assets = [b["id"] for b in plan["batteries"] if b["region"] in scanned] or ["BAT-000001"]
    area = plan.get("area", [-1.5, 36.6, -1.1, 37.1])
    client = RawPublisher(
        args.host, args.port, args.protocol, f"bench-load-{uuid.uuid4().hex[:10]}"
    )
    publish = client.publish
    dumps = json.dumps
    sent = {"bms": 0, "gps": 0, "ssc": 0, "personnel": 0}
    tick = 0.01
    per_tick = args.rate * tick
    start = time.time()
    end = start + args.duration
    owed = 0.0
    n = 0
    cpu0 = _cpu_s()
    while True:
        now = time.time()
        if now >= end:
            break
        owed += per_tick
        count = int(owed)
        owed -= count
        for _ in range(count):
            n += 1
            roll = rng.random()
            if people and roll < args.personnel_share:
                person = people[n % len(people)]
                topic = f"{prefix}emit/abs/personnel/{person}/asset_scan"
                body: dict[str, Any] = {
                    "id": f"{args.tag}-{n}",
                    "ts": _now_iso(),
                    "actor": {"kind": "person", "id": person},
                    "data": {"asset_id": assets[n % len(assets)]},
                }
                sent["personnel"] += 1
            elif roll < 0.75 or not stations:
                sender = batteries[n % len(batteries)]
                sender.seq += 1
                topic = sender.topic
                if "/bms/" in topic:
                    data: dict[str, Any] = {
                        "charge_pct": min(rng.randint(20, 104), 100),
                        "voltage": round(rng.uniform(47.0, 54.6), 2),
                        "temp_c": round(rng.uniform(18, 41), 1),
                    }
                    sent["bms"] += 1
                else:
                    data = {
                        "latitude": round(rng.uniform(area[0], area[2]), 6),
                        "longitude": round(rng.uniform(area[1], area[3]), 6),
                    }
                    sent["gps"] += 1
                body = {
                    "id": f"{args.tag}-{n}",
                    "ts": _now_iso(),
                    "seq": sender.seq,
                    "type": "telemetry",
                    "data": data,
                }
            else:
                sender = stations[n % len(stations)]
                sender.seq += 1
                topic = sender.topic
                heartbeat = n % 2 == 0
                body = {
                    "id": f"{args.tag}-{n}",
                    "ts": _now_iso(),
                    "seq": sender.seq,
                    "type": "heartbeat" if heartbeat else "telemetry",
                    "data": {} if heartbeat else {"temp_c": rng.randint(20, 45), "online": True},
                }
                sent["ssc"] += 1
            publish(topic, dumps(body).encode())
        client.flush()
        pause = start + (n / args.rate if args.rate else 0) - time.time()
        time.sleep(max(pause, 0.0) if pause < tick else tick)
    published_s = time.time() - start
    client.close()
    cpu = _cpu_s() - cpu0
    return {"role": "telemetry", "published": n, "acked": client.acked, "by_kind": sent,
            "seconds": published_s, "cpu_s": cpu}  # fmt: skip


@dataclass(order=True)
class Due:
    at: float
    customer: str = field(compare=False)


@dataclass
class Customer:
    customer_id: str
    holding: str | None = None
    swaps: list[str] = field(default_factory=list)


class SwapDriver:
    """Customers swapping at random stations; answers drive the next call."""

    def __init__(self, args: argparse.Namespace, plan: dict[str, Any]) -> None:
        self.args = args
        self.prefix = f"{args.prefix}/" if args.prefix else ""
        self.v5 = args.protocol == "5"
        self.rng = random.Random(args.seed)
        self.stations = [s["id"] for s in plan["stations"]]
        self.station_seq: dict[str, int] = dict.fromkeys(self.stations, 0)
        self.customers = {c: Customer(c) for c in plan["customers"]}
        self.lock = threading.Lock()
        self.pending: dict[str, tuple[str, str, str, float]] = {}  # corr -> verb, cust, station
        self.due: list[Due] = []
        self.counts = {"authorize": 0, "granted": 0, "refused": 0, "dispense": 0,
                       "accepted": 0, "rejected": 0, "unanswered": 0}  # fmt: skip
        self.refusals: dict[str, int] = {}
        self.rtt_ms: list[float] = []
        self.client = connect(
            args.host, args.port, args.protocol, f"bench-swaps-{uuid.uuid4().hex[:10]}"
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_answer
        self.client.subscribe(f"{self.prefix}rtrn/abs/station/+/+", qos=1)
        if not subscribed.wait(10):
            raise SystemExit("swap driver: not subscribed")

    def _call(self, station: str, verb: str, customer: str, data: dict[str, Any]) -> None:
        corr = uuid.uuid4().hex
        topic = f"{self.prefix}call/abs/station/{station}/{verb}"
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = corr.encode()
            properties.ResponseTopic = f"{self.prefix}rtrn/abs/station/{station}/{verb}"
        # one lock over seq and publish: a station's calls reach the broker in seq order
        with self.lock:
            self.station_seq[station] += 1
            body = {
                "id": f"{self.args.tag}-{verb}-{corr}",
                "ts": _now_iso(),
                "seq": self.station_seq[station],
                "correlation_id": corr,
                "data": data,
            }
            self.pending[corr] = (verb, customer, station, time.time())
            self.client.publish(topic, json.dumps(body), qos=1, properties=properties)

    def _authorize(self, customer: Customer) -> None:
        station = self.rng.choice(self.stations)
        data: dict[str, Any] = {"customer_id": customer.customer_id}
        if customer.holding:
            data["returned_battery_id"] = customer.holding
        self.counts["authorize"] += 1
        self._call(station, "authorize", customer.customer_id, data)

    def _later(self, customer_id: str, delay: float) -> None:
        with self.lock:
            heapq.heappush(self.due, Due(time.time() + delay, customer_id))

    def _on_answer(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        answer = json.loads(message.payload)
        corr = answer.get("correlation_id")
        with self.lock:
            call = self.pending.pop(corr, None)
        if call is None:
            return
        verb, customer_id, station, sent_at = call
        customer = self.customers[customer_id]
        data = answer.get("data", {})
        self.rtt_ms.append((time.time() - sent_at) * 1000)
        if verb == "authorize":
            if data.get("decision") == "GRANTED":
                self.counts["granted"] += 1
                self.counts["dispense"] += 1
                self._call(
                    station,
                    "dispense_confirm",
                    customer_id,
                    {"customer_id": customer_id, "battery_id": data["battery_id"]},
                )
            else:
                self.counts["refused"] += 1
                reason = str(data.get("reason"))
                self.refusals[reason] = self.refusals.get(reason, 0) + 1
                self._later(customer_id, self.rng.uniform(0.2, 1.0))
        elif verb == "dispense_confirm":
            if data.get("result") == "accepted":
                self.counts["accepted"] += 1
                battery = str(data.get("battery_id") or answer.get("battery_id") or "")
                customer.swaps.append(battery)
                customer.holding = battery or customer.holding
            else:
                self.counts["rejected"] += 1
                reason = f"dispense:{data.get('reason')}"
                self.refusals[reason] = self.refusals.get(reason, 0) + 1
            self._later(customer_id, self.rng.uniform(0.2, 1.0))

    def run(self) -> dict[str, Any]:
        args = self.args
        cpu0 = _cpu_s()
        start = time.time()
        end = start + args.duration
        for customer_id in self.customers:
            self._later(customer_id, self.rng.uniform(0, 1.0))
        started = 0
        while time.time() < end:
            # at most `rate` authorizations per second, as customers become free
            allowed = int((time.time() - start) * args.rate) - started
            with self.lock:
                ready: list[str] = []
                while self.due and self.due[0].at <= time.time() and len(ready) < allowed:
                    ready.append(heapq.heappop(self.due).customer)
            for customer_id in ready:
                self._authorize(self.customers[customer_id])
                started += 1
            time.sleep(0.005)
        # let the swaps in progress finish: a granted battery must be confirmed or released
        deadline = time.time() + args.settle_s
        while time.time() < deadline:
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.05)
        with self.lock:
            self.counts["unanswered"] = len(self.pending)
        cpu = _cpu_s() - cpu0
        self.client.disconnect()
        self.client.loop_stop()
        rtt = sorted(self.rtt_ms)
        return {
            "role": "swaps",
            "published": self.counts["authorize"] + self.counts["dispense"],
            "counts": self.counts,
            "refusals": self.refusals,
            "swaps": {c.customer_id: c.swaps for c in self.customers.values() if c.swaps},
            "rtt_p50_ms": rtt[len(rtt) // 2] if rtt else None,
            "rtt_p99_ms": rtt[int(len(rtt) * 0.99)] if rtt else None,
            "cpu_s": cpu,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description="one load process of `fleetops bench iot`")
    parser.add_argument("role", choices=["telemetry", "swaps"])
    parser.add_argument("--plan", required=True, help="JSON file: stations, batteries, …")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--protocol", default="5", choices=["5", "3.1.1"])
    parser.add_argument("--prefix", default="")
    parser.add_argument("--tag", required=True, help="unique message-id prefix")
    parser.add_argument("--rate", type=float, required=True, help="messages (swaps) per second")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--personnel-share", type=float, default=0.01)
    parser.add_argument("--settle-s", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--part", type=int, default=0, help="telemetry: this process's share")
    parser.add_argument("--parts", type=int, default=1, help="telemetry: processes in all")
    args = parser.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    runner: Callable[[], dict[str, Any]] = (
        (lambda: run_telemetry(args, plan))
        if args.role == "telemetry"
        else SwapDriver(args, plan).run
    )
    print(json.dumps(runner()), flush=True)


if __name__ == "__main__":
    main()
