"""What the use cases need from the outside world, named by role."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from device_change.domain.bulk_change import (
    BulkChange,
    CarrierBatch,
    DeviceLine,
    LineStatus,
)
from device_change.domain.changes import CarrierAction
from device_change.domain.device import Device, DeviceStatus, RatePlan

# ---- carrier ---------------------------------------------------------------------------


class CarrierError(Exception):
    """Base of what a carrier call can end in, besides an answer."""


class CarrierThrottled(CarrierError):
    """The carrier refused the call for rate (HTTP 429): nothing was applied."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CarrierUnavailable(CarrierError):
    """The carrier failed the call before applying anything (5xx, refused connection)."""


class CarrierOutcomeUnknown(CarrierError):
    """The call may or may not have been applied (timeout, connection lost mid-call)."""


class CarrierRejected(CarrierError):
    """The carrier refused the request as such (4xx with an error code): permanent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CarrierDeviceRef:
    iccid: str
    imei: str | None = None
    msisdn: str | None = None


@dataclass(frozen=True, slots=True)
class LinesToSend:
    """A batch's PENDING lines as the carrier call needs them, in line order."""

    devices: list[CarrierDeviceRef]
    # The first line's own arguments (a new ICCID...); a batch that has any has one line.
    carrier_args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CarrierDeviceState:
    """A device as the carrier lists it."""

    iccid: str
    imei: str | None
    msisdn: str | None
    status: DeviceStatus | None  # None while a change is pending at the carrier
    raw_state: str
    rate_plan: str | None
    account_name: str | None

    @property
    def pending(self) -> bool:
        return self.status is None or self.raw_state.lower().startswith("pending")


@dataclass(frozen=True, slots=True)
class CarrierDeviceOutcome:
    """What a callback or a status poll says about one device of a request."""

    request_id: str
    iccid: str
    succeeded: bool | None  # None: still pending at the carrier
    fault_code: str | None = None
    fault_text: str | None = None
    reported: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"msisdn": "..."}


class CarrierGateway(Protocol):
    def submit(
        self, action: CarrierAction, devices: Sequence[CarrierDeviceRef], args: Mapping[str, Any]
    ) -> str:
        """Send one carrier request; returns the carrier's request id."""
        ...

    def device_state(self, iccid: str) -> CarrierDeviceState | None:
        """One device as the carrier lists it (None: unknown to the carrier).

        The carrier looks devices up one per call, so each call counts against its rate limit.
        """
        ...

    def request_outcomes(
        self, request_id: str, iccids: Sequence[str]
    ) -> list[CarrierDeviceOutcome]: ...

    def iter_devices(self) -> Iterator[list[CarrierDeviceState]]: ...

    def rate_plans(self) -> list[RatePlan]: ...

    def register_callback(self, url: str, *, username: str, password: str) -> None: ...


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Block until one more carrier call is allowed; returns seconds waited."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---- persistence -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    tenant: str
    iccid: str
    action: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    actor: str
    at: datetime
    bulk_change_id: str | None = None
    line_id: str | None = None
    carrier_request_id: str | None = None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class DeviceRepository(Protocol):
    def get_many(self, tenant: str, iccids: Sequence[str]) -> dict[str, Device]: ...

    def get_many_by_msisdn(self, tenant: str, msisdns: Sequence[str]) -> dict[str, Device]: ...

    def identifiers_in_use(self, values: Sequence[str]) -> frozenset[str]:
        """Which of these ICCIDs/IMEIs any device (any tenant) already holds."""
        ...

    def update(self, tenant: str, iccid: str, changes: Mapping[str, Any]) -> Device | None:
        """Apply the changes; returns the device as it was before, or None if unknown."""
        ...

    def update_many(
        self, tenant: str, changes: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Device]:
        """Apply each ICCID's changes; returns the known devices as they were before."""
        ...

    def upsert_from_carrier(self, tenant: str, devices: Sequence[CarrierDeviceState]) -> int: ...

    def list(
        self,
        tenant: str,
        *,
        status: DeviceStatus | None,
        rate_plan: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Device]: ...


class RatePlanRepository(Protocol):
    def all(self, tenant: str) -> dict[str, RatePlan]: ...

    def replace(self, tenant: str, plans: Sequence[RatePlan]) -> None: ...


