"""A bulk change, its device lines and the carrier requests that carry them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from device_change.domain.changes import CarrierAction, ChangeType


class BulkChangeStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (
            BulkChangeStatus.COMPLETED,
            BulkChangeStatus.COMPLETED_WITH_ERRORS,
            BulkChangeStatus.CANCELLED,
        )


class LineStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_LINE_STATUSES


TERMINAL_LINE_STATUSES = frozenset({LineStatus.SUCCEEDED, LineStatus.FAILED, LineStatus.CANCELLED})

_LINE_MOVES: dict[LineStatus, frozenset[LineStatus]] = {
    LineStatus.PENDING: frozenset(
        {LineStatus.SUBMITTED, LineStatus.SUCCEEDED, LineStatus.FAILED, LineStatus.CANCELLED}
    ),
    LineStatus.SUBMITTED: frozenset({LineStatus.SUCCEEDED, LineStatus.FAILED}),
}


def line_may_move(current: LineStatus, new: LineStatus) -> bool:
    """Terminal lines never move again: a late or repeated callback changes nothing."""
    return new in _LINE_MOVES.get(current, frozenset())


def bulk_status_from_counts(
    counts: Mapping[LineStatus, int], *, started: bool, cancel_requested: bool
) -> BulkChangeStatus:
    """The bulk change's status follows from its lines; it never overwrites them."""
    open_lines = counts.get(LineStatus.PENDING, 0) + counts.get(LineStatus.SUBMITTED, 0)
    if open_lines:
        return BulkChangeStatus.PROCESSING if started else BulkChangeStatus.QUEUED
    if cancel_requested and counts.get(LineStatus.CANCELLED, 0):
        return BulkChangeStatus.CANCELLED
    if counts.get(LineStatus.FAILED, 0) or counts.get(LineStatus.CANCELLED, 0):
        return BulkChangeStatus.COMPLETED_WITH_ERRORS
    return BulkChangeStatus.COMPLETED


@dataclass(slots=True)
class BulkChange:
    id: str
    tenant: str
    change_type: ChangeType
    params: dict[str, Any]
    submitted_by: str
    created_at: datetime
    status: BulkChangeStatus = BulkChangeStatus.QUEUED
    idempotency_key: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    total_lines: int = 0


@dataclass(slots=True)
class DeviceLine:
    """One device of a bulk change: it always ends SUCCEEDED, FAILED (with reason) or CANCELLED."""

    id: str
    bulk_change_id: str
    tenant: str
    seq: int
    iccid: str
    request: dict[str, Any]
    status: LineStatus = LineStatus.PENDING
    reason: str | None = None
    action: CarrierAction | None = None
    after: dict[str, Any] = field(default_factory=dict)
    carrier_args: dict[str, Any] = field(default_factory=dict)
    carrier_request_id: str | None = None
    batch_id: str | None = None
    attempts: int = 0


class BatchStatus(enum.StrEnum):
    """One carrier request carrying many device lines."""

    PLANNED = "PLANNED"  # not sent yet (or safe to send again: the carrier refused it)
    SENDING = "SENDING"  # a send was started; whether the carrier got it is unknown
    SUBMITTED = "SUBMITTED"  # the carrier answered with a request id
    DONE = "DONE"  # every line settled
    CANCELLED = "CANCELLED"


@dataclass(slots=True)
class CarrierBatch:
    id: str
    bulk_change_id: str
    tenant: str
    action: CarrierAction
    status: BatchStatus = BatchStatus.PLANNED
    carrier_request_id: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    submitted_at: datetime | None = None
    traceparent: str | None = None
    line_count: int = 0
