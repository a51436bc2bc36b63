"""Transfer checkpoints: how far a large file's interrupted copy is durable

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transfer_checkpoints',
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Uuid(), nullable=False),
    sa.Column('destination_path', sa.Text(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('source_size', sa.BigInteger(), nullable=False),
    sa.Column('source_mtime', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['transfer_task_items.id'], name=op.f('fk_transfer_checkpoints_item_id_transfer_task_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['transfer_tasks.id'], name=op.f('fk_transfer_checkpoints_task_id_transfer_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_transfer_checkpoints'))
    )
    with op.batch_alter_table('transfer_checkpoints', schema=None) as batch_op:
        batch_op.create_index('ix_transfer_checkpoints_task', ['task_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transfer_checkpoints', schema=None) as batch_op:
        batch_op.drop_index('ix_transfer_checkpoints_task')
    op.drop_table('transfer_checkpoints')
