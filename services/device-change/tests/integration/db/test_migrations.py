"""The schema exists only through the migrations; they go both ways and match the tables."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from device_change.adapters.db.engine import make_engine
from device_change.adapters.db.migrate import downgrade, upgrade
from device_change.adapters.db.tables import metadata

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dialect", ["main", "sqlite"])
def test_migrations_go_up_down_and_up_again(dialect, database_url, fresh_database):
    server = "sqlite://" if dialect == "sqlite" else database_url
    with fresh_database(server) as url:
        upgrade(url)
        downgrade(url, "0001")
        downgrade(url, "base")
        engine = make_engine(url)
        try:
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            upgrade(url)
            inspector = inspect(engine)
            assert set(metadata.tables) <= set(inspector.get_table_names())
            assert "created_at" in {c["name"] for c in inspector.get_columns("devices")}
        finally:
            engine.dispose()


def test_migrated_schema_matches_the_tables(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
