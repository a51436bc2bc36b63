"""How a service registers its OAuth2 resource servers with Auth, behind one interface.

A Connect endpoint is an Auth client of its own (client id = endpoint id) and
a resource server with the scope ``urn:globus:auth:scope:<endpoint_id>:manage_collections``;
each of its collections is a child client (client id = collection id) owning
``https://auth.globus.org/scopes/<collection_id>/data_access`` and ``.../https``.
Auth implements `ResourceServerRegistrar`; Connect calls it. In the all-in-one
process the implementation writes Auth's tables in process; a split deployment
plugs in one that calls Auth's API. Every call is idempotent, so a start that
was interrupted halfway is finished by the next one.
"""

from __future__ import annotations

import uuid
from typing import Protocol


def manage_collections_scope(endpoint_id: uuid.UUID) -> str:
    """The endpoint's scope, in the URN form the SDK and globus-cli request."""
    return f"urn:globus:auth:scope:{endpoint_id}:manage_collections"


def collection_scope(collection_id: uuid.UUID, suffix: str) -> str:
    """``data_access`` or ``https`` on a collection, in the URL form the SDK requests."""
    return f"https://auth.globus.org/scopes/{collection_id}/{suffix}"


COLLECTION_SCOPE_SUFFIXES = ("data_access", "https")


class ResourceServerRegistrar(Protocol):
    def register_endpoint(self, endpoint_id: uuid.UUID, display_name: str) -> None:
        """Make (or update) the endpoint's client, resource server and scope."""

    def register_collection(
        self, collection_id: uuid.UUID, endpoint_id: uuid.UUID, display_name: str
    ) -> None:
        """Make (or update) a collection's client, a child of its endpoint's, and its scopes."""

    def unregister(self, client_id: uuid.UUID) -> None:
        """Remove an endpoint's or collection's client, its scopes and tokens (if present)."""
