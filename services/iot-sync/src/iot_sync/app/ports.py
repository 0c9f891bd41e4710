"""What the use cases need from the outside world, named by role.

`signals.py` (the edge messages) and `arm.py` (the ARM port) sit beside this module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from iot_sync.app.arm import ArmAsset, ArmStation
from iot_sync.app.signals import FieldMessage, Signal
from iot_sync.domain.asset import Asset, Position
from iot_sync.domain.customer import Customer
from iot_sync.domain.personnel import Person
from iot_sync.domain.service import Service
from iot_sync.domain.station import Station

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime: ...


class TraceContext(Protocol):
    """Carries a signal's trace to what happens after the commit (W3C `traceparent`)."""

    def resume(self, traceparent: str | None) -> AbstractContextManager[None]:
        """Within the block, calls continue the trace `traceparent` names (if any)."""
        ...


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


# ---- records kept by the unit of work ---------------------------------------------------


class SignalResult(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    HELD = "held"  # waiting for a missing `seq` of the same sender
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """One line of the signal log: every signal that reached iot-sync, and what became of it."""

    topic: str
    result: SignalResult
    received_at: datetime
    processed_at: datetime
    message_id: str | None = None
    source_kind: str | None = None
    source_id: str | None = None
    verb: str | None = None
    seq: int | None = None
    reason_code: str | None = None
    reason: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceHistoryEntry:
    service_id: str
    at: datetime
    input: str
    from_state: str
    to_state: str
    battery_id: str | None
    cause: str  # the message id, job or request that caused it
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class AssetHistoryEntry:
    asset_id: str
    at: datetime
    move: str
    from_state: str
    to_state: str
    station_id: str | None
    holder: str | None
    cause: str
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A personnel action, accepted or refused, with the person's id."""

    person_id: str
    action: str
    asset_id: str | None
    result: str  # accepted, rejected
    at: datetime
    message_id: str | None
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TelemetryUpdate:
    """The compressed effect of a batch's tracking signals on one battery."""

    asset_id: str
    last_seen_at: datetime
    charge_pct: float | None  # None: no BMS reading in the batch, keep the stored one
    position: Position | None  # None: no GPS reading in the batch
    outside_since: datetime | None  # the run of outside positions after the batch
    region: str | None


@dataclass(frozen=True, slots=True)
class StationHeartbeat:
    station_id: str
    last_seen_at: datetime
    online: bool = True


@dataclass(frozen=True, slots=True)
class HeldSignal:
    signal: Signal
    held_since: datetime


class OutboxKind(StrEnum):
    FIELD = "field"  # a FieldMessage for the MQTT transport
    ARM_MOVEMENT = "arm_movement"  # an AssetMovement; the event id is its movement_id
    WEBHOOK = "webhook"  # a Notification; the event id is its idempotency key
    SETTLEMENT = "settlement"  # a SettlementRequest; the event id is its settlement id


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    event_id: str
    kind: OutboxKind
    payload: Mapping[str, Any]
    created_at: datetime
    key: str | None = None  # what must stay in order (an asset id for ARM movements)
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class PendingEvent:
    event_id: str
    kind: OutboxKind
    payload: Mapping[str, Any]
    attempts: int
    key: str | None = None
    traceparent: str | None = None


# ---- repositories -----------------------------------------------------------------------


class SignalLog(Protocol):
    def claim_message_ids(self, message_ids: Sequence[str]) -> None:
        """Hold these ids for this transaction: another transaction claiming one of them
        waits until this one ends, and its `known_message_ids` then sees what this one took
        in. For messages without `seq`, which no sender cursor serializes, so two consumers
        given one message twice never both apply it."""
        ...

    def known_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these ids were already taken in (accepted, rejected or held)."""
        ...

    def add(self, records: Sequence[SignalRecord]) -> None: ...

    def settle_held(self, records: Sequence[SignalRecord]) -> None:
        """Replace the HELD line of each message with its final result."""
        ...

    def page(
        self, *, results: Collection[SignalResult] | None, limit: int, cursor: str | None
    ) -> Page[SignalRecord]:
        """Newest first, of any of `results` (None: all)."""
        ...


class SenderLedger(Protocol):
    """Per sender: the last applied `seq`, and the messages held back after a gap."""

    def last_seqs(self, senders: Sequence[str]) -> dict[str, int]:
        """Locked for this transaction, so two consumers do not apply one sender at once."""
        ...

    def save_last_seqs(self, last: Mapping[str, int]) -> None: ...

    def hold(self, sender: str, held: Sequence[HeldSignal]) -> None: ...

    def held(self, senders: Sequence[str]) -> dict[str, list[HeldSignal]]: ...

    def release(self, message_ids: Sequence[str]) -> None: ...

    def senders_holding_since(self, before: datetime, limit: int) -> list[str]: ...


class ServiceRepository(Protocol):
    def get(self, service_id: str) -> Service | None: ...

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, Service]:
        """Each customer's current (newest not cancelled, else newest) service."""
        ...

    def find(self, *, customer_id: str | None, limit: int) -> list[Service]: ...

    def add(self, service: Service) -> None: ...

    def save(self, service: Service) -> None: ...

    def add_history(self, entries: Sequence[ServiceHistoryEntry]) -> None: ...

    def history(self, service_id: str, *, limit: int) -> list[ServiceHistoryEntry]: ...


class AssetRepository(Protocol):
    def get_many(self, asset_ids: Sequence[str]) -> dict[str, Asset]: ...

    def at_station(self, station_id: str) -> list[Asset]: ...

    def at_stations(self, station_ids: Sequence[str]) -> dict[str, list[Asset]]:
        """`at_station` of several stations in one read (a batch prefetches with it)."""
        ...

    def save(self, asset: Asset) -> None: ...

    def record_telemetry(self, updates: Sequence[TelemetryUpdate]) -> None:
        """Batched upsert of last seen, charge, position and the outside run."""
        ...

    def loss_candidates(
        self, *, silent_before: datetime, outside_before: datetime, limit: int
    ) -> list[Asset]:
        """ISSUED batteries quiet since `silent_before`, or outside since `outside_before`."""
        ...

    def upsert_from_arm(self, assets: Sequence[ArmAsset]) -> int:
        """Insert new ones, update known ones to ARM's view; returns how many changed."""
        ...

    def states(self) -> dict[str, tuple[str, str | None, str | None]]:
        """asset id -> (state, station id, holder): for reconciliation."""
        ...

    def add_history(self, entries: Sequence[AssetHistoryEntry]) -> None: ...

    def history(self, asset_id: str, *, limit: int) -> list[AssetHistoryEntry]: ...


class StationRepository(Protocol):
    def get_many(self, station_ids: Sequence[str]) -> dict[str, Station]: ...

    def all(self) -> list[Station]: ...

    def upsert_from_arm(self, stations: Sequence[ArmStation]) -> int: ...

    def record_heartbeats(self, beats: Sequence[StationHeartbeat]) -> None: ...


class PersonnelRepository(Protocol):
    def get(self, person_id: str) -> Person | None: ...

    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]: ...

    def all(self) -> list[Person]: ...


