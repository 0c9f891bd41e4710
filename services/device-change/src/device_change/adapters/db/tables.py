"""The device-change schema as SQLAlchemy Core tables.

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
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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

devices = Table(
    "devices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("iccid", String(22), nullable=False, unique=True),
    Column("imei", String(16), index=True),
    Column("msisdn", String(16)),
    Column("status", String(24), nullable=False),
    Column("rate_plan", String(64)),
    Column("account_name", String(64)),
    Column("updated_at", TS),
    Column("created_at", TS),  # added in 0002; rows synced before it have none
    Index("ix_devices_tenant_msisdn", "tenant", "msisdn"),
    Index("ix_devices_tenant_iccid", "tenant", "iccid"),
)

rate_plans = Table(
    "rate_plans",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("size_kb", BigInteger),
)

bulk_changes = Table(
    "bulk_changes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("change_type", String(40), nullable=False),
    Column("params", Json, nullable=False),
    Column("status", String(24), nullable=False),
    Column("submitted_by", String(200), nullable=False),
    Column("idempotency_key", String(200)),
    Column("request_fingerprint", String(64)),
    Column("created_at", TS, nullable=False),
    Column("started_at", TS),
    Column("finished_at", TS),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("total_lines", Integer, nullable=False),
    UniqueConstraint("tenant", "idempotency_key", name="uq_bulk_changes_tenant_key"),
    Index("ix_bulk_changes_tenant_created", "tenant", "created_at"),
)

carrier_batches = Table(
    "carrier_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("bulk_change_id", String(36), ForeignKey("bulk_changes.id"), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("carrier_request_id", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS),
    Column("submitted_at", TS),
    Column("traceparent", String(128)),
    Column("line_count", Integer, nullable=False),
    Index("ix_carrier_batches_bulk_status", "bulk_change_id", "status"),
    Index("ix_carrier_batches_request", "carrier_request_id"),
)

device_lines = Table(
    "device_lines",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("bulk_change_id", String(36), ForeignKey("bulk_changes.id"), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("iccid", String(22), nullable=False),
    Column("request", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("action", String(32)),
    Column("after", Json, nullable=False),
    Column("carrier_args", Json, nullable=False),
    Column("carrier_request_id", String(64)),
    Column("batch_id", String(36)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", TS),
    Index("ix_device_lines_bulk_status_seq", "bulk_change_id", "status", "seq"),
    Index("ix_device_lines_bulk_seq", "bulk_change_id", "seq"),
    Index("ix_device_lines_batch_status", "batch_id", "status"),
    Index("ix_device_lines_request_iccid", "carrier_request_id", "iccid"),
    Index("ix_device_lines_iccid_status", "iccid", "status"),
)

device_history = Table(
    "device_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("device_id", BigInteger, nullable=False),
    Column("iccid", String(22), nullable=False),
    Column("action", String(32), nullable=False),
    Column("before", Json, nullable=False),
    Column("after", Json, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", TS, nullable=False),
    Column("bulk_change_id", String(36)),
    Column("line_id", String(36)),
    Column("carrier_request_id", String(64)),
    Index("ix_device_history_device", "device_id", "id"),
    Index("ix_device_history_tenant_action_at", "tenant", "action", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("actor", String(100), nullable=False),
    Column("payload", Json, nullable=False),
    Column("delay_ms", Integer, nullable=False, default=0),
    Column("traceparent", String(128)),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS),
)
# Partial: the relay scans only what is unsent, however many rows were ever sent.
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    postgresql_where=outbox.c.sent_at.is_(None),
    sqlite_where=outbox.c.sent_at.is_(None),
)

carrier_callbacks = Table(
    "carrier_callbacks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("iccid", String(22), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("body", Json, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("processed_at", TS),
    # A callback the carrier repeats (same request, device and outcome) is stored once.
    UniqueConstraint("request_id", "iccid", "outcome", name="uq_carrier_callbacks_key"),
)
Index(
    "ix_carrier_callbacks_unprocessed",
    carrier_callbacks.c.id,
    postgresql_where=carrier_callbacks.c.processed_at.is_(None),
    sqlite_where=carrier_callbacks.c.processed_at.is_(None),
)

delivery_log = Table(
    "delivery_log",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("queue", String(100), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),
    Column("queue", String(100), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("payload", Json, nullable=False),
    Column("reason", Text, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("replayed_at", TS),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("next_free_at", Float, nullable=False),
)
