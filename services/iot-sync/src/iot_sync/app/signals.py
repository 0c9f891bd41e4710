"""The messages that cross iot-sync's edge, as the use cases see them.

Inbound, a transport (MQTT, or HTTP for sources that cannot speak MQTT) turns bytes into a
`Signal` (the envelope was well formed) or a `MalformedSignal` (it was not, with the reason).
Business checks of `Signal.data` belong to the validators, not to the transport.

Outbound, the use cases say *what* to tell *whom* (`FieldMessage`); the transport alone
knows topics, QoS, retain flags and MQTT properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class SourceKind(StrEnum):
    """Who sent a signal: the second-to-last level of its topic names it."""

    STATION = "station"  # swap-station controller calls: call/abs/station/{id}/{verb}
    PERSONNEL = "personnel"  # field staff actions: emit/abs/personnel/{id}/{action}
    BMS = "bms"  # battery management telemetry: dt/arm/bms/{region}/{site}/{battery}
    GPS = "gps"  # tracker positions: dt/arm/gps/{region}/{site}/{battery}
    SSC = "ssc"  # station controller telemetry and heartbeats: dt/arm/ssc/{region}/{site}/{station}


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class Signal:
    """One well-formed message from the field, not yet checked against any business rule."""

    message_id: str  # envelope `id`: the deduplication key
    topic: str
    source_kind: SourceKind
    source_id: str  # station id, person id, battery id (for dt/ the last topic level)
    verb: str  # authorize, dispense_confirm, return_confirm, asset_scan, report_damage,
    # report_lost, report_recovered; for telemetry: "telemetry" or "heartbeat"
    sent_at: datetime  # envelope `ts`
    seq: int | None  # monotonic per sender; None for senders that do not number messages
    data: Mapping[str, Any]
    received_at: datetime
    actor: Actor | None = None
    correlation_id: str | None = None
    traceparent: str | None = None
    reply_to: str | None = None  # MQTT v5 response topic, when the caller gave one
    region: str | None = None  # dt/ topics carry region and site
    site: str | None = None
    expires_at: datetime | None = None  # from the v5 message expiry or the envelope's `expiry`


@dataclass(frozen=True, slots=True)
class MalformedSignal:
    """Bytes that could not become a `Signal`: kept, counted and answered, never dropped."""

    topic: str
    reason: str  # machine-readable: malformed_json, unknown_topic, missing_field, wrong_type,
    # oversize_payload, malformed_properties
    detail: str  # in words, naming the field or the limit
    received_at: datetime
    message_id: str | None = None  # when the envelope's `id` could still be read
    source_id: str | None = None
    payload_excerpt: str = ""


class FieldMessageKind(StrEnum):
    STATION_REPLY = "station_reply"  # rtrn/abs/station/{station_id}/{verb} or the response topic
    PERSONNEL_ECHO = "personnel_echo"  # echo/abs/personnel/{person_id}/{action}
    SERVICE_STATE = "service_state"  # stat/abs/service/{service_id}, retained
    CUSTOMER_NOTICE = "customer_notice"  # emit/abs/notify/{customer_id}/{event}
    ERROR = "error"  # emit/abs/error/{source}/{id}


@dataclass(frozen=True, slots=True)
class FieldMessage:
    """Something iot-sync tells the field. `subject` and `name` fill the topic's last levels:

    - STATION_REPLY: subject = station id, name = verb
    - PERSONNEL_ECHO: subject = person id, name = action
    - SERVICE_STATE: subject = service id, name = "" (retained)
    - CUSTOMER_NOTICE: subject = customer id, name = event
    - ERROR: subject = source (station, personnel, bms, gps, ssc, unknown), name = sender id
    """

    kind: FieldMessageKind
    subject: str
    name: str
    data: Mapping[str, Any]
    message_id: str  # unique, stable across re-sends: receivers deduplicate on it
    correlation_id: str | None = None
    reply_to: str | None = None  # overrides the conventional reply topic when set
    traceparent: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
