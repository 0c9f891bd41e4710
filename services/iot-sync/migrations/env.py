"""Alembic environment: the URL comes from the caller, -x url=…, or IOT_SYNC_DATABASE_URL."""

from fleetops_common.migrations import run_migrations
from iot_sync.adapters.db.engine import make_engine
from iot_sync.adapters.db.tables import metadata

run_migrations(
    metadata, make_engine, url_env="IOT_SYNC_DATABASE_URL", default_url="sqlite:///var/iot-sync.db"
)
