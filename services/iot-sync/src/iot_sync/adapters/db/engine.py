"""iot-sync's engine: the shared factory (fleetops_common.db) with its pool size, and on
PostgreSQL the batch scratch tables made ready on every new connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from fleetops_common.db import is_postgres
from fleetops_common.db import make_engine as _make_engine
from iot_sync.adapters.db.tables import SCRATCH_TABLES

PING_AFTER_IDLE_S = 5.0


def make_engine(url: str) -> Engine:
    # The consumer, the relay, the jobs and the API threads each hold at most one connection.
    # A connection back in the pool for less than PING_AFTER_IDLE_S is handed out unpinged:
    # the consumer checks one out for every batch, and the ping was one of its round trips.
    engine = _make_engine(url, pool_size=8, max_overflow=16, ping_after_idle_s=PING_AFTER_IDLE_S)
    if is_postgres(engine):
        event.listen(engine, "connect", _create_scratch_tables)
    return engine


def _create_scratch_tables(dbapi_connection: Any, _record: Any) -> None:
    # Committed at once: the pool's rollback on check-in must not take them away again.
    with dbapi_connection.cursor() as cur:
        for ddl in SCRATCH_TABLES.values():
            cur.execute(ddl)
    dbapi_connection.commit()
