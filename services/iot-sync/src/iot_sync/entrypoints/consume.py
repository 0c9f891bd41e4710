"""`iot-sync consume`: the MQTT consumer in a process of its own.

Why a process of its own: paho's network thread reads every packet in Python and takes about
half of the consumer's CPU; beside the API, the relay and the jobs it competed with the
batch worker for one GIL. Here the batch worker shares it only with paho.

The API process then runs with `IOT_SYNC_MQTT_IN_PROCESS=false` and keeps the outbox relay,
woken on PostgreSQL by the NOTIFY each of this process's commits with outbox rows sends
(adapters/db/outbox_wake.py). `IOT_SYNC_CONSUME_RELAYS=true` runs the relay here instead
(then `IOT_SYNC_RELAY_IN_PROCESS=false` on the API: one relay). What this process
committed, with the publish-to-commit latency histogram, is served on a small HTTP port of
its own (`IOT_SYNC_CONSUME_PORT`, on `IOT_SYNC_HOST`):
`GET /ingest-stats` (the body of the API's `/v1/admin/ingest-stats`: counters and
histogram, nothing about customers), `GET /healthz`, and `GET /readyz` (200 once subscribed).
"""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from fleetops_common.process import quieten_garbage_collector
from iot_sync.bootstrap import BackgroundWork, Container
from iot_sync.entrypoints.runtime import SERVICE, prepare
from iot_sync.settings import IotSyncSettings

log = structlog.get_logger(SERVICE)


def stats_server(container: Container, ready: threading.Event) -> ThreadingHTTPServer:
    """The consumer's own small HTTP port: ingest stats, health, readiness."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body: Any
            status = 200
            if self.path == "/ingest-stats":
                body = container.ingest.snapshot()
            elif self.path == "/healthz":
                body = {"status": "ok"}
            elif self.path == "/readyz":
                body = {"status": "ready" if ready.is_set() else "starting"}
                status = 200 if ready.is_set() else 503
            else:
                body, status = {"detail": "not found"}, 404
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            return

    s = container.settings
    server = ThreadingHTTPServer((s.host, s.consume_port), Handler)
    server.daemon_threads = True
    return server


class Consumer:
    """The consumer process's parts: stats port, MQTT consumer (and, if told, the relay
    with its field publisher).

    Start it once the API process has migrated the database (it neither migrates, seeds nor
    pulls ARM itself)."""

    def __init__(self, settings: IotSyncSettings) -> None:
        settings = settings.model_copy(update={"seed_demo_data": False, "sync_arm_on_start": False})
        self.settings = settings
        self.container = prepare(settings)
        self.ready = threading.Event()
        self._server = stats_server(self.container, self.ready)
        self._background = BackgroundWork(self.container, relay=settings.consume_relays, jobs=False)
        self._started: list[Any] = []
        self._serving = False

    def start(self) -> None:
        from iot_sync.adapters.mqtt.consumer import MqttSignalConsumer

        threading.Thread(
            target=self._server.serve_forever, name="consume-stats", daemon=True
        ).start()
        self._serving = True
        self._background.start()
        start = getattr(self.container.publisher, "start", None)
        if self.settings.consume_relays and callable(start):  # only the relay publishes
            start()
            self._started.append(self.container.publisher)
        consumer = MqttSignalConsumer(self.settings.mqtt, self.container.consume)
        consumer.start()
        self._started.append(consumer)
        self.ready.set()
        log.info("consuming", stats_port=self.settings.consume_port)

    def stop(self) -> None:
        """Finish the batch in hand, stop relaying (if it does), close the stats port."""
        self.ready.clear()
        for part in reversed(self._started):
            for name in ("stop", "close"):
                method = getattr(part, name, None)
                if callable(method):
                    method()
                    break
        self._started.clear()
        self._background.stop()
        if self._serving:  # shutdown() waits for serve_forever, which must have started
            self._server.shutdown()
            self._serving = False
        self._server.server_close()
        self.container.engine.dispose()


def run_consumer(settings: IotSyncSettings) -> None:
    """Consume until SIGTERM or SIGINT; then finish the batch in hand and stop."""
    consumer = Consumer(settings)
    quieten_garbage_collector()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        consumer.start()
        stop.wait()
    finally:
        consumer.stop()
