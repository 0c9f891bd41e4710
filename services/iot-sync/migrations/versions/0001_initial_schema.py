"""initial schema: services, assets, stations, customers, personnel, signal log, ordering, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:56:25.658202
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
    op.create_table('asset_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('asset_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('move', sa.String(length=24), nullable=False),
    sa.Column('from_state', sa.String(length=24), nullable=False),
    sa.Column('to_state', sa.String(length=24), nullable=False),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('holder', sa.String(length=64), nullable=True),
    sa.Column('cause', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_history'))
    )
    with op.batch_alter_table('asset_history', schema=None) as batch_op:
        batch_op.create_index('ix_asset_history_asset', ['asset_id', 'id'], unique=False)

    op.create_table('assets',
    sa.Column('asset_id', sa.String(length=64), nullable=False),
    sa.Column('battery_class', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('slot', sa.Integer(), nullable=True),
    sa.Column('holder', sa.String(length=64), nullable=True),
    sa.Column('charge_pct', sa.Float(), nullable=True),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('position_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outside_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reserved_for', sa.String(length=64), nullable=True),
    sa.Column('reserved_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('asset_id', name=op.f('pk_assets'))
    )
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.create_index('ix_assets_holder', ['holder'], unique=False)
        batch_op.create_index('ix_assets_state_seen', ['state', 'last_seen_at'], unique=False)
        batch_op.create_index('ix_assets_station', ['station_id', 'slot'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('asset_id', sa.String(length=64), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_asset', ['asset_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_person', ['person_id', 'id'], unique=False)

    op.create_table('customers',
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('standing', sa.String(length=16), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=False),
    sa.Column('battery_class', sa.String(length=32), nullable=False),
    sa.Column('swap_quota', sa.Integer(), nullable=False),
    sa.Column('period_days', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customers'))
    )
    op.create_table('held_signals',
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('sender', sa.String(length=160), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('held_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signal', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_held_signals'))
    )
    with op.batch_alter_table('held_signals', schema=None) as batch_op:
        batch_op.create_index('ix_held_signals_sender', ['sender', 'seq'], unique=False)
        batch_op.create_index('ix_held_signals_since', ['held_since'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('traceparent', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('given_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['delivered_at', 'given_up_at', 'id'], unique=False)

    op.create_table('personnel',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=24), nullable=False),
    sa.Column('regions', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('stations', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_personnel'))
    )
    op.create_table('sender_cursors',
    sa.Column('sender', sa.String(length=160), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('sender', name=op.f('pk_sender_cursors'))
    )
    op.create_table('service_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('input', sa.String(length=40), nullable=False),
    sa.Column('from_state', sa.String(length=24), nullable=False),
    sa.Column('to_state', sa.String(length=24), nullable=False),
    sa.Column('battery_id', sa.String(length=64), nullable=True),
    sa.Column('cause', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_history'))
    )
    with op.batch_alter_table('service_history', schema=None) as batch_op:
        batch_op.create_index('ix_service_history_service', ['service_id', 'id'], unique=False)

    op.create_table('services',
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('battery_id', sa.String(length=64), nullable=True),
    sa.Column('swaps_used', sa.Integer(), nullable=False),
    sa.Column('period_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('service_id', name=op.f('pk_services'))
    )
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_services_customer_id'), ['customer_id'], unique=False)

    op.create_table('settlements',
    sa.Column('settlement_id', sa.String(length=36), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('battery_id', sa.String(length=64), nullable=False),
    sa.Column('battery_class', sa.String(length=32), nullable=False),
    sa.Column('evidence', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('settlement_id', name=op.f('pk_settlements'))
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlements_customer_id'), ['customer_id'], unique=False)

    op.create_table('signal_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.Column('topic', sa.String(length=512), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=True),
    sa.Column('source_id', sa.String(length=128), nullable=True),
    sa.Column('verb', sa.String(length=40), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('correlation_id', sa.String(length=128), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signal_log'))
    )
    with op.batch_alter_table('signal_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signal_log_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_signal_log_result', ['result', 'id'], unique=False)

    op.create_table('stations',
    sa.Column('station_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('slot_count', sa.Integer(), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('station_id', name=op.f('pk_stations'))
    )


def downgrade() -> None:
    op.drop_table('stations')
    with op.batch_alter_table('signal_log', schema=None) as batch_op:
        batch_op.drop_index('ix_signal_log_result')
        batch_op.drop_index(batch_op.f('ix_signal_log_message_id'))

    op.drop_table('signal_log')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlements_customer_id'))

    op.drop_table('settlements')
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_services_customer_id'))

    op.drop_table('services')
    with op.batch_alter_table('service_history', schema=None) as batch_op:
        batch_op.drop_index('ix_service_history_service')

    op.drop_table('service_history')
    op.drop_table('sender_cursors')
    op.drop_table('personnel')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending')

    op.drop_table('outbox')
    with op.batch_alter_table('held_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_held_signals_since')
        batch_op.drop_index('ix_held_signals_sender')

    op.drop_table('held_signals')
    op.drop_table('customers')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_person')
        batch_op.drop_index('ix_audit_log_asset')

    op.drop_table('audit_log')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index('ix_assets_station')
        batch_op.drop_index('ix_assets_state_seen')
        batch_op.drop_index('ix_assets_holder')

    op.drop_table('assets')
    with op.batch_alter_table('asset_history', schema=None) as batch_op:
        batch_op.drop_index('ix_asset_history_asset')

    op.drop_table('asset_history')
