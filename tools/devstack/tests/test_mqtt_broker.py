"""The embedded amqtt broker: what iot-sync relies on works, and what does not is pinned."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleetops_devstack.mqtt_broker import EmbeddedMqttBroker, accepts_connections

WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedMqttBroker]:
    with EmbeddedMqttBroker(port=free_port()) as embedded:
        yield embedded


class Client:
    def __init__(
        self,
        broker: EmbeddedMqttBroker,
        client_id: str,
        *,
        clean: bool,
        protocol: int = 4,
        username: str | None = "devstack",
    ) -> None:
        kw: dict[str, Any] = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean}
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kw
        )
        if username is not None:
            self.paho.username_pw_set(username)
        self.messages: list[mqtt.MQTTMessage] = []
        self.arrived = threading.Condition()
        self.connack = threading.Event()
        self.reason: Any = None
        self.session_present: bool | None = None
        self.paho.on_message = self._on_message
        self.paho.on_connect = self._on_connect
        self.broker = broker

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self.reason, self.session_present = reason, flags.session_present
        self.connack.set()

    def connect(self) -> Client:
        self.paho.connect(self.broker.host, self.broker.port)
        self.paho.loop_start()
        assert self.connack.wait(WAIT_S)
        return self

    def subscribe(self, topic_filter: str) -> None:
        done = threading.Event()
        self.paho.on_subscribe = lambda *_: done.set()
        self.paho.subscribe(topic_filter, qos=1)
        assert done.wait(WAIT_S)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.paho.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)
        assert info.is_published()

    def wait_for(self, count: int) -> list[mqtt.MQTTMessage]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, WAIT_S)
            assert len(self.messages) >= count, f"{len(self.messages)} of {count} arrived"
            return list(self.messages)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def unique() -> str:
    return uuid.uuid4().hex[:8]


def test_qos1_publish_and_subscribe(broker: EmbeddedMqttBroker) -> None:
    tag = unique()
    sub = Client(broker, f"sub-{tag}", clean=True).connect()
    pub = Client(broker, f"pub-{tag}", clean=True).connect()
    try:
        sub.subscribe(f"{tag}/#")
        for i in range(3):
            pub.publish(f"{tag}/x", str(i).encode())
        received = sub.wait_for(3)
    finally:
        sub.close()
        pub.close()

    assert [(m.payload, m.qos) for m in received] == [(b"0", 1), (b"1", 1), (b"2", 1)]


def test_a_persistent_session_gets_what_was_published_while_it_was_away(
    broker: EmbeddedMqttBroker,
) -> None:
    tag = unique()
    pub = Client(broker, f"pub-{tag}", clean=True).connect()
    first = Client(broker, f"iot-{tag}", clean=False).connect()
    first.subscribe(f"{tag}/#")
    first.close()
    try:
        for i in range(5):
            pub.publish(f"{tag}/x", str(i).encode())
        back = Client(broker, f"iot-{tag}", clean=False).connect()
        received = back.wait_for(5)
        back.close()
    finally:
        pub.close()
        Client(broker, f"iot-{tag}", clean=True).connect().close()

    assert back.session_present is True
    assert [m.payload for m in received] == [b"0", b"1", b"2", b"3", b"4"]
    # amqtt quirk: messages kept for an absent session are delivered with the retain flag set
    assert all(m.retain for m in received)


def test_retained_messages_reach_later_subscribers(broker: EmbeddedMqttBroker) -> None:
    tag = unique()
    pub = Client(broker, f"pub-{tag}", clean=True).connect()
    late = Client(broker, f"late-{tag}", clean=True).connect()
    try:
        pub.publish(f"{tag}/state", b"ISSUED", retain=True)
        late.subscribe(f"{tag}/state")
        (kept,) = late.wait_for(1)
        pub.publish(f"{tag}/state", b"", retain=True)
    finally:
        pub.close()
        late.close()

    assert (kept.payload, kept.retain) == (b"ISSUED", True)


def test_mqtt_v5_clients_are_refused(broker: EmbeddedMqttBroker) -> None:
    # (with a user name amqtt misreads the v5 CONNECT and sends no CONNACK at all)
    v5 = Client(broker, f"v5-{unique()}", clean=True, protocol=mqtt.MQTTv5, username=None)
    v5.paho.connect(broker.host, broker.port)
    v5.paho.loop_start()
    try:
        assert v5.connack.wait(WAIT_S)
    finally:
        v5.paho.loop_stop()

    assert v5.reason.is_failure
    assert "Unsupported protocol version" in str(v5.reason)


def test_stop_frees_the_port_and_a_taken_port_is_refused() -> None:
    port = free_port()
    with EmbeddedMqttBroker(port=port) as embedded:
        assert accepts_connections(embedded.host, port)
        with pytest.raises(RuntimeError, match="already taken"):
            EmbeddedMqttBroker(port=port).start()

    assert not accepts_connections("127.0.0.1", port)
