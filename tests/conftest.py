"""Fixtures for cross-process tests: real servers under CI, embedded fallbacks on a laptop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetops_devstack import databases


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    up = databases.postgres_answers()
    if databases.under_ci() and not up:
        pytest.fail("CI=true and PostgreSQL is not reachable on 127.0.0.1:5432", pytrace=False)
    return up


@pytest.fixture
def fresh_database_url(postgres_available: bool, tmp_path: Path) -> Iterator[str]:
    """A brand-new database: PostgreSQL when it is there (always under CI), else SQLite."""
    server = databases.DEFAULT_SERVER if postgres_available else "sqlite://"
    with databases.fresh_database(server, prefix="e2e", sqlite_dir=tmp_path) as url:
        yield url
