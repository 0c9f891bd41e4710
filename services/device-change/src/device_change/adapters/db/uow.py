"""The unit of work: one connection and one transaction per `with` block.

Leaving the block without `commit()` rolls back. The transaction begins lazily at the first
statement (on SQLite as `BEGIN IMMEDIATE`, see `engine.py`), and again after each commit, so
a block that commits and then waits on the carrier holds no lock while it waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine

from device_change.adapters.db.audit import SqlAlchemyAuditLog
from device_change.adapters.db.bulk_changes import SqlAlchemyBulkChangeRepository
from device_change.adapters.db.devices import SqlAlchemyDeviceRepository
from device_change.adapters.db.inbox import SqlAlchemyCallbackInbox
from device_change.adapters.db.outbox import SqlAlchemyOutbox
from device_change.adapters.db.plans import SqlAlchemyRatePlanRepository
from device_change.app.ports import (
    AuditLog,
    BulkChangeRepository,
    CallbackInbox,
    DeviceRepository,
    Outbox,
    RatePlanRepository,
)
from fleetops_common.db import read_only

log = logging.getLogger(__name__)


class SqlAlchemyUnitOfWork:
    # Typed by port: the UnitOfWork protocol's attributes are settable, hence invariant.
    devices: DeviceRepository
    plans: RatePlanRepository
    bulk_changes: BulkChangeRepository
    audit: AuditLog
    outbox: Outbox
    inbox: CallbackInbox

    def __init__(
        self,
        engine: Engine,
        *,
        on_commit: Callable[[], None] | None = None,
        traceparent: Callable[[], str | None] | None = None,
        read_only: bool = False,
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._traceparent = traceparent
        self._read_only = read_only
        self._conn: Connection | None = None
        self._wrote_outbox = False

    def __enter__(self) -> Self:
        conn = self._conn = self._engine.connect()
        if self._read_only:
            read_only(conn)  # PostgreSQL refuses its writes; SQLite takes no write lock
        self.devices = SqlAlchemyDeviceRepository(conn)
        self.plans = SqlAlchemyRatePlanRepository(conn)
        self.bulk_changes = SqlAlchemyBulkChangeRepository(conn)
        self.audit = SqlAlchemyAuditLog(conn)
        self.outbox = SqlAlchemyOutbox(
            conn, traceparent=self._traceparent, on_add=self._outbox_written
        )
        self.inbox = SqlAlchemyCallbackInbox(conn)
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
        """Commit; then, if messages were written, run `on_commit` (flush the outbox now)."""
        self._connection().commit()
        if self._wrote_outbox and self._on_commit is not None:
            self._wrote_outbox = False
            try:
                self._on_commit()
            except Exception:
                # The commit stands and the rows stay unsent: the periodic sweep relays them.
                log.exception("on_commit hook failed; the outbox sweep will retry")

    def rollback(self) -> None:
        self._connection().rollback()
        self._wrote_outbox = False

    def _outbox_written(self) -> None:
        self._wrote_outbox = True

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._conn


class SqlAlchemyUnitOfWorkFactory:
    """Makes a fresh unit of work per call; `on_commit` runs after commits that wrote messages."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_commit: Callable[[], None] | None = None,
        traceparent: Callable[[], str | None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_commit = on_commit
        self.traceparent = traceparent

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(
            self.engine, on_commit=self.on_commit, traceparent=self.traceparent
        )

    def reader(self) -> SqlAlchemyUnitOfWork:
        """A unit of work that only reads: it never waits for, nor holds, SQLite's write
        lock (API reads, lookups on the callback path), and PostgreSQL refuses its writes."""
        return SqlAlchemyUnitOfWork(self.engine, read_only=True)
