"""Purging removes exactly what can no longer be used, and nothing that still answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from isthmus.auth import clients, grants, retention, tokens
from isthmus.auth.builtins import TRANSFER_ALL
from isthmus.auth.models import AuthorizationCode, Token
from isthmus.auth.service import AuthService
from isthmus.core.db import transaction, utcnow
from isthmus.core.secrets import digest
from tests.unit.factories import code_for

pytestmark = pytest.mark.postgres


def test_purge_keeps_live_rows_and_removes_dead_ones(auth: AuthService) -> None:
    client_id, secret, code = code_for(auth)
    with transaction(auth.sessions) as session:
        client = clients.authenticate_confidential(session, client_id, secret)
        offline = grants.authorization_code(
            session, auth.grant_context, client,
            {"code": code, "redirect_uri": "https://app.example.org/cb"},
        )
        robot = clients.create_client(session, "robot", "client_identity").client
        live = grants.client_credentials(session, auth.grant_context, robot,
                                         {"scope": TRANSFER_ALL})["access_token"]
        expired = grants.client_credentials(session, auth.grant_context, robot,
                                            {"scope": TRANSFER_ALL})["access_token"]
        just_expired = grants.client_credentials(session, auth.grant_context, robot,
                                                 {"scope": TRANSFER_ALL})["access_token"]
    revoked_refresh = offline["refresh_token"]
    with transaction(auth.sessions) as session:
        now = utcnow()
        for secret_value, expires in ((expired, now - retention.GRACE - timedelta(minutes=1)),
                                      (just_expired, now - timedelta(minutes=1))):
            row = tokens.find_active(session, secret_value)
            assert row is not None
            row.expires_at = expires
        refresh_row = tokens.find_active(session, revoked_refresh, kind="refresh")
        assert refresh_row is not None
        tokens.revoke(session, refresh_row)
        # The code was redeemed; age it past the grace period.
        for row in session.scalars(select(AuthorizationCode)):
            row.expires_at = now - retention.GRACE - timedelta(seconds=1)

    with transaction(auth.sessions) as session:
        purged = retention.purge_expired(session, utcnow())
    assert purged.codes == 1
    # The long-expired access token, the revoked refresh token and its access tokens.
    assert purged.tokens >= 2

    with transaction(auth.sessions) as session:
        remaining = {row.digest for row in session.scalars(select(Token))}
        assert tokens.find_active(session, live) is not None
        assert session.scalar(select(AuthorizationCode)) is None
    assert digest(live) in remaining
    assert digest(just_expired) in remaining  # inside the grace period
    assert digest(expired) not in remaining
    assert digest(revoked_refresh) not in remaining
    assert digest(offline["access_token"]) not in remaining
    # Purging again finds nothing more.
    with transaction(auth.sessions) as session:
        again = retention.purge_expired(session, utcnow())
    assert again == retention.Purged(codes=0, tokens=0, login_failures=0)
