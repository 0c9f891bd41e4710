"""Bytes on a topic ⇄ `Signal` / `FieldMessage`: the JSON envelope and the MQTT v5 properties.

Envelope (docs/topics.md): `id`, `ts`, `seq`, `actor`, `correlation_id`, `traceparent`,
`expiry`, `type` (dt/ only), `data`. Where the message came with MQTT v5 properties they win
over the envelope: correlation data over `correlation_id`, the `traceparent` user property
over `traceparent`, the message expiry interval over `expiry`; the response topic has no
envelope twin (a 3.1.1 caller gets its answer on the `rtrn/…` twin of its call topic).

Decoding never raises: whatever cannot become a `Signal` becomes a `MalformedSignal` whose
`reason` is one of `REASONS` and whose `detail` names the field or the limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iot_sync.adapters.mqtt.topics import TopicScheme
from iot_sync.app.signals import (
    Actor,
    FieldMessage,
    FieldMessageKind,
    MalformedSignal,
    Signal,
    SourceKind,
)

MALFORMED_JSON = "malformed_json"
UNKNOWN_TOPIC = "unknown_topic"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
OVERSIZE_PAYLOAD = "oversize_payload"
MALFORMED_PROPERTIES = "malformed_properties"
REASONS = (
    MALFORMED_JSON,
    UNKNOWN_TOPIC,
    MISSING_FIELD,
    WRONG_TYPE,
    OVERSIZE_PAYLOAD,
    MALFORMED_PROPERTIES,
)

TELEMETRY_TYPES = frozenset({"telemetry", "heartbeat"})
SERVICE_ACTOR = {"kind": "service", "id": "iot-sync"}
_EXCERPT = 200


def new_properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class V5Properties:
    """The MQTT v5 PUBLISH properties the envelope mirrors; None when absent."""

    correlation_data: bytes | None = None
    response_topic: str | None = None
    traceparent: str | None = None
    message_expiry_s: int | None = None

    @staticmethod
    def from_paho(properties: Properties | None) -> V5Properties | None:
        if properties is None:
            return None
        # paho keeps each property that was present as an instance attribute
        present = vars(properties)
        traceparent = None
        for key, value in present.get("UserProperty", ()):
            if key == "traceparent":
                traceparent = value
        correlation = present.get("CorrelationData")
        response = present.get("ResponseTopic")
        expiry = present.get("MessageExpiryInterval")
        if correlation is None and response is None and traceparent is None and expiry is None:
            return None
        return V5Properties(correlation, response, traceparent, expiry)

    @staticmethod
    def from_wire(raw: bytes) -> V5Properties | None:
        """The properties of a PUBLISH as they came off the wire (without their length).

        Reads the four the envelope mirrors and steps over the other PUBLISH properties
        (MQTT 5.0, 3.3.2.3); raises ValueError on an identifier a PUBLISH cannot carry or
        on bytes that end inside a property.
        """
        if not raw:
            return None
        correlation = response = traceparent = None
        expiry: int | None = None
        pos, end = 0, len(raw)
        while pos < end:
            ident = raw[pos]
            pos += 1
            if ident == 0x26:  # user property: two strings
                key, pos = _wire_string(raw, pos)
                value, pos = _wire_string(raw, pos)
                if key == b"traceparent":
                    traceparent = value.decode("utf-8")
            elif ident == 0x09:  # correlation data
                correlation, pos = _wire_string(raw, pos)
            elif ident == 0x08:  # response topic
                topic, pos = _wire_string(raw, pos)
                response = topic.decode("utf-8")
            elif ident == 0x02:  # message expiry interval: four bytes
                expiry = int.from_bytes(raw[pos : pos + 4], "big")
                pos += 4
            elif ident == 0x01:  # payload format indicator: one byte
                pos += 1
            elif ident == 0x23:  # topic alias: two bytes
                pos += 2
            elif ident == 0x03:  # content type
                _, pos = _wire_string(raw, pos)
            elif ident == 0x0B:  # subscription identifier: variable byte integer
                _, pos = wire_varint(raw, pos)
            else:
                raise ValueError(f"property 0x{ident:02x} is not a PUBLISH property")
        if pos != end:
            raise ValueError("PUBLISH properties end inside a property")
        if correlation is None and response is None and traceparent is None and expiry is None:
            return None
        return V5Properties(correlation, response, traceparent, expiry)


def wire_varint(raw: bytes, pos: int) -> tuple[int, int]:
    """An MQTT variable byte integer at `pos`: its value and the position after it."""
    value = shift = 0
    for _ in range(4):
        byte = raw[pos]  # IndexError past the end: the caller's bytes are short
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("variable byte integer longer than four bytes")


def _wire_string(raw: bytes, pos: int) -> tuple[bytes, int]:
    """A two-byte length and that many bytes (UTF-8 string or binary data)."""
    start = pos + 2
    end = start + int.from_bytes(raw[pos:start], "big")
    if end > len(raw):
        raise ValueError("PUBLISH property longer than its packet")
    return raw[start:end], end


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties | None  # None on 3.1.1 sessions


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail


class EnvelopeCodec:
    def __init__(
        self,
        *,
        topics: TopicScheme,
        max_payload_bytes: int = 64 * 1024,
        v5: bool = True,
        message_expiry_s: int | None = 300,
    ) -> None:
        self._topics = topics
        self._max_payload = max_payload_bytes
        self._v5 = v5
        self._expiry = message_expiry_s

    # inbound ---------------------------------------------------------------------------
    def decode_wire(
        self, topic: bytes, payload: bytes, properties: bytes, received_at: datetime
    ) -> Signal | MalformedSignal:
        """`decode` for a PUBLISH as cut from the packet: topic bytes, v5 property bytes."""
        try:
            name = topic.decode("utf-8")
        except UnicodeDecodeError:
            name = topic.decode("utf-8", "backslashreplace")
            return _malformed(name, UNKNOWN_TOPIC, "topic is not UTF-8", received_at, payload)
        try:
            parsed = V5Properties.from_wire(properties)
        except (ValueError, IndexError) as exc:  # IndexError: bytes end inside a property
            detail = f"MQTT v5 properties cannot be read: {exc or 'they end too early'}"
            return _malformed(name, MALFORMED_PROPERTIES, detail, received_at, payload)
        return self.decode(name, payload, parsed, received_at=received_at)

    def decode(
        self,
        topic: str,
        payload: bytes,
        properties: V5Properties | None = None,
        *,
        received_at: datetime | None = None,
    ) -> Signal | MalformedSignal:
        received_at = received_at or datetime.now(UTC)
        parsed = self._topics.parse_signal(topic)
        if parsed is None:
            return _malformed(
                topic, UNKNOWN_TOPIC, f"topic {topic!r} is not in the scheme", received_at, payload
            )
        if len(payload) > self._max_payload:
            return MalformedSignal(
                topic=topic,
                reason=OVERSIZE_PAYLOAD,
                detail=f"payload of {len(payload)} bytes exceeds the limit of "
                f"{self._max_payload} bytes",
                received_at=received_at,
                source_id=parsed.source_id,
                payload_excerpt=_excerpt(payload),
            )
        try:
            envelope = orjson.loads(payload)
        except ValueError as exc:  # orjson.JSONDecodeError, bad UTF-8 included
            return _malformed(
                topic,
                MALFORMED_JSON,
                f"payload is not UTF-8 JSON: {exc}",
                received_at,
                payload,
                source_id=parsed.source_id,
            )
        if not isinstance(envelope, dict):
            return _malformed(
                topic,
                WRONG_TYPE,
                f"envelope must be a JSON object, not {_json_type(envelope)}",
                received_at,
                payload,
                source_id=parsed.source_id,
            )
        message_id = envelope.get("id")
        try:
            message_id = _string(envelope, "id")
            sent_at = _timestamp(envelope)
            seq = _seq(envelope, required=parsed.source_kind is not SourceKind.PERSONNEL)
            data = envelope.get("data", _MISSING)
            if data is _MISSING:
                raise _Reject(MISSING_FIELD, "field 'data' is missing")
            if not isinstance(data, dict):
                raise _Reject(WRONG_TYPE, f"field 'data' must be an object, not {_json_type(data)}")
            actor = _actor(envelope.get("actor"))
            verb = parsed.verb
            if verb is None:
                verb = envelope.get("type", "telemetry")
                if verb not in TELEMETRY_TYPES:
                    raise _Reject(
                        WRONG_TYPE, f"field 'type' must be one of {sorted(TELEMETRY_TYPES)}"
                    )
            correlation_id = _optional_string(envelope, "correlation_id")
            traceparent = _optional_string(envelope, "traceparent")
            expiry_s = envelope.get("expiry")
            if expiry_s is not None and (type(expiry_s) is not int or expiry_s < 0):
                raise _Reject(WRONG_TYPE, "field 'expiry' must be a non-negative integer")
        except _Reject as rejected:
            return MalformedSignal(
                topic=topic,
                reason=rejected.reason,
                detail=rejected.detail,
                received_at=received_at,
                message_id=message_id if isinstance(message_id, str) and message_id else None,
                source_id=parsed.source_id,
                payload_excerpt=_excerpt(payload),
            )
        reply_to = None
        expires_at = sent_at + timedelta(seconds=expiry_s) if expiry_s is not None else None
        if properties is not None:
            if properties.correlation_data is not None:
                correlation_id = properties.correlation_data.decode("utf-8", "backslashreplace")
            if properties.traceparent is not None:
                traceparent = properties.traceparent
            reply_to = properties.response_topic
            if properties.message_expiry_s is not None:
                # the broker forwards the remaining lifetime, counted from our receipt
                expires_at = received_at + timedelta(seconds=properties.message_expiry_s)
        return Signal(
            message_id=message_id,
            topic=topic,
            source_kind=parsed.source_kind,
            source_id=parsed.source_id,
            verb=verb,
            sent_at=sent_at,
            seq=seq,
            data=data,
            received_at=received_at,
            actor=actor,
            correlation_id=correlation_id,
            traceparent=traceparent,
            reply_to=reply_to,
            region=parsed.region,
            site=parsed.site,
            expires_at=expires_at,
        )

    # outbound --------------------------------------------------------------------------
    def encode(
        self, message: FieldMessage, *, traceparent: str | None = None, now: datetime | None = None
    ) -> OutboundMessage:
        """`traceparent` (the publish span's) wins over the message's own, if given."""
        topic = self._topics.for_message(message)
        retain = message.kind is FieldMessageKind.SERVICE_STATE
        traceparent = traceparent or message.traceparent
        envelope: dict[str, Any] = {
            "id": message.message_id,
            "ts": (now or datetime.now(UTC)).isoformat(),
            "actor": SERVICE_ACTOR,
            "data": dict(message.data),
        }
        if message.correlation_id is not None:
            envelope["correlation_id"] = message.correlation_id
        if traceparent is not None:
            envelope["traceparent"] = traceparent
        # retained state is the current truth until replaced: it must not expire
        expiry = None if retain else self._expiry
        if expiry is not None:
            envelope["expiry"] = expiry
        for key, value in message.extra.items():
            envelope.setdefault(key, value)
        properties = None
        if self._v5:
            properties = new_properties(PacketTypes.PUBLISH)
            properties.PayloadFormatIndicator = 1
            if message.correlation_id is not None:
                properties.CorrelationData = message.correlation_id.encode()
            if traceparent is not None:
                properties.UserProperty = ("traceparent", traceparent)
            if expiry is not None:
                properties.MessageExpiryInterval = expiry
        payload = json.dumps(envelope, separators=(",", ":"), default=str).encode()
        return OutboundMessage(topic, payload, 1, retain, properties)


_MISSING: Any = object()


def _malformed(
    topic: str,
    reason: str,
    detail: str,
    received_at: datetime,
    payload: bytes,
    *,
    source_id: str | None = None,
) -> MalformedSignal:
    return MalformedSignal(
        topic=topic,
        reason=reason,
        detail=detail,
        received_at=received_at,
        source_id=source_id,
        payload_excerpt=_excerpt(payload),
    )


def _excerpt(payload: bytes) -> str:
    return payload[:_EXCERPT].decode("utf-8", "backslashreplace")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _string(envelope: Mapping[str, Any], key: str, *, within: str = "") -> str:
    name = within + key
    value = envelope.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise _Reject(MISSING_FIELD, f"field {name!r} is missing")
    if not isinstance(value, str):
        raise _Reject(WRONG_TYPE, f"field {name!r} must be a string, not {_json_type(value)}")
    if not value:
        raise _Reject(WRONG_TYPE, f"field {name!r} must not be empty")
    return value


def _optional_string(envelope: Mapping[str, Any], name: str) -> str | None:
    value = envelope.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject(WRONG_TYPE, f"field {name!r} must be a string, not {_json_type(value)}")
    return value


def _timestamp(envelope: Mapping[str, Any]) -> datetime:
    raw = _string(envelope, "ts")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise _Reject(
            WRONG_TYPE, f"field 'ts' is not an ISO-8601 timestamp: {raw[:40]!r}"
        ) from None
    # a sender without a zone is taken to mean UTC rather than refused
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _seq(envelope: Mapping[str, Any], *, required: bool) -> int | None:
    value = envelope.get("seq")
    if value is None:
        if required:
            raise _Reject(MISSING_FIELD, "field 'seq' is missing")
        return None
    if type(value) is not int or value < 0:
        raise _Reject(WRONG_TYPE, f"field 'seq' must be a non-negative integer, not {value!r}")
    return value


def _actor(value: object) -> Actor | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Reject(WRONG_TYPE, f"field 'actor' must be an object, not {_json_type(value)}")
    return Actor(
        kind=_string(value, "kind", within="actor."), id=_string(value, "id", within="actor.")
    )
