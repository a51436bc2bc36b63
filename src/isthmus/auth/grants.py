"""The token endpoint's grants: authorization code, refresh, client credentials, dependent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from isthmus.auth import claims, clients, consents, rfc7636, scopes, tokens
from isthmus.auth.errors import (
    OAuthError,
    invalid_grant,
    invalid_request,
    unauthorized_client,
)
from isthmus.auth.keys import SigningKey
from isthmus.auth.models import AuthorizationCode, BrowserSession, Client, Identity, Token
from isthmus.auth.scopes import ResolvedScope
from isthmus.core.config import Settings
from isthmus.core.db import CommitThenRaise, utcnow
from isthmus.core.secrets import digest

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
DEPENDENT_TOKEN = "urn:globus:auth:grant_type:dependent_token"
DEPENDENT_CONSENT_REQUIRED = "DEPENDENT_CONSENT_REQUIRED"


@dataclass(frozen=True)
class GrantContext:
    settings: Settings
    signing_key: SigningKey


def _optional(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 16_384:
        raise invalid_request(f"Invalid parameter: {name}")
    return value


def _required(form: Mapping[str, Any], name: str) -> str:
    value = _optional(form, name)
    if value is None:
        raise invalid_request(f"Missing required parameter: {name}")
    return value


def _require_grant_type(client: Client, grant_type: str) -> None:
    if grant_type not in clients.grant_types(client):
        raise unauthorized_client(f"This client may not use the {grant_type} grant")


def token_response(
    issued: list[tokens.IssuedToken], id_token: str | None = None, state: str | None = None
) -> dict[str, Any]:
    """Top level: the auth.globus.org token when there is one; the rest in other_tokens."""
    ordered = sorted(issued, key=lambda token: token.resource_server != "auth.globus.org")
    top = ordered[0].as_response()
    if id_token is not None:
        top["id_token"] = id_token
    if state is not None:
        top["state"] = state
    top["other_tokens"] = [token.as_response() for token in ordered[1:]]
    return top


def _id_token(
    session: Session,
    context: GrantContext,
    client: Client,
    identity: Identity,
    roots: list[ResolvedScope],
    browser_session: BrowserSession | None,
    nonce: str | None = None,
) -> str | None:
    granted = {root.scope_string for root in roots}
    if "openid" not in granted:
        return None
    identity_claims = claims.user_claims(session, identity, granted, browser_session)
    if nonce is not None:
        identity_claims["nonce"] = nonce
    return context.signing_key.sign_id_token(
        identity_claims, issuer=context.settings.issuer, audience=str(client.id)
    )


def _replayed(session: Session, code: AuthorizationCode) -> CommitThenRaise:
    """A second use of a code may be an attacker's: the tokens of the first use are revoked
    too (RFC 6749 4.1.2), and that revocation is kept although the request fails."""
    tokens.revoke_issued_for_code(session, code.digest)
    return CommitThenRaise(invalid_grant("The authorization code has already been used"))


def authorization_code(
    session: Session, context: GrantContext, client: Client, form: Mapping[str, Any]
) -> dict[str, Any]:
    _require_grant_type(client, AUTHORIZATION_CODE)
    code = _required(form, "code")
    redirect_uri = _required(form, "redirect_uri")
    row = session.get(AuthorizationCode, digest(code))
    if row is None or row.client_id != client.id:
        raise invalid_grant("Invalid authorization code")
    if row.used:
        raise _replayed(session, row)
    if row.expires_at <= utcnow():
        raise invalid_grant("The authorization code has expired")
    if row.redirect_uri != redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if row.code_challenge is not None:
        verifier = _required(form, "code_verifier")
        if not rfc7636.verify(verifier, row.code_challenge):
            raise invalid_grant("The code_verifier does not match the code_challenge")
    elif client.public_client:
        raise invalid_grant("A native app's code needs PKCE")
    # Redeem atomically: of two concurrent exchanges only one updates the row.
    claimed = session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.digest == row.digest, AuthorizationCode.used.is_(False))
        .values(used=True)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise _replayed(session, row)
    identity = session.get(Identity, row.identity_id)
    if identity is None or identity.status == "closed":
        raise invalid_grant("The identity behind this code no longer exists")
    roots = scopes.resolve(session, row.scope)
    browser_session = session.get(BrowserSession, row.session_id) if row.session_id else None
    issued = tokens.issue(
        session, client_id=client.id, identity_id=identity.id, roots=roots,
        lifetime=context.settings.access_token_lifetime, offline=row.offline,
        session_id=row.session_id, authorization_code_digest=row.digest,
    )
    id_token = _id_token(session, context, client, identity, roots, browser_session, row.nonce)
    return token_response(issued, id_token)


def refresh_token(
    session: Session, context: GrantContext, client: Client, form: Mapping[str, Any]
) -> dict[str, Any]:
    _require_grant_type(client, REFRESH_TOKEN)
    secret = _required(form, "refresh_token")
    row = tokens.find_active(session, secret, kind="refresh")
    if row is None or row.client_id != client.id:
        raise invalid_grant("Invalid refresh token")
    identity = session.get(Identity, row.identity_id)
    if identity is None or identity.status == "closed":
        raise invalid_grant("The identity behind this refresh token no longer exists")
    issued = tokens.refresh(session, row, secret, context.settings.access_token_lifetime)
    return token_response([issued])


def client_credentials(
    session: Session, context: GrantContext, client: Client, form: Mapping[str, Any]
) -> dict[str, Any]:
    _require_grant_type(client, CLIENT_CREDENTIALS)
    requested = _required(form, "scope")
    roots = scopes.resolve(session, requested)
    issued = tokens.issue(
        session, client_id=client.id, identity_id=client.id, roots=roots,
        lifetime=context.settings.access_token_lifetime, offline=False,
    )
    # Only an `openid` request gets an ID token; skip the identity lookup otherwise.
    wants_id_token = any(root.scope_string == "openid" for root in roots)
    identity = session.get(Identity, client.id) if wants_id_token else None
    id_token = (
        _id_token(session, context, client, identity, roots, None) if identity else None
    )
    return token_response(issued, id_token)


def dependent_token(
    session: Session, context: GrantContext, client: Client, form: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Exchange a token for this resource server into tokens for what it depends on."""
    _require_grant_type(client, DEPENDENT_TOKEN)
    secret = _required(form, "token")
    upstream = tokens.find_active(session, secret, kind="access")
    if upstream is None or client.resource_server != upstream.resource_server:
        raise invalid_grant("The token is not an active token for this resource server")
    roots = scopes.resolve(session, upstream.scope_tree) if upstream.scope_tree else []
    dependencies = [dep for root in roots for dep in root.dependencies]
    wanted = _optional(form, "scope")
    if wanted is not None:
        dependencies = _select(session, roots, dependencies, wanted)
    if not dependencies:
        return []
    _require_dependent_consent(session, upstream, client, roots, dependencies)
    offline = form.get("access_type") == "offline"
    issued = tokens.issue(
        session, client_id=client.id, identity_id=upstream.identity_id, roots=dependencies,
        lifetime=context.settings.access_token_lifetime, offline=offline,
        session_id=upstream.session_id,
    )
    return [token.as_response() for token in issued]


