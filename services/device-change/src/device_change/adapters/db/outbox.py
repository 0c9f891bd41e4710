"""Relay committed outbox rows to the queue (at least once; consumers are idempotent)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from device_change.adapters.db import tables as t
from fleetops_common.telemetry import context_from

Send = Callable[[str, dict[str, Any], int], None]


class OutboxRelay:
    def __init__(self, engine: Engine, send: Send) -> None:
        self._engine = engine
        self._send = send
        self._pg = engine.dialect.name == "postgresql"
        self._local_lock = threading.Lock()  # SQLite: one relay at a time in this process

    def flush(self, limit: int = 1000) -> int:
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
                token = None
                if row["traceparent"]:
                    token = otel_context.attach(context_from({"traceparent": row["traceparent"]}))
                try:
                    self._send(row["actor"], dict(row["payload"]), int(row["delay_ms"]))
                finally:
                    if token is not None:
                        otel_context.detach(token)
            if rows:
                conn.execute(
                    update(t.outbox)
                    .where(t.outbox.c.id.in_([r["id"] for r in rows]))
                    .values(sent_at=datetime.now(UTC))
                )
            return len(rows)
