"""The unit of work: one connection and one transaction per `with` block.

Leaving the block without `commit()` rolls back. The transaction begins lazily at the first
statement (on SQLite as `BEGIN IMMEDIATE`, see `engine.py`), and again after each commit, so
a block that commits and then waits on the carrier holds no lock while it waits.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine

from device_change.adapters.db.audit import SqlAlchemyAuditLog
from device_change.adapters.db.bulk_changes import SqlAlchemyBulkChangeRepository
from device_change.adapters.db.devices import DeviceIds, SqlAlchemyDeviceRepository
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
from fleetops_common.db import TransactionScope


class SqlAlchemyUnitOfWork(TransactionScope):
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
        super().__init__(engine, on_commit=on_commit, reads_only=read_only)
        self._traceparent = traceparent

    def _attach(self, conn: Connection) -> None:
        # which row a device is, as the devices just updated showed it: the audit log keys
        # history by it and need not look the devices up again
        device_ids: DeviceIds = {}
        self.devices = SqlAlchemyDeviceRepository(conn, updated_ids=device_ids)
        self.plans = SqlAlchemyRatePlanRepository(conn)
        self.bulk_changes = SqlAlchemyBulkChangeRepository(conn)
        self.audit = SqlAlchemyAuditLog(conn, known_ids=device_ids)
        self.outbox = SqlAlchemyOutbox(
            conn, traceparent=self._traceparent, on_add=self._outbox_written
        )
        self.inbox = SqlAlchemyCallbackInbox(conn)


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
