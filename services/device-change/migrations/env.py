"""Alembic environment: the URL comes from the caller, -x url=…, or DEVICE_CHANGE_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from device_change.adapters.db.engine import make_engine
from device_change.adapters.db.tables import metadata

config = context.config
url = (
    config.attributes.get("url")
    or context.get_x_argument(as_dictionary=True).get("url")
    or os.environ.get("DEVICE_CHANGE_DATABASE_URL", "sqlite:///var/device-change.db")
)


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
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
