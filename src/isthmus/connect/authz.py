"""Who is calling the Manager API, and which roles they hold on the endpoint and collections.

Roles granted to any identity linked to the caller's count (the token's
identity set), and so do roles granted to a group in which any of them is an
active member (the Groups service says which, through `core.groups`).
Endpoint roles reach into every collection: an endpoint owner or administrator
administers each one, and the activity roles carry over.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect.errors import missing_role
from isthmus.connect.models import Collection, Endpoint, Role
from isthmus.core.registry import GROUP_PRINCIPAL, IDENTITY_PRINCIPAL

OWNER = "owner"
ADMINISTRATOR = "administrator"
ACCESS_MANAGER = "access_manager"
ACTIVITY_MANAGER = "activity_manager"
ACTIVITY_MONITOR = "activity_monitor"
ACCESS_MONITOR = "access_monitor"
ENDPOINT_ADMINS = (OWNER, ADMINISTRATOR)
# What each endpoint role amounts to on every collection of the endpoint.
ENDPOINT_ROLE_ON_COLLECTIONS = {OWNER: ADMINISTRATOR, ADMINISTRATOR: ADMINISTRATOR,
                                ACTIVITY_MANAGER: ACTIVITY_MANAGER,
                                ACTIVITY_MONITOR: ACTIVITY_MONITOR}


def identity_principal(identity_id: uuid.UUID) -> str:
    return f"{IDENTITY_PRINCIPAL}{identity_id}"


def group_principal(group_id: uuid.UUID) -> str:
    return f"{GROUP_PRINCIPAL}{group_id}"


@dataclass(frozen=True)
class Caller:
    identity_id: uuid.UUID
    username: str
    identities: frozenset[uuid.UUID]
    # The groups any of the identities is an active member of.
    groups: frozenset[uuid.UUID] = frozenset()

    @property
    def principals(self) -> frozenset[str]:
        return frozenset(identity_principal(identity) for identity in self.identities) | {
            group_principal(group) for group in self.groups}


@dataclass(frozen=True)
class CallerRoles:
    """The roles a caller holds on one endpoint and on each of its collections."""

    endpoint: frozenset[str]
    collections: Mapping[uuid.UUID, frozenset[str]]

    @property
    def endpoint_admin(self) -> bool:
        return bool(self.endpoint & set(ENDPOINT_ADMINS))

    @property
    def any(self) -> bool:
        return bool(self.endpoint) or any(self.collections.values())

    def on(self, collection: Collection) -> set[str]:
        """Roles on the collection itself, on its mapped collection for a guest (a mapped
        collection's administrators administer its guests), and those endpoint roles imply."""
        held = set(self.collections.get(collection.id, ()))
        if collection.mapped_collection_id is not None:
            held.update(self.collections.get(collection.mapped_collection_id, ()))
        held.update(ENDPOINT_ROLE_ON_COLLECTIONS[role] for role in self.endpoint
                    if role in ENDPOINT_ROLE_ON_COLLECTIONS)
        return held

    def administers(self, collection: Collection) -> bool:
        return ADMINISTRATOR in self.on(collection)


def caller_roles(session: Session, endpoint: Endpoint, caller: Caller) -> CallerRoles:
    rows = session.execute(select(Role.collection_id, Role.role).where(
        Role.endpoint_id == endpoint.id, Role.principal.in_(caller.principals))).all()
    on_endpoint: set[str] = set()
    on_collections: dict[uuid.UUID, set[str]] = {}
    for collection_id, role in rows:
        if collection_id is None:
            on_endpoint.add(role)
        else:
            on_collections.setdefault(collection_id, set()).add(role)
    return CallerRoles(frozenset(on_endpoint),
                       {key: frozenset(value) for key, value in on_collections.items()})


def require_any(held: Iterable[str], wanted: tuple[str, ...], action: str,
                collection: uuid.UUID | None = None) -> None:
    if not set(held) & set(wanted):
        raise missing_role(f"Could not {action}. Insufficient permissions", wanted,
                           str(collection) if collection else None)


def require_endpoint_admin(session: Session, endpoint: Endpoint, caller: Caller,
                           action: str) -> CallerRoles:
    roles = caller_roles(session, endpoint, caller)
    require_any(roles.endpoint, ENDPOINT_ADMINS, action)
    return roles
