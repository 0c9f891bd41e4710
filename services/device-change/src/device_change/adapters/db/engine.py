"""Engines for PostgreSQL (psycopg 3) and SQLite (the embedded default)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

SQLITE_BUSY_TIMEOUT_S = 30
# Execution option of a connection that only reads (see SqlAlchemyUnitOfWorkFactory.reader)
READ_ONLY = "fleetops_read_only"


def make_engine(url: str) -> Engine:
    """A sync engine: `postgresql+psycopg://…` or `sqlite:///path.db`."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    # Many worker threads share the engine; each checks out its own connection, so the
    # sqlite3 same-thread check is off. Ten connections stay open; extra ones are closed
    # when returned rather than making a thread wait for the pool.
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=10,
        max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite must not BEGIN on its own; we do
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        # Take the write lock up front: writers queue on busy_timeout instead of failing
        # with "database is locked" when a read transaction tries to upgrade. A reader
        # (`READ_ONLY`) takes no lock: under WAL it reads a snapshot while a writer works.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
