"""The carrier's rate limit, shared by every process through one database row."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from device_change.adapters.db import repositories
from device_change.adapters.db import tables as t


class SqlRateLimiter:
    """Spaces calls 1/rate apart: each caller books the next free slot, then waits for it."""

    def __init__(self, engine: Engine, *, key: str, rate_per_s: float) -> None:
        self._engine = engine
        self._key = key
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._pg = engine.dialect.name == "postgresql"
        self._local = threading.Lock()

    def acquire(self) -> float:
        if not self._interval:
            return 0.0
        with self._local, self._engine.connect() as conn, conn.begin():
            q = select(t.rate_limits.c.next_free_at).where(t.rate_limits.c.key == self._key)
            if self._pg:
                q = q.with_for_update()
            booked = conn.execute(q).scalar_one_or_none()
            now = time.time()
            if booked is None:
                stmt = repositories._insert_for(conn, t.rate_limits).on_conflict_do_nothing()
                conn.execute(stmt, {"key": self._key, "next_free_at": 0.0})
                booked = conn.execute(q).scalar_one()
            slot = max(now, float(booked))
            conn.execute(
                update(t.rate_limits)
                .where(t.rate_limits.c.key == self._key)
                .values(next_free_at=slot + self._interval)
            )
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)
