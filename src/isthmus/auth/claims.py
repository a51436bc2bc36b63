"""Identity claims for ID tokens, userinfo and introspection, gated by scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from isthmus.auth.builtins import VIEW_IDENTITY_SET
from isthmus.auth.identities import identity_set
from isthmus.auth.models import BrowserSession, Identity


def _auth_times(browser_session: BrowserSession | None) -> dict[Any, datetime]:
    if browser_session is None:
        return {}
    return {auth.identity_id: auth.auth_time for auth in browser_session.authentications}


def _identity_claims(
    identity: Identity, scopes: set[str], last_authentication: datetime | None
) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": str(identity.id)}
    if "profile" in scopes:
        provider = identity.identity_provider
        claims.update({
            "preferred_username": identity.username,
            "name": identity.name,
            "organization": identity.organization,
            "identity_provider": str(provider.id),
            "identity_provider_display_name": provider.name,
        })
    if "email" in scopes:
        claims["email"] = identity.email
    if last_authentication is not None:
        claims["last_authentication"] = int(last_authentication.timestamp())
    return claims


def user_claims(
    session: Session,
    identity: Identity,
    scopes: set[str],
    browser_session: BrowserSession | None,
) -> dict[str, Any]:
    """The OIDC claims an ``openid`` login shows, with the identity set when allowed."""
    times = _auth_times(browser_session)
    claims = _identity_claims(identity, scopes, times.get(identity.id))
    if VIEW_IDENTITY_SET in scopes:
        claims["identity_set"] = [
            _identity_claims(member, scopes | {"profile", "email"}, times.get(member.id))
            | {"username": member.username}
            for member in identity_set(session, identity)
        ]
    return claims
