"""Rows that several domain tests start from."""

from __future__ import annotations

from isthmus.auth import authorize, clients, identities, scopes, sessions
from isthmus.auth.builtins import TRANSFER_ALL
from isthmus.auth.service import AuthService
from isthmus.core.db import transaction


def code_for(auth: AuthService) -> tuple[str, str, str]:
    """A confidential client and a fresh authorization code for a new user."""
    with transaction(auth.sessions) as session:
        identity = identities.create_user(session, "carol", "pw")
        created = clients.create_client(
            session, "web app", "confidential_client",
            redirect_uris=["https://app.example.org/cb"],
        )
        browser_session, _ = sessions.login(session, identity, None, 3600)
        request = authorize.AuthorizationRequest(
            client=created.client, redirect_uri="https://app.example.org/cb",
            roots=scopes.resolve(session, f"openid {TRANSFER_ALL}"),
            state="s", offline=True, code_challenge=None, prompt_login=False, query="",
        )
        location = authorize.issue_code(session, request, identity, browser_session, 600)
        assert created.secret is not None
        return str(created.client.id), created.secret, location.split("code=")[1].split("&")[0]
