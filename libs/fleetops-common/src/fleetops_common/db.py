"""SQLAlchemy engines for PostgreSQL (psycopg 3) and SQLite (the embedded default).

On SQLite every transaction begins as `BEGIN IMMEDIATE`: it takes the write lock up front,
so a second writer waits instead of failing with "database is locked" when its read lock
would have to upgrade. Writers of one process wait on a Python lock per database file
(`_WriteTurn`) before they ask SQLite: SQLite's own busy handler polls with sleeps of up to
100 ms, so under contention a writer would sleep long after the lock was free; the Python
lock hands it over the moment the previous writer commits. Processes sharing the file take
turns the same way, on an exclusive `flock` of a file beside it. A connection that only
reads (`read_only(conn)`) begins plain `BEGIN` instead and, under WAL, reads the last
commit while a writer works. On PostgreSQL the same connection gets a read-only
transaction, which refuses writes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool

SQLITE_BUSY_TIMEOUT_S = 30
READ_ONLY = "fleetops_read_only"  # execution option, see `read_only`

log = logging.getLogger(__name__)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    foreign_keys: bool = False,
    ping_after_idle_s: float | None = None,
) -> Engine:
    """A sync engine for `postgresql+psycopg://…` or `sqlite:///path.db`.

    On PostgreSQL a pooled connection is pinged (`SELECT 1`) before it is handed out, so a
    server restart costs no failed request. `ping_after_idle_s` pings only connections that
    sat in the pool at least that long: a hot loop that checks a connection out many times
    a second (iot-sync's batches) then saves a round trip each time, and a connection that
    died under it fails one unit of work, after which the pool drops all its connections.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size=pool_size, foreign_keys=foreign_keys)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=ping_after_idle_s is None,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        # No JIT compilation: it pays off only for long analytical queries, and PostgreSQL
        # decides on it from the planner's cost estimate. With statistics stale (a young or
        # fast-growing table, autovacuum behind) a batch's 2,000-id lookup was estimated at
        # 650,000 and compiled every time: 90-180 ms of JIT for 14 ms of execution.
        connect_args={"options": "-c jit=off"},
    )
    if ping_after_idle_s is not None:
        _ping_after_idle(engine, ping_after_idle_s)
    return engine


_IDLE_SINCE = "fleetops_idle_since"


def _ping_after_idle(engine: Engine, idle_s: float) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_s:
            return  # just connected, or back in the pool a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # the pool discards this connection and hands out another (a new one if need be)
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection did not answer a ping")


def json_text(value: Any) -> str:
    """What JSON columns store: orjson's compact text (keys that are not strings, as json.dumps
    allows, made strings). On a settling batch `json.dumps` was a tenth of the work."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def read_only(conn: Connection) -> Connection:
    """Mark `conn` (before its first statement) as one that only reads."""
    return conn.execution_options(**{READ_ONLY: True, "postgresql_readonly": True})


def lookups(conn: Connection) -> Connection:
    """Mark `conn` (before its first statement) as one for a few independent lookups.

    On PostgreSQL it runs in autocommit: each SELECT sees the last commit and no
    transaction is begun or rolled back around them, two round trips less. On SQLite it is
    `read_only`: it does not wait for the write turn.
    """
    if is_postgres(conn):
        return conn.execution_options(isolation_level="AUTOCOMMIT")
    return read_only(conn)


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def libpq(url: str | URL) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://…`) as psycopg itself takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class _WriteTurn:
    """Whose turn it is to write to one SQLite file: among this process's threads a lock,
    then among processes an exclusive `flock` on a file beside the database (`<db>-turn`).

    Both wait in the kernel and wake the moment the previous writer ends its turn, where
    SQLite's busy handler would poll with sleeps. The kernel drops the `flock` of a process
    that dies. A database in memory belongs to one process and takes only the lock."""

    _by_database: dict[str, _WriteTurn] = {}
    _guard = threading.Lock()

    def __init__(self, turn_file: Path | None) -> None:
        self._threads = threading.Lock()
        self.turn_file = turn_file
        self._fd: int | None = None

    @classmethod
    def for_database(cls, database: str | None, *, key: str) -> _WriteTurn:
        """The turn of `database`: a file's path, or None for a database in memory."""
        with cls._guard:
            if key not in cls._by_database:
                path = Path(database) if database else None
                cls._by_database[key] = cls(path.with_name(path.name + "-turn") if path else None)
            return cls._by_database[key]

    def acquire(self, timeout: float) -> bool:
        if not self._threads.acquire(timeout=timeout):
            return False
        if self.turn_file is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self.turn_file, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without the GIL
            except BaseException:
                self._threads.release()
                raise
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def locked(self) -> bool:
        """Whether a thread of this process holds the turn."""
        return self._threads.locked()


