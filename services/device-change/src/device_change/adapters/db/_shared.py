"""Helpers every repository of this package uses: dialect-aware inserts, chunks, cursors."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from fleetops_common.db import is_postgres

T = TypeVar("T")

# Bound parameters per statement stay well below every driver's limit (SQLite: 32,766).
IN_CHUNK = 1000


def now() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT on this connection's dialect (PostgreSQL or SQLite)."""
    if is_postgres(conn):
        return postgresql.insert(table)
    return sqlite.insert(table)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def encode_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    """The value a page ended on, or None for a missing or unreadable cursor."""
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
