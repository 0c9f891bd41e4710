"""Run the Alembic migrations from code: the CLI, `make run` and the tests all come here."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from iot_sync.adapters.db.engine import make_engine

ALEMBIC_INI = Path(__file__).resolve().parents[4] / "alembic.ini"
_MIGRATION_LOCK = 0x1075_0003  # PostgreSQL advisory lock: two processes never migrate at once


def _config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.connect() as conn:
            if postgres:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
            config = _config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
            if postgres:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            config = _config(url)
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
            conn.commit()
    finally:
        engine.dispose()
