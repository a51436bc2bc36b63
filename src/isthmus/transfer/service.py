"""Transfer as one object the HTTP layer and other services hold."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.access_rules import AccessRule
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.encryption import SecretBox
from isthmus.core.groups import GroupMembership
from isthmus.core.identities import IdentityDirectory
from isthmus.core.registry import RegistryEntry
from isthmus.core.tokens import TokenIntrospector
from isthmus.transfer import access_rules, registry, submission
from isthmus.transfer.errors import authentication_failed
from isthmus.transfer.registry import Caller
from isthmus.transfer.submission import NewTask, Submitted

TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"


@dataclass
class TransferService:
    sessions: sessionmaker[Session]
    introspector: TokenIntrospector
    # Who an identity id names (access rules refuse ids that name nobody) and who
    # belongs to which group (rules may name groups).
    identities: IdentityDirectory
    groups: GroupMembership
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

    # --- tasks ---------------------------------------------------------------------------

    def task_token(self, token: str, collection_id: uuid.UUID) -> str:
        """The token a task's worker reaches ``collection_id`` with, for the user of
        ``token``."""
        del collection_id
        return token

    def submit(self, token: str, caller: Caller, new: NewTask) -> Submitted:
        """Create the task ``new`` describes, or find the one its submission id made before."""
        with reading(self.sessions) as session:
            found = submission.find_submitted(session, caller, new.submission_id)
            if found is not None:
                return Submitted(found.id, found.submission_id, duplicate=True)
            submission.check_collections(session, caller, new)
        tokens = {collection: self.task_token(token, uuid.UUID(collection))
                  for collection in new.collections}
        assert self.secret_box is not None  # wired by the deployment
        try:
            with transaction(self.sessions) as session:
                return submission.create(session, caller, new, tokens, self.secret_box,
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
