"""Access and refresh tokens: issuing, finding, describing and revoking them.

Tokens are opaque 256-bit random strings. Only their SHA-256 digests are
stored, so a copy of the database cannot be replayed against the server.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, lazyload

from isthmus.auth.models import Client, Identity, Token
from isthmus.auth.scopes import ResolvedScope
from isthmus.core.db import utcnow
from isthmus.core.secrets import digest, new_secret


@dataclass
class IssuedToken:
    resource_server: str
    scope: str
    access_token: str
    expires_in: int
    refresh_token: str | None = None

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
            "resource_server": self.resource_server,
            "refresh_token": self.refresh_token,
        }


def by_resource_server(roots: list[ResolvedScope]) -> dict[str, list[ResolvedScope]]:
    """Group requested roots by the resource server a token is issued for."""
    grouped: dict[str, list[ResolvedScope]] = {}
    for root in roots:
        grouped.setdefault(root.scope.resource_server, []).append(root)
    return grouped


def _root_scopes(roots: list[ResolvedScope]) -> str:
    return " ".join(dict.fromkeys(root.scope_string for root in roots))


def _tree(roots: list[ResolvedScope]) -> str:
    return " ".join(root.serialize() for root in roots)


def issue(
    session: Session,
    *,
    client_id: uuid.UUID,
    identity_id: uuid.UUID,
    roots: list[ResolvedScope],
    lifetime: int,
    offline: bool,
    session_id: uuid.UUID | None = None,
    authorization_code_digest: str | None = None,
) -> list[IssuedToken]:
    """One access token (and, offline, one refresh token) per resource server."""
    issued = []
    now = utcnow()
    refresh_rows: list[dict[str, Any]] = []
    access_rows: list[dict[str, Any]] = []
    for resource_server, group in by_resource_server(roots).items():
        scope = _root_scopes(group)
        common = {"client_id": client_id, "identity_id": identity_id,
                  "resource_server": resource_server, "scope": scope,
                  "scope_tree": _tree(group), "session_id": session_id, "issued_at": now,
                  "revoked": False, "authorization_code_digest": authorization_code_digest}
        refresh_id = None
        refresh_secret = None
        if offline and all(root.scope.allows_refresh_token for root in group):
            refresh_secret = new_secret()
            refresh_id = uuid.uuid4()
            refresh_rows.append({**common, "id": refresh_id, "digest": digest(refresh_secret),
                                 "kind": "refresh", "refresh_token_id": None,
                                 "expires_at": None})
        access_secret = new_secret()
        access_rows.append({**common, "id": uuid.uuid4(), "digest": digest(access_secret),
                            "kind": "access", "refresh_token_id": refresh_id,
                            "expires_at": now + timedelta(seconds=lifetime)})
        issued.append(IssuedToken(resource_server, scope, access_secret, lifetime, refresh_secret))
    # Plain INSERTs rather than the ORM's unit of work: nothing here reads the rows back,
    # and this runs on every token request. Refresh tokens first (access rows point to them).
    session.flush()
    for rows in (refresh_rows, access_rows):
        if rows:
            session.execute(_INSERT_TOKEN, rows)
    return issued


_INSERT_TOKEN = insert(Token.__table__)  # type: ignore[arg-type]


def refresh(
    session: Session, refresh_row: Token, refresh_secret: str, lifetime: int
) -> IssuedToken:
    """A new access token from a refresh token; the refresh token itself stays the same."""
    now = utcnow()
    access_secret = new_secret()
    session.add(Token(
        id=uuid.uuid4(), digest=digest(access_secret), kind="access",
        client_id=refresh_row.client_id, identity_id=refresh_row.identity_id,
        resource_server=refresh_row.resource_server, scope=refresh_row.scope,
        scope_tree=refresh_row.scope_tree, session_id=refresh_row.session_id,
        refresh_token_id=refresh_row.id, issued_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    ))
    session.flush()
    return IssuedToken(refresh_row.resource_server, refresh_row.scope, access_secret, lifetime,
                       refresh_secret)


def find_active(session: Session, secret: str, kind: str | None = None) -> Token | None:
    """The live token with this value (unexpired and unrevoked), or None."""
    if not secret or len(secret) > 512:
        return None
    token = session.scalar(select(Token).where(Token.digest == digest(secret)))
    if token is None or not is_active(token) or (kind is not None and token.kind != kind):
        return None
    return token


_TOKEN_AND_IDENTITY = (
    select(Token, Identity)
    .join(Identity, Identity.id == Token.identity_id)
    .where(Token.digest == bindparam("digest"))
    .options(lazyload(Identity.identity_provider))
)


def find_active_with_identity(
    session: Session, secret: str, kind: str | None = None
) -> tuple[Token, Identity] | None:
    """`find_active` and the token's identity, in one query (introspection's hot path)."""
    if not secret or len(secret) > 512:
        return None
    row = session.execute(_TOKEN_AND_IDENTITY, {"digest": digest(secret)}).first()
    if row is None or not is_active(row[0]) or (kind is not None and row[0].kind != kind):
        return None
    return row[0], row[1]


def is_active(token: Token) -> bool:
    if token.revoked:
        return False
    return token.expires_at is None or token.expires_at > utcnow()


def revoke(session: Session, token: Token) -> None:
    """Revoke a token; revoking a refresh token also kills the access tokens it minted."""
    token.revoked = True
    if token.kind == "refresh":
        session.execute(
            update(Token).where(Token.refresh_token_id == token.id).values(revoked=True)
        )
    session.flush()


def revoke_issued_for_code(session: Session, code_digest: str) -> None:
    for token in session.scalars(
        select(Token).where(Token.authorization_code_digest == code_digest)
    ):
        revoke(session, token)


def may_inspect(token: Token, caller: Client) -> bool:
    """The client the token was issued to, or the resource server it is for."""
    return token.client_id == caller.id or (
        caller.resource_server is not None and caller.resource_server == token.resource_server
    )


def may_revoke(session: Session, token: Token, caller: Client) -> bool:
    """The client the token was issued to, or the native-app template that client is an
    instance of: globus-cli's logout revokes its instance's tokens as the template."""
    if token.client_id == caller.id:
        return True
    if not caller.is_template:
        return False
    holder = session.get(Client, token.client_id)
    return holder is not None and holder.parent_client_id == caller.id


def revoke_carrying(
    session: Session, client_id: uuid.UUID, identity_id: uuid.UUID, scope_string: str
) -> int:
    """Revoke every live token issued to this client for this identity that carries the
    scope (refresh tokens take their access tokens with them); returns how many."""
    rows = session.scalars(
        select(Token).where(Token.client_id == client_id, Token.identity_id == identity_id,
                            Token.revoked.is_(False))
    ).all()
    carrying = [row for row in rows if scope_string in row.scope.split()]
    for row in carrying:
        revoke(session, row)
    return len(carrying)
