from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes

from iot_sync.adapters.mqtt.envelope import (
    EnvelopeCodec,
    V5Properties,
    new_properties,
    wire_varint,
)
from iot_sync.adapters.mqtt.topics import TopicScheme
from iot_sync.app.signals import (
    Actor,
    FieldMessage,
    FieldMessageKind,
    MalformedSignal,
    Signal,
    SourceKind,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CALL = "call/abs/station/ST-1/authorize"
TELEMETRY = "dt/arm/gps/eu/ber-01/BAT-7"
SCAN = "emit/abs/personnel/P-9/asset_scan"
TP_ENVELOPE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TP_PROPERTY = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

codec = EnvelopeCodec(topics=TopicScheme(), max_payload_bytes=1024)


def envelope(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg-1",
        "ts": "2025-06-01T11:59:58+00:00",
        "seq": 41,
        "actor": {"kind": "station", "id": "ST-1"},
        "correlation_id": "corr-envelope",
        "traceparent": TP_ENVELOPE,
        "data": {"customer_id": "C-1"},
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def decode(
    topic: str, body: object, properties: V5Properties | None = None
) -> Signal | MalformedSignal:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return codec.decode(topic, payload, properties, received_at=NOW)


def rejected(item: Signal | MalformedSignal) -> MalformedSignal:
    assert isinstance(item, MalformedSignal), item
    return item


def test_a_station_call_becomes_a_signal_with_every_envelope_field() -> None:
    signal = decode(CALL, envelope(expiry=30))

    assert signal == Signal(
        message_id="msg-1",
        topic=CALL,
        source_kind=SourceKind.STATION,
        source_id="ST-1",
        verb="authorize",
        sent_at=datetime(2025, 6, 1, 11, 59, 58, tzinfo=UTC),
        seq=41,
        data={"customer_id": "C-1"},
        received_at=NOW,
        actor=Actor(kind="station", id="ST-1"),
        correlation_id="corr-envelope",
        traceparent=TP_ENVELOPE,
        reply_to=None,
        expires_at=datetime(2025, 6, 1, 12, 0, 28, tzinfo=UTC),
    )


def test_telemetry_carries_region_site_and_its_type() -> None:
    heartbeat = decode(TELEMETRY, envelope(type="heartbeat", actor=...))
    telemetry = decode(TELEMETRY, envelope(actor=...))

    assert isinstance(heartbeat, Signal)
    assert isinstance(telemetry, Signal)
    assert (heartbeat.source_kind, heartbeat.source_id, heartbeat.verb) == (
        SourceKind.GPS,
        "BAT-7",
        "heartbeat",
    )
    assert (heartbeat.region, heartbeat.site, heartbeat.actor) == ("eu", "ber-01", None)
    assert telemetry.verb == "telemetry"


def test_a_personnel_action_needs_no_seq_and_a_naive_ts_is_utc() -> None:
    signal = decode(SCAN, envelope(seq=..., ts="2025-06-01T10:00:00"))

    assert isinstance(signal, Signal)
    assert signal.seq is None
    assert signal.sent_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def test_v5_properties_win_over_the_envelope() -> None:
    properties = V5Properties(
        correlation_data=b"corr-v5",
        response_topic="stations/ST-1/replies",
        traceparent=TP_PROPERTY,
        message_expiry_s=5,
    )

    signal = decode(CALL, envelope(expiry=300), properties)

    assert isinstance(signal, Signal)
    assert signal.correlation_id == "corr-v5"
    assert signal.traceparent == TP_PROPERTY
    assert signal.reply_to == "stations/ST-1/replies"
    assert signal.expires_at == NOW + timedelta(seconds=5)


def test_absent_v5_properties_leave_the_envelope_values() -> None:
    signal = decode(CALL, envelope(), V5Properties(response_topic="r/1"))

    assert isinstance(signal, Signal)
    assert (signal.correlation_id, signal.traceparent) == ("corr-envelope", TP_ENVELOPE)
    assert signal.reply_to == "r/1"


def test_paho_properties_are_read_into_v5_properties() -> None:
    props = new_properties(PacketTypes.PUBLISH)
    props.CorrelationData = b"c-1"
    props.ResponseTopic = "r/t"
    props.UserProperty = ("other", "x")
    props.UserProperty = ("traceparent", TP_PROPERTY)
    props.MessageExpiryInterval = 7

    assert V5Properties.from_paho(props) == V5Properties(b"c-1", "r/t", TP_PROPERTY, 7)
    assert V5Properties.from_paho(new_properties(PacketTypes.PUBLISH)) is None
    assert V5Properties.from_paho(None) is None


def wire(props: Any) -> bytes:
    """paho's encoding of `props` without the leading property length."""
    packed = props.pack()
    _, start = wire_varint(packed, 0)
    return packed[start:]


def test_wire_properties_read_as_paho_reads_them() -> None:
    props = new_properties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 1
    props.ContentType = "application/json"
    props.CorrelationData = b"c-1"
    props.ResponseTopic = "r/t"
    props.UserProperty = ("other", "x")
    props.UserProperty = ("traceparent", TP_PROPERTY)
    props.MessageExpiryInterval = 70_000  # more than two bytes
    props.SubscriptionIdentifier = 300  # a two-byte variable integer
    props.TopicAlias = 3

    read = V5Properties.from_wire(wire(props))

    assert read == V5Properties(b"c-1", "r/t", TP_PROPERTY, 70_000)
    assert read == V5Properties.from_paho(props)


def test_wire_properties_without_the_mirrored_four_are_none() -> None:
    props = new_properties(PacketTypes.PUBLISH)
    props.UserProperty = ("tenant", "t-1")
    props.PayloadFormatIndicator = 1

    assert V5Properties.from_wire(wire(props)) is None
    assert V5Properties.from_wire(b"") is None


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x11\x00\x00\x00\x05", "0x11 is not a PUBLISH property"),  # session expiry
        (b"\x02\x00\x00", "end inside a property"),  # expiry cut short
        (b"\x08\x00\x09r/t", "longer than its packet"),
        (b"\x0b\x80\x80\x80\x80\x01", "longer than four bytes"),
    ],
)
def test_unreadable_wire_properties_are_refused(raw: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        V5Properties.from_wire(raw)


def test_decode_wire_reads_topic_and_properties_from_their_bytes() -> None:
    props = new_properties(PacketTypes.PUBLISH)
    props.CorrelationData = b"corr-v5"
    payload = json.dumps(envelope()).encode()

    signal = codec.decode_wire(CALL.encode(), payload, wire(props), NOW)

    assert isinstance(signal, Signal)
    assert (signal.topic, signal.correlation_id) == (CALL, "corr-v5")
    assert signal == codec.decode(CALL, payload, V5Properties(b"corr-v5"), received_at=NOW)


def test_decode_wire_refuses_a_non_utf8_topic_and_unreadable_properties() -> None:
    payload = json.dumps(envelope()).encode()

    bad_topic = rejected(codec.decode_wire(b"call/abs/\xff", payload, b"", NOW))
    bad_props = rejected(codec.decode_wire(CALL.encode(), payload, b"\x09\x00", NOW))

    assert (bad_topic.reason, bad_topic.detail) == ("unknown_topic", "topic is not UTF-8")
    assert bad_topic.topic == "call/abs/\\xff"
    assert bad_props.reason == "malformed_properties"
    assert bad_props.detail.startswith("MQTT v5 properties cannot be read")
    assert bad_props.topic == CALL


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "words"),
    [
        (CALL, b"{not json", "malformed_json", "not UTF-8 JSON"),
        (CALL, b"\xff\xfe\x00", "malformed_json", "not UTF-8 JSON"),
        (CALL, b"", "malformed_json", "not UTF-8 JSON"),
        (CALL, b"[1, 2]", "wrong_type", "envelope must be a JSON object, not an array"),
        ("call/abs/station/ST-1/reboot", b"{}", "unknown_topic", "call/abs/station/ST-1/reboot"),
        ("weird/topic", b"{}", "unknown_topic", "weird/topic"),
    ],
)
def test_unreadable_payloads_and_unknown_topics_are_malformed(
    topic: str, payload: bytes, reason: str, words: str
) -> None:
    item = rejected(decode(topic, payload))

    assert item.reason == reason
    assert words in item.detail
    assert item.topic == topic
    assert item.received_at == NOW


