"""Transfer bookmarks

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import isthmus.core.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transfer_bookmarks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('path', sa.String(length=2048), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('created', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer_bookmarks')),
    sa.UniqueConstraint('owner_id', 'name', name=op.f('uq_transfer_bookmarks_owner_id'))
    )
    with op.batch_alter_table('transfer_bookmarks', schema=None) as batch_op:
        batch_op.create_index('ix_transfer_bookmarks_owner_created', ['owner_id', 'created', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transfer_bookmarks', schema=None) as batch_op:
        batch_op.drop_index('ix_transfer_bookmarks_owner_created')

    op.drop_table('transfer_bookmarks')
