"""outbox rows wake the relay: a NOTIFY on `iot_sync_outbox` from every insert (PostgreSQL)

The relay runs in the API process while `iot-sync consume` commits most of the outbox rows,
so an in-process wake-up no longer reaches it. A statement-level trigger notifies the channel
inside the writing transaction: PostgreSQL delivers it to listeners at commit (never for a
rollback) and folds repeats of one transaction into one, and the writer pays no extra round
trip. SQLite has no NOTIFY: there the one process that writes also relays, and wakes itself.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHANNEL = "iot_sync_outbox"  # iot_sync.adapters.db.outbox_wake.CHANNEL


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION notify_outbox_written() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_written AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_written()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_written ON outbox")
    op.execute("DROP FUNCTION notify_outbox_written()")
