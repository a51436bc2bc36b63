"""Groups as one object the HTTP layer holds, and who is calling it.

Groups never reads Auth's tables: callers are known by token introspection
(`core.tokens`), identities by the identity directory (`core.identities`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.errors import APIError, forbidden, unauthorized
from isthmus.core.identities import IdentityDirectory
from isthmus.core.tokens import TokenInfo, TokenIntrospector

RESOURCE_SERVER = "groups.api.globus.org"
SCOPE_ALL = "urn:globus:auth:scope:groups.api.globus.org:all"
SCOPE_VIEW = "urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships"


@dataclass(frozen=True)
class Caller:
    """The person behind a Groups token: the identity that logged in and its linked set."""

    identity_id: uuid.UUID
    username: str
    identities: frozenset[uuid.UUID]
    may_write: bool


@dataclass
class GroupsService:
    sessions: sessionmaker[Session]
    introspector: TokenIntrospector
    identities: IdentityDirectory

    def caller(self, token: str | None, *, write: bool) -> Caller:
        """The caller of a bearer token, or 401 (no live token) / 403 (not for Groups)."""
        info = self.introspector.introspect(token) if token else None
        if info is None:
            raise unauthorized()
        return caller_of(info, write=write)


def caller_of(info: TokenInfo, *, write: bool) -> Caller:
    scopes = info.scopes if info.resource_server == RESOURCE_SERVER else frozenset()
    if not scopes & {SCOPE_ALL, SCOPE_VIEW}:
        raise forbidden(f"This call needs a token for Globus Groups (scope {SCOPE_ALL} "
                        f"or {SCOPE_VIEW})")
    may_write = SCOPE_ALL in scopes
    if write and not may_write:
        raise APIError(403, "FORBIDDEN",
                       f"A token with only {SCOPE_VIEW} may read but not change groups; "
                       f"this call needs {SCOPE_ALL}")
    return Caller(
        identity_id=info.identity_id,
        username=info.username,
        identities=info.identity_set | {info.identity_id},
        may_write=may_write,
    )