@pytest.mark.parametrize(
    ("topic", "changes", "reason", "field"),
    [
        (CALL, {"id": ...}, "missing_field", "'id'"),
        (CALL, {"id": None}, "missing_field", "'id'"),
        (CALL, {"ts": ...}, "missing_field", "'ts'"),
        (CALL, {"seq": ...}, "missing_field", "'seq'"),
        (TELEMETRY, {"seq": ...}, "missing_field", "'seq'"),
        (CALL, {"data": ...}, "missing_field", "'data'"),
        (CALL, {"actor": {"id": "x"}}, "missing_field", "'actor.kind'"),
        (CALL, {"id": 7}, "wrong_type", "'id' must be a string, not a number"),
        (CALL, {"id": ""}, "wrong_type", "'id' must not be empty"),
        (CALL, {"ts": "yesterday"}, "wrong_type", "'ts' is not an ISO-8601 timestamp"),
        (CALL, {"ts": 1717243198}, "wrong_type", "'ts' must be a string"),
        (CALL, {"seq": "41"}, "wrong_type", "'seq' must be a non-negative integer"),
        (CALL, {"seq": True}, "wrong_type", "'seq' must be a non-negative integer"),
        (CALL, {"seq": -1}, "wrong_type", "'seq' must be a non-negative integer"),
        (CALL, {"seq": 4.5}, "wrong_type", "'seq' must be a non-negative integer"),
        (CALL, {"data": [1]}, "wrong_type", "'data' must be an object, not an array"),
        (CALL, {"data": None}, "wrong_type", "'data' must be an object, not null"),
        (CALL, {"actor": "ST-1"}, "wrong_type", "'actor' must be an object, not a string"),
        (CALL, {"actor": {"kind": "x", "id": 3}}, "wrong_type", "'actor.id' must be a string"),
        (CALL, {"correlation_id": 5}, "wrong_type", "'correlation_id' must be a string"),
        (CALL, {"traceparent": {}}, "wrong_type", "'traceparent' must be a string"),
        (CALL, {"expiry": "soon"}, "wrong_type", "'expiry' must be a non-negative integer"),
        (TELEMETRY, {"type": "gossip"}, "wrong_type", "'type' must be one of"),
    ],
)
def test_missing_and_mistyped_fields_are_named(
    topic: str, changes: dict[str, Any], reason: str, field: str
) -> None:
    item = rejected(decode(topic, envelope(**changes)))

    assert item.reason == reason
    assert field in item.detail
    assert item.source_id in {"ST-1", "BAT-7"}


