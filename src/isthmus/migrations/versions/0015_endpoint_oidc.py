"""The endpoint's own OpenID Connect provider: its configuration, codes, failed logins

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import isthmus.core.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connect_oidc_servers',
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('pam_service', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=1024), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('client_secret_digest', sa.String(length=64), nullable=False),
    sa.Column('signing_key_sealed', sa.Text(), nullable=False),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('registered_provider_id', sa.Uuid(), nullable=True),
    sa.Column('created', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['connect_endpoints.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id')
    )
    op.create_table('connect_oidc_codes',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('username', sa.String(length=320), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('nonce', sa.String(length=512), nullable=True),
    sa.Column('expires_at', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['connect_endpoints.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest')
    )
    op.create_index('ix_connect_oidc_codes_endpoint_id', 'connect_oidc_codes',
                    ['endpoint_id'], unique=False)
    op.create_table('connect_oidc_login_failures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('at', isthmus.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['connect_endpoints.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_connect_oidc_login_failures_key', 'connect_oidc_login_failures',
                    ['endpoint_id', 'key', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_connect_oidc_login_failures_key', table_name='connect_oidc_login_failures')
    op.drop_table('connect_oidc_login_failures')
    op.drop_index('ix_connect_oidc_codes_endpoint_id', table_name='connect_oidc_codes')
    op.drop_table('connect_oidc_codes')
    op.drop_table('connect_oidc_servers')
