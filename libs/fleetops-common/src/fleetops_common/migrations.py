"""What a service's Alembic `env.py` does, once: find the URL, run the migrations online.

The URL comes from the caller (`config.attributes["url"]`, or an open connection in
`config.attributes["connection"]`), else `-x url=…`, else the service's environment
variable. Batch mode is on, so ALTERs work on SQLite too.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, Engine


def run_migrations(
    metadata: MetaData, make_engine: Callable[[str], Engine], *, url_env: str, default_url: str
) -> None:
    config = context.config
    given = config.attributes.get("connection")
    if given is not None:
        _migrate(given, metadata)
        return
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get(url_env, default_url)
    )
    engine = make_engine(url)
    with engine.connect() as conn:
        _migrate(conn, metadata)
        conn.commit()
    engine.dispose()


def _migrate(conn: Connection, metadata: MetaData) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