class BulkChangeRepository(Protocol):
    def add(self, bulk: BulkChange, request_fingerprint: str | None) -> None: ...

    def get(
        self, tenant: str | None, bulk_change_id: str, *, lock: bool = False
    ) -> BulkChange | None:
        """`lock`: hold the bulk change until commit (decisions about it are serialised)."""
        ...

    def find_by_idempotency_key(
        self, tenant: str, key: str
    ) -> tuple[BulkChange, str | None] | None:
        """The bulk change stored under this key, with the fingerprint of its request."""
        ...

    def save(self, bulk: BulkChange) -> None: ...

    def mark_started(self, bulk_change_id: str, at: datetime) -> None:
        """Set started_at and PROCESSING once; later calls change nothing."""
        ...

    def add_lines(self, lines: Sequence[DeviceLine]) -> None: ...

    def add_batches(self, batches: Sequence[CarrierBatch]) -> None: ...

    def get_batch(self, batch_id: str, *, lock: bool = False) -> CarrierBatch | None: ...

    def save_batch(self, batch: CarrierBatch) -> None: ...

    def lines_of_batch(
        self, batch_id: str, *, lock: bool = False, status: LineStatus | None = None
    ) -> list[DeviceLine]:
        """The batch's lines in order; only those in `status` when it is given."""
        ...

    def save_lines(self, lines: Sequence[DeviceLine]) -> None: ...

    def lines_to_send(self, batch_id: str) -> LinesToSend: ...

    def count_attempt(self, batch_id: str) -> int:
        """One more attempt on each PENDING line of the batch; how many there were."""
        ...

    def mark_submitted(self, batch_id: str, carrier_request_id: str) -> int:
        """The batch's PENDING lines become SUBMITTED under this carrier request id."""
        ...

    def open_lines_for_outcomes(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DeviceLine]:
        """Unfinished lines by (carrier request id, ICCID), locked for update."""
        ...

    def open_lines_by_iccid(self, iccids: Sequence[str]) -> dict[str, DeviceLine]:
        """Unfinished lines sent in a request whose id we never learned, by ICCID."""
        ...

    def open_line_count(self, batch_id: str) -> int: ...

    def traceparent_for_request(self, carrier_request_id: str) -> str | None:
        """The stored trace context of the batch the carrier answered with this id."""
        ...

    def open_batch_count(self, bulk_change_id: str) -> int: ...

    def line_counts(self, bulk_change_id: str) -> dict[LineStatus, int]: ...

    def cancel_unsent(self, bulk_change_id: str) -> int:
        """Cancel lines whose carrier request was not started; returns how many."""
        ...

    def list_lines(
        self, bulk_change_id: str, *, status: LineStatus | None, limit: int, cursor: str | None
    ) -> Page[DeviceLine]: ...

    def list_bulk_changes(
        self, tenant: str, *, limit: int, cursor: str | None
    ) -> Page[BulkChange]: ...


class AuditLog(Protocol):
    def record(self, entries: Sequence[AuditEntry]) -> None: ...

    def history(
        self, tenant: str, iccid: str, *, limit: int, cursor: str | None
    ) -> Page[AuditEntry]: ...

    def plan_changes_since(
        self, tenant: str, iccids: Sequence[str], since: datetime
    ) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A queue message written in the same transaction as the state that explains it."""

    actor: str
    payload: Mapping[str, Any]
    delay_ms: int = 0


class Outbox(Protocol):
    def add(self, message: OutgoingMessage) -> None: ...


class CallbackInbox(Protocol):
    """Carrier callbacks stored on arrival (deduplicated), settled later in batches."""

    def store(self, outcomes: Sequence[CarrierDeviceOutcome]) -> int:
        """Store new outcomes; returns how many were not already stored."""
        ...

    def store_groups(self, groups: Sequence[Sequence[CarrierDeviceOutcome]]) -> list[int]:
        """`store` for many callbacks at once: how many of each group were new (a repeat
        within `groups` is new only in its first group)."""
        ...

    def claim(self, limit: int) -> list[tuple[int, CarrierDeviceOutcome]]:
        """Unsettled outcomes, oldest first, locked for this transaction."""
        ...

    def mark_processed(self, ids: Sequence[int]) -> None: ...


class UnitOfWork(Protocol):
    inbox: CallbackInbox
    devices: DeviceRepository
    plans: RatePlanRepository
    bulk_changes: BulkChangeRepository
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


@dataclass(frozen=True, slots=True)
class CarrierAccount:
    """The carrier account a tenant's devices live on, with its gateway and its rate limit."""

    tenant: str
    account_name: str
    gateway: CarrierGateway
    rate_limiter: RateLimiter


class CarrierDirectory(Protocol):
    def for_tenant(self, tenant: str) -> CarrierAccount: ...


class TraceContext(Protocol):
    def current_traceparent(self) -> str | None: ...


class CallbackTracing(Protocol):
    def storing(self, request_ids: Collection[str], callbacks: int) -> AbstractContextManager[None]:
        """Around the transaction that stores a group of carrier callbacks: the trace of that
        work, tied to the carrier calls (`request_ids`) whose callbacks it stores."""
        ...
