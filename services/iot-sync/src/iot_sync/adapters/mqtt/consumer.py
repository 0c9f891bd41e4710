"""Signals from the broker, in batches, acknowledged only after the handler has returned.

Threads: paho's network thread only queues what arrives; one batching worker decodes, calls
the handler and sends the PUBACKs. A batch closes at `batch_max_size`, after
`batch_max_wait_s`, or as soon as it holds as many messages as the broker lets us have
unacknowledged (v5: our Receive Maximum; 3.1.1: the broker's in-flight limit), since no
further message can arrive before we ack.

Delivery guarantee (QoS 1, persistent session): a message is acked only after the handler
returned for its batch. If the handler raises, nothing of that batch is acked and the
consumer drops the connection and reconnects (after a backoff that grows with consecutive
failures): a broker resends unacknowledged QoS 1 messages only when the session resumes on
a new connection, never on the same one. Messages already received on the old connection are
discarded unacked, as the broker sends them again. So the handler sees a message at least
once and must be idempotent (the envelope `id` is the deduplication key).

Mosquitto keeps a disconnected session's messages up to its `max_queued_messages` (default
1000) and drops the rest: production brokers need that raised. amqtt loses a message whose
PUBACK does not come within 5 s and does not resend unacked messages on reconnect (see
fleetops_devstack.mqtt_broker).
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from opentelemetry import trace
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetops_common.telemetry import context_from
from iot_sync.adapters.mqtt.envelope import EnvelopeCodec, new_properties, wire_varint
from iot_sync.adapters.mqtt.settings import MqttSettings
from iot_sync.adapters.mqtt.topics import TopicScheme, shared
from iot_sync.adapters.mqtt.tracing import traceparent_of
from iot_sync.app.signals import MalformedSignal, Signal

log = logging.getLogger(__name__)
tracer = trace.get_tracer("iot_sync.adapters.mqtt")

SignalBatchHandler = Callable[[Sequence[Signal | MalformedSignal]], None]
_STOP = object()
_MAX_LINKS = 128


class MqttConnectError(RuntimeError):
    """The broker could not be reached or refused us within the connect timeout."""


@dataclass(slots=True)
class ConsumerStats:
    received: int = 0  # counted on the network thread
    acked: int = 0
    batches: int = 0
    failed_batches: int = 0
    discarded_stale: int = 0  # received on a connection that is gone: the broker resends them
    connects: int = 0


class _LeanProperties(Properties):
    """paho's `Properties`, minus rebuilding its name and type tables for every packet.

    paho makes one per v5 packet it reads (every PUBLISH, every PUBACK) and its constructor
    builds three tables of ~30 entries each, then `unpack` clears ~30 attributes it cannot
    have yet: measured, a sixth of the consumer process's CPU at 5,000 messages/s. This
    shares the tables of one instance (they are only read) and skips the pointless clear;
    what ends up as instance attributes (the properties present) is the same.
    """

    _tables: dict[str, Any] | None = None

    def __init__(self, packetType: int) -> None:  # noqa: N803 - paho's signature
        tables = _LeanProperties._tables
        if tables is None:
            full = Properties(packetType)  # type: ignore[no-untyped-call]
            tables = {k: vars(full)[k] for k in ("types", "names", "properties")}
            _LeanProperties._tables = tables
        self.packetType = packetType
        self.__dict__.update(tables)

    def clear(self) -> None:
        # only called by `unpack`, always on a fresh instance here: nothing to remove
        if len(self.__dict__) > 4:
            super().clear()  # type: ignore[no-untyped-call]


def _use_lean_properties() -> None:
    """paho's reader looks `Properties` up in its module when it parses a packet."""
    if getattr(mqtt, "Properties", None) is Properties:
        setattr(mqtt, "Properties", _LeanProperties)  # noqa: B010 - not a typed export


_PUBACK = 0x40
_READ_AHEAD = 64 * 1024
_U16 = struct.Struct("!H")


