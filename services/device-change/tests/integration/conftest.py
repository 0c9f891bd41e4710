from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from device_change.adapters.db.engine import make_engine
from device_change.adapters.db.migrate import upgrade

PG_ADMIN = os.environ.get("FLEETOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_up() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh migrated database. PostgreSQL is required under CI=true (never skipped)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dc.db'}"
        return
    if not postgres_up():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and PostgreSQL is not reachable on 127.0.0.1:5432")
        yield f"sqlite:///{tmp_path / 'dc-fallback.db'}"
        return
    name = f"it_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
