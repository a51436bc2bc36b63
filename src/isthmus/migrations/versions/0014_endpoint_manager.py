"""Endpoint manager: pause rules, admin cancels, and a task's admin pause and cancel

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import isthmus.core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transfer_pause_rules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('start_time', isthmus.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_by_id', sa.Uuid(), nullable=False),
    sa.Column('pause_task_transfer_read', sa.Boolean(), nullable=False),
    sa.Column('pause_task_transfer_write', sa.Boolean(), nullable=False),
    sa.Column('pause_task_delete', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer_pause_rules'))
    )
    with op.batch_alter_table('transfer_pause_rules', schema=None) as batch_op:
        batch_op.create_index('ix_transfer_pause_rules_endpoint', ['endpoint_id'], unique=False)
    op.create_table('transfer_admin_cancels',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('task_ids', sa.JSON(), nullable=False),
    sa.Column('start_time', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer_admin_cancels'))
    )
    with op.batch_alter_table('transfer_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin_pause_message', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('canceled_by_admin', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('canceled_by_admin_message', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('transfer_tasks', schema=None) as batch_op:
        batch_op.drop_column('canceled_by_admin_message')
        batch_op.drop_column('canceled_by_admin')
        batch_op.drop_column('admin_pause_message')
    op.drop_table('transfer_admin_cancels')
    with op.batch_alter_table('transfer_pause_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_transfer_pause_rules_endpoint')
    op.drop_table('transfer_pause_rules')
