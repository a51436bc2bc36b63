"""What Connect tells Transfer's registry about its endpoint and collections.

Entries carry effective grants: a collection's include what its endpoint's
roles imply there, and a guest's what its mapped collection's roles do, so
Transfer can answer ``my_effective_roles`` and ``administered-by-me`` alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import documents
from isthmus.connect.authz import ENDPOINT_ROLE_ON_COLLECTIONS
from isthmus.connect.endpoints import client_owner_string
from isthmus.connect.models import Collection, Endpoint, Role, StorageGateway
from isthmus.core.registry import (
    GCSV5_ENDPOINT,
    GCSV5_GUEST_COLLECTION,
    GCSV5_MAPPED_COLLECTION,
    RegistryEntry,
    RoleGrant,
)

_DESCRIPTIVE = ("description", "organization", "department", "keywords", "contact_email",
                "contact_info", "info_link")


def endpoint_entry(session: Session, endpoint: Endpoint) -> RegistryEntry:
    grants = tuple(RoleGrant(role.principal, role.role) for role in session.scalars(
        select(Role).where(Role.endpoint_id == endpoint.id, Role.collection_id.is_(None))))
    document = endpoint.document
    attributes: dict[str, Any] = {key: document.get(key) for key in _DESCRIPTIVE}
    attributes.update({
        "subscription_id": document.get("subscription_id"),
        "gcs_version": documents.MANAGER_VERSION,
        "gcs_manager_url": documents.manager_url(endpoint) or None,
        "network_use": document.get("network_use"),
        **{key: document.get(key) for key in ("max_concurrency", "preferred_concurrency",
                                              "max_parallelism", "preferred_parallelism")},
    })
    return RegistryEntry(
        id=endpoint.id, entity_type=GCSV5_ENDPOINT, endpoint_id=endpoint.id,
        display_name=endpoint.display_name, public=endpoint.public,
        owner_string=endpoint.owner_string,
        owners=frozenset({endpoint.owner_identity_id} if endpoint.owner_identity_id else ()),
        grants=grants, attributes=attributes,
    )


def collection_entries(
    session: Session, endpoint: Endpoint, collection_ids: Iterable[uuid.UUID] | None
) -> list[RegistryEntry]:
    """Entries for these collections of the endpoint (None: all of them)."""
    statement = select(Collection).where(Collection.endpoint_id == endpoint.id)
    if collection_ids is not None:
        statement = statement.where(Collection.id.in_(list(collection_ids)))
    found = list(session.scalars(statement))
    mapped_ids = {row.mapped_collection_id for row in found if row.mapped_collection_id}
    related = {row.id: row for row in session.scalars(
        select(Collection).where(Collection.id.in_(mapped_ids)))} if mapped_ids else {}
    related.update({row.id: row for row in found})
    roles: dict[uuid.UUID | None, list[Role]] = {}
    for role in session.scalars(select(Role).where(Role.endpoint_id == endpoint.id)):
        roles.setdefault(role.collection_id, []).append(role)
    implied = [RoleGrant(role.principal, ENDPOINT_ROLE_ON_COLLECTIONS[role.role])
               for role in roles.get(None, []) if role.role in ENDPOINT_ROLE_ON_COLLECTIONS]
    entries = []
    for collection in found:
        mapped = related.get(collection.mapped_collection_id) \
            if collection.mapped_collection_id else None
        grants = [*implied, *(RoleGrant(role.principal, role.role)
                              for role in roles.get(collection.id, []))]
        if mapped is not None:
            grants.extend(RoleGrant(role.principal, role.role)
                          for role in roles.get(mapped.id, []))
        gateway = session.get(StorageGateway, collection.storage_gateway_id)
        assert gateway is not None  # a foreign key keeps it
        entries.append(_collection_entry(endpoint, gateway, collection, mapped, tuple(grants)))
    return entries


def _collection_entry(
    endpoint: Endpoint, gateway: StorageGateway, collection: Collection,
    mapped: Collection | None, grants: tuple[RoleGrant, ...],
) -> RegistryEntry:
    document = collection.document
    source = mapped.document if mapped is not None else document
    attributes: dict[str, Any] = {key: document.get(key) for key in _DESCRIPTIVE}
    attributes.update({
        key: document.get(key) for key in (
            "default_directory", "force_encryption", "force_verify", "disable_verify",
            "auto_delete_timeout", "skip_auto_delete")})
    attributes.update({
        "user_message": source.get("user_message"),
        "user_message_link": source.get("user_message_link"),
        "disable_anonymous_writes": bool(source.get("disable_anonymous_writes")),
        "high_assurance": gateway.high_assurance,
        "mfa_required": bool(gateway.document.get("require_mfa")),
        "authentication_timeout_mins": gateway.document.get("authentication_timeout_mins"),
        "acl_max_expiration_period_mins": document.get("acl_expiration_mins"),
        "subscription_id": endpoint.document.get("subscription_id"),
        "subscription_admin_verified": bool(document.get(documents.COLLECTION_VERIFIED)),
        "gcs_version": documents.MANAGER_VERSION,
        "gcs_manager_url": documents.manager_url(endpoint) or None,
        "https_server": documents.https_url(endpoint, collection)
        if document.get("enable_https", True) else None,
        "non_functional_endpoint_id": str(endpoint.id),
        "non_functional_endpoint_display_name": endpoint.display_name,
        "shareable": collection.collection_type == "mapped"
        and bool(document.get("allow_guest_collections")),
        "acl_available": collection.collection_type == "guest",
        "local_user_info_available": collection.collection_type == "mapped",
    })
    if mapped is not None:
        attributes.update({"mapped_collection_id": str(mapped.id),
                           "mapped_collection_display_name": mapped.display_name,
                           "host_endpoint_display_name": mapped.display_name})
    return RegistryEntry(
        id=collection.id,
        entity_type=GCSV5_GUEST_COLLECTION if mapped is not None else GCSV5_MAPPED_COLLECTION,
        endpoint_id=endpoint.id, display_name=collection.display_name,
        public=collection.public,
        owner_string=str(document.get(documents.COLLECTION_OWNER_STRING)
                         or client_owner_string(endpoint.id)),
        owners=frozenset({collection.identity_id} if collection.identity_id else ()),
        grants=grants, host_endpoint_id=mapped.id if mapped is not None else None,
        attributes=attributes,
    )
