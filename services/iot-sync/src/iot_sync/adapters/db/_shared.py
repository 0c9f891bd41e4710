"""Helpers the repositories share: dialect-aware upserts, chunking, UTC times."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

T = TypeVar("T")

# Bound parameters per IN list stay far below every driver's limit (SQLite: 32,766).
IN_CHUNK = 1000


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT on this connection's dialect."""
    return postgresql.insert(table) if is_postgres(conn) else sqlite.insert(table)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def aware_now() -> datetime:
    return datetime.now(UTC)
