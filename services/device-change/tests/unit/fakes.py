"""Small in-memory stand-ins for the ports, for use-case tests."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from device_change.app.ports import (
    AuditEntry,
    CarrierAccount,
    CarrierDeviceOutcome,
    CarrierDeviceRef,
    CarrierDeviceState,
    LinesToSend,
    OutgoingMessage,
    Page,
)
from device_change.domain.bulk_change import (
    BatchStatus,
    BulkChange,
    CarrierBatch,
    DeviceLine,
    LineStatus,
)
from device_change.domain.changes import CarrierAction
from device_change.domain.device import Device, DeviceStatus, RatePlan
from device_change.domain.identifiers import luhn_check_digit

OPEN = (LineStatus.PENDING, LineStatus.SUBMITTED)


def make_iccid(n: int) -> str:
    body = f"891480000000{n:07d}"
    return body + luhn_check_digit(body)


def make_imei(n: int) -> str:
    body = f"35693803{n:06d}"
    return body + luhn_check_digit(body)


class FixedClock:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class Store:
    """Everything the fake unit of work persists; copied on enter, swapped in on commit."""

    devices: dict[str, Device] = field(default_factory=dict)  # iccid -> device
    plans: dict[str, dict[str, RatePlan]] = field(default_factory=dict)
    bulks: dict[str, BulkChange] = field(default_factory=dict)
    fingerprints: dict[str, str | None] = field(default_factory=dict)
    lines: dict[str, DeviceLine] = field(default_factory=dict)
    batches: dict[str, CarrierBatch] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    outbox: list[OutgoingMessage] = field(default_factory=list)
    inbox: dict[tuple[str, str, bool | None], tuple[int, CarrierDeviceOutcome, bool]] = field(
        default_factory=dict
    )


class FakeDevices:
    def __init__(self, s: Store) -> None:
        self.s = s

    def get_many(self, tenant: str, iccids: Sequence[str]) -> dict[str, Device]:
        return {i: d for i in iccids if (d := self.s.devices.get(i)) and d.tenant == tenant}

    def get_many_by_msisdn(self, tenant: str, msisdns: Sequence[str]) -> dict[str, Device]:
        wanted = set(msisdns)
        return {
            d.msisdn: d
            for d in self.s.devices.values()
            if d.tenant == tenant and d.msisdn in wanted and d.msisdn
        }

    def identifiers_in_use(self, values: Sequence[str]) -> frozenset[str]:
        held = {d.iccid for d in self.s.devices.values()} | {
            d.imei for d in self.s.devices.values() if d.imei
        }
        return frozenset(v for v in values if v in held)

    def update(self, tenant: str, iccid: str, changes: Mapping[str, Any]) -> Device | None:
        before = self.s.devices.get(iccid)
        if before is None or before.tenant != tenant:
            return None
        after = replace(before, **changes)
        del self.s.devices[iccid]
        self.s.devices[after.iccid] = after
        return before

    def update_many(
        self, tenant: str, changes: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Device]:
        befores = {i: self.update(tenant, i, c) for i, c in changes.items()}
        return {i: b for i, b in befores.items() if b is not None}

    def upsert_from_carrier(self, tenant: str, devices: Sequence[CarrierDeviceState]) -> int:
        for st in devices:
            old = self.s.devices.get(st.iccid)
            self.s.devices[st.iccid] = Device(
                tenant,
                st.iccid,
                st.imei,
                st.msisdn,
                st.status or (old.status if old else DeviceStatus.PENDING_ACTIVATION),
                st.rate_plan,
                st.account_name,
            )
        return len(devices)

    def list(
        self, tenant: str, *, status: Any, rate_plan: Any, limit: int, cursor: Any
    ) -> Page[Device]:
        items = sorted(
            (
                d
                for d in self.s.devices.values()
                if d.tenant == tenant
                and (status is None or d.status is status)
                and (rate_plan is None or d.rate_plan == rate_plan)
                and (cursor is None or d.iccid > cursor)
            ),
            key=lambda d: d.iccid,
        )
        page = items[:limit]
        return Page(page, page[-1].iccid if len(items) > limit else None)


class FakePlans:
    def __init__(self, s: Store) -> None:
        self.s = s

    def all(self, tenant: str) -> dict[str, RatePlan]:
        return dict(self.s.plans.get(tenant, {}))

    def replace(self, tenant: str, plans: Sequence[RatePlan]) -> None:
        self.s.plans[tenant] = {p.code: p for p in plans}


class FakeBulkChanges:
    def __init__(self, s: Store) -> None:
        self.s = s

    def add(self, bulk: BulkChange, request_fingerprint: str | None) -> None:
        self.s.bulks[bulk.id] = bulk
        self.s.fingerprints[bulk.id] = request_fingerprint

    def get(
        self, tenant: str | None, bulk_change_id: str, *, lock: bool = False
    ) -> BulkChange | None:
        b = self.s.bulks.get(bulk_change_id)
        return b if b and (tenant is None or b.tenant == tenant) else None

    def find_by_idempotency_key(
        self, tenant: str, key: str
    ) -> tuple[BulkChange, str | None] | None:
        for b in self.s.bulks.values():
            if b.tenant == tenant and b.idempotency_key == key:
                return b, self.s.fingerprints[b.id]
        return None

    def save(self, bulk: BulkChange) -> None:
        self.s.bulks[bulk.id] = bulk

    def mark_started(self, bulk_change_id: str, at: datetime) -> None:
        b = self.s.bulks[bulk_change_id]
        if b.started_at is None:
            b.started_at = at
            if not b.status.finished:
                from device_change.domain.bulk_change import BulkChangeStatus

                b.status = BulkChangeStatus.PROCESSING

    def add_lines(self, lines: Sequence[DeviceLine]) -> None:
        for ln in lines:
            self.s.lines[ln.id] = ln

    def add_batches(self, batches: Sequence[CarrierBatch]) -> None:
        for b in batches:
            self.s.batches[b.id] = b

    def get_batch(self, batch_id: str, *, lock: bool = False) -> CarrierBatch | None:
        return self.s.batches.get(batch_id)

    def save_batch(self, batch: CarrierBatch) -> None:
        self.s.batches[batch.id] = batch

    def lines_of_batch(
        self, batch_id: str, *, lock: bool = False, status: LineStatus | None = None
    ) -> list[DeviceLine]:
        return sorted(
            (
                ln
                for ln in self.s.lines.values()
                if ln.batch_id == batch_id and (status is None or ln.status is status)
            ),
            key=lambda ln: ln.seq,
        )

    def save_lines(self, lines: Sequence[DeviceLine]) -> None:
        for ln in lines:
            self.s.lines[ln.id] = ln

    def lines_to_send(self, batch_id: str) -> LinesToSend:
        pending = sorted(self._pending_of(batch_id), key=lambda ln: ln.seq)
        return LinesToSend(
            devices=[
                CarrierDeviceRef(ln.iccid, ln.request.get("imei"), ln.request.get("msisdn"))
                for ln in pending
            ],
            carrier_args=dict(pending[0].carrier_args) if pending else {},
        )

    def count_attempt(self, batch_id: str) -> int:
        pending = self._pending_of(batch_id)
        for ln in pending:
            ln.attempts += 1
        return len(pending)

    def mark_submitted(self, batch_id: str, carrier_request_id: str) -> int:
        pending = self._pending_of(batch_id)
        for ln in pending:
            ln.status = LineStatus.SUBMITTED
            ln.carrier_request_id = carrier_request_id
        return len(pending)

    def _pending_of(self, batch_id: str) -> list[DeviceLine]:
        return [
            ln
            for ln in self.s.lines.values()
            if ln.batch_id == batch_id and ln.status is LineStatus.PENDING
        ]

    def open_lines_for_outcomes(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DeviceLine]:
        wanted = set(keys)
        return {
            (ln.carrier_request_id, ln.iccid): ln
            for ln in self.s.lines.values()
            if ln.status in OPEN
            and ln.carrier_request_id
            and (ln.carrier_request_id, ln.iccid) in wanted
        }

    def open_lines_by_iccid(self, iccids: Sequence[str]) -> dict[str, DeviceLine]:
        wanted = set(iccids)
        out: dict[str, DeviceLine] = {}
        for ln in self.s.lines.values():
            batch = self.s.batches.get(ln.batch_id or "")
            if (
                ln.iccid in wanted
                and ln.status in OPEN
                and (
                    ln.carrier_request_id is None or (batch and batch.status is BatchStatus.SENDING)
                )
            ):
                out[ln.iccid] = ln
        return out

    def open_line_count(self, batch_id: str) -> int:
        return sum(1 for ln in self.lines_of_batch(batch_id) if ln.status in OPEN)

    def traceparent_for_request(self, carrier_request_id: str) -> str | None:
        for b in self.s.batches.values():
            if b.carrier_request_id == carrier_request_id:
                return b.traceparent
        return None

    def open_batch_count(self, bulk_change_id: str) -> int:
        return sum(
            1
            for b in self.s.batches.values()
            if b.bulk_change_id == bulk_change_id
            and b.status not in (BatchStatus.DONE, BatchStatus.CANCELLED)
        )

    def line_counts(self, bulk_change_id: str) -> dict[LineStatus, int]:
        counts = dict.fromkeys(LineStatus, 0)
        for ln in self.s.lines.values():
            if ln.bulk_change_id == bulk_change_id:
                counts[ln.status] += 1
        return counts

    def cancel_unsent(self, bulk_change_id: str) -> int:
        n = 0
        for b in self.s.batches.values():
            if b.bulk_change_id == bulk_change_id and b.status is BatchStatus.PLANNED:
                b.status = BatchStatus.CANCELLED
                for ln in self.lines_of_batch(b.id):
                    if ln.status is LineStatus.PENDING:
                        ln.status = LineStatus.CANCELLED
                        ln.reason = "cancelled before it was sent to the carrier"
                        n += 1
        return n

    def list_lines(
        self, bulk_change_id: str, *, status: Any, limit: int, cursor: Any
    ) -> Page[DeviceLine]:
        raise NotImplementedError

    def list_bulk_changes(self, tenant: str, *, limit: int, cursor: Any) -> Page[BulkChange]:
        raise NotImplementedError


class FakeAudit:
    def __init__(self, s: Store) -> None:
        self.s = s

    def record(self, entries: Sequence[AuditEntry]) -> None:
        self.s.audit.extend(entries)

    def history(self, tenant: str, iccid: str, *, limit: int, cursor: Any) -> Page[AuditEntry]:
        return Page([e for e in reversed(self.s.audit) if e.iccid == iccid][:limit], None)

    def plan_changes_since(
        self, tenant: str, iccids: Sequence[str], since: datetime
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.s.audit:
            if e.action == "change_plan" and e.at >= since and e.iccid in iccids:
                out[e.iccid] = out.get(e.iccid, 0) + 1
        return out


class FakeOutbox:
    def __init__(self, s: Store) -> None:
        self.s = s

    def add(self, message: OutgoingMessage) -> None:
        self.s.outbox.append(message)


class FakeInbox:
    _ids = itertools.count(1)

    def __init__(self, s: Store) -> None:
        self.s = s

    def store_groups(self, groups: Sequence[Sequence[CarrierDeviceOutcome]]) -> list[int]:
        return [self.store(outcomes) for outcomes in groups]

    def store(self, outcomes: Sequence[CarrierDeviceOutcome]) -> int:
        new = 0
        for o in outcomes:
            key = (o.request_id, o.iccid, o.succeeded)
            if key not in self.s.inbox:
                self.s.inbox[key] = (next(self._ids), o, False)
                new += 1
        return new

    def claim(self, limit: int) -> list[tuple[int, CarrierDeviceOutcome]]:
        rows = sorted((v for v in self.s.inbox.values() if not v[2]), key=lambda v: v[0])
        return [(i, o) for i, o, _ in rows[:limit]]

    def mark_processed(self, ids: Sequence[int]) -> None:
        done = set(ids)
        for k, (i, o, _) in list(self.s.inbox.items()):
            if i in done:
                self.s.inbox[k] = (i, o, True)


class FakeUnitOfWork:
    def __init__(self, store: Store) -> None:
        self.committed = store
        self.commits = 0

    def __enter__(self) -> FakeUnitOfWork:
        self.s = copy.deepcopy(self.committed)
        self.devices = FakeDevices(self.s)
        self.plans = FakePlans(self.s)
        self.bulk_changes = FakeBulkChanges(self.s)
        self.audit = FakeAudit(self.s)
        self.outbox = FakeOutbox(self.s)
        self.inbox = FakeInbox(self.s)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def commit(self) -> None:
        self.committed.__dict__.update(copy.deepcopy(self.s).__dict__)
        self.commits += 1

    def rollback(self) -> None:
        pass


class FakeUnitOfWorkFactory:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store)

    def take_outbox(self) -> list[OutgoingMessage]:
        out, self.store.outbox = self.store.outbox, []
        return out


@dataclass
class FakeCarrier:
    """A carrier that answers from a script: each call pops the next planned behaviour."""

    states: dict[str, CarrierDeviceState] = field(default_factory=dict)
    script: list[Exception | None] = field(default_factory=list)
    sent: list[tuple[CarrierAction, list[str], dict[str, Any]]] = field(default_factory=list)
    outcomes: dict[str, list[CarrierDeviceOutcome]] = field(default_factory=dict)
    plans: list[RatePlan] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def submit(
        self, action: CarrierAction, devices: Sequence[CarrierDeviceRef], args: Mapping[str, Any]
    ) -> str:
        self.sent.append((action, [d.iccid for d in devices], dict(args)))
        step = self.script.pop(0) if self.script else None
        if step is not None:
            raise step
        request_id = f"req-{next(self._ids)}"
        if self.before_answer is not None:
            self.before_answer(request_id)
        return request_id

    lookup_script: list[Exception | None] = field(default_factory=list)
    # Runs after the carrier took a request and before its answer reaches us.
    before_answer: Any = None
    status_script: list[Exception | None] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)

    def device_state(self, iccid: str) -> CarrierDeviceState | None:
        self.looked_up.append(iccid)
        step = self.lookup_script.pop(0) if self.lookup_script else None
        if step is not None:
            raise step
        return self.states.get(iccid)

    def request_outcomes(
        self, request_id: str, iccids: Sequence[str]
    ) -> list[CarrierDeviceOutcome]:
        step = self.status_script.pop(0) if self.status_script else None
        if step is not None:
            raise step
        return [o for o in self.outcomes.get(request_id, []) if o.iccid in iccids]

    def iter_devices(self) -> Any:
        states = list(self.states.values())
        for start in range(0, len(states), 2):
            yield states[start : start + 2]

    def rate_plans(self) -> list[RatePlan]:
        return list(self.plans)

    def register_callback(self, url: str, *, username: str, password: str) -> None:
        pass


class NoLimit:
    def acquire(self) -> float:
        return 0.0


@dataclass
class OneAccount:
    gateway: FakeCarrier

    def for_tenant(self, tenant: str) -> CarrierAccount:
        return CarrierAccount(tenant, "0000123456-00001", self.gateway, NoLimit())


class NoTrace:
    def current_traceparent(self) -> str | None:
        return "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
