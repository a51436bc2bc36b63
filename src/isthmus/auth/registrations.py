"""Registering services' resource servers: Auth's side of `core.registrations`.

A Connect endpoint and each of its collections are clients of their own here,
with the scopes the SDK asks for them. Every function is idempotent: it makes
what is missing and brings names up to date.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session, sessionmaker

from isthmus.auth import clients, scopes
from isthmus.auth.models import Client, Scope
from isthmus.core.db import transaction
from isthmus.core.registrations import (
    COLLECTION_SCOPE_SUFFIXES,
    collection_scope,
    manage_collections_scope,
)

_SCOPE_TEXT = {
    "manage_collections": (
        "Manage Collections",
        "Manage the collections, storage gateways and roles of endpoint {name}."),
    "data_access": ("Data Access", "Access data on collection {name}."),
    "https": ("HTTPS Access", "Read and write files of collection {name} over HTTPS."),
}


def register_endpoint(session: Session, endpoint_id: uuid.UUID, display_name: str) -> Client:
    """The endpoint's client (id = endpoint id), a resource server owning manage_collections."""
    client = _ensure_resource_server(session, endpoint_id, display_name, parent=None)
    _ensure_scope(session, client, manage_collections_scope(endpoint_id), "manage_collections",
                  display_name)
    return client


def register_collection(
    session: Session, collection_id: uuid.UUID, endpoint_id: uuid.UUID, display_name: str
) -> Client:
    """A collection's client, child of its endpoint's, owning data_access and https."""
    client = _ensure_resource_server(session, collection_id, display_name, parent=endpoint_id)
    for suffix in COLLECTION_SCOPE_SUFFIXES:
        _ensure_scope(session, client, collection_scope(collection_id, suffix), suffix,
                      display_name)
    return client


def unregister(session: Session, client_id: uuid.UUID) -> None:
    """Delete the client with its scopes; its tokens are revoked. Absent: nothing to do."""
    client = clients.get_client(session, client_id)
    if client is not None:
        clients.delete_client(session, client)


def _ensure_resource_server(
    session: Session, client_id: uuid.UUID, display_name: str, parent: uuid.UUID | None
) -> Client:
    name = display_name.strip()[:200] or str(client_id)
    client = clients.get_client(session, client_id)
    if client is None:
        # Reached in process by the server itself: no secret to hand out (yet).
        return clients.create_client(
            session, name, "resource_server", client_id=client_id,
            parent_client_id=parent, resource_server=str(client_id), visibility="public",
            with_secret=False,
        ).client
    client.name = name
    session.flush()
    return client


def _ensure_scope(
    session: Session, client: Client, scope_string: str, suffix: str, display_name: str
) -> Scope:
    title, description = _SCOPE_TEXT[suffix]
    scope = scopes.scope_by_string(session, scope_string)
    if scope is None:
        scope = Scope(
            id=uuid.uuid4(), client_id=client.id, resource_server=str(client.id),
            scope_string=scope_string, scope_suffix=suffix, name=title,
            description=description.format(name=display_name), advertised=True,
            allows_refresh_token=True, required_domains=[],
        )
        session.add(scope)
    else:
        # A data_access scope someone consented to before the collection existed
        # was made without an owner (see `scopes._dynamic_dependency`): adopt it.
        scope.client_id = client.id
        scope.resource_server = str(client.id)
        scope.description = description.format(name=display_name)
    session.flush()
    return scope


class InProcessRegistrar:
    """`core.registrations.ResourceServerRegistrar` writing Auth's tables in this process."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def register_endpoint(self, endpoint_id: uuid.UUID, display_name: str) -> None:
        with transaction(self._sessions) as session:
            register_endpoint(session, endpoint_id, display_name)

    def register_collection(
        self, collection_id: uuid.UUID, endpoint_id: uuid.UUID, display_name: str
    ) -> None:
        with transaction(self._sessions) as session:
            register_collection(session, collection_id, endpoint_id, display_name)

    def unregister(self, client_id: uuid.UUID) -> None:
        with transaction(self._sessions) as session:
            unregister(session, client_id)
