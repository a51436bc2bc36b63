"""Connect as one object the HTTP layer, the command line and the deployment hold.

It authenticates Manager API callers through the token interface, runs each
request's unit of work, and afterwards tells Auth (registrations) and
Transfer (registry) what changed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.connect import access, bootstrap, endpoints, publishing
from isthmus.connect.access import ResolvedAccess
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.errors import gcs_error, not_authorized
from isthmus.connect.models import Collection, Endpoint
from isthmus.core.access_rules import AccessRules
from isthmus.core.db import reading, transaction
from isthmus.core.encryption import SecretBox
from isthmus.core.groups import GroupMembership
from isthmus.core.identities import IdentityDirectory
from isthmus.core.identity_providers import IdentityProviderRegistrar
from isthmus.core.registrations import ResourceServerRegistrar, manage_collections_scope
from isthmus.core.registry import Registry
from isthmus.core.tokens import TokenIntrospector

logger = logging.getLogger("isthmus.connect")
T = TypeVar("T")

ReadWork = Callable[[Session, Endpoint, Caller], T]
WriteWork = Callable[[Session, Endpoint, Caller, Changes], T]


@dataclass
class ConnectService:
    sessions: sessionmaker[Session]
    introspector: TokenIntrospector
    registrar: ResourceServerRegistrar
    registry: Registry
    # The endpoint whose Manager API this process serves under /api.
    endpoint_id: uuid.UUID
    # The host name clients reach it by (`domain_name` in /api/info).
    domain_name: str
    # Transfer's access rules on guest collections, who belongs to which group, and who
    # an identity id names (for user credentials of linked identities, and the usernames
    # of owners and advertised owners).
    access_rules: AccessRules
    groups: GroupMembership
    identities: IdentityDirectory
    # Seals what must be kept but never shown: custom domains' private keys, WebDAV
    # gateways' client secrets, users' OAuth2 tokens and S3 secret keys.
    secret_box: SecretBox
    # This process's public URL (the endpoint's OIDC server's issuer is under it), and how
    # that server is registered with Auth as an identity provider.
    public_url: str
    identity_providers: IdentityProviderRegistrar

    def caller(self, token: str | None) -> Caller:
        """Whoever a bearer token for this endpoint's manage_collections scope speaks for."""
        scope = manage_collections_scope(self.endpoint_id)
        if token is None:
            raise not_authorized("Missing bearer token", scope)
        info = self.introspector.introspect(token)
        if info is None:
            raise not_authorized("The bearer token is not active", scope)
        if info.resource_server != str(self.endpoint_id) or scope not in info.scopes:
            raise not_authorized(f"The bearer token is not for this endpoint: it needs the "
                                 f"scope {scope}", scope)
        return Caller(info.identity_id, info.username, info.identities,
                      self.groups.groups_of(info.identities))

    def known_identity(self, token: str | None, identity_id: uuid.UUID) -> tuple[uuid.UUID, str]:
        """An identity a request names, with its username (422 when Auth knows no such one).
        The caller is authenticated first, so strangers learn nothing."""
        self.caller(token)
        found = self.identities.lookup_identities([identity_id]).get(identity_id)
        if found is None:
            raise gcs_error(422, f"Identity {identity_id} not found")
        return found.id, found.username

    def endpoint(self, session: Session) -> Endpoint:
        return endpoints.require_endpoint(session, self.endpoint_id)

    def read(self, token: str | None, work: ReadWork[T]) -> T:
        caller = self.caller(token)
        with reading(self.sessions) as session:
            return work(session, self.endpoint(session), caller)

    def write(self, token: str | None, work: WriteWork[T]) -> T:
        # Authenticate before taking the write lock: introspection reads the database too.
        caller = self.caller(token)
        changes = Changes()
        with transaction(self.sessions) as session:
            result = work(session, self.endpoint(session), caller, changes)
        self.apply(changes)
        return result

    def apply(self, changes: Changes) -> None:
        """Tell Auth and Transfer what a committed unit of work changed."""
        with reading(self.sessions) as session:
            endpoint = self.endpoint(session)
            endpoint_name = endpoint.display_name
            published = None if changes.all_collections else changes.published
            entries = [publishing.endpoint_entry(session, endpoint),
                       *publishing.collection_entries(session, endpoint, published)]
        if changes.endpoint_renamed:
            self.registrar.register_endpoint(self.endpoint_id, endpoint_name)
        for collection_id, name in changes.registrations.items():
            self.registrar.register_collection(collection_id, self.endpoint_id, name)
        self.registry.publish(entries)
        if changes.withdrawn:
            self.registry.withdraw(sorted(changes.withdrawn))
        for collection_id in changes.unregistrations:
            self.registrar.unregister(collection_id)

    def reconcile(self) -> None:
        """Make Auth's registrations and Transfer's registry match Connect's tables.

        Run at start: it repairs whatever a crash between a commit and `apply` left out.
        """
        with reading(self.sessions) as session:
            endpoint = self.endpoint(session)
            endpoint_name = endpoint.display_name
            collections = [(row.id, row.display_name) for row in session.scalars(
                select(Collection).where(Collection.endpoint_id == endpoint.id))]
            entries = [publishing.endpoint_entry(session, endpoint),
                       *publishing.collection_entries(session, endpoint, None)]
        self.registrar.register_endpoint(self.endpoint_id, endpoint_name)
        for collection_id, name in collections:
            self.registrar.register_collection(collection_id, self.endpoint_id, name)
        self.registry.reconcile(self.endpoint_id, entries)

    def resolve_guest(self, collection_id: uuid.UUID, identity_ids: Iterable[uuid.UUID],
                      path: str) -> ResolvedAccess:
        """`access.resolve_guest` in a unit of work of its own (for the data plane)."""
        with reading(self.sessions) as session:
            return access.resolve_guest(session, collection_id, identity_ids, path,
                                        self.access_rules, self.groups)

    def claim_ownership(self, identity_id: uuid.UUID, username: str) -> bool:
        """Make this identity the endpoint's owner if it has none yet (the first user)."""
        changes = Changes(all_collections=True)
        with transaction(self.sessions) as session:
            claimed = bootstrap.claim_ownership(session, self.endpoint(session), identity_id,
                                                username)
        if claimed:
            self.apply(changes)
            logger.info("%s now owns endpoint %s", username, self.endpoint_id)
        return claimed

    def default_collection(self) -> tuple[uuid.UUID, str] | None:
        """The collection first start made: its id and display name (None once deleted)."""
        with reading(self.sessions) as session:
            collection_id = bootstrap.default_collection_id(session, self.endpoint(session))
            collection = session.get(Collection, collection_id) if collection_id else None
            return (collection.id, collection.display_name) if collection else None
