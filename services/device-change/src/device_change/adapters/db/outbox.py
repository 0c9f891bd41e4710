"""The transactional outbox: messages written with the state that explains them, relayed after.

`SqlAlchemyOutbox.add` writes in the unit of work's transaction, so a rollback drops the
message. `OutboxRelay.flush` sends committed rows at least once (consumers are idempotent):
a crash between sending and marking sent means a second send, never a lost message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from device_change.adapters.db import tables as t
from device_change.adapters.db._shared import now
from device_change.app.ports import OutgoingMessage
from fleetops_common.telemetry import context_from

Send = Callable[[str, dict[str, Any], int], None]
"""send(actor, payload, delay_ms): hand one message to the broker."""


class SqlAlchemyOutbox:
    def __init__(
        self,
        conn: Connection,
        *,
        traceparent: Callable[[], str | None] | None = None,
        on_add: Callable[[], None] | None = None,
    ) -> None:
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
                created_at=now(),
            )
        )
        if self._on_add is not None:
            self._on_add()


class OutboxRelay:
    """Claims unsent rows, sends them, marks them sent; safe from many threads and processes.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent relays take disjoint rows.
    SQLite: the transaction is `BEGIN IMMEDIATE`, so relays simply take turns.
    """

    def __init__(self, engine: Engine, send: Send) -> None:
        self._engine = engine
        self._send = send
        self._pg = engine.dialect.name == "postgresql"
        # One flush at a time per relay in this process; other processes are kept apart by
        # the row locks (PostgreSQL) or the database write lock (SQLite).
        self._local_lock = threading.Lock()

    def flush(self, limit: int = 500) -> int:
        """Send every unsent message, `limit` per transaction; returns how many were sent."""
        total = 0
        while True:
            sent = self._flush_once(limit)
            total += sent
            if sent < limit:
                return total

    def _flush_once(self, limit: int) -> int:
        with self._local_lock, self._engine.connect() as conn, conn.begin():
            q = (
                select(t.outbox)
                .where(t.outbox.c.sent_at.is_(None))
                .order_by(t.outbox.c.id)
                .limit(limit)
            )
            if self._pg:
                q = q.with_for_update(skip_locked=True)
            rows = list(conn.execute(q).mappings())
            for row in rows:
                self._send_in_trace(
                    row["actor"], dict(row["payload"]), int(row["delay_ms"]), row["traceparent"]
                )
            if rows:
                conn.execute(
                    update(t.outbox)
                    .where(t.outbox.c.id.in_([r["id"] for r in rows]))
                    .values(sent_at=now())
                )
            return len(rows)

    def _send_in_trace(
        self, actor: str, payload: dict[str, Any], delay_ms: int, traceparent: str | None
    ) -> None:
        # The message continues the trace of the request that wrote it.
        token = None
        if traceparent:
            token = otel_context.attach(context_from({"traceparent": traceparent}))
        try:
            self._send(actor, payload, delay_ms)
        finally:
            if token is not None:
                otel_context.detach(token)
