"""The unit of work: one connection, one transaction per `with` block.

Leaving the block without `commit()` rolls back. On SQLite the transaction begins as
`BEGIN IMMEDIATE` (see engine.py). `on_commit` runs after a commit that wrote outbox events,
so the relay can deliver them at once instead of at its next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine

from iot_sync.adapters.db.assets import SqlAlchemyAssetRepository, SqlAlchemyStationRepository
from iot_sync.adapters.db.outbox import SqlAlchemyOutbox
from iot_sync.adapters.db.people import SqlAlchemyAuditLog, SqlAlchemyPersonnelRepository
from iot_sync.adapters.db.services import SqlAlchemyServiceRepository
from iot_sync.adapters.db.signals import SqlAlchemySenderLedger, SqlAlchemySignalLog
from iot_sync.app.ports import (
    AssetRepository,
    AuditLog,
    Outbox,
    PersonnelRepository,
    SenderLedger,
    ServiceRepository,
    SignalLog,
    StationRepository,
)

log = logging.getLogger(__name__)


class SqlAlchemyUnitOfWork:
    signal_log: SignalLog
    senders: SenderLedger
    services: ServiceRepository
    assets: AssetRepository
    stations: StationRepository
    personnel: PersonnelRepository
    audit: AuditLog
    outbox: Outbox

    def __init__(self, engine: Engine, *, on_commit: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._conn: Connection | None = None
        self._wrote_outbox = False

    def __enter__(self) -> Self:
        conn = self._conn = self._engine.connect()
        self.signal_log = SqlAlchemySignalLog(conn)
        self.senders = SqlAlchemySenderLedger(conn)
        self.services = SqlAlchemyServiceRepository(conn)
        self.assets = SqlAlchemyAssetRepository(conn)
        self.stations = SqlAlchemyStationRepository(conn)
        self.personnel = SqlAlchemyPersonnelRepository(conn)
        self.audit = SqlAlchemyAuditLog(conn)
        self.outbox = SqlAlchemyOutbox(conn, on_add=self._outbox_written)
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
        self._connection().commit()
        if self._wrote_outbox and self._on_commit is not None:
            self._wrote_outbox = False
            try:
                self._on_commit()
            except Exception:
                # The commit stands; the relay's periodic sweep delivers what is left.
                log.exception("on_commit hook failed; the outbox sweep will deliver")

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
    def __init__(self, engine: Engine, *, on_commit: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_commit = on_commit

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.engine, on_commit=self.on_commit)