def test_a_malformed_signal_keeps_the_id_when_it_could_be_read() -> None:
    item = rejected(decode(CALL, envelope(seq="x")))

    assert item.message_id == "msg-1"
    assert item.payload_excerpt.startswith('{"id": "msg-1"')


def test_an_oversize_payload_is_refused_before_parsing_and_names_the_limit() -> None:
    payload = json.dumps(envelope(data={"blob": "x" * 2000})).encode()

    item = rejected(codec.decode(CALL, payload, received_at=NOW))

    assert item.reason == "oversize_payload"
    assert f"{len(payload)} bytes" in item.detail
    assert "1024 bytes" in item.detail
    assert len(item.payload_excerpt) <= 200


def test_a_payload_exactly_at_the_limit_is_accepted() -> None:
    body = envelope()
    body["data"] = {"pad": ""}
    size = len(json.dumps(body).encode())
    body["data"] = {"pad": "x" * (1024 - size)}
    payload = json.dumps(body).encode()

    assert len(payload) == 1024
    assert isinstance(codec.decode(CALL, payload, received_at=NOW), Signal)


def reply(**changes: Any) -> FieldMessage:
    base: dict[str, Any] = {
        "kind": FieldMessageKind.STATION_REPLY,
        "subject": "ST-1",
        "name": "authorize",
        "data": {"decision": "GRANTED", "battery_id": "BAT-7"},
        "message_id": "out-1",
        "correlation_id": "corr-1",
    }
    base.update(changes)
    return FieldMessage(**base)


