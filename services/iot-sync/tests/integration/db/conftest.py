"""Databases for the persistence adapter's tests, always built by the Alembic migrations.

Which database:
- `IOT_SYNC_TEST_DATABASE_URL` set: that server (a fresh database is created on it and
  dropped at the end); a `sqlite:///…` value forces SQLite.
- `CI=true`: PostgreSQL on 127.0.0.1:5432 is required; the suite fails without it.
- otherwise: PostgreSQL on 127.0.0.1:5432 if it answers, else a temporary SQLite file.

Tests share one database per session, so each names its own identifiers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from iot_sync.adapters.db.engine import make_engine
from iot_sync.adapters.db.migrate import upgrade
from iot_sync.adapters.db.uow import SqlAlchemyUnitOfWorkFactory

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FreshDatabase = Callable[[str], AbstractContextManager[str]]


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_answers(server_url: str) -> bool:
    try:
        with psycopg.connect(_libpq(server_url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _server_url() -> str:
    given = os.environ.get("IOT_SYNC_TEST_DATABASE_URL")
    if given:
        return given
    if _under_ci() or _postgres_answers(DEFAULT_PG):
        return DEFAULT_PG
    return "sqlite://"


@pytest.fixture(scope="session")
def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> FreshDatabase:
    """Creates an empty, uniquely named database on the given server; drops it afterwards."""

    @contextmanager
    def fresh(server_url: str) -> Iterator[str]:
        name = f"iot_test_{uuid.uuid4().hex[:12]}"
        if server_url.startswith("sqlite"):
            yield f"sqlite:///{tmp_path_factory.mktemp('db') / (name + '.db')}"
            return
        admin = _libpq(make_url(server_url).set(database="postgres").render_as_string(False))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return fresh


@pytest.fixture(scope="session")
def database_url(fresh_database: FreshDatabase) -> Iterator[str]:
    """A fresh, empty database for this session (PostgreSQL unless it falls back)."""
    server = _server_url()
    if server.startswith("postgresql") and not _postgres_answers(server):
        pytest.fail(f"PostgreSQL is required here and does not answer at {server}")
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
