"""Services see a revocation within a second even through the introspection cache."""

from __future__ import annotations

import time

import pytest

from isthmus.auth import clients, grants, tokens
from isthmus.auth.builtins import TRANSFER_ALL
from isthmus.auth.service import AuthService
from isthmus.core.db import transaction
from isthmus.core.tokens import CachedIntrospector

pytestmark = pytest.mark.postgres


def test_revocation_is_visible_through_the_cache_within_a_second(auth: AuthService) -> None:
    with transaction(auth.sessions) as session:
        created = clients.create_client(session, "robot", "client_identity")
        response = grants.client_credentials(
            session, auth.grant_context, created.client, {"scope": TRANSFER_ALL}
        )
    access_token = response["access_token"]
    cache = CachedIntrospector(auth, ttl=auth.settings.introspection_cache_seconds)

    info = cache.introspect(access_token)
    assert info is not None
    assert info.identity_id == created.client.id
    assert info.resource_server == "transfer.api.globus.org"
    assert info.scopes == frozenset({TRANSFER_ALL})

    with transaction(auth.sessions) as session:
        row = tokens.find_active(session, access_token)
        assert row is not None
        tokens.revoke(session, row)
    revoked_at = time.monotonic()
    while cache.introspect(access_token) is not None:
        assert time.monotonic() - revoked_at < 1.0, "revocation not visible within 1 s"
        time.sleep(0.05)
    assert auth.introspect(access_token) is None
    assert cache.introspect("not-a-token") is None
