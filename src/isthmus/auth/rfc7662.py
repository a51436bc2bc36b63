"""RFC 7662 token introspection, with Globus's ``identity_set`` and ``session_info``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from isthmus.auth import identities, lookup_cache, tokens
from isthmus.auth.models import BrowserSession, Client, Identity, Token
from isthmus.core.secrets import digest

INACTIVE: dict[str, Any] = {"active": False}


def describe(
    session: Session, caller: Client, secret: str, include: set[str], issuer: str
) -> dict[str, Any]:
    found = _find_active(session, secret)
    if found is None or not tokens.may_inspect(found[0], caller):
        return INACTIVE
    token, identity = found
    issued = int(token.issued_at.timestamp())
    document: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        "scope": token.scope,
        "client_id": str(token.client_id),
        "sub": str(identity.id),
        "username": identity.username,
        "name": identity.name,
        "email": identity.email,
        "iat": issued,
        "nbf": issued,
        "aud": [token.resource_server, str(token.client_id)],
        "iss": issuer,
    }
    if token.expires_at is not None:
        document["exp"] = int(token.expires_at.timestamp())
    if "identity_set" in include:
        document["identity_set"] = [
            str(member.id) for member in identities.identity_set(session, identity)
        ]
    if "session_info" in include:
        document["session_info"] = _session_info(session, token)
    return document


def _find_active(session: Session, secret: str) -> tuple[Token, Identity] | None:
    """The live token and its identity; a token seen active within the last second is
    answered from ``lookup_cache`` (a revocation in this process clears it at once)."""
    cache = lookup_cache.cache_for(session, "tokens")
    key = digest(secret) if cache is not None and 0 < len(secret) <= 512 else None
    found: tuple[Token, Identity] | None = cache.get(key) if cache and key else None
    if found is not None:
        return found if tokens.is_active(found[0]) else None
    found = tokens.find_active_with_identity(session, secret)
    if found is not None and cache is not None and key is not None:
        token, identity = found
        cache.put(key, (lookup_cache.detached_copy(token), lookup_cache.detached_copy(identity)))
    return found


def _session_info(session: Session, token: Token) -> dict[str, Any]:
    browser_session = session.get(BrowserSession, token.session_id) if token.session_id else None
    if browser_session is None:
        return {"session_id": None, "authentications": {}}
    return {
        "session_id": str(browser_session.id),
        "authentications": {
            str(auth.identity_id): {
                "auth_time": int(auth.auth_time.timestamp()),
                "idp": str(auth.identity_provider_id),
                "mfa": auth.mfa,
                "amr": ["mfa", "pwd"] if auth.mfa else ["pwd"],
            }
            for auth in browser_session.authentications
        },
    }