def _connection_class(write_turn: _WriteTurn) -> type[sqlite3.Connection]:
    """A sqlite3 connection that holds `write_turn` from `begin_writing` to commit/rollback."""

    class TurnTakingConnection(sqlite3.Connection):
        _holds_turn = False

        def begin_writing(self) -> None:
            if not self._holds_turn:
                if not write_turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
                    raise sqlite3.OperationalError("database is locked (no write turn in time)")
                self._holds_turn = True
            try:
                self.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._end_turn()
                raise

        def _end_turn(self) -> None:
            if self._holds_turn:
                self._holds_turn = False
                write_turn.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._end_turn()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._end_turn()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._end_turn()

    return TurnTakingConnection


SQLITE_CACHED_STATEMENTS = 16


def _sqlite_engine(url: str, *, pool_size: int, foreign_keys: bool) -> Engine:
    # Many threads share the engine; each checks out its own connection, so the sqlite3
    # same-thread check is off. `pool_size` connections stay open; extra ones are closed
    # when returned rather than making a thread wait for the pool.
    database = make_url(url).database or ":memory:"
    path = None if database == ":memory:" else str(Path(database).resolve())
    write_turn = _WriteTurn.for_database(path, key=path or url)
    engine = create_engine(
        url,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=-1,
        connect_args={
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            # sqlite3 keeps 128 prepared statements per connection by default. Multi-row
            # INSERTs and chunked IN-lists make a new statement per row count, some with
            # thousands of parameters: on a 100,000-device run that cache held 35 MB across
            # the pool's connections and grew with the run. 16 keeps every hot statement.
            "cached_statements": SQLITE_CACHED_STATEMENTS,
            "factory": _connection_class(write_turn),
        },
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
            conn.connection.dbapi_connection.begin_writing()

    return engine


class TransactionScope:
    """One connection and one transaction per `with` block: the plumbing of a unit of work.

    A service's unit of work subclasses it and attaches its repositories to the connection
    in `_attach`. Leaving the block without `commit()` rolls back. The transaction begins
    lazily at the first statement, and again after each commit. `on_commit` runs after a
    commit during which an outbox reported a write (`_outbox_written`), so a relay can send
    at once instead of at its next sweep; if it fails, the commit stands and the sweep sends.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        on_commit: Callable[[], None] | None = None,
        reads_only: bool = False,
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._reads_only = reads_only
        self._conn: Connection | None = None
        self._wrote_outbox = False

    def _attach(self, conn: Connection) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        conn = self._conn = self._engine.connect()
        if self._reads_only:
            read_only(conn)
        self._attach(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._connection()
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
            self._conn = None
            self._wrote_outbox = False

    def commit(self) -> None:
        self._before_commit()
        self._connection().commit()
        if self._wrote_outbox and self._on_commit is not None:
            self._wrote_outbox = False
            try:
                self._on_commit()
            except Exception:
                log.exception("on_commit hook failed; the outbox sweep will deliver")

    def rollback(self) -> None:
        self._connection().rollback()
        self._wrote_outbox = False

    def _outbox_written(self) -> None:
        self._wrote_outbox = True

    def _before_commit(self) -> None:
        """Write what the repositories kept back (write-behind), inside the transaction."""

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._conn
