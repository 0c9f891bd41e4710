"""Databases for the persistence adapter's tests, always built by the Alembic migrations.

Which database:
- `DEVICE_CHANGE_TEST_DATABASE_URL` set: that server (a fresh database is created on it and
  dropped at the end); a `sqlite:///…` value forces SQLite.
- `CI=true`: PostgreSQL on 127.0.0.1:5432 is required; the suite fails without it.
- otherwise: PostgreSQL on 127.0.0.1:5432 if it answers, else a temporary SQLite file.

Tests share one database per session, so each names its own tenant and identifiers.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from device_change.adapters.db.engine import make_engine
from device_change.adapters.db.migrate import upgrade
from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
from device_change.app.ports import CarrierDeviceState
from device_change.domain.bulk_change import (
    BatchStatus,
    BulkChange,
    CarrierBatch,
    DeviceLine,
    LineStatus,
)
from device_change.domain.changes import CarrierAction, ChangeType
from device_change.domain.device import DeviceStatus
from device_change.domain.identifiers import luhn_check_digit
from fleetops_devstack import databases

FreshDatabase = Callable[[str], AbstractContextManager[str]]


@pytest.fixture(scope="session")
def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> FreshDatabase:
    """Creates an empty, uniquely named database on the given server; drops it afterwards."""

    def fresh(server_url: str) -> AbstractContextManager[str]:
        return databases.fresh_database(
            server_url, prefix="dc_test", sqlite_dir=tmp_path_factory.mktemp("db")
        )

    return fresh


@pytest.fixture(scope="session")
def database_url(fresh_database: FreshDatabase) -> Iterator[str]:
    """A fresh, empty database for this session (PostgreSQL unless it falls back)."""
    server = databases.test_server_url("DEVICE_CHANGE_TEST_DATABASE_URL")
    with fresh_database(server) as url:
        yield url


def _migrated_engine(url: str) -> Iterator[Engine]:
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    yield from _migrated_engine(database_url)


@pytest.fixture(scope="session")
def sqlite_engine(fresh_database: FreshDatabase) -> Iterator[Engine]:
    with fresh_database("sqlite://") as url:
        yield from _migrated_engine(url)


@pytest.fixture(params=["main", "sqlite"])
def engine_each_dialect(
    request: pytest.FixtureRequest, engine: Engine, database_url: str
) -> Engine:
    """The session's database, and SQLite as well when the session runs on PostgreSQL."""
    if request.param == "main" or database_url.startswith("sqlite"):
        return engine  # on a SQLite session both variants use it: a repeat, never a skip
    sqlite: Engine = request.getfixturevalue("sqlite_engine")
    return sqlite


@pytest.fixture
def uow_factory(engine: Engine) -> SqlAlchemyUnitOfWorkFactory:
    return SqlAlchemyUnitOfWorkFactory(engine)


# ---- builders ---------------------------------------------------------------------------

_serial = itertools.count(random.randrange(10**9))


def new_iccid() -> str:
    """A unique, well-formed ICCID (20 digits, Luhn-valid)."""
    body = f"8914800{next(_serial) % 10**12:012d}"
    return body + luhn_check_digit(body)


def new_imei() -> str:
    body = f"35{next(_serial) % 10**12:012d}"
    return body + luhn_check_digit(body)


class Make:
    """Small builders; every call yields identifiers no other test uses."""

    tenant = staticmethod(lambda: f"t-{uuid.uuid4().hex[:10]}")
    iccid = staticmethod(new_iccid)
    imei = staticmethod(new_imei)

    @staticmethod
    def state(
        iccid: str | None = None,
        *,
        status: DeviceStatus | None = DeviceStatus.ACTIVE,
        imei: str | None = None,
        msisdn: str | None = None,
        rate_plan: str | None = "M2M_4G_1GB",
    ) -> CarrierDeviceState:
        return CarrierDeviceState(
            iccid=iccid or new_iccid(),
            imei=imei or new_imei(),
            msisdn=msisdn or f"555{next(_serial) % 10**7:07d}",
            status=status,
            raw_state=status.value.lower() if status else "pending activation",
            rate_plan=rate_plan,
            account_name="acct",
        )

    @staticmethod
    def bulk(
        tenant: str, *, key: str | None = None, created_at: datetime | None = None
    ) -> BulkChange:
        return BulkChange(
            id=str(uuid.uuid4()),
            tenant=tenant,
            change_type=ChangeType.UPDATE_DEVICE_STATUS,
            params={"target_status": "SUSPENDED"},
            submitted_by="alice",
            created_at=created_at or datetime.now(UTC),
            idempotency_key=key,
        )

    @staticmethod
    def batch(
        bulk: BulkChange,
        *,
        status: BatchStatus = BatchStatus.PLANNED,
        request_id: str | None = None,
        line_count: int = 0,
    ) -> CarrierBatch:
        return CarrierBatch(
            id=str(uuid.uuid4()),
            bulk_change_id=bulk.id,
            tenant=bulk.tenant,
            action=CarrierAction.SUSPEND,
            status=status,
            carrier_request_id=request_id,
            line_count=line_count,
        )

    @staticmethod
    def lines(
        bulk: BulkChange,
        n: int,
        *,
        batch: CarrierBatch | None = None,
        status: LineStatus = LineStatus.PENDING,
        start: int = 0,
        iccids: list[str] | None = None,
    ) -> list[DeviceLine]:
        return [
            DeviceLine(
                id=str(uuid.uuid4()),
                bulk_change_id=bulk.id,
                tenant=bulk.tenant,
                seq=start + i,
                iccid=iccids[i] if iccids else new_iccid(),
                request={"iccid": "x"},
                status=status,
                action=CarrierAction.SUSPEND,
                after={"status": "SUSPENDED"},
                batch_id=batch.id if batch else None,
                carrier_request_id=batch.carrier_request_id if batch else None,
            )
            for i in range(n)
        ]


@pytest.fixture
def make() -> type[Make]:
    return Make
