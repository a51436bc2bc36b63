"""Transfer as one object the HTTP layer and other services hold."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.access_rules import AccessRule
from isthmus.core.collection_access import (
    TRANSFER_ALL,
    TRANSFER_RESOURCE_SERVER,
    CollectionSession,
)
from isthmus.core.db import reading, transaction
from isthmus.core.errors import APIError
from isthmus.core.groups import GroupMembership
from isthmus.core.identities import IdentityDirectory
from isthmus.core.registry import RegistryEntry
from isthmus.core.tokens import TokenIntrospector
from isthmus.storage.errors import StorageError
from isthmus.transfer import access_rules, file_ops, registry
from isthmus.transfer.collections import CollectionOpener
from isthmus.transfer.errors import authentication_failed
from isthmus.transfer.registry import Caller


@dataclass
class TransferService:
    sessions: sessionmaker[Session]
    introspector: TokenIntrospector
    # Who an identity id names (access rules refuse ids that name nobody) and who
    # belongs to which group (rules may name groups).
    identities: IdentityDirectory
    groups: GroupMembership
    # How file operations reach collections; wired once Connect exists (it needs Transfer).
    opener: CollectionOpener | None = None

    def caller(self, token: str | None) -> Caller:
        """Who a bearer token speaks for, or 401 (the status the SDK renews tokens on)."""
        if token is None:
            raise authentication_failed("No Authorization header provided", missing=True)
        info = self.introspector.introspect(token)
        if info is None:
            raise authentication_failed("Token is not active")
        if info.resource_server != TRANSFER_RESOURCE_SERVER or TRANSFER_ALL not in info.scopes:
            raise authentication_failed(f"Token is not valid for Globus Transfer: it needs "
                                        f"the scope {TRANSFER_ALL}")
        return Caller(info.identity_id, info.identities, self.groups.groups_of(info.identities))

    def open_collection(self, token: str | None, endpoint_id: str) -> CollectionSession:
        """The caller's session on a collection they may see (404 otherwise), for file
        operations; ``ConsentRequired`` until they consented to its data_access."""
        caller = self.caller(token)
        assert token is not None  # `caller` said who it is
        with reading(self.sessions) as session:
            target = registry.collection_target(session, caller, endpoint_id)
        if self.opener is None:
            raise RuntimeError("Transfer was not given a way to reach collections")
        try:
            return self.opener.open(token, target.id, entity_type=target.entity_type,
                                    high_assurance=target.high_assurance)
        except (APIError, StorageError) as error:
            if isinstance(error, APIError) and error.status == 404:
                # In the registry, but not (or no longer) in Connect.
                raise registry.endpoint_not_found(endpoint_id) from None
            raise file_ops.failure(error, "Access", "/") from None

    # `core.registry.Registry`, for Connect in this process.

    def publish(self, entries: Sequence[RegistryEntry]) -> None:
        with transaction(self.sessions) as session:
            registry.publish(session, entries)

    def withdraw(self, entity_ids: Sequence[uuid.UUID]) -> None:
        with transaction(self.sessions) as session:
            registry.withdraw(session, entity_ids)

    def reconcile(self, endpoint_id: uuid.UUID, entries: Sequence[RegistryEntry]) -> None:
        with transaction(self.sessions) as session:
            registry.reconcile(session, endpoint_id, entries)

    # `core.access_rules.AccessRules`, for Connect in this process.

    def rules_for(self, collection_id: uuid.UUID, identity_ids: Collection[uuid.UUID],
                  group_ids: Collection[uuid.UUID]) -> tuple[AccessRule, ...]:
        with reading(self.sessions) as session:
            return access_rules.rules_for(session, collection_id, identity_ids, group_ids)
