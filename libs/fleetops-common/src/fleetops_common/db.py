"""SQLAlchemy engines for PostgreSQL (psycopg 3) and SQLite (the embedded default).

On SQLite every transaction begins as `BEGIN IMMEDIATE`: it takes the write lock up front,
so a second writer queues on busy_timeout instead of failing with "database is locked" when
its read lock would have to upgrade. A connection that only reads (`read_only(conn)`) begins
plain `BEGIN` instead and, under WAL, reads the last commit while a writer works. On
PostgreSQL the same connection gets a read-only transaction, which refuses writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

SQLITE_BUSY_TIMEOUT_S = 30
READ_ONLY = "fleetops_read_only"  # execution option, see `read_only`


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, foreign_keys: bool = False
) -> Engine:
    """A sync engine for `postgresql+psycopg://…` or `sqlite:///path.db`."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size=pool_size, foreign_keys=foreign_keys)
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)


def read_only(conn: Connection) -> Connection:
    """Mark `conn` (before its first statement) as one that only reads."""
    return conn.execution_options(**{READ_ONLY: True, "postgresql_readonly": True})


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_engine(url: str, *, pool_size: int, foreign_keys: bool) -> Engine:
    # Many threads share the engine; each checks out its own connection, so the sqlite3
    # same-thread check is off. `pool_size` connections stay open; extra ones are closed
    # when returned rather than making a thread wait for the pool.
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite must not BEGIN on its own; `_begin` does
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
