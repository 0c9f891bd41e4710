"""Brokers for the MQTT adapter's tests.

Which broker (`mqtt_broker`):
- `CI=true`: Mosquitto on 127.0.0.1:1883 is required; the tests fail without it.
- otherwise: Mosquitto on 127.0.0.1:1883 if it answers, else the embedded amqtt broker
  (MQTT 3.1.1 only: tests that need v5, shared subscriptions or redelivery of unacked
  messages are skipped there, naming the missing capability).
`amqtt_broker` is always the embedded broker, on a free port, for the tests of that path.
`IOT_SYNC_TEST_MQTT_BROKER=amqtt` (ignored under CI) runs the laptop path next to a Mosquitto.

The system Mosquitto is shared with other test runs, so each test gets its own topic prefix
and client ids (`mqtt_settings`), and the sessions it made are ended afterwards.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleetops_devstack.mqtt_broker import Broker, EmbeddedMqttBroker, broker_for_tests
from fleetops_devstack.servers import free_port
from iot_sync.adapters.mqtt.consumer import end_session
from iot_sync.adapters.mqtt.settings import MqttSettings
from iot_sync.app.signals import MalformedSignal, Signal

WAIT_S = 10.0


@pytest.fixture(scope="session")
def amqtt_broker() -> Iterator[Broker]:
    with EmbeddedMqttBroker(port=free_port()) as embedded:
        yield Broker(embedded.host, embedded.port, "amqtt")


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    with broker_for_tests() as broker:
        yield broker


@pytest.fixture
def v5_broker(mqtt_broker: Broker) -> Broker:
    if not mqtt_broker.speaks_v5:
        pytest.skip("needs an MQTT v5 broker (Mosquitto); amqtt speaks only 3.1.1")
    return mqtt_broker


MakeSettings = Callable[..., MqttSettings]


@pytest.fixture
def mqtt_settings(mqtt_broker: Broker) -> Iterator[MakeSettings]:
    """`make(protocol=..., name=..., broker=..., **overrides)`: settings with a unique client id
    and topic prefix for this test; every consumer session made from them is ended after it."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    made: list[MqttSettings] = []

    def make(
        *, protocol: str | None = None, name: str = "c", broker: Broker | None = None, **kw: Any
    ) -> MqttSettings:
        target = broker or mqtt_broker
        settings = MqttSettings(
            host=target.host,
            port=target.port,
            protocol=protocol or ("5" if target.speaks_v5 else "3.1.1"),  # type: ignore[arg-type]
            client_id=f"{prefix}-{name}",
            topic_prefix=prefix,
            **kw,
        )
        made.append(settings)
        return settings

    yield make
    for settings in made:
        # a broker that is gone has no session left to end
        with contextlib.suppress(Exception):
            end_session(settings)


class Collector:
    """A batch handler that records what it got and lets a test await a count."""

    def __init__(self) -> None:
        self.batches: list[list[Signal | MalformedSignal]] = []
        self._cond = threading.Condition()
        self.fail_next = 0  # batches to refuse by raising
        self.on_batch: Callable[[Sequence[Signal | MalformedSignal]], None] | None = None

    def __call__(self, items: Sequence[Signal | MalformedSignal]) -> None:
        if self.on_batch is not None:
            self.on_batch(items)
        with self._cond:
            if self.fail_next > 0:
                self.fail_next -= 1
                self._cond.notify_all()
                raise RuntimeError("handler refuses this batch")
            self.batches.append(list(items))
            self._cond.notify_all()

    @property
    def items(self) -> list[Signal | MalformedSignal]:
        with self._cond:
            return [item for batch in self.batches for item in batch]

    def ids(self) -> list[str | None]:
        return [item.message_id for item in self.items]

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Signal | MalformedSignal]:
        with self._cond:
            self._cond.wait_for(lambda: sum(map(len, self.batches)) >= count, timeout)
        items = self.items
        assert len(items) >= count, f"only {len(items)} of {count} arrived in {timeout} s"
        return items

    def wait_failures_done(self, timeout: float = WAIT_S) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.fail_next == 0, timeout)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@dataclass
class FieldDevice:
    """A raw paho client standing in for a station, tracker or phone."""

    client: mqtt.Client
    received: list[mqtt.MQTTMessage] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes, *, properties: Any = None) -> None:
        info = self.client.publish(topic, payload, qos=1, properties=properties)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def subscribe(self, topic_filter: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic_filter, qos=1)
        assert done.wait(WAIT_S), f"no SUBACK for {topic_filter}"

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[mqtt.MQTTMessage]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            assert len(self.received) >= count, f"only {len(self.received)} of {count} arrived"
            return list(self.received)


@pytest.fixture
def field_device(mqtt_settings: MakeSettings) -> Iterator[Callable[..., FieldDevice]]:
    """`connect(protocol="5"|"3.1.1", broker=None)`: a connected device client (clean session)."""
    devices: list[FieldDevice] = []

    def connect(*, protocol: str = "5", broker: Broker | None = None) -> FieldDevice:
        settings = mqtt_settings(protocol=protocol, name=f"dev{len(devices)}", broker=broker)
        v5 = protocol == "5"
        client = (
            mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5
            )
            if v5
            else mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=settings.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=True,
            )
        )
        client.username_pw_set("field-device")
        device = FieldDevice(client)

        def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
            with device.arrived:
                device.received.append(message)
                device.arrived.notify_all()

        connected = threading.Event()
        client.on_message = on_message
        client.on_connect = lambda *_: connected.set()
        client.connect(settings.host, settings.port)
        client.loop_start()
        assert connected.wait(WAIT_S), "device did not connect"
        devices.append(device)
        return device

    yield connect
    for device in devices:
        device.client.disconnect()
        device.client.loop_stop()
