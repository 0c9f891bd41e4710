"""Calls and their answers, v5 properties against the 3.1.1 envelope, trace context, retain."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from paho.mqtt.packettypes import PacketTypes

from fleetops_common.telemetry import context_from, setup_tracing
from iot_sync.adapters.mqtt.consumer import MqttConnectError, MqttSignalConsumer
from iot_sync.adapters.mqtt.envelope import new_properties
from iot_sync.adapters.mqtt.publisher import MqttFieldPublisher, MqttPublishError
from iot_sync.adapters.mqtt.topics import TopicScheme
from iot_sync.app.signals import FieldMessage, FieldMessageKind, MalformedSignal, Signal

from .conftest import Broker, Collector, FieldDevice, MakeSettings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
DEVICE_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{DEVICE_SPAN}-01"


def authorize(message_id: str, **extra: object) -> bytes:
    return json.dumps(
        {
            "id": message_id,
            "ts": "2025-06-01T12:00:00Z",
            "seq": 7,
            "actor": {"kind": "station", "id": "ST-1"},
            "data": {"customer_id": "C-1"},
            **extra,
        }
    ).encode()


def granted(call: Signal) -> FieldMessage:
    return FieldMessage(
        kind=FieldMessageKind.STATION_REPLY,
        subject=call.source_id,
        name=call.verb,
        data={"decision": "GRANTED", "battery_id": "BAT-7"},
        message_id=f"reply-{call.message_id}",
        correlation_id=call.correlation_id,
        reply_to=call.reply_to,
        traceparent=call.traceparent,
    )


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_tracing("iot-sync-test", span_exporter=exporter)
    yield exporter
    exporter.shutdown()  # the processor stays on the global provider: stop collecting


def test_a_v5_call_is_answered_on_its_response_topic_with_its_correlation_data(
    v5_broker: Broker,
    mqtt_settings: MakeSettings,
    collector: Collector,
    field_device: Callable[..., FieldDevice],
) -> None:
    settings = mqtt_settings(protocol="5")
    scheme = TopicScheme(settings.topic_prefix)
    station = field_device(protocol="5")
    inbox = f"{settings.topic_prefix}/stations/ST-1/inbox"
    station.subscribe(inbox)
    props = new_properties(PacketTypes.PUBLISH)
    props.CorrelationData = b"corr-v5"
    props.ResponseTopic = inbox
    props.UserProperty = ("traceparent", TRACEPARENT)
    props.MessageExpiryInterval = 60

    with MqttSignalConsumer(settings, collector), MqttFieldPublisher(settings) as publisher:
        station.publish(
            scheme.station_call("ST-1", "authorize"),
            authorize("call-1", correlation_id="corr-envelope"),
            properties=props,
        )
        (call,) = collector.wait_for(1)
        assert isinstance(call, Signal)
        publisher.publish([granted(call)])
        (answer,) = station.wait_for(1)

    assert call.correlation_id == "corr-v5"  # the property wins over the envelope
    assert call.reply_to == inbox
    assert call.traceparent is not None and call.traceparent.split("-")[1] == TRACE_ID
    assert call.expires_at is not None
    assert answer.topic == inbox
    assert answer.properties is not None
    assert answer.properties.CorrelationData == b"corr-v5"  # type: ignore[attr-defined]
    envelope = json.loads(answer.payload)
    assert envelope["correlation_id"] == "corr-v5"
    assert envelope["data"] == {"decision": "GRANTED", "battery_id": "BAT-7"}
    assert envelope["id"] == "reply-call-1"


@pytest.mark.parametrize("broker_kind", ["main", "amqtt"])
def test_a_311_station_with_only_the_envelope_gets_its_answer_on_the_rtrn_twin(
    broker_kind: str,
    mqtt_broker: Broker,
    request: pytest.FixtureRequest,
    mqtt_settings: MakeSettings,
    collector: Collector,
    field_device: Callable[..., FieldDevice],
) -> None:
    broker = mqtt_broker if broker_kind == "main" else request.getfixturevalue("amqtt_broker")
    settings = mqtt_settings(protocol="3.1.1", broker=broker)
    scheme = TopicScheme(settings.topic_prefix)
    station = field_device(protocol="3.1.1", broker=broker)
    station.subscribe(scheme.station_reply("ST-1", "authorize"))

    with MqttSignalConsumer(settings, collector), MqttFieldPublisher(settings) as publisher:
        station.publish(
            scheme.station_call("ST-1", "authorize"),
            authorize("call-2", correlation_id="corr-311", traceparent=TRACEPARENT),
        )
        (call,) = collector.wait_for(1)
        assert isinstance(call, Signal)
        publisher.publish([granted(call)])
        (answer,) = station.wait_for(1)

    assert (call.correlation_id, call.reply_to) == ("corr-311", None)
    assert call.traceparent is not None and call.traceparent.split("-")[1] == TRACE_ID
    assert answer.topic == scheme.station_reply("ST-1", "authorize")
    envelope = json.loads(answer.payload)
    assert envelope["correlation_id"] == "corr-311"
    assert envelope["traceparent"].split("-")[1] == TRACE_ID


def test_the_trace_of_a_signal_reaches_what_the_handler_does_and_what_it_publishes(
    v5_broker: Broker,
    mqtt_settings: MakeSettings,
    field_device: Callable[..., FieldDevice],
    spans: InMemorySpanExporter,
) -> None:
    settings = mqtt_settings(protocol="5")
    scheme = TopicScheme(settings.topic_prefix)
    station = field_device(protocol="5")
    station.subscribe(scheme.station_reply("ST-1", "dispense_confirm"))
    tracer = trace.get_tracer("test")
    collector = Collector()
    publisher = MqttFieldPublisher(settings)

    def apply(items: Sequence[Signal | MalformedSignal]) -> None:
        # what a use case does: continue the signal's trace, change state, answer
        for item in items:
            assert isinstance(item, Signal) and item.traceparent
            ctx = context_from({"traceparent": item.traceparent})
            with tracer.start_as_current_span("apply BATTERY_ISSUED", context=ctx):
                # no stored trace on the message: the publisher takes the current span's
                publisher.publish([replace(granted(item), traceparent=None)])

    collector.on_batch = apply
    props = new_properties(PacketTypes.PUBLISH)
    props.UserProperty = ("traceparent", TRACEPARENT)
    spans.clear()
    with publisher, MqttSignalConsumer(settings, collector):
        station.publish(
            scheme.station_call("ST-1", "dispense_confirm"),
            # the user property wins over a different envelope trace
            authorize("call-3", traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"),
            properties=props,
        )
        (answer,) = station.wait_for(1)

    finished = {span.name: span for span in spans.get_finished_spans()}
    receive, applied, sent = (
        finished["iot-sync receive"],
        finished["apply BATTERY_ISSUED"],
        finished["iot-sync publish"],
    )
    assert receive.kind is trace.SpanKind.CONSUMER
    assert receive.parent is not None and format(receive.parent.span_id, "016x") == DEVICE_SPAN
    for span in (receive, applied, sent):
        assert format(span.context.trace_id, "032x") == TRACE_ID
    assert applied.parent is not None and applied.parent.span_id == receive.context.span_id
    assert sent.parent is not None and sent.parent.span_id == applied.context.span_id
    assert answer.properties is not None
    assert dict(answer.properties.UserProperty)["traceparent"].split("-")[1] == TRACE_ID  # type: ignore[attr-defined]
    assert json.loads(answer.payload)["traceparent"].split("-")[1] == TRACE_ID


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_service_state_is_retained_for_whoever_subscribes_later(
    protocol: str,
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    field_device: Callable[..., FieldDevice],
) -> None:
    if protocol == "5" and not mqtt_broker.speaks_v5:
        pytest.skip("amqtt speaks only 3.1.1")
    settings = mqtt_settings(protocol=protocol)
    topic = TopicScheme(settings.topic_prefix).service_state("SVC-1")
    state = FieldMessage(
        kind=FieldMessageKind.SERVICE_STATE,
        subject="SVC-1",
        name="",
        data={"state": "BATTERY_ISSUED", "battery_id": "BAT-7"},
        message_id="state-1",
    )
    with MqttFieldPublisher(settings) as publisher:
        publisher.publish([state])
        try:
            late = field_device(protocol=protocol)
            late.subscribe(topic)
            (kept,) = late.wait_for(1)
        finally:
            publisher._client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)

    assert kept.retain
    assert json.loads(kept.payload)["data"]["state"] == "BATTERY_ISSUED"


def test_publishers_of_processes_sharing_settings_do_not_disconnect_each_other(
    mqtt_broker: Broker,
    mqtt_settings: MakeSettings,
    field_device: Callable[..., FieldDevice],
) -> None:
    # The API process and `iot-sync consume` are configured alike; each has a publisher.
    settings = mqtt_settings(protocol="5" if mqtt_broker.speaks_v5 else "3.1.1")
    topic = TopicScheme(settings.topic_prefix).customer_notice("C-1", "battery_issued")
    listener = field_device(protocol=settings.protocol)
    listener.subscribe(topic)

    def notice(n: int) -> FieldMessage:
        return FieldMessage(
            kind=FieldMessageKind.CUSTOMER_NOTICE,
            subject="C-1",
            name="battery_issued",
            data={"n": n},
            message_id=f"notice-{n}",
        )

    with MqttFieldPublisher(settings) as first, MqttFieldPublisher(settings) as second:
        for n in range(0, 6, 2):
            first.publish([notice(n)])
            second.publish([notice(n + 1)])
            time.sleep(0.3)  # long enough for a kicked-off client to come back and kick
        assert first._client.is_connected() and second._client.is_connected()
    received = listener.wait_for(6)
    assert sorted(json.loads(m.payload)["data"]["n"] for m in received) == list(range(6))


def test_publish_raises_a_clear_error_when_it_cannot_be_confirmed(
    mqtt_settings: MakeSettings,
) -> None:
    settings = mqtt_settings()
    message = FieldMessage(
        kind=FieldMessageKind.ERROR,
        subject="unknown",
        name="x",
        data={"reason": "malformed_json"},
        message_id="err-1",
    )
    unreachable = settings.model_copy(update={"port": 1, "connect_timeout_s": 0.5})

    with pytest.raises(MqttConnectError, match=re.escape("to 127.0.0.1:1") + "$"):
        MqttFieldPublisher(unreachable).start()
    with pytest.raises(MqttPublishError) as raised:
        MqttFieldPublisher(settings).publish([message])
    assert raised.value.unconfirmed == ("err-1",)