class InboundPublish(NamedTuple):
    """A PUBLISH as the batch worker needs it, cut from the packet and nothing more.

    `topic` stays bytes and `properties` the v5 property bytes as sent (b"" on 3.1.1): both
    are decoded by the worker, where a bad one becomes a rejection, not a lost connection.
    """

    topic: bytes
    payload: bytes
    mid: int
    qos: int
    properties: bytes


InboundSink = Callable[[InboundPublish], None]


class ReadAheadClient(mqtt.Client):
    """paho's client, reading the socket in large chunks and acknowledging in one write.

    paho reads a packet with three or more `recv` calls (one byte of command, the remaining
    length byte by byte, then the rest) and handles one packet per `select`; every call lets
    go of the GIL and must wait to take it back from the batch worker. Measured, that was
    most of the network thread's time. Here one `recv` takes whatever has arrived (up to
    64 KiB), later reads are served from it, and `loop_read` handles packets until it is
    used up. paho's own state machine still parses the bytes, so a packet split across two
    chunks resumes as it would across two `recv` calls.

    `ack_many` queues a batch's PUBACKs as one write (one wake-up of the network thread, one
    `send`), where `ack` costs both per message.

    With `on_inbound` set, a QoS 0 or 1 PUBLISH goes to it as an `InboundPublish` cut
    straight from the packet. paho would build an `MQTTMessage` (with a `Condition` and an
    `RLock` for a delivery receipt nobody reads), unpack its properties into an object,
    decode the topic for a debug log line and match it against a topic tree of per-filter
    callbacks we never register: measured, over a third of the consumer process's CPU at
    2,500 messages/s. QoS 2 (never sent to a QoS 1 subscription) keeps paho's path.
    """

    on_inbound: InboundSink | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = b""
        self._ahead_pos = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        ahead, pos = self._ahead, self._ahead_pos
        if pos >= len(ahead):
            ahead = super()._sock_recv(max(bufsize, _READ_AHEAD))
            if len(ahead) <= bufsize:  # all of it asked for, or b"": the connection closed
                self._ahead, self._ahead_pos = b"", 0
                return ahead
            pos = 0
        end = pos + bufsize
        self._ahead, self._ahead_pos = ahead, end
        return ahead[pos:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        while True:
            rc = super().loop_read(max_packets)
            # bytes already read never make the socket readable again: handle them now
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._ahead_pos >= len(self._ahead):
                return rc

    def reconnect(self) -> MQTTErrorCode:
        self._ahead, self._ahead_pos = b"", 0  # what the old connection left is not ours
        return super().reconnect()

    def _handle_publish(self) -> MQTTErrorCode:
        sink = self.on_inbound
        qos = (self._in_packet["command"] & 0x06) >> 1
        if sink is None or qos == 2:
            return super()._handle_publish()
        packet = bytes(self._in_packet["packet"])
        pos = 2 + _U16.unpack_from(packet)[0]
        topic = packet[2:pos]
        mid = 0
        if qos:
            mid = _U16.unpack_from(packet, pos)[0]
            pos += 2
        properties = b""
        if self._protocol == mqtt.MQTTv5:
            length, pos = wire_varint(packet, pos)
            properties = packet[pos : pos + length]
            pos += length
        elif not topic:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if pos > len(packet):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        sink(InboundPublish(topic, packet[pos:], mid, qos, properties))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK every QoS 1 message id in `mids` (manual ack), in one queued write."""
        if mids:
            packet = b"".join([_PUBACK_HEAD.pack(_PUBACK, 2, mid) for mid in mids])
            self._packet_queue(_PUBACK, packet, 0, 0)


_PUBACK_HEAD = struct.Struct("!BBH")


def new_client(
    settings: MqttSettings,
    *,
    client_id: str,
    manual_ack: bool,
    persistent: bool = True,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A paho client for `settings`; 3.1.1 fixes the session kind here, v5 at connect."""
    if settings.is_v5:
        _use_lean_properties()
    if settings.is_v5:
        client = client_class(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
    else:
        client = client_class(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
            manual_ack=manual_ack,
        )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    client.reconnect_delay_set(
        min_delay=settings.reconnect_min_delay_s, max_delay=settings.reconnect_max_delay_s
    )
    return client


def connect_properties(settings: MqttSettings) -> Properties | None:
    if not settings.is_v5:
        return None
    properties = new_properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = settings.session_expiry_s
    properties.ReceiveMaximum = settings.receive_maximum
    return properties


def end_session(settings: MqttSettings, *, client_id: str | None = None) -> None:
    """Make the broker forget a client's persistent session (subscriptions and queue)."""
    client_id = client_id or settings.client_id
    done = threading.Event()
    if settings.is_v5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        properties = new_properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        properties = None
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    client.on_connect = lambda *_: done.set()
    if settings.is_v5:
        client.connect(settings.host, settings.port, clean_start=True, properties=properties)
    else:
        client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        if not done.wait(settings.connect_timeout_s):
            raise MqttConnectError(f"no CONNACK from {settings.host}:{settings.port}")
    finally:
        client.disconnect()
        client.loop_stop()


class MqttSignalConsumer:
    """Subscribes to every inbound topic family and feeds `handler` with decoded batches."""

    def __init__(
        self,
        settings: MqttSettings,
        handler: SignalBatchHandler,
        *,
        topics: TopicScheme | None = None,
        codec: EnvelopeCodec | None = None,
    ) -> None:
        self._s = settings
        self._handler = handler
        self._topics = topics or TopicScheme(settings.topic_prefix)
        self._codec = codec or EnvelopeCodec(
            topics=self._topics,
            max_payload_bytes=settings.max_payload_bytes,
            v5=settings.is_v5,
            message_expiry_s=settings.message_expiry_s,
        )
        window = settings.receive_maximum if settings.is_v5 else settings.broker_inflight_v311
        self._batch_limit = min(settings.batch_max_size, window)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._generation = 0  # one per connection; a message is acked on its own only
        self._generation_lock = threading.Lock()
        self._closing = False
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopped = threading.Event()
        self._worker: threading.Thread | None = None
        self._failures = 0
        self.stats = ConsumerStats()
        self._client = new_client(
            settings,
            client_id=settings.client_id,
            manual_ack=True,
            client_class=ReadAheadClient,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        if isinstance(self._client, ReadAheadClient):
            self._client.on_inbound = self._on_inbound

    # lifecycle -------------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> None:
        """Connect, subscribe and start the worker; with `wait`, return once subscribed."""
        if self._worker is not None:
            raise RuntimeError("consumer already started")
        self._worker = threading.Thread(
            target=self._work, name=f"mqtt-batches-{self._s.client_id}", daemon=True
        )
        self._worker.start()
        self._connect_async()
        self._client.loop_start()
        if wait and not self.wait_subscribed(self._s.connect_timeout_s):
            self.stop()
            raise MqttConnectError(
                f"not subscribed on {self._s.host}:{self._s.port} within "
                f"{self._s.connect_timeout_s} s"
            )

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect; the broker keeps the session.

        Whatever arrives meanwhile is left unacknowledged: the broker sends it again when
        this client id next connects.
        """
        if self._worker is None:
            return
        self._closing = True
        self._inbox.put(_STOP)
        self._worker.join(timeout=timeout_s)
        self._worker = None
        self._client.disconnect()
        self._client.loop_stop()
        self._stopped.set()

    def __enter__(self) -> MqttSignalConsumer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drop_connection(self) -> None:
        """Disconnect and connect again at once; unacked messages come back (tests, ops)."""
        with self._generation_lock:
            self._generation += 1
        self._connected.clear()
        self._client.disconnect()
        self._client.loop_stop()
        if self._closing:
            return
        self._connect_async()
        self._client.loop_start()

    def _connect_async(self) -> None:
        s = self._s
        if s.is_v5:
            self._client.connect_async(
                s.host,
                s.port,
                keepalive=s.keepalive_s,
                clean_start=False,
                properties=connect_properties(s),
            )
        else:
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)

    # paho callbacks (network thread) ---------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: Any,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("mqtt connect refused: %s", reason_code)
            return
        with self._generation_lock:
            self._generation += 1
        self.stats.connects += 1
        self._connected.set()
        # subscribing again on a resumed session is harmless and heals a broker that lost it
        group = self._s.shared_group
        client.subscribe([(shared(f, group), 1) for f in self._topics.signal_filters()])
        log.info(
            "mqtt connected to %s:%s as %s (session present: %s)",
            self._s.host,
            self._s.port,
            self._s.client_id,
            flags.session_present,
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: Any,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._closing:
            log.warning("mqtt disconnected (%s); paho reconnects with backoff", reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[Any],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("mqtt subscription refused: %s", refused)
            return
        self._subscribed.set()

    def _on_inbound(self, message: InboundPublish) -> None:
        self.stats.received += 1
        if not self._closing:
            self._inbox.put((self._generation, message))

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        """paho's own path (QoS 2 only): the same `InboundPublish` as the fast path."""
        properties = b""
        if message.properties is not None:
            packed = message.properties.pack()  # type: ignore[no-untyped-call]
            _, start = wire_varint(packed, 0)
            properties = packed[start:]
        raw_topic = message._topic  # undecoded, as on the fast path
        self._on_inbound(
            InboundPublish(raw_topic, message.payload, message.mid, message.qos, properties)
        )

    # batching worker -------------------------------------------------------------------
    def _work(self) -> None:
        inbox, limit, wait = self._inbox, self._batch_limit, self._s.batch_max_wait_s
        clock = time.monotonic
        stopping = False
        while not stopping:
            item = inbox.get()
            if item is _STOP:
                break
            batch = [item]
            deadline = clock() + wait
            while len(batch) < limit:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    remaining = deadline - clock()
                    if remaining <= 0:
                        break
                    try:
                        item = inbox.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                self._process(batch)
            except Exception:  # a bug here must not kill the only worker
                log.exception("mqtt batch processing failed")

    def _process(self, batch: list[tuple[int, InboundPublish]]) -> None:
        generation = self._generation
        messages = [message for gen, message in batch if gen == generation]
        if len(messages) != len(batch):
            self.stats.discarded_stale += len(batch) - len(messages)
        if not messages:
            return
        received_at = datetime.now(UTC)
        decode = self._codec.decode_wire
        items: list[Signal | MalformedSignal] = []
        spans: list[trace.Span] = []
        for message in messages:
            item = decode(message.topic, message.payload, message.properties, received_at)
            if isinstance(item, Signal) and item.traceparent:
                span = tracer.start_span(
                    "iot-sync receive",
                    context=context_from({"traceparent": item.traceparent}),
                    kind=trace.SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "mqtt",
                        "messaging.destination.name": item.topic,
                        "messaging.message.id": item.message_id,
                    },
                )
                spans.append(span)
                # the handler continues the trace under this span
                item = replace(item, traceparent=traceparent_of(span) or item.traceparent)
            items.append(item)
        links = [trace.Link(span.get_span_context()) for span in spans[:_MAX_LINKS]]
        self.stats.batches += 1
        try:
            with tracer.start_as_current_span(
                "iot-sync process signals",
                kind=trace.SpanKind.CONSUMER,
                links=links,
                attributes={"messaging.batch.message_count": len(items)},
            ):
                self._handler(items)
        except Exception as exc:
            self.stats.failed_batches += 1
            self._failures += 1
            for span in spans:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
                span.end()
            log.exception(
                "signal handler failed on a batch of %d; nothing acked, reconnecting for "
                "redelivery",
                len(items),
            )
            self._redeliver()
            return
        self._failures = 0
        if generation == self._generation:
            client = self._client
            if isinstance(client, ReadAheadClient):
                client.ack_many([m.mid for m in messages if m.qos == 1])
            for message in messages:
                if message.qos != 1:
                    client.ack(message.mid, message.qos)
            self.stats.acked += len(messages)
        for span in spans:
            span.end()

    def _redeliver(self) -> None:
        delay = min(
            self._s.failure_backoff_s * 2 ** (self._failures - 1),
            self._s.reconnect_max_delay_s,
        )
        if self._stopped.wait(delay) or self._closing:
            return
        self.drop_connection()
