"""Alembic environment: the URL comes from the caller, -x url=…, or IOT_SYNC_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from iot_sync.adapters.db.engine import make_engine
from iot_sync.adapters.db.tables import metadata

config = context.config
url = (
    config.attributes.get("url")
    or context.get_x_argument(as_dictionary=True).get("url")
    or os.environ.get("IOT_SYNC_DATABASE_URL", "sqlite:///var/iot-sync.db")
)


def run() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        context.configure(connection=given, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
    engine.dispose()


run()
