"""Auth as one object the HTTP layer and other services hold: settings, database, keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from isthmus.auth import identities, tokens
from isthmus.auth.grants import GrantContext
from isthmus.auth.keys import SigningKey
from isthmus.core.config import Settings
from isthmus.core.db import reading
from isthmus.core.tokens import TokenInfo


@dataclass
class AuthService:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signing_key: SigningKey

    @property
    def grant_context(self) -> GrantContext:
        return GrantContext(self.settings, self.signing_key)

    def introspect(self, token: str) -> TokenInfo | None:
        """`core.tokens.TokenIntrospector` for services in this process."""
        with reading(self.sessions) as session:
            found = tokens.find_active_with_identity(session, token, kind="access")
            if found is None:
                return None
            row, identity = found
            linked = identities.identity_set(session, identity)
            return TokenInfo(
                identity_id=identity.id,
                username=identity.username,
                client_id=row.client_id,
                resource_server=row.resource_server,
                scopes=frozenset(row.scope.split()),
                expires_at=row.expires_at.timestamp() if row.expires_at else None,
                session_id=row.session_id,
                identity_set=frozenset(member.id for member in linked),
            )
