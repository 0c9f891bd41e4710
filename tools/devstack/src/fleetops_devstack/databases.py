"""Throwaway databases for tests and benchmarks, and the rule for which server they go on.

Which server (`test_server_url`): the URL in the given environment variable if set (a
`sqlite:…` value forces SQLite); under `CI=true` PostgreSQL on 127.0.0.1:5432, required;
otherwise that PostgreSQL if it answers, else SQLite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from fleetops_common.db import libpq

DEFAULT_SERVER = os.environ.get(
    "FLEETOPS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def on_database(server_url: str, name: str) -> str:
    """The SQLAlchemy URL (psycopg 3) of database `name` on the server of `server_url`."""
    url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def postgres_answers(server_url: str = DEFAULT_SERVER) -> bool:
    try:
        with psycopg.connect(libpq(server_url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def test_server_url(env_var: str) -> str:
    """The server a test session's databases go on, by the rule in this module's docstring.

    A PostgreSQL server it settles on must answer: the tests fail, never fall back or skip.
    """
    server = os.environ.get(env_var) or (
        DEFAULT_SERVER if under_ci() or postgres_answers(DEFAULT_SERVER) else "sqlite://"
    )
    if server.startswith("postgresql") and not postgres_answers(server):
        raise RuntimeError(f"PostgreSQL is required here and does not answer at {server}")
    return server


def create_database(server_url: str, name: str, *, if_missing: bool = False) -> str:
    """Create database `name` on the PostgreSQL server of `server_url`; returns its URL."""
    with psycopg.connect(libpq(on_database(server_url, "postgres")), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not (exists and if_missing):
            conn.execute(f'CREATE DATABASE "{name}"')
    return on_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(libpq(on_database(server_url, "postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(server_url: str, *, prefix: str, sqlite_dir: Path) -> Iterator[str]:
    """An empty, uniquely named database on that server (or a SQLite file in `sqlite_dir`),
    dropped afterwards; yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if server_url.startswith("sqlite"):
        yield f"sqlite:///{sqlite_dir / (name + '.db')}"
        return
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)
