"""Alembic environment: the URL comes from the caller, -x url=…, or DEVICE_CHANGE_DATABASE_URL."""

from device_change.adapters.db.engine import make_engine
from device_change.adapters.db.tables import metadata
from fleetops_common.migrations import run_migrations

run_migrations(
    metadata,
    make_engine,
    url_env="DEVICE_CHANGE_DATABASE_URL",
    default_url="sqlite:///var/device-change.db",
)
