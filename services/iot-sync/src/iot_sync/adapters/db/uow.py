"""The unit of work: one connection, one transaction per `with` block.

Leaving the block without `commit()` rolls back. On SQLite the transaction begins as
`BEGIN IMMEDIATE` (see engine.py). `on_commit` runs after a commit that wrote outbox events,
so the relay can deliver them at once instead of at its next sweep.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine

from fleetops_common.db import TransactionScope
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


class SqlAlchemyUnitOfWork(TransactionScope):
    signal_log: SignalLog
    senders: SenderLedger
    services: ServiceRepository
    assets: AssetRepository
    stations: StationRepository
    personnel: PersonnelRepository
    audit: AuditLog
    outbox: Outbox

    def _attach(self, conn: Connection) -> None:
        self.signal_log = SqlAlchemySignalLog(conn)
        self.senders = SqlAlchemySenderLedger(conn)
        self.services = self._services = SqlAlchemyServiceRepository(conn)
        self.assets = self._assets = SqlAlchemyAssetRepository(conn)
        self.stations = SqlAlchemyStationRepository(conn)
        self.personnel = SqlAlchemyPersonnelRepository(conn)
        self.audit = SqlAlchemyAuditLog(conn)
        self.outbox = SqlAlchemyOutbox(conn, on_add=self._outbox_written)

    def _before_commit(self) -> None:
        # saves the repositories kept back, so a batch's many station calls cost one
        # statement per table instead of one per change
        self._assets.write_pending()
        self._services.write_pending()


class SqlAlchemyUnitOfWorkFactory:
    def __init__(self, engine: Engine, *, on_commit: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_commit = on_commit

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.engine, on_commit=self.on_commit)
