"""Auth as one object the HTTP layer and other services hold: settings, database, keys."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.auth import grants, identities, session_requirements, tokens
from isthmus.auth.errors import OAuthError
from isthmus.auth.grants import GrantContext
from isthmus.auth.keys import SigningKey
from isthmus.auth.models import BrowserSession, Client, Identity, Policy
from isthmus.core.config import Settings
from isthmus.core.db import reading, transaction
from isthmus.core.encryption import SecretBox
from isthmus.core.groups import GroupMembership
from isthmus.core.identities import IdentityRecord
from isthmus.core.session_policies import PolicyRule
from isthmus.core.tokens import DependentToken, TokenInfo

# Bounds one lookup's IN list (PostgreSQL and SQLite both take far more).
_LOOKUP_CHUNK = 500


@dataclass
class AuthService:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signing_key: SigningKey
    # Who belongs to which group: a project administered by a group is
    # administered by its active members (see `management.caller_of`).
    groups: GroupMembership
    # Seals what Auth must read back (upstream providers' client secrets).
    secret_box: SecretBox

    @property
    def grant_context(self) -> GrantContext:
        return GrantContext(self.settings, self.signing_key)

    def introspect(self, token: str, *, session_info: bool = False) -> TokenInfo | None:
        """`core.tokens.TokenIntrospector` for services in this process."""
        with reading(self.sessions) as session:
            found = tokens.find_active_with_identity(session, token, kind="access")
            if found is None:
                return None
            row, identity = found
            linked = identities.identity_set(session, identity)
            browser_session = (session.get(BrowserSession, row.session_id)
                               if session_info and row.session_id else None)
            return TokenInfo(
                identity_id=identity.id,
                username=identity.username,
                client_id=row.client_id,
                resource_server=row.resource_server,
                scopes=frozenset(row.scope.split()),
                expires_at=row.expires_at.timestamp() if row.expires_at else None,
                session_id=row.session_id,
                identity_set=frozenset(member.id for member in linked),
                authentications=tuple(session_requirements.authentications_of(
                    session, browser_session)) if browser_session else (),
            )

    def policy_rule(self, policy_id: uuid.UUID) -> PolicyRule | None:
        """`core.session_policies.PolicyDirectory` for services in this process."""
        with reading(self.sessions) as session:
            policy = session.get(Policy, policy_id)
            return session_requirements.rule_of(policy) if policy is not None else None

    def lookup_identities(
        self, identity_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, IdentityRecord]:
        """`core.identities.IdentityDirectory` for services in this process."""
        wanted = list(dict.fromkeys(identity_ids))
        found: dict[uuid.UUID, IdentityRecord] = {}
        with reading(self.sessions) as session:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start:start + _LOOKUP_CHUNK]
                for identity_id, username, email in session.execute(
                    select(Identity.id, Identity.username, Identity.email)
                    .where(Identity.id.in_(chunk))
                ):
                    found[identity_id] = IdentityRecord(identity_id, username, email)
        return found


@dataclass
class InProcessDependentTokens:
    """`core.tokens.DependentTokens` for a service of this process, acting as its client
    (``client_id``, a resource server) through the same grant as ``POST /v2/oauth2/token``."""

    auth: AuthService
    client_id: uuid.UUID

    def exchange(self, token: str, scope: str, *, offline: bool = False
                 ) -> DependentToken | None:
        form = {"token": token, "scope": scope}
        if offline:
            form["access_type"] = "offline"
        try:
            with transaction(self.auth.sessions) as session:
                client = session.get(Client, self.client_id)
                if client is None:
                    raise RuntimeError(f"no client {self.client_id} for dependent tokens")
                issued = grants.dependent_token(session, self.auth.grant_context, client, form)
        except OAuthError as error:
            if error.code == grants.DEPENDENT_CONSENT_REQUIRED:
                return None
            raise
        if not issued:
            return None
        first = issued[0]
        return DependentToken(first["access_token"], time.time() + first["expires_in"],
                              first["refresh_token"])

    def refresh(self, refresh_token: str) -> DependentToken | None:
        try:
            with transaction(self.auth.sessions) as session:
                client = session.get(Client, self.client_id)
                if client is None:
                    raise RuntimeError(f"no client {self.client_id} for dependent tokens")
                renewed = grants.refresh_token(session, self.auth.grant_context, client,
                                               {"refresh_token": refresh_token})
        except OAuthError as error:
            if error.oauth_error == "invalid_grant":
                return None
            raise
        return DependentToken(renewed["access_token"], time.time() + renewed["expires_in"],
                              renewed["refresh_token"])
