"""The transactional outbox: events written with the state that explains them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from fleetops_common.db import is_postgres
from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import chunks
from iot_sync.app.ports import OutboxEvent, OutboxKind, PendingEvent

O = t.outbox.c  # noqa: E741


class SqlAlchemyOutbox:
    def __init__(self, conn: Connection, *, on_add: Callable[[], None] | None = None) -> None:
        self.conn = conn
        self._on_add = on_add

    def add(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        self.conn.execute(
            t.outbox.insert(),
            [
                {
                    "event_id": e.event_id,
                    "kind": e.kind.value,
                    "key": e.key,
                    "payload": dict(e.payload),
                    "traceparent": e.traceparent,
                    "created_at": e.created_at,
                    "due_at": e.created_at,
                    "attempts": 0,
                }
                for e in events
            ],
        )
        if self._on_add is not None:
            self._on_add()

    def claim(self, *, now: datetime, lease_until: datetime, limit: int) -> list[PendingEvent]:
        q = (
            select(O.id, O.event_id, O.kind, O.key, O.payload, O.traceparent, O.attempts)
            .where(
                O.delivered_at.is_(None),
                O.given_up_at.is_(None),
                O.due_at <= now,
                or_(O.lease_until.is_(None), O.lease_until <= now),
            )
            .order_by(O.id)
            .limit(limit)
        )
        if is_postgres(self.conn):
            q = q.with_for_update(skip_locked=True)
        rows = list(self.conn.execute(q))
        for part in chunks([r.id for r in rows]):
            self.conn.execute(
                update(t.outbox).where(O.id.in_(part)).values(lease_until=lease_until)
            )
        return [
            PendingEvent(
                event_id=r.event_id,
                kind=OutboxKind(r.kind),
                payload=r.payload,
                attempts=r.attempts,
                key=r.key,
                traceparent=r.traceparent,
            )
            for r in rows
        ]

    def mark_delivered(self, event_ids: Sequence[str], *, at: datetime) -> None:
        for part in chunks(list(event_ids)):
            self.conn.execute(
                update(t.outbox)
                .where(O.event_id.in_(part))
                .values(delivered_at=at, lease_until=None)
            )

    def mark_failed(
        self, event_id: str, *, error: str, retry_at: datetime | None, at: datetime
    ) -> None:
        values: dict[str, object] = {
            "attempts": O.attempts + 1,
            "last_error": error[:2000],
            "lease_until": None,
        }
        if retry_at is None:
            values["given_up_at"] = at
        else:
            values["due_at"] = retry_at
        self.conn.execute(update(t.outbox).where(O.event_id == event_id).values(**values))
