"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 07:03:26.925770
"""

import sqlalchemy as sa
from alembic import op

from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('bulk_changes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('change_type', sa.String(length=40), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('total_lines', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_changes')),
    sa.UniqueConstraint('tenant', 'idempotency_key', name='uq_bulk_changes_tenant_key')
    )
    with op.batch_alter_table('bulk_changes', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_changes_tenant_created', ['tenant', 'created_at'], unique=False)

    op.create_table('carrier_callbacks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('iccid', sa.String(length=22), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_callbacks')),
    sa.UniqueConstraint('request_id', 'iccid', 'outcome', name='uq_carrier_callbacks_key')
    )
    with op.batch_alter_table('carrier_callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_carrier_callbacks_unprocessed', ['processed_at', 'id'], unique=False)

    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    op.create_table('delivery_log',
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_delivery_log'))
    )
    op.create_table('device_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.BigInteger(), nullable=False),
    sa.Column('iccid', sa.String(length=22), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bulk_change_id', sa.String(length=36), nullable=True),
    sa.Column('line_id', sa.String(length=36), nullable=True),
    sa.Column('carrier_request_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_history'))
    )
    with op.batch_alter_table('device_history', schema=None) as batch_op:
        batch_op.create_index('ix_device_history_device', ['device_id', 'id'], unique=False)
        batch_op.create_index('ix_device_history_tenant_action_at', ['tenant', 'action', 'at'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('iccid', sa.String(length=22), nullable=False),
    sa.Column('imei', sa.String(length=16), nullable=True),
    sa.Column('msisdn', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('rate_plan', sa.String(length=64), nullable=True),
    sa.Column('account_name', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('iccid', name=op.f('uq_devices_iccid'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_imei'), ['imei'], unique=False)
        batch_op.create_index('ix_devices_tenant_iccid', ['tenant', 'iccid'], unique=False)
        batch_op.create_index('ix_devices_tenant_msisdn', ['tenant', 'msisdn'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('delay_ms', sa.Integer(), nullable=False),
    sa.Column('traceparent', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unsent', ['sent_at', 'id'], unique=False)

    op.create_table('rate_limits',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('next_free_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limits'))
    )
    op.create_table('rate_plans',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('size_kb', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'code', name=op.f('pk_rate_plans'))
    )
    op.create_table('carrier_batches',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('bulk_change_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('carrier_request_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('traceparent', sa.String(length=128), nullable=True),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bulk_change_id'], ['bulk_changes.id'], name=op.f('fk_carrier_batches_bulk_change_id_bulk_changes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_batches'))
    )
    with op.batch_alter_table('carrier_batches', schema=None) as batch_op:
        batch_op.create_index('ix_carrier_batches_bulk_status', ['bulk_change_id', 'status'], unique=False)
        batch_op.create_index('ix_carrier_batches_request', ['carrier_request_id'], unique=False)

    op.create_table('device_lines',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('bulk_change_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('iccid', sa.String(length=22), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('carrier_args', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('carrier_request_id', sa.String(length=64), nullable=True),
    sa.Column('batch_id', sa.String(length=36), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['bulk_change_id'], ['bulk_changes.id'], name=op.f('fk_device_lines_bulk_change_id_bulk_changes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_lines'))
    )
    with op.batch_alter_table('device_lines', schema=None) as batch_op:
        batch_op.create_index('ix_device_lines_batch_status', ['batch_id', 'status'], unique=False)
        batch_op.create_index('ix_device_lines_bulk_seq', ['bulk_change_id', 'seq'], unique=False)
        batch_op.create_index('ix_device_lines_bulk_status_seq', ['bulk_change_id', 'status', 'seq'], unique=False)
        batch_op.create_index('ix_device_lines_iccid_status', ['iccid', 'status'], unique=False)
        batch_op.create_index('ix_device_lines_request_iccid', ['carrier_request_id', 'iccid'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('device_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_device_lines_request_iccid')
        batch_op.drop_index('ix_device_lines_iccid_status')
        batch_op.drop_index('ix_device_lines_bulk_status_seq')
        batch_op.drop_index('ix_device_lines_bulk_seq')
        batch_op.drop_index('ix_device_lines_batch_status')

    op.drop_table('device_lines')
    with op.batch_alter_table('carrier_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_carrier_batches_request')
        batch_op.drop_index('ix_carrier_batches_bulk_status')

    op.drop_table('carrier_batches')
    op.drop_table('rate_plans')
    op.drop_table('rate_limits')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unsent')

    op.drop_table('outbox')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index('ix_devices_tenant_msisdn')
        batch_op.drop_index('ix_devices_tenant_iccid')
        batch_op.drop_index(batch_op.f('ix_devices_imei'))

    op.drop_table('devices')
    with op.batch_alter_table('device_history', schema=None) as batch_op:
        batch_op.drop_index('ix_device_history_tenant_action_at')
        batch_op.drop_index('ix_device_history_device')

    op.drop_table('device_history')
    op.drop_table('delivery_log')
    op.drop_table('dead_letters')
    with op.batch_alter_table('carrier_callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_carrier_callbacks_unprocessed')

    op.drop_table('carrier_callbacks')
    with op.batch_alter_table('bulk_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_changes_tenant_created')

    op.drop_table('bulk_changes')
    
