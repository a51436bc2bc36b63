"""The registry through which Connect publishes endpoints and collections, and Transfer serves them.

Connect owns endpoints, collections and roles; Transfer answers `get_endpoint`
and `endpoint_search` about them. Connect describes each entity as a
`RegistryEntry` and hands it to a `Registry` (Transfer implements it: in
process in the all-in-one server, over HTTPS when split). Roles arrive already
flattened: a collection's grants include those its endpoint's roles imply, so
Transfer needs no knowledge of Connect's role rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

GCSV5_ENDPOINT = "GCSv5_endpoint"
GCSV5_MAPPED_COLLECTION = "GCSv5_mapped_collection"
GCSV5_GUEST_COLLECTION = "GCSv5_guest_collection"

IDENTITY_PRINCIPAL = "urn:globus:auth:identity:"
GROUP_PRINCIPAL = "urn:globus:groups:id:"


@dataclass(frozen=True)
class RoleGrant:
    """A role an identity or group holds on an entity (`urn:globus:auth:identity:<id>` etc.)."""

    principal: str
    role: str


@dataclass(frozen=True)
class RegistryEntry:
    """What Transfer publishes about one endpoint or collection.

    ``owners`` are the people (or clients) behind the entity: who owns the
    endpoint, who created a collection. ``attributes`` carries the rest of the
    endpoint document in Transfer's field names (``description``,
    ``gcs_manager_url``, ``https_server``, ``high_assurance``, ...).
    """

    id: uuid.UUID
    entity_type: str
    endpoint_id: uuid.UUID
    display_name: str
    public: bool
    owner_string: str
    owners: frozenset[uuid.UUID] = frozenset()
    grants: tuple[RoleGrant, ...] = ()
    host_endpoint_id: uuid.UUID | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


class Registry(Protocol):
    def publish(self, entries: Sequence[RegistryEntry]) -> None:
        """Add or replace these entries."""

    def withdraw(self, entity_ids: Sequence[uuid.UUID]) -> None:
        """Mark these entities deleted (`get_endpoint` then says EndpointDeleted)."""

    def reconcile(self, endpoint_id: uuid.UUID, entries: Sequence[RegistryEntry]) -> None:
        """Make the endpoint's published set exactly ``entries``; withdraw any other."""
