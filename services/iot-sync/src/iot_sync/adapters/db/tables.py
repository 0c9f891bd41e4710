"""The iot-sync schema as SQLAlchemy Core tables.

Alembic's migrations create it (tests included; nothing calls `create_all`), and a test
checks that the migrations and these tables agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")
TS = DateTime(timezone=True)

# Customers as the local stand-in for billing-adapter: standing and plan, seeded.
customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("standing", String(16), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("battery_class", String(32), nullable=False),
    Column("swap_quota", Integer, nullable=False),
    Column("period_days", Integer, nullable=False),
)

services = Table(
    "services",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("state", String(24), nullable=False),
    Column("battery_id", String(64)),
    Column("swaps_used", Integer, nullable=False),
    Column("period_started_at", TS),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS),
)

service_history = Table(
    "service_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("input", String(40), nullable=False),
    Column("from_state", String(24), nullable=False),
    Column("to_state", String(24), nullable=False),
    Column("battery_id", String(64)),
    Column("cause", String(200), nullable=False),
    Column("actor", String(64)),
    Index("ix_service_history_service", "service_id", "id"),
)

stations = Table(
    "stations",
    metadata,
    Column("station_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("region", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("slot_count", Integer, nullable=False),
    Column("online", Boolean, nullable=False),
    Column("last_seen_at", TS),
)

assets = Table(
    "assets",
    metadata,
    Column("asset_id", String(64), primary_key=True),
    Column("battery_class", String(32), nullable=False),
    Column("state", String(24), nullable=False),
    Column("station_id", String(64)),
    Column("slot", Integer),
    Column("holder", String(64)),
    Column("charge_pct", Float),
    Column("region", String(64)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("position_at", TS),
    Column("last_seen_at", TS),
    Column("outside_since", TS),
    Column("state_since", TS),
    Column("reserved_for", String(64)),
    Column("reserved_until", TS),
    Index("ix_assets_station", "station_id", "slot"),
    # Not `last_seen_at`: telemetry updates change it, and stay heap-only (HOT) only while
    # no index holds a column they change (migration 0002; PostgreSQL: fillfactor 50).
    Index("ix_assets_state", "state"),
    Index("ix_assets_holder", "holder"),
)

asset_history = Table(
    "asset_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("asset_id", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("move", String(24), nullable=False),
    Column("from_state", String(24), nullable=False),
    Column("to_state", String(24), nullable=False),
    Column("station_id", String(64)),
    Column("holder", String(64)),
    Column("cause", String(200), nullable=False),
    Column("actor", String(64)),
    Index("ix_asset_history_asset", "asset_id", "id"),
)

personnel = Table(
    "personnel",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(24), nullable=False),
    Column("regions", Json, nullable=False),
    Column("stations", Json, nullable=False),
    Column("active", Boolean, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("asset_id", String(64)),
    Column("result", String(16), nullable=False),
    Column("reason", String(64)),
    Column("detail", Json, nullable=False),
    Column("at", TS, nullable=False),
    Column("message_id", String(128)),
    Index("ix_audit_log_person", "person_id", "id"),
    Index("ix_audit_log_asset", "asset_id", "id"),
)

signal_log = Table(
    "signal_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(128), index=True),
    Column("topic", String(512), nullable=False),
    Column("source_kind", String(16)),
    Column("source_id", String(128)),
    Column("verb", String(40)),
    Column("seq", BigInteger),
    Column("result", String(16), nullable=False),
    Column("reason_code", String(64)),
    Column("reason", Text),
    Column("correlation_id", String(128)),
    Column("received_at", TS, nullable=False),
    Column("processed_at", TS, nullable=False),
    Index("ix_signal_log_result", "result", "id"),
)

sender_cursors = Table(
    "sender_cursors",
    metadata,
    Column("sender", String(160), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

held_signals = Table(
    "held_signals",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("sender", String(160), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("held_since", TS, nullable=False),
    Column("signal", Json, nullable=False),
    Index("ix_held_signals_sender", "sender", "seq"),
    Index("ix_held_signals_since", "held_since"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(128)),
    Column("payload", Json, nullable=False),
    Column("traceparent", String(64)),
    Column("created_at", TS, nullable=False),
    Column("due_at", TS, nullable=False),
    Column("lease_until", TS),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", TS),
    Column("given_up_at", TS),
    Index("ix_outbox_pending", "delivered_at", "given_up_at", "id"),
)

# The local Settlements adapter's record, until billing-adapter's queue takes the charge.
settlements = Table(
    "settlements",
    metadata,
    Column("settlement_id", String(36), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("battery_id", String(64), nullable=False),
    Column("battery_class", String(32), nullable=False),
    Column("evidence", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at", TS, nullable=False),
    Column("recorded_at", TS, nullable=False),
)


# PostgreSQL scratch tables that a batch COPYs its rows into before one set-based statement
# applies them. Temporary, so each connection has its own; ON COMMIT DELETE ROWS, so a batch
# never sees the last one's rows. The engine creates them once per connection
# (`engine.make_engine`), not per batch: a CREATE was ~0.8 ms of every batch.
SCRATCH_TABLES = {
    "tmp_telemetry": (
        "CREATE TEMP TABLE IF NOT EXISTS tmp_telemetry (asset_id text, seen timestamptz, "
        "charge float8, lat float8, lon float8, pos_at timestamptz, outside timestamptz, "
        "region text) ON COMMIT DELETE ROWS"
    ),
}
