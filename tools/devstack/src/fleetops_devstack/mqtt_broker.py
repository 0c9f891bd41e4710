"""The embedded MQTT broker of `make run` and of laptop tests: amqtt on 127.0.0.1:1884.

amqtt runs on its own asyncio loop in a daemon thread, so a synchronous caller (the devstack
launcher, a pytest fixture) can start it, wait until it accepts TCP connections, and stop it.

What amqtt 0.12.1 does and does not do (checked by tools/devstack/tests/test_mqtt_broker.py):
- MQTT 3.1.1 only: a v5 CONNECT without a user name is refused ("Unsupported protocol
  version"); one with a user name is misread and gets no CONNACK at all. iot-sync must run
  with protocol "3.1.1" against it (trace context and correlation id ride in the envelope).
- QoS 1 publish/subscribe works; retained messages work.
- Persistent sessions (clean_session False) work only for clients that send a user name (any:
  there is no password check) and only because "allow_anonymous" is off here: amqtt keeps
  nothing for a session it marks anonymous, and with anonymous access on it marks every
  session so. Then subscriptions survive a reconnect and QoS 1 messages published while the
  client was away are delivered when it returns, with the retain flag wrongly set.
- An unacknowledged QoS 1 message is NOT resent on reconnect, and amqtt gives up on a
  message whose PUBACK has not come within 5 s: a handler failure loses that batch here.
- No shared subscriptions (`$share/...` matches nothing), so one iot-sync process only.
- State lives in memory: a broker restart loses every session and retained message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1884


def broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {
            # amqtt keeps no offline messages for a session it marks anonymous, and with
            # allow_anonymous on it marks every session so: require a user name (any)
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        },
    }


def accepts_connections(host: str, port: int, *, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedMqttBroker:
    """amqtt in a background thread. Use as a context manager or call `start()`/`stop()`."""

    def __init__(
        self, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, start_timeout_s: float = 15.0
    ) -> None:
        self.host = host
        self.port = port
        self._start_timeout_s = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._started = threading.Event()
        self._stop_requested: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def __enter__(self) -> EmbeddedMqttBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("broker already started")
        if accepts_connections(self.host, self.port):
            raise RuntimeError(f"{self.host}:{self.port} is already taken")
        self._thread = threading.Thread(target=self._run, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout_s
        self._started.wait(timeout=self._start_timeout_s)
        while not accepts_connections(self.host, self.port, timeout=0.2):
            if self._error is not None:
                raise RuntimeError(f"amqtt did not start: {self._error!r}") from self._error
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"amqtt did not accept connections on {self.host}:{self.port}")
            time.sleep(0.02)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=timeout_s)
        self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the thread that called start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        # amqtt logs every connection at INFO and a client's abrupt close as an error
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_quiet_cancellations)
        self._stop_requested = asyncio.Event()
        self._broker = Broker(broker_config(self.host, self.port))
        await self._broker.start()
        self._started.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self._broker.shutdown()


MOSQUITTO = ("127.0.0.1", 1883)


@dataclass(frozen=True)
class Broker:
    """Where a test's MQTT broker listens, and which one it is."""

    host: str
    port: int
    kind: Literal["mosquitto", "amqtt"]

    @property
    def speaks_v5(self) -> bool:
        return self.kind == "mosquitto"


@contextmanager
def broker_for_tests() -> Iterator[Broker]:
    """The broker the tests use: under `CI=true` Mosquitto on 127.0.0.1:1883, required (the
    tests fail without it); otherwise Mosquitto if it answers, else an embedded amqtt on a
    free port (MQTT 3.1.1 only). `IOT_SYNC_TEST_MQTT_BROKER=amqtt` (ignored under CI) takes
    the embedded path next to a running Mosquitto."""
    from fleetops_devstack.databases import under_ci
    from fleetops_devstack.servers import free_port

    required = under_ci()
    forced = os.environ.get("IOT_SYNC_TEST_MQTT_BROKER", "") == "amqtt" and not required
    if not forced and accepts_connections(*MOSQUITTO, timeout=2):
        yield Broker(*MOSQUITTO, "mosquitto")
        return
    if required:
        raise RuntimeError(f"CI=true and no MQTT broker answers on {MOSQUITTO[0]}:{MOSQUITTO[1]}")
    with EmbeddedMqttBroker(port=free_port()) as embedded:
        yield Broker(embedded.host, embedded.port, "amqtt")


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # amqtt leaves connection tasks to be cancelled at shutdown or when a client goes away
    # mid-CONNECT; asyncio would print each as an error
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def main() -> None:
    """`python -m fleetops_devstack.mqtt_broker [port]`: serve until interrupted."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PORT
    with EmbeddedMqttBroker(port=port) as broker:
        print(f"amqtt broker on {broker.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
