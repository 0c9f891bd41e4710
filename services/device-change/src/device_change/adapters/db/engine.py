"""device-change's engine: the shared factory (fleetops_common.db), its pool and pragmas."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from fleetops_common.db import make_engine as _make_engine


def make_engine(url: str) -> Engine:
    """PostgreSQL or SQLite; SQLite enforces the schema's foreign keys."""
    return _make_engine(url, pool_size=10, max_overflow=20, foreign_keys=True)
