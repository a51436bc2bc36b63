"""Transfer as one object the HTTP layer and other services hold."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.access_rules import AccessRule
from isthmus.core.collection_access import (
    TRANSFER_ALL,
    TRANSFER_RESOURCE_SERVER,
    CollectionSession,
)
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.encryption import SecretBox
from isthmus.core.errors import APIError
from isthmus.core.groups import GroupMembership
from isthmus.core.identities import IdentityDirectory
from isthmus.core.registry import RegistryEntry
from isthmus.core.tokens import TokenIntrospector
from isthmus.storage.errors import StorageError
from isthmus.transfer import access_rules, file_ops, registry, submission
from isthmus.transfer.collections import CollectionOpener
from isthmus.transfer.errors import authentication_failed
from isthmus.transfer.registry import Caller
from isthmus.transfer.submission import NewTask, Submitted


@dataclass
class TransferService:
    sessions: sessionmaker[Session]
    introspector: TokenIntrospector
    # Who an identity id names (access rules refuse ids that name nobody) and who
    # belongs to which group (rules may name groups).
    identities: IdentityDirectory
    groups: GroupMembership
    # How file operations and tasks reach collections; wired once Connect exists (it
    # needs Transfer).
    opener: CollectionOpener | None = None
    # Seals the tokens a task's worker acts with, at rest.
    secret_box: SecretBox | None = None
    # How many tasks of each type one user may have running; the rest wait, queued.
    active_limits: dict[str, int] = field(
        default_factory=lambda: {submission.TRANSFER: 3, submission.DELETE_TASK: 3})

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

    # --- tasks ---------------------------------------------------------------------------

    def submit(self, token: str, caller: Caller, new: NewTask) -> Submitted:
        """Create the task ``new`` describes, or find the one its submission id made before."""
        with reading(self.sessions) as session:
            found = submission.find_submitted(session, caller, new.submission_id)
            if found is not None:
                return Submitted(found.id, found.submission_id, duplicate=True)
            targets = submission.check_collections(session, caller, new)
        if self.opener is None:
            raise RuntimeError("Transfer was not given a way to reach collections")
        # The task's worker acts later with these (a ConsentRequired now, as the SDK expects).
        grants = {collection: self.opener.task_grant(
            token, target.id, entity_type=target.entity_type,
            high_assurance=target.high_assurance) for collection, target in targets.items()}
        assert self.secret_box is not None  # wired by the deployment
        try:
            with transaction(self.sessions) as session:
                return submission.create(session, caller, new, grants, self.secret_box,
                                         now=utcnow(),
                                         active_limit=self.active_limits[new.type])
        except IntegrityError:
            # A concurrent request with the same submission id made the task first.
            with reading(self.sessions) as session:
                found = submission.find_submitted(session, caller, new.submission_id)
            if found is None:
                raise
            return Submitted(found.id, found.submission_id, duplicate=True)

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
