"""How many signals/s `MqttSignalConsumer` sustains with a no-op handler, against Mosquitto.

    .venv/bin/python services/iot-sync/tests/integration/mqtt/bench_consumer.py [--port 1883]

Two measurements, the publisher always in a separate process (it would otherwise share the GIL
with the consumer):
1. drain: N messages are queued in the consumer's persistent session while it is offline,
   then the consumer starts and the time to take all of them is measured (pure capacity).
2. paced: a publisher sends at a fixed rate for a few seconds while the consumer runs; the
   figure is the delivered rate and the publish-to-handler latency (p50/p99).

By default a private Mosquitto is started on a free port with `max_queued_messages 0`: the
system broker keeps only 1000 messages per session (its default) and would drop the rest of
a backlog. `--port 1883` uses the system broker instead (keep `--drain` under 1000 there).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from iot_sync.adapters.mqtt.consumer import MqttSignalConsumer, end_session
from iot_sync.adapters.mqtt.settings import MqttSettings
from iot_sync.app.signals import MalformedSignal, Signal

PUBLISHER = textwrap.dedent(
    """
    import json, sys, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    port, topic_base = int(sys.argv[1]), sys.argv[2]
    count, rate = int(sys.argv[3]), float(sys.argv[4])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub-" + topic_base.split("/")[0])
    c.username_pw_set("bench")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    start = time.time()
    info = None
    for i in range(count):
        if rate > 0:
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        body = {"id": f"m{i}", "ts": "2025-01-01T00:00:00+00:00", "seq": i,
                "data": {"soc": 57, "t_pub": time.time()}}
        info = c.publish(f"{topic_base}/b{i % 200}", json.dumps(body).encode(), qos=1)
    info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_mosquitto() -> Iterator[int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nmax_inflight_messages 1000\n"
        )
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("private mosquitto did not start") from None
                    time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


def publish(port: int, topic_base: str, count: int, rate: float) -> None:
    subprocess.run(
        [sys.executable, "-c", PUBLISHER, str(port), topic_base, str(count), str(rate)],
        check=True,
        timeout=300,
    )


class Counter:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.latencies: list[float] = []
        self.done = threading.Event()

    def __call__(self, items: Sequence[Signal | MalformedSignal]) -> None:
        now = time.time()
        if self.first is None:
            self.first = time.perf_counter()
        for item in items:
            if isinstance(item, Signal):
                self.latencies.append(now - float(item.data["t_pub"]))
        self.count += len(items)
        self.last = time.perf_counter()
        if self.count >= self.expected:
            self.done.set()


def settings_for(port: int, protocol: str) -> MqttSettings:
    tag = uuid.uuid4().hex[:8]
    return MqttSettings(
        port=port,
        protocol=protocol,
        client_id=f"bench-{tag}",
        topic_prefix=f"bench-{tag}",  # type: ignore[arg-type]
    )


def drain(port: int, protocol: str, count: int) -> float:
    settings = settings_for(port, protocol)
    counter = Counter(count)
    consumer = MqttSignalConsumer(settings, counter)
    consumer.start()  # creates the session and its subscriptions
    consumer.stop()
    publish(port, f"{settings.topic_prefix}/dt/arm/bms/eu/s1", count, 0)
    consumer = MqttSignalConsumer(settings, counter)
    started = time.perf_counter()
    consumer.start()
    finished = counter.done.wait(120)
    elapsed = counter.last - started
    consumer.stop()
    end_session(settings)
    if not finished:
        raise RuntimeError(f"drain: only {counter.count} of {count} arrived")
    return count / elapsed


def paced(port: int, protocol: str, rate: float, seconds: float) -> tuple[float, float, float]:
    settings = settings_for(port, protocol)
    count = int(rate * seconds)
    counter = Counter(count)
    consumer = MqttSignalConsumer(settings, counter)
    consumer.start()
    publish(port, f"{settings.topic_prefix}/dt/arm/bms/eu/s1", count, rate)
    finished = counter.done.wait(60)
    consumer.stop()
    end_session(settings)
    if not finished:
        raise RuntimeError(f"paced: only {counter.count} of {count} arrived")
    assert counter.first is not None
    lat = sorted(counter.latencies)
    return (
        count / (counter.last - counter.first),
        lat[len(lat) // 2] * 1000,
        lat[int(len(lat) * 0.99)] * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="an existing broker (default: private one)")
    parser.add_argument("--protocol", default="5", choices=["5", "3.1.1"])
    parser.add_argument("--drain", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")

    @contextmanager
    def broker() -> Iterator[int]:
        if args.port:
            yield args.port
        else:
            with private_mosquitto() as port:
                yield port

    with broker() as port:
        capacity = drain(port, args.protocol, args.drain)
        print(f"drain  MQTT {args.protocol}: {args.drain} msgs at {capacity:,.0f} msgs/s")
        rate, p50, p99 = paced(port, args.protocol, args.rate, args.seconds)
        print(
            f"paced  MQTT {args.protocol}: offered {args.rate:,.0f}/s for {args.seconds:.0f} s, "
            f"delivered {rate:,.0f} msgs/s, publish-to-handler p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
    print(f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
