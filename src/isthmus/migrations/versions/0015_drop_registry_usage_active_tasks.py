"""Drop transfer_registry_usage.active_tasks: nothing reads or writes it (the in-use search
asks the tasks table for the caller's active tasks)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop a column in place on every version: batch mode copies the table.
    with op.batch_alter_table('transfer_registry_usage', schema=None) as batch_op:
        batch_op.drop_column('active_tasks')


def downgrade() -> None:
    with op.batch_alter_table('transfer_registry_usage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_tasks', sa.Integer(), nullable=False,
                                      server_default='0'))
