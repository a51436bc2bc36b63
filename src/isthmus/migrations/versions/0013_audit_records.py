"""Connect audit records: one row per data operation

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import isthmus.core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connect_audit_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('time', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=True),
    sa.Column('collection_id', sa.Uuid(), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=True),
    sa.Column('username', sa.String(length=320), nullable=True),
    sa.Column('local_account', sa.String(length=320), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('destination', sa.Text(), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('result', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_connect_audit_records_endpoint_time', 'connect_audit_records',
                    ['endpoint_id', 'time'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_connect_audit_records_endpoint_time', table_name='connect_audit_records')
    op.drop_table('connect_audit_records')