def _select(session: Session, roots: list[ResolvedScope], dependencies: list[ResolvedScope],
            wanted: str) -> list[ResolvedScope]:
    available = {dep.scope_string: dep for dep in dependencies}
    selected = []
    for scope_string in dict.fromkeys(wanted.split()):
        found = available.get(scope_string) or _dynamic(session, roots, scope_string)
        if found is None:
            raise _consent_required([scope_string])
        selected.append(found)
    return selected


def _dynamic(session: Session, roots: list[ResolvedScope],
             scope_string: str) -> ResolvedScope | None:
    """A dynamic dependency (a collection's data_access under Transfer's scope) the token's
    own request did not name: the user may have consented to it in another login (``globus
    session consent``), which `_require_dependent_consent` then checks."""
    for root in roots:
        try:
            resolved = scopes.resolve(session, f"{root.scope_string}[*{scope_string}]")
        except OAuthError:
            continue  # not a dependency this root may have
        for dependency in resolved[0].dependencies:
            if dependency.scope_string == scope_string:
                return dependency
    return None


def _require_dependent_consent(
    session: Session,
    upstream: Token,
    client: Client,
    roots: list[ResolvedScope],
    dependencies: list[ResolvedScope],
) -> None:
    identity = session.get(Identity, upstream.identity_id)
    if identity is None:
        return
    if identity.identity_type == "client":
        # A client acting as itself consents by asking: its token's own request must have
        # named the dependency (`transfer:all[*<collection>/data_access]`); one it merely
        # could have asked for (`_dynamic`) needs the same new token a user's consent does.
        approved = {dep.scope_string for root in roots for dep in root.dependencies}
    else:
        approved = {
            row.scope.scope_string
            for row in consents.list_for(session, identity.id, client_ids=[upstream.client_id])
            if row.parent_id is not None and row.client_id == client.id
        }
    missing = [dep.scope_string for dep in dependencies if dep.scope_string not in approved]
    if missing:
        raise _consent_required(missing)


def _consent_required(scope_strings: list[str]) -> OAuthError:
    error = OAuthError(
        "dependent_consent_required",
        "The user has not consented to these dependent scopes: " + " ".join(scope_strings),
        status=403,
    )
    error.code = DEPENDENT_CONSENT_REQUIRED
    error.extra = {"errors_extra": {"unapproved_scopes": scope_strings}}
    return error


GRANTS = {
    AUTHORIZATION_CODE: authorization_code,
    REFRESH_TOKEN: refresh_token,
    CLIENT_CREDENTIALS: client_credentials,
}
