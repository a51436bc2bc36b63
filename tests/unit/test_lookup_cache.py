"""The token endpoints' one-second caches never outlive a change by more than a second,
and changes made in the same process are seen at once."""

from __future__ import annotations

import time

import pytest

from isthmus.auth import clients, grants, management, rfc7662, scopes, tokens
from isthmus.auth.builtins import TRANSFER_ALL
from isthmus.auth.errors import OAuthError
from isthmus.auth.grants import client_credentials
from isthmus.auth.service import AuthService
from isthmus.core.db import reading, transaction
from isthmus.deployment import open_deployment
from tests.unit.factories import code_for

pytestmark = pytest.mark.postgres


def _authenticates(auth: AuthService, client_id: str, secret: str) -> bool:
    with reading(auth.sessions) as session:
        try:
            clients.authenticate_confidential(session, client_id, secret, cached=True)
        except OAuthError:
            return False
        return True


def test_a_credential_deleted_in_this_process_stops_working_at_once(auth: AuthService) -> None:
    with transaction(auth.sessions) as session:
        created = clients.create_client(session, "robot", "client_identity")
    assert created.secret is not None and created.credential is not None
    client_id = str(created.client.id)
    assert _authenticates(auth, client_id, created.secret)  # now cached
    assert not _authenticates(auth, client_id, "wrong")  # a cached client is still checked

    with transaction(auth.sessions) as session:
        credential = clients.find_credential(session, created.client, str(created.credential.id))
        assert credential is not None
        session.delete(credential)
    assert not _authenticates(auth, client_id, created.secret)


def test_a_client_deleted_by_another_process_stops_working_within_a_second(
    auth: AuthService,
) -> None:
    with transaction(auth.sessions) as session:
        created = clients.create_client(session, "robot", "client_identity")
    assert created.secret is not None
    client_id = str(created.client.id)
    assert _authenticates(auth, client_id, created.secret)

    other_process = open_deployment(auth.settings)  # its own engine, so its own caches
    try:
        with transaction(other_process.sessions) as session:
            client = clients.require_client(session, client_id)
            clients.delete_client(session, client)
    finally:
        other_process.engine.dispose()
    deleted_at = time.monotonic()
    while _authenticates(auth, client_id, created.secret):
        assert time.monotonic() - deleted_at < 1.0, "deleted client still authenticates"
        time.sleep(0.05)


def test_a_new_scope_dependency_is_resolved_at_once(auth: AuthService) -> None:
    with transaction(auth.sessions) as session:
        service = clients.create_client(session, "api", "resource_server").client
        scope = management.create_scope(session, service, {
            "name": "Use the API", "description": "d", "scope_suffix": "use",
        })
        scope_string = scope.scope_string
    with reading(auth.sessions) as session:
        assert scopes.resolve(session, scope_string)[0].dependencies == []  # now cached
    with transaction(auth.sessions) as session:
        row = scopes.scope_by_string(session, scope_string)
        assert row is not None
        transfer = scopes.scope_by_string(session, TRANSFER_ALL)
        assert transfer is not None
        management.update_scope(session, row, {"dependent_scopes": [{"scope": str(transfer.id)}]})
    with reading(auth.sessions) as session:
        [root] = scopes.resolve(session, scope_string)
    assert [dependency.scope_string for dependency in root.dependencies] == [TRANSFER_ALL]


def test_introspection_sees_a_revocation_in_this_process_at_once(auth: AuthService) -> None:
    with transaction(auth.sessions) as session:
        created = clients.create_client(session, "robot", "client_identity")
        issued = client_credentials(session, auth.grant_context, created.client,
                                    {"scope": TRANSFER_ALL})
    secret = issued["access_token"]
    issuer = auth.settings.issuer
    with reading(auth.sessions) as session:
        caller = clients.require_client(session, created.client.id)
        assert rfc7662.describe(session, caller, secret, set(), issuer)["active"] is True
    with transaction(auth.sessions) as session:
        row = tokens.find_active(session, secret)
        assert row is not None
        tokens.revoke(session, row)
    with reading(auth.sessions) as session:
        caller = clients.require_client(session, created.client.id)
        assert rfc7662.describe(session, caller, secret, set(), issuer) == {"active": False}


def test_introspection_sees_a_withdrawn_consent_at_once(auth: AuthService) -> None:
    """The account's consents page revokes the tokens carrying a consent's scope
    (`tokens.revoke_carrying`): introspection must not answer from its cache."""
    client_id, secret, code = code_for(auth)
    with transaction(auth.sessions) as session:
        client = clients.authenticate_confidential(session, client_id, secret)
        issued = grants.authorization_code(
            session, auth.grant_context, client,
            {"code": code, "redirect_uri": "https://app.example.org/cb"},
        )
    transfer = next(other for other in issued["other_tokens"]
                    if other["resource_server"] == "transfer.api.globus.org")
    issuer = auth.settings.issuer

    def active(token: str) -> bool:
        with reading(auth.sessions) as session:
            caller = clients.require_client(session, client_id)
            return bool(rfc7662.describe(session, caller, token, set(), issuer)["active"])

    assert active(transfer["access_token"]) and active(transfer["refresh_token"])  # cached
    with transaction(auth.sessions) as session:
        row = tokens.find_active(session, transfer["access_token"])
        assert row is not None
        assert tokens.revoke_carrying(session, row.client_id, row.identity_id, TRANSFER_ALL) == 2
    assert not active(transfer["access_token"])
    assert not active(transfer["refresh_token"])
    assert active(issued["access_token"])  # the openid token does not carry the scope