class AuditLog(Protocol):
    def record(self, entries: Sequence[AuditEntry]) -> None: ...

    def entries(
        self, *, person_id: str | None, asset_id: str | None, limit: int
    ) -> list[AuditEntry]: ...


class Outbox(Protocol):
    def add(self, events: Sequence[OutboxEvent]) -> None: ...

    def claim(self, *, now: datetime, lease_until: datetime, limit: int) -> list[PendingEvent]:
        """Due, undelivered events in id order, leased so another relay skips them."""
        ...

    def mark_delivered(self, event_ids: Sequence[str], *, at: datetime) -> None: ...

    def mark_failed(
        self, event_id: str, *, error: str, retry_at: datetime | None, at: datetime
    ) -> None:
        """Count an attempt; `retry_at` None gives up on the event (kept, marked dead)."""
        ...


class UnitOfWork(Protocol):
    signal_log: SignalLog
    senders: SenderLedger
    services: ServiceRepository
    assets: AssetRepository
    stations: StationRepository
    personnel: PersonnelRepository
    audit: AuditLog
    outbox: Outbox

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


# ---- collaborators outside the transaction ----------------------------------------------


class CustomerDirectory(Protocol):
    """Standing and plan: billing-adapter's once it exists, iot-sync's seeded table until then."""

    def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]: ...

    def all(self) -> list[Customer]: ...


class FieldPublisher(Protocol):
    """Hands messages to the field transport (MQTT); returns once the broker has them."""

    def publish(self, messages: Sequence[FieldMessage]) -> None: ...


class DeliveryError(Exception):
    """A collaborator did not take an outbox event. `permanent`: retrying will not help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Notification:
    idempotency_key: str  # the outbox event id: receivers drop repeats
    customer_id: str
    event: str
    data: Mapping[str, Any]
    occurred_at: datetime


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None: ...


@dataclass(frozen=True, slots=True)
class SettlementRequest:
    settlement_id: str  # the outbox event id
    service_id: str
    customer_id: str
    battery_id: str
    battery_class: str
    evidence: str
    detail: str
    requested_at: datetime


class Settlements(Protocol):
    """Starts the loss charge for a lost battery (billing-adapter's queue once it exists)."""

    def start_loss_charge(self, request: SettlementRequest) -> None: ...
