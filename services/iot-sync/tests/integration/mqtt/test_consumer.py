"""The consumer on a real broker: sessions, acknowledgements, redelivery, sharing, bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from iot_sync.adapters.mqtt.consumer import MqttSignalConsumer
from iot_sync.adapters.mqtt.topics import TopicScheme
from iot_sync.app.signals import MalformedSignal, Signal

from .conftest import WAIT_S, Broker, Collector, FieldDevice, MakeSettings

BOTH = pytest.mark.parametrize("protocol", ["5", "3.1.1"])


def body(i: int, **extra: Any) -> bytes:
    return json.dumps(
        {"id": f"m{i}", "ts": "2025-06-01T12:00:00Z", "seq": i, "data": {"soc": i}, **extra}
    ).encode()


def telemetry_topic(prefix: str, device: str = "BAT-1") -> str:
    return TopicScheme(prefix).telemetry(app="bms", region="eu", site="s1", device_id=device)


def needs_redelivery(broker: Broker) -> None:
    if broker.kind == "amqtt":
        pytest.skip("amqtt does not resend unacknowledged messages on reconnect")


@BOTH
def test_signals_published_while_the_consumer_was_away_arrive_when_it_returns(
    protocol: str,
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    collector: Collector,
    field_device: Callable[..., FieldDevice],
) -> None:
    if protocol == "5" and not mqtt_broker.speaks_v5:
        pytest.skip("amqtt speaks only 3.1.1")
    settings = mqtt_settings(protocol=protocol)
    topic = telemetry_topic(settings.topic_prefix)
    # Given a consumer that subscribed once and went away without ending its session
    with MqttSignalConsumer(settings, collector):
        pass
    device = field_device(protocol="3.1.1")
    for i in range(20):
        device.publish(topic, body(i))

    # When it comes back under the same client id
    with MqttSignalConsumer(settings, collector):
        items = collector.wait_for(20)

    # Then every signal sent meanwhile arrives, in order
    assert [item.message_id for item in items] == [f"m{i}" for i in range(20)]


@BOTH
def test_a_batch_whose_handler_raises_comes_again_and_nothing_is_lost(
    protocol: str,
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    collector: Collector,
    field_device: Callable[..., FieldDevice],
) -> None:
    needs_redelivery(mqtt_broker)
    settings = mqtt_settings(protocol=protocol, batch_max_wait_s=0.05)
    topic = telemetry_topic(settings.topic_prefix)
    device = field_device(protocol="3.1.1")
    collector.fail_next = 2
    with MqttSignalConsumer(settings, collector) as consumer:
        for i in range(10):
            device.publish(topic, body(i))
        collector.wait_failures_done()
        items = collector.wait_for(10)
        stats = consumer.stats

    assert sorted({item.message_id or "" for item in items}) == sorted(f"m{i}" for i in range(10))
    assert stats.failed_batches == 2
    assert stats.connects >= 3  # the first connection and one per refused batch


@BOTH
def test_a_message_is_acknowledged_only_after_the_handler_returned(
    protocol: str,
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    field_device: Callable[..., FieldDevice],
) -> None:
    needs_redelivery(mqtt_broker)
    settings = mqtt_settings(protocol=protocol)
    topic = telemetry_topic(settings.topic_prefix)
    entered, release = threading.Event(), threading.Event()
    stuck = Collector()
    stuck.on_batch = lambda _items: (entered.set(), release.wait(WAIT_S))  # type: ignore[func-returns-value]
    successor = Collector()
    device = field_device(protocol="3.1.1")
    first = MqttSignalConsumer(settings, stuck)
    first.start()
    try:
        # Given a handler that is still busy with the batch holding m0
        device.publish(topic, body(0))
        assert entered.wait(WAIT_S)

        # When another process takes the session over before that handler returns
        with MqttSignalConsumer(settings, successor):
            # Then the broker sends m0 again: it had not been acknowledged
            items = successor.wait_for(1)
            release.set()
            device.publish(topic, body(1))
            items = successor.wait_for(2)
    finally:
        release.set()
        first.stop()

    assert [item.message_id for item in items][:2] == ["m0", "m1"]


def test_stop_finishes_the_batch_in_hand_and_acknowledges_it(
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    field_device: Callable[..., FieldDevice],
) -> None:
    settings = mqtt_settings()
    topic = telemetry_topic(settings.topic_prefix)
    entered, release = threading.Event(), threading.Event()
    first = Collector()
    first.on_batch = lambda _items: (entered.set(), release.wait(WAIT_S))  # type: ignore[func-returns-value]
    device = field_device(protocol="3.1.1")
    consumer = MqttSignalConsumer(settings, first)
    consumer.start()
    device.publish(topic, body(0))
    assert entered.wait(WAIT_S)

    stopping = threading.Thread(target=consumer.stop)
    stopping.start()
    release.set()
    stopping.join(WAIT_S)
    assert not stopping.is_alive()

    # the session is kept: a marker sent now arrives, and m0 does not come back before it
    device.publish(topic, body(1))
    again = Collector()
    with MqttSignalConsumer(settings, again):
        items = again.wait_for(1)
    assert [item.message_id for item in first.items] == ["m0"]
    assert [item.message_id for item in items] == ["m1"]


@BOTH
def test_two_consumers_in_a_shared_subscription_split_the_signals_without_duplicates(
    protocol: str,
    v5_broker: Broker,
    mqtt_settings: MakeSettings,
    field_device: Callable[..., FieldDevice],
) -> None:
    both, a, b = Collector(), Collector(), Collector()
    a.on_batch = b.on_batch = both
    group = f"iot-sync-{mqtt_settings(name='group').topic_prefix}"
    settings_a = mqtt_settings(protocol=protocol, name="a", shared_group=group)
    settings_b = mqtt_settings(protocol=protocol, name="b", shared_group=group)
    topic = telemetry_topic(settings_a.topic_prefix)
    device = field_device(protocol="3.1.1")
    with MqttSignalConsumer(settings_a, a), MqttSignalConsumer(settings_b, b):
        for i in range(100):
            device.publish(topic, body(i))
        both.wait_for(100)

    ids_a, ids_b = set(a.ids()), set(b.ids())
    assert len(a.items) + len(b.items) == 100
    assert ids_a | ids_b == {f"m{i}" for i in range(100)}
    assert not ids_a & ids_b
    assert ids_a and ids_b


@BOTH
def test_bad_input_becomes_malformed_signals_and_the_consumer_keeps_going(
    protocol: str,
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    collector: Collector,
    field_device: Callable[..., FieldDevice],
) -> None:
    if protocol == "5" and not mqtt_broker.speaks_v5:
        pytest.skip("amqtt speaks only 3.1.1")
    settings = mqtt_settings(protocol=protocol, max_payload_bytes=512)
    scheme = TopicScheme(settings.topic_prefix)
    call = scheme.station_call("ST-1", "authorize")
    device = field_device(protocol="3.1.1")
    sent = [
        (call, b"{oops"),
        (f"{settings.topic_prefix}/call/abs/station/ST-1/reboot", body(1)),
        (call, json.dumps({"ts": "2025-06-01T12:00:00Z", "seq": 1, "data": {}}).encode()),
        (call, body(2, data=[1, 2])),
        (call, body(3, data={"blob": "x" * 600})),
        (call, body(4)),
    ]
    with MqttSignalConsumer(settings, collector):
        for topic, payload in sent:
            device.publish(topic, payload)
        items = collector.wait_for(len(sent))

    reasons = [item.reason if isinstance(item, MalformedSignal) else "ok" for item in items]
    assert reasons == [
        "malformed_json",
        "unknown_topic",
        "missing_field",
        "wrong_type",
        "oversize_payload",
        "ok",
    ]
    last = items[-1]
    assert isinstance(last, Signal)
    assert last.message_id == "m4"
