"""The carrier's rate limit, shared by every process through one database row."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from device_change.adapters.db import tables as t
from device_change.adapters.db._shared import insert_for


class SqlRateLimiter:
    """Spaces calls 1/rate apart (GCRA without burst) across threads and processes.

    Each caller books the next free slot in one short transaction (the row is locked on
    PostgreSQL; SQLite's BEGIN IMMEDIATE serialises), then sleeps until its slot outside
    the transaction. A rate of 0 or less means unlimited and never touches the database.
    """

    def __init__(self, engine: Engine, *, key: str, rate_per_s: float) -> None:
        self._engine = engine
        self._key = key
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._pg = engine.dialect.name == "postgresql"
        self._local = threading.Lock()  # threads of one process book one after another

    def acquire(self) -> float:
        """Block until this caller's slot; returns the seconds waited."""
        if not self._interval:
            return 0.0
        slot, booked_at = self._book()
        wait = slot - booked_at
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)

    def _book(self) -> tuple[float, float]:
        row = t.rate_limits
        with self._local, self._engine.connect() as conn, conn.begin():
            q = select(row.c.next_free_at).where(row.c.key == self._key)
            if self._pg:
                q = q.with_for_update()
            next_free = conn.execute(q).scalar_one_or_none()
            if next_free is None:
                create = insert_for(conn, row).on_conflict_do_nothing()
                conn.execute(create, {"key": self._key, "next_free_at": 0.0})
                next_free = conn.execute(q).scalar_one()  # locked now, whoever created it
            # Wall-clock time: the slots are compared across processes.
            now = time.time()
            slot = max(now, float(next_free))
            conn.execute(
                update(row).where(row.c.key == self._key).values(next_free_at=slot + self._interval)
            )
        return slot, now