def test_encode_v5_puts_the_same_fields_in_envelope_and_properties() -> None:
    out = EnvelopeCodec(topics=TopicScheme(), v5=True, message_expiry_s=300).encode(
        reply(), traceparent=TP_PROPERTY, now=NOW
    )

    assert (out.topic, out.qos, out.retain) == ("rtrn/abs/station/ST-1/authorize", 1, False)
    assert json.loads(out.payload) == {
        "id": "out-1",
        "ts": "2025-06-01T12:00:00+00:00",
        "actor": {"kind": "service", "id": "iot-sync"},
        "data": {"decision": "GRANTED", "battery_id": "BAT-7"},
        "correlation_id": "corr-1",
        "traceparent": TP_PROPERTY,
        "expiry": 300,
    }
    assert out.properties is not None
    assert out.properties.CorrelationData == b"corr-1"
    assert out.properties.UserProperty == [("traceparent", TP_PROPERTY)]
    assert out.properties.MessageExpiryInterval == 300


def test_encode_for_311_has_no_properties_and_uses_the_messages_own_trace() -> None:
    out = EnvelopeCodec(topics=TopicScheme(), v5=False).encode(
        reply(traceparent=TP_ENVELOPE), now=NOW
    )

    assert out.properties is None
    assert json.loads(out.payload)["traceparent"] == TP_ENVELOPE


def test_service_state_is_retained_and_never_expires() -> None:
    state = FieldMessage(
        kind=FieldMessageKind.SERVICE_STATE,
        subject="SVC-1",
        name="",
        data={"state": "BATTERY_ISSUED"},
        message_id="st-1",
    )

    out = EnvelopeCodec(topics=TopicScheme(), v5=True).encode(state, now=NOW)

    assert (out.topic, out.retain) == ("stat/abs/service/SVC-1", True)
    assert "expiry" not in json.loads(out.payload)
    assert out.properties is not None
    assert not hasattr(out.properties, "MessageExpiryInterval")


def test_encode_then_decode_keeps_data_ids_and_trace_under_a_prefix() -> None:
    scheme = TopicScheme("t1")
    scan = FieldMessage(
        kind=FieldMessageKind.PERSONNEL_ECHO,
        subject="P-9",
        name="asset_scan",
        data={"accepted": True},
        message_id="e-1",
        correlation_id="c-9",
        extra={"seq": 3, "id": "must-not-override"},
    )
    out = EnvelopeCodec(topics=scheme).encode(scan, traceparent=TP_PROPERTY, now=NOW)
    # an echo is outbound; read it back as if it had come in on the matching inbound topic
    inbound = scheme.personnel_action("P-9", "asset_scan")

    signal = EnvelopeCodec(topics=scheme).decode(inbound, out.payload, received_at=NOW)

    assert out.topic == "t1/echo/abs/personnel/P-9/asset_scan"
    assert isinstance(signal, Signal)
    assert (signal.message_id, signal.seq, signal.correlation_id) == ("e-1", 3, "c-9")
    assert signal.data == {"accepted": True}
    assert signal.traceparent == TP_PROPERTY
