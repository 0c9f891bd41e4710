"""iot-sync's engine: the shared factory (fleetops_common.db) with its pool size."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from fleetops_common.db import make_engine as _make_engine


def make_engine(url: str) -> Engine:
    # The consumer, the relay, the jobs and the API threads each hold at most one connection.
    return _make_engine(url, pool_size=8, max_overflow=16)
