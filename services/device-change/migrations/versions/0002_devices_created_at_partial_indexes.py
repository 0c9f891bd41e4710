"""devices.created_at; partial indexes on the unsent outbox and unprocessed callbacks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: devices synced before this revision have no creation time to give.
    op.add_column("devices", sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))

    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.drop_index("ix_carrier_callbacks_unprocessed", table_name="carrier_callbacks")
    op.create_index(
        "ix_carrier_callbacks_unprocessed",
        "carrier_callbacks",
        ["id"],
        postgresql_where=sa.text("processed_at IS NULL"),
        sqlite_where=sa.text("processed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_carrier_callbacks_unprocessed", table_name="carrier_callbacks")
    op.create_index(
        "ix_carrier_callbacks_unprocessed", "carrier_callbacks", ["processed_at", "id"]
    )
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "id"])
    with op.batch_alter_table("devices") as batch_op:
        batch_op.drop_column("created_at")
