"""The unit of work: one connection and transaction per `with` block."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine

from device_change.adapters.db.repositories import (
    SqlAlchemyAuditLog,
    SqlAlchemyBulkChangeRepository,
    SqlAlchemyCallbackInbox,
    SqlAlchemyDeviceRepository,
    SqlAlchemyOutbox,
    SqlAlchemyRatePlanRepository,
)
from device_change.app.ports import (
    AuditLog,
    BulkChangeRepository,
    CallbackInbox,
    DeviceRepository,
    Outbox,
    RatePlanRepository,
)


class SqlAlchemyUnitOfWork:
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
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._traceparent = traceparent
        self._conn: Connection | None = None
        self._wrote_outbox = False

    def __enter__(self) -> Self:
        self._conn = self._engine.connect()
        self._conn.begin()
        self.devices = SqlAlchemyDeviceRepository(self._conn)
        self.plans = SqlAlchemyRatePlanRepository(self._conn)
        self.bulk_changes = SqlAlchemyBulkChangeRepository(self._conn)
        self.audit = SqlAlchemyAuditLog(self._conn)
        self.outbox = SqlAlchemyOutbox(self._conn, self._traceparent, on_add=self._outbox_written)
        self.inbox = SqlAlchemyCallbackInbox(self._conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
        finally:
            self._conn.close()
            self._conn = None

    def _outbox_written(self) -> None:
        self._wrote_outbox = True

    def commit(self) -> None:
        assert self._conn is not None
        self._conn.commit()
        if self._wrote_outbox and self._on_commit is not None:
            self._wrote_outbox = False
            self._on_commit()
        self._conn.begin()

    def rollback(self) -> None:
        assert self._conn is not None
        self._conn.rollback()
        self._conn.begin()


class SqlAlchemyUnitOfWorkFactory:
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
