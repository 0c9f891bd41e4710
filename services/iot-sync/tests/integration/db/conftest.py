"""Databases for the persistence adapter's tests, always built by the Alembic migrations.

Which database:
- `IOT_SYNC_TEST_DATABASE_URL` set: that server (a fresh database is created on it and
  dropped at the end); a `sqlite:///…` value forces SQLite.
- `CI=true`: PostgreSQL on 127.0.0.1:5432 is required; the suite fails without it.
- otherwise: PostgreSQL on 127.0.0.1:5432 if it answers, else a temporary SQLite file.

Tests share one database per session, so each names its own identifiers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy.engine import Engine

from fleetops_devstack import databases
from iot_sync.adapters.db.engine import make_engine
from iot_sync.adapters.db.migrate import upgrade
from iot_sync.adapters.db.uow import SqlAlchemyUnitOfWorkFactory

FreshDatabase = Callable[[str], AbstractContextManager[str]]


@pytest.fixture(scope="session")
def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> FreshDatabase:
    """Creates an empty, uniquely named database on the given server; drops it afterwards."""

    def fresh(server_url: str) -> AbstractContextManager[str]:
        return databases.fresh_database(
            server_url, prefix="iot_test", sqlite_dir=tmp_path_factory.mktemp("db")
        )

    return fresh


@pytest.fixture(scope="session")
def database_url(fresh_database: FreshDatabase) -> Iterator[str]:
    """A fresh, empty database for this session (PostgreSQL unless it falls back)."""
    server = databases.test_server_url("IOT_SYNC_TEST_DATABASE_URL")
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
def uow_factory(engine_each_dialect: Engine) -> SqlAlchemyUnitOfWorkFactory:
    return SqlAlchemyUnitOfWorkFactory(engine_each_dialect)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
