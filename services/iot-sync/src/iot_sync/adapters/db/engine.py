"""Engines for PostgreSQL (psycopg 3) and SQLite (the embedded default of `make run`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

SQLITE_BUSY_TIMEOUT_S = 30


def make_engine(url: str, *, reads_only: bool = False) -> Engine:
    """A sync engine for `postgresql+psycopg://…` or `sqlite:///path.db`.

    `reads_only` (SQLite): transactions begin deferred, so a reader never waits for the
    write lock a batch holds; in WAL mode it reads the last committed state meanwhile.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, immediate=not reads_only)
    # The consumer, the relay, the jobs and the API threads each hold at most one connection.
    return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)


def reader_of(engine: Engine) -> Engine:
    """An engine for reads beside `engine`'s writers: itself on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return engine
    return make_engine(engine.url.render_as_string(hide_password=False), reads_only=True)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun by the "begin" hook below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A batch reads then writes; taking the write lock first makes a second writer wait
        # instead of failing when it tries to upgrade its read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
