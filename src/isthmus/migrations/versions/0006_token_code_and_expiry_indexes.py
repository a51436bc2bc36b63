"""tokens remember their authorization code; expiry is indexed for purging

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('authorization_code_digest', sa.String(length=64), nullable=True)
        )
        batch_op.create_index(
            batch_op.f('ix_tokens_authorization_code_digest'), ['authorization_code_digest'],
            unique=False,
        )
        batch_op.create_index(batch_op.f('ix_tokens_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_expires_at'))
        batch_op.drop_index(batch_op.f('ix_tokens_authorization_code_digest'))
        batch_op.drop_column('authorization_code_digest')
