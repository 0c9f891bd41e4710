"""The schema exists only through the migrations; they go both ways and match the tables."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from iot_sync.adapters.db.engine import make_engine
from iot_sync.adapters.db.migrate import downgrade, upgrade
from iot_sync.adapters.db.tables import metadata

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dialect", ["main", "sqlite"])
def test_migrations_go_up_down_and_up_again(dialect, database_url, fresh_database):
    server = "sqlite://" if dialect == "sqlite" else database_url
    with fresh_database(server) as url:
        upgrade(url)
        downgrade(url, "base")
        engine = make_engine(url)
        try:
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            upgrade(url)
            assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()


def test_migrated_schema_matches_the_tables(engine_each_dialect):
    with engine_each_dialect.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
