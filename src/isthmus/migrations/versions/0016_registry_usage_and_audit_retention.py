"""Drop transfer_registry_usage.active_tasks, which nothing reads or writes (the in-use
search asks the tasks table for the caller's active tasks); index the audit records' time,
which the retention purge deletes by

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop a column in place on every version: batch mode copies the table.
    with op.batch_alter_table('transfer_registry_usage', schema=None) as batch_op:
        batch_op.drop_column('active_tasks')
    op.create_index('ix_connect_audit_records_time', 'connect_audit_records', ['time'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_connect_audit_records_time', table_name='connect_audit_records')
    with op.batch_alter_table('transfer_registry_usage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_tasks', sa.Integer(), nullable=False,
                                      server_default='0'))
