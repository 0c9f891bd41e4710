"""telemetry updates stay off the indexes: assets indexed by state alone, pages half empty

Every telemetry batch updates hundreds of battery rows. With `last_seen_at` in an index, none
of those updates could be heap-only (HOT): each one added an entry to every index of the
table and left a dead row behind for vacuum (measured on the iot bench: 6,524 of 82,649
updates HOT, 76,195 dead rows for 1,200 batteries, and the per-batch UPDATE slowing as they
piled up). The loss scan filters on `coalesce(last_seen_at, state_since)`, which that index
never served: `state` alone serves it as well. PostgreSQL: fillfactor 50 leaves room on each
page for the new row versions, so updates stay on their page and prune it as they go.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_state_seen")
        batch_op.create_index("ix_assets_state", ["state"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assets SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assets RESET (fillfactor)")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_state")
        batch_op.create_index("ix_assets_state_seen", ["state", "last_seen_at"], unique=False)
