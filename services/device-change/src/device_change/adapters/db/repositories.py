"""Repositories: rows <-> domain objects, every query of the service lives here."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from device_change.adapters.db import tables as t
from device_change.app.ports import (
    AuditEntry,
    CarrierDeviceOutcome,
    CarrierDeviceState,
    OutgoingMessage,
    Page,
)
from device_change.domain.bulk_change import (
    BatchStatus,
    BulkChange,
    BulkChangeStatus,
    CarrierBatch,
    DeviceLine,
    LineStatus,
)
from device_change.domain.changes import CarrierAction, ChangeType
from device_change.domain.device import Device, DeviceStatus, RatePlan

T = TypeVar("T")
CHUNK = 1000
OPEN = [LineStatus.PENDING.value, LineStatus.SUBMITTED.value]


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def encode_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _insert_for(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SqlAlchemyDeviceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @staticmethod
    def _device(r: RowMapping) -> Device:
        return Device(
            tenant=r["tenant"],
            iccid=r["iccid"],
            imei=r["imei"],
            msisdn=r["msisdn"],
            status=DeviceStatus(r["status"]),
            rate_plan=r["rate_plan"],
            account_name=r["account_name"],
        )

    def get_many(self, tenant: str, iccids: Sequence[str]) -> dict[str, Device]:
        out: dict[str, Device] = {}
        for chunk in _chunks(list(dict.fromkeys(iccids))):
            q = select(t.devices).where(t.devices.c.tenant == tenant, t.devices.c.iccid.in_(chunk))
            for r in self.conn.execute(q).mappings():
                out[r["iccid"]] = self._device(r)
        return out

    def get_many_by_msisdn(self, tenant: str, msisdns: Sequence[str]) -> dict[str, Device]:
        out: dict[str, Device] = {}
        for chunk in _chunks(list(dict.fromkeys(msisdns))):
            q = select(t.devices).where(t.devices.c.tenant == tenant, t.devices.c.msisdn.in_(chunk))
            for r in self.conn.execute(q).mappings():
                out[r["msisdn"]] = self._device(r)
        return out

    def identifiers_in_use(self, values: Sequence[str]) -> frozenset[str]:
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(values))):
            for col in (t.devices.c.iccid, t.devices.c.imei):
                found |= {v for (v,) in self.conn.execute(select(col).where(col.in_(chunk)))}
        return frozenset(found)

    def update(self, tenant: str, iccid: str, changes: Mapping[str, Any]) -> Device | None:
        row = (
            self.conn.execute(
                select(t.devices).where(t.devices.c.tenant == tenant, t.devices.c.iccid == iccid)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        values = {
            k: (v.value if isinstance(v, DeviceStatus) else v)
            for k, v in changes.items()
            if k in ("status", "rate_plan", "iccid", "imei", "msisdn")
        }
        values["updated_at"] = _now()
        self.conn.execute(update(t.devices).where(t.devices.c.id == row["id"]).values(**values))
        return self._device(row)

    def upsert_from_carrier(self, tenant: str, devices: Sequence[CarrierDeviceState]) -> int:
        if not devices:
            return 0
        rows = [
            {
                "tenant": tenant,
                "iccid": d.iccid,
                "imei": d.imei,
                "msisdn": d.msisdn,
                "status": (d.status or DeviceStatus.PENDING_ACTIVATION).value,
                "rate_plan": d.rate_plan,
                "account_name": d.account_name,
                "updated_at": _now(),
            }
            for d in devices
        ]
        stmt = _insert_for(self.conn, t.devices)
        stmt = stmt.on_conflict_do_update(
            index_elements=["iccid"],
            set_={
                "imei": stmt.excluded.imei,
                "msisdn": stmt.excluded.msisdn,
                "status": stmt.excluded.status,
                "rate_plan": stmt.excluded.rate_plan,
                "account_name": stmt.excluded.account_name,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        self.conn.execute(stmt, rows)
        return len(rows)

    def list(
        self,
        tenant: str,
        *,
        status: DeviceStatus | None,
        rate_plan: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Device]:
        q = select(t.devices).where(t.devices.c.tenant == tenant)
        if status is not None:
            q = q.where(t.devices.c.status == status.value)
        if rate_plan:
            q = q.where(t.devices.c.rate_plan == rate_plan)
        after = decode_cursor(cursor)
        if after:
            q = q.where(t.devices.c.iccid > after)
        rows = list(self.conn.execute(q.order_by(t.devices.c.iccid).limit(limit + 1)).mappings())
        items = [self._device(r) for r in rows[:limit]]
        return Page(items, encode_cursor(items[-1].iccid) if len(rows) > limit else None)


class SqlAlchemyRatePlanRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def all(self, tenant: str) -> dict[str, RatePlan]:
        q = select(t.rate_plans).where(t.rate_plans.c.tenant == tenant)
        return {
            r["code"]: RatePlan(r["code"], r["name"], r["size_kb"])
            for r in self.conn.execute(q).mappings()
        }

    def replace(self, tenant: str, plans: Sequence[RatePlan]) -> None:
        self.conn.execute(t.rate_plans.delete().where(t.rate_plans.c.tenant == tenant))
        if plans:
            self.conn.execute(
                insert(t.rate_plans),
                [
                    {"tenant": tenant, "code": p.code, "name": p.name, "size_kb": p.size_kb}
                    for p in plans
                ],
            )


def _bulk(r: RowMapping) -> BulkChange:
    return BulkChange(
        id=r["id"],
        tenant=r["tenant"],
        change_type=ChangeType(r["change_type"]),
        params=dict(r["params"]),
        submitted_by=r["submitted_by"],
        created_at=_aware(r["created_at"]) or _now(),
        status=BulkChangeStatus(r["status"]),
        idempotency_key=r["idempotency_key"],
        started_at=_aware(r["started_at"]),
        finished_at=_aware(r["finished_at"]),
        cancel_requested=bool(r["cancel_requested"]),
        total_lines=r["total_lines"],
    )


def _line(r: RowMapping) -> DeviceLine:
    return DeviceLine(
        id=r["id"],
        bulk_change_id=r["bulk_change_id"],
        tenant=r["tenant"],
        seq=r["seq"],
        iccid=r["iccid"],
        request=dict(r["request"]),
        status=LineStatus(r["status"]),
        reason=r["reason"],
        action=CarrierAction(r["action"]) if r["action"] else None,
        after=dict(r["after"]),
        carrier_args=dict(r["carrier_args"]),
        carrier_request_id=r["carrier_request_id"],
        batch_id=r["batch_id"],
        attempts=r["attempts"],
    )


def _batch(r: RowMapping) -> CarrierBatch:
    return CarrierBatch(
        id=r["id"],
        bulk_change_id=r["bulk_change_id"],
        tenant=r["tenant"],
        action=CarrierAction(r["action"]),
        status=BatchStatus(r["status"]),
        carrier_request_id=r["carrier_request_id"],
        attempts=r["attempts"],
        next_attempt_at=_aware(r["next_attempt_at"]),
        submitted_at=_aware(r["submitted_at"]),
        traceparent=r["traceparent"],
        line_count=r["line_count"],
    )


class SqlAlchemyBulkChangeRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def _lock(self, q: Any, lock: bool) -> Any:
        return q.with_for_update() if lock and self.pg else q

    def add(self, bulk: BulkChange, request_fingerprint: str | None) -> None:
        self.conn.execute(
            insert(t.bulk_changes).values(
                id=bulk.id,
                tenant=bulk.tenant,
                change_type=bulk.change_type.value,
                params=bulk.params,
                status=bulk.status.value,
                submitted_by=bulk.submitted_by,
                idempotency_key=bulk.idempotency_key,
                request_fingerprint=request_fingerprint,
                created_at=bulk.created_at,
                started_at=bulk.started_at,
                finished_at=bulk.finished_at,
                cancel_requested=bulk.cancel_requested,
                total_lines=bulk.total_lines,
            )
        )

    def get(self, tenant: str | None, bulk_change_id: str) -> BulkChange | None:
        q = select(t.bulk_changes).where(t.bulk_changes.c.id == bulk_change_id)
        if tenant is not None:
            q = q.where(t.bulk_changes.c.tenant == tenant)
        r = self.conn.execute(q).mappings().first()
        return _bulk(r) if r else None

    def find_by_idempotency_key(
        self, tenant: str, key: str
    ) -> tuple[BulkChange, str | None] | None:
        q = select(t.bulk_changes).where(
            t.bulk_changes.c.tenant == tenant, t.bulk_changes.c.idempotency_key == key
        )
        r = self.conn.execute(q).mappings().first()
        return (_bulk(r), r["request_fingerprint"]) if r else None

    def save(self, bulk: BulkChange) -> None:
        self.conn.execute(
            update(t.bulk_changes)
            .where(t.bulk_changes.c.id == bulk.id)
            .values(
                status=bulk.status.value,
                started_at=bulk.started_at,
                finished_at=bulk.finished_at,
                cancel_requested=bulk.cancel_requested,
            )
        )

    def mark_started(self, bulk_change_id: str, at: datetime) -> None:
        self.conn.execute(
            update(t.bulk_changes)
            .where(t.bulk_changes.c.id == bulk_change_id, t.bulk_changes.c.started_at.is_(None))
            .values(started_at=at, status=BulkChangeStatus.PROCESSING.value)
        )

    def add_lines(self, lines: Sequence[DeviceLine]) -> None:
        now = _now()
        rows = [
            {
                "id": ln.id,
                "bulk_change_id": ln.bulk_change_id,
                "tenant": ln.tenant,
                "seq": ln.seq,
                "iccid": ln.iccid,
                "request": ln.request,
                "status": ln.status.value,
                "reason": ln.reason,
                "action": ln.action.value if ln.action else None,
                "after": ln.after,
                "carrier_args": ln.carrier_args,
                "carrier_request_id": ln.carrier_request_id,
                "batch_id": ln.batch_id,
                "attempts": ln.attempts,
                "updated_at": now,
            }
            for ln in lines
        ]
        for chunk in _chunks(rows, 5000):
            self.conn.execute(insert(t.device_lines), list(chunk))

    def add_batches(self, batches: Sequence[CarrierBatch]) -> None:
        if not batches:
            return
        self.conn.execute(
            insert(t.carrier_batches),
            [
                {
                    "id": b.id,
                    "bulk_change_id": b.bulk_change_id,
                    "tenant": b.tenant,
                    "action": b.action.value,
                    "status": b.status.value,
                    "carrier_request_id": b.carrier_request_id,
                    "attempts": b.attempts,
                    "next_attempt_at": b.next_attempt_at,
                    "submitted_at": b.submitted_at,
                    "traceparent": b.traceparent,
                    "line_count": b.line_count,
                }
                for b in batches
            ],
        )

    def get_batch(self, batch_id: str, *, lock: bool = False) -> CarrierBatch | None:
        q = self._lock(select(t.carrier_batches).where(t.carrier_batches.c.id == batch_id), lock)
        r = self.conn.execute(q).mappings().first()
        return _batch(r) if r else None

    def save_batch(self, batch: CarrierBatch) -> None:
        self.conn.execute(
            update(t.carrier_batches)
            .where(t.carrier_batches.c.id == batch.id)
            .values(
                status=batch.status.value,
                carrier_request_id=batch.carrier_request_id,
                attempts=batch.attempts,
                next_attempt_at=batch.next_attempt_at,
                submitted_at=batch.submitted_at,
                traceparent=batch.traceparent,
            )
        )

    def lines_of_batch(self, batch_id: str, *, lock: bool = False) -> list[DeviceLine]:
        q = select(t.device_lines).where(t.device_lines.c.batch_id == batch_id)
        q = self._lock(q.order_by(t.device_lines.c.seq), lock)
        return [_line(r) for r in self.conn.execute(q).mappings()]

    def save_lines(self, lines: Sequence[DeviceLine]) -> None:
        if not lines:
            return
        stmt = (
            update(t.device_lines)
            .where(t.device_lines.c.id == bindparam("_id"))
            .values(
                status=bindparam("_status"),
                reason=bindparam("_reason"),
                carrier_request_id=bindparam("_request"),
                attempts=bindparam("_attempts"),
                updated_at=bindparam("_at"),
            )
        )
        now = _now()
        self.conn.execute(
            stmt,
            [
                {
                    "_id": ln.id,
                    "_status": ln.status.value,
                    "_reason": ln.reason,
                    "_request": ln.carrier_request_id,
                    "_attempts": ln.attempts,
                    "_at": now,
                }
                for ln in lines
            ],
        )

    def open_lines_for_outcomes(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DeviceLine]:
        wanted = set(keys)
        out: dict[tuple[str, str], DeviceLine] = {}
        request_ids = sorted({r for r, _ in wanted})
        iccids = sorted({i for _, i in wanted})
        for req_chunk in _chunks(request_ids):
            for iccid_chunk in _chunks(iccids):
                q = select(t.device_lines).where(
                    t.device_lines.c.carrier_request_id.in_(req_chunk),
                    t.device_lines.c.iccid.in_(iccid_chunk),
                    t.device_lines.c.status.in_(OPEN),
                )
                for r in self.conn.execute(self._lock(q, True)).mappings():
                    key = (r["carrier_request_id"], r["iccid"])
                    if key in wanted:
                        out[key] = _line(r)
        return out

    def open_lines_by_iccid(self, iccids: Sequence[str]) -> dict[str, DeviceLine]:
        out: dict[str, DeviceLine] = {}
        for chunk in _chunks(list(dict.fromkeys(iccids))):
            q = (
                select(t.device_lines)
                .join(t.carrier_batches, t.carrier_batches.c.id == t.device_lines.c.batch_id)
                .where(
                    t.device_lines.c.iccid.in_(chunk),
                    t.device_lines.c.status.in_(OPEN),
                    (t.device_lines.c.carrier_request_id.is_(None))
                    | (t.carrier_batches.c.status == BatchStatus.SENDING.value),
                )
                .order_by(t.device_lines.c.updated_at)
            )
            for r in self.conn.execute(q).mappings():
                out[r["iccid"]] = _line(r)
        return out

    def open_line_count(self, batch_id: str) -> int:
        q = select(func.count()).where(
            t.device_lines.c.batch_id == batch_id, t.device_lines.c.status.in_(OPEN)
        )
        return int(self.conn.execute(q).scalar_one())

    def traceparent_for_request(self, carrier_request_id: str) -> str | None:
        q = select(t.carrier_batches.c.traceparent).where(
            t.carrier_batches.c.carrier_request_id == carrier_request_id
        )
        return self.conn.execute(q.limit(1)).scalar_one_or_none()

    def open_batch_count(self, bulk_change_id: str) -> int:
        q = select(func.count()).where(
            t.carrier_batches.c.bulk_change_id == bulk_change_id,
            t.carrier_batches.c.status.notin_(
                [BatchStatus.DONE.value, BatchStatus.CANCELLED.value]
            ),
        )
        return int(self.conn.execute(q).scalar_one())

    def line_counts(self, bulk_change_id: str) -> dict[LineStatus, int]:
        counts = dict.fromkeys(LineStatus, 0)
        q = (
            select(t.device_lines.c.status, func.count())
            .where(t.device_lines.c.bulk_change_id == bulk_change_id)
            .group_by(t.device_lines.c.status)
        )
        for status, n in self.conn.execute(q):
            counts[LineStatus(status)] = int(n)
        return counts

    def cancel_unsent(self, bulk_change_id: str) -> int:
        planned = [
            r
            for (r,) in self.conn.execute(
                self._lock(
                    select(t.carrier_batches.c.id).where(
                        t.carrier_batches.c.bulk_change_id == bulk_change_id,
                        t.carrier_batches.c.status == BatchStatus.PLANNED.value,
                    ),
                    True,
                )
            )
        ]
        cancelled = 0
        for chunk in _chunks(planned):
            result = self.conn.execute(
                update(t.device_lines)
                .where(
                    t.device_lines.c.batch_id.in_(chunk),
                    t.device_lines.c.status == LineStatus.PENDING.value,
                )
                .values(
                    status=LineStatus.CANCELLED.value,
                    reason="cancelled before it was sent to the carrier",
                    updated_at=_now(),
                )
            )
            cancelled += result.rowcount or 0
            self.conn.execute(
                update(t.carrier_batches)
                .where(t.carrier_batches.c.id.in_(chunk))
                .values(status=BatchStatus.CANCELLED.value)
            )
        return cancelled

    def list_lines(
        self, bulk_change_id: str, *, status: LineStatus | None, limit: int, cursor: str | None
    ) -> Page[DeviceLine]:
        q = select(t.device_lines).where(t.device_lines.c.bulk_change_id == bulk_change_id)
        if status is not None:
            q = q.where(t.device_lines.c.status == status.value)
        after = decode_cursor(cursor)
        if after and after.isdigit():
            q = q.where(t.device_lines.c.seq > int(after))
        rows = list(self.conn.execute(q.order_by(t.device_lines.c.seq).limit(limit + 1)).mappings())
        items = [_line(r) for r in rows[:limit]]
        return Page(items, encode_cursor(items[-1].seq) if len(rows) > limit else None)

    def list_bulk_changes(self, tenant: str, *, limit: int, cursor: str | None) -> Page[BulkChange]:
        q = select(t.bulk_changes).where(t.bulk_changes.c.tenant == tenant)
        after = decode_cursor(cursor)
        if after:
            q = q.where(t.bulk_changes.c.created_at < datetime.fromisoformat(after))
        q = q.order_by(t.bulk_changes.c.created_at.desc()).limit(limit + 1)
        rows = list(self.conn.execute(q).mappings())
        items = [_bulk(r) for r in rows[:limit]]
        nxt = encode_cursor(items[-1].created_at.isoformat()) if len(rows) > limit else None
        return Page(items, nxt)


class SqlAlchemyAuditLog:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        ids: dict[str, int] = {}
        for chunk in _chunks(list({e.iccid for e in entries})):
            q = select(t.devices.c.iccid, t.devices.c.id).where(t.devices.c.iccid.in_(chunk))
            ids.update({i: d for i, d in self.conn.execute(q)})
        rows = [
            {
                "tenant": e.tenant,
                "device_id": ids[e.iccid],
                "iccid": e.iccid,
                "action": e.action,
                "before": dict(e.before),
                "after": dict(e.after),
                "actor": e.actor,
                "at": e.at,
                "bulk_change_id": e.bulk_change_id,
                "line_id": e.line_id,
                "carrier_request_id": e.carrier_request_id,
            }
            for e in entries
            if e.iccid in ids
        ]
        if rows:
            self.conn.execute(insert(t.device_history), rows)

    def history(
        self, tenant: str, iccid: str, *, limit: int, cursor: str | None
    ) -> Page[AuditEntry]:
        device_id = self.conn.execute(
            select(t.devices.c.id).where(t.devices.c.tenant == tenant, t.devices.c.iccid == iccid)
        ).scalar_one_or_none()
        if device_id is None:
            return Page([], None)
        q = select(t.device_history).where(t.device_history.c.device_id == device_id)
        after = decode_cursor(cursor)
        if after and after.isdigit():
            q = q.where(t.device_history.c.id < int(after))
        rows = list(
            self.conn.execute(q.order_by(t.device_history.c.id.desc()).limit(limit + 1)).mappings()
        )
        items = [
            AuditEntry(
                tenant=r["tenant"],
                iccid=r["iccid"],
                action=r["action"],
                before=dict(r["before"]),
                after=dict(r["after"]),
                actor=r["actor"],
                at=_aware(r["at"]) or _now(),
                bulk_change_id=r["bulk_change_id"],
                line_id=r["line_id"],
                carrier_request_id=r["carrier_request_id"],
            )
            for r in rows[:limit]
        ]
        nxt = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
        return Page(items, nxt)

    def plan_changes_since(
        self, tenant: str, iccids: Sequence[str], since: datetime
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(list(dict.fromkeys(iccids))):
            q = (
                select(t.devices.c.iccid, func.count())
                .join(t.device_history, t.device_history.c.device_id == t.devices.c.id)
                .where(
                    t.devices.c.iccid.in_(chunk),
                    t.device_history.c.tenant == tenant,
                    t.device_history.c.action == CarrierAction.CHANGE_PLAN.value,
                    t.device_history.c.at >= since,
                )
                .group_by(t.devices.c.iccid)
            )
            out.update({i: int(n) for i, n in self.conn.execute(q)})
        return out


class SqlAlchemyOutbox:
    def __init__(self, conn: Connection, traceparent: Any = None, on_add: Any = None) -> None:
        self.conn = conn
        self._traceparent = traceparent
        self._on_add = on_add

    def add(self, message: OutgoingMessage) -> None:
        self.conn.execute(
            insert(t.outbox).values(
                actor=message.actor,
                payload=dict(message.payload),
                delay_ms=message.delay_ms,
                traceparent=self._traceparent() if self._traceparent else None,
                created_at=_now(),
            )
        )
        if self._on_add is not None:
            self._on_add()


class SqlAlchemyCallbackInbox:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def store(self, outcomes: Sequence[CarrierDeviceOutcome]) -> int:
        if not outcomes:
            return 0
        now = _now()
        rows = [
            {
                "request_id": o.request_id,
                "iccid": o.iccid,
                "outcome": {True: "SUCCESS", False: "FAILED", None: "PENDING"}[o.succeeded],
                "body": {
                    "fault_code": o.fault_code,
                    "fault_text": o.fault_text,
                    "reported": dict(o.reported),
                },
                "received_at": now,
            }
            for o in outcomes
        ]
        stmt = (
            _insert_for(self.conn, t.carrier_callbacks)
            .on_conflict_do_nothing()
            .returning(t.carrier_callbacks.c.id)
        )
        return len(self.conn.execute(stmt, rows).all())

    def claim(self, limit: int) -> list[tuple[int, CarrierDeviceOutcome]]:
        q = (
            select(t.carrier_callbacks)
            .where(t.carrier_callbacks.c.processed_at.is_(None))
            .order_by(t.carrier_callbacks.c.id)
            .limit(limit)
        )
        if self.pg:
            q = q.with_for_update(skip_locked=True)
        out: list[tuple[int, CarrierDeviceOutcome]] = []
        for r in self.conn.execute(q).mappings():
            body = r["body"]
            out.append(
                (
                    r["id"],
                    CarrierDeviceOutcome(
                        request_id=r["request_id"],
                        iccid=r["iccid"],
                        succeeded={"SUCCESS": True, "FAILED": False}.get(r["outcome"]),
                        fault_code=body.get("fault_code"),
                        fault_text=body.get("fault_text"),
                        reported=body.get("reported") or {},
                    ),
                )
            )
        return out

    def mark_processed(self, ids: Sequence[int]) -> None:
        now = _now()
        for chunk in _chunks(list(ids)):
            self.conn.execute(
                update(t.carrier_callbacks)
                .where(t.carrier_callbacks.c.id.in_(chunk))
                .values(processed_at=now)
            )


__all__ = [
    "SqlAlchemyAuditLog",
    "SqlAlchemyBulkChangeRepository",
    "SqlAlchemyCallbackInbox",
    "SqlAlchemyDeviceRepository",
    "SqlAlchemyOutbox",
    "SqlAlchemyRatePlanRepository",
]
