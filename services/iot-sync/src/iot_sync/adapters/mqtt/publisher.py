"""What iot-sync tells the field, published at QoS 1 and confirmed by the broker's PUBACKs.

`publish()` returns only when the broker acknowledged every message, or raises
`MqttPublishError`: the caller (the outbox relay) keeps the rows and tries again later.
A retry may publish a message twice; receivers deduplicate on the envelope `id`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from opentelemetry import trace
from opentelemetry.context import Context
from paho.mqtt.properties import Properties

from fleetops_common.telemetry import context_from
from iot_sync.adapters.mqtt.consumer import MqttConnectError, new_client
from iot_sync.adapters.mqtt.envelope import EnvelopeCodec
from iot_sync.adapters.mqtt.settings import MqttSettings
from iot_sync.adapters.mqtt.topics import TopicScheme
from iot_sync.adapters.mqtt.tracing import traceparent_of
from iot_sync.app.signals import FieldMessage

log = logging.getLogger(__name__)
tracer = trace.get_tracer("iot_sync.adapters.mqtt")


class MqttPublishError(RuntimeError):
    """Some messages of a `publish()` call were not acknowledged by the broker."""

    def __init__(self, detail: str, *, unconfirmed: Sequence[str]) -> None:
        super().__init__(detail)
        self.unconfirmed = tuple(unconfirmed)  # message ids


class MqttFieldPublisher:
    """One connection of its own (client id `{client_id}-pub-{random}`, clean session).

    The id is unique per publisher: processes that share `client_id` settings (the API
    process and `iot-sync consume`) each publish, and a broker closes the older of two
    connections with one id, so with a shared id they kept disconnecting each other and
    their in-flight messages timed out unconfirmed."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        topics: TopicScheme | None = None,
        codec: EnvelopeCodec | None = None,
        client_id: str | None = None,
    ) -> None:
        self._s = settings
        self._codec = codec or EnvelopeCodec(
            topics=topics or TopicScheme(settings.topic_prefix),
            max_payload_bytes=settings.max_payload_bytes,
            v5=settings.is_v5,
            message_expiry_s=settings.message_expiry_s,
        )
        # a publisher needs no session: paho itself resends what is in flight on reconnect
        self._client = new_client(
            settings,
            client_id=client_id or f"{settings.client_id}-pub-{uuid.uuid4().hex[:8]}",
            manual_ack=False,
            persistent=False,
        )
        self._connected = threading.Event()
        self._refused: dict[int, str] = {}  # mid -> v5 PUBACK failure reason
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._started = False

    def start(self) -> None:
        s = self._s
        if s.is_v5:
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=True)
        else:
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()
        self._started = True
        if not self._connected.wait(s.connect_timeout_s):
            self.close()
            raise MqttConnectError(f"publisher not connected to {s.host}:{s.port}")

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttFieldPublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, messages: Sequence[FieldMessage]) -> None:
        if not messages:
            return
        if not self._started:
            raise MqttPublishError("publisher is not started", unconfirmed=_ids(messages))
        deadline = time.monotonic() + self._s.publish_timeout_s
        pending: list[tuple[FieldMessage, mqtt.MQTTMessageInfo]] = []
        for message in messages:
            parent: Context | None = (
                context_from({"traceparent": message.traceparent}) if message.traceparent else None
            )
            with tracer.start_as_current_span(
                "iot-sync publish",
                context=parent,
                kind=trace.SpanKind.PRODUCER,
                attributes={"messaging.system": "mqtt", "messaging.message.id": message.message_id},
            ) as span:
                out = self._codec.encode(message, traceparent=traceparent_of(span))
                span.set_attribute("messaging.destination.name", out.topic)
                info = self._client.publish(
                    out.topic,
                    out.payload,
                    qos=out.qos,
                    retain=out.retain,
                    properties=out.properties,
                )
            pending.append((message, info))
        unconfirmed: list[str] = []
        errors: list[str] = []
        for message, info in pending:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                errors.append(f"{message.message_id}: {exc}")
                unconfirmed.append(message.message_id)
                continue
            if not info.is_published():
                unconfirmed.append(message.message_id)
            refused = self._refused.pop(info.mid, None)
            if refused is not None:
                errors.append(f"{message.message_id}: broker refused ({refused})")
                unconfirmed.append(message.message_id)
        if unconfirmed:
            detail = (
                f"{len(unconfirmed)} of {len(messages)} messages not acknowledged by "
                f"{self._s.host}:{self._s.port} within {self._s.publish_timeout_s} s"
            )
            if errors:
                detail += ": " + "; ".join(errors[:5])
            raise MqttPublishError(detail, unconfirmed=unconfirmed)

    # paho callbacks (network thread) ---------------------------------------------------
    def _on_connect(
        self,
        client: Any,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("mqtt publisher connect refused: %s", reason_code)
            return
        self._connected.set()

    def _on_disconnect(
        self,
        client: Any,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Properties | None
    ) -> None:
        # v5 PUBACK codes >= 0x80 are refusals (not authorised, quota exceeded, …);
        # 0x10 "no matching subscribers" is a success
        if reason_code.is_failure:
            self._refused[mid] = str(reason_code)


def _ids(messages: Sequence[FieldMessage]) -> list[str]:
    return [m.message_id for m in messages]
