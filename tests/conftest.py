"""Fixtures for cross-process tests: real servers under CI, embedded fallbacks on a laptop."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN = os.environ.get("FLEETOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_up() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    up = _postgres_up()
    if IN_CI and not up:
        pytest.fail("CI=true and PostgreSQL is not reachable on 127.0.0.1:5432", pytrace=False)
    return up


@pytest.fixture
def fresh_database_url(postgres_available: bool, tmp_path) -> Iterator[str]:
    """A brand-new database: PostgreSQL when it is there (always under CI), else SQLite."""
    if not postgres_available:
        yield f"sqlite:///{tmp_path / 'device-change.db'}"
        return
    import psycopg

    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
