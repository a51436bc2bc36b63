"""Where a collection's files are and who a caller is there: Connect's seam to `storage`.

Connect keeps gateways and collections as data. This module turns a collection
into its `CollectionLocation` (connector, root path, identity-mapping rules and
path policies) and, given an identity, applies the gateway's identity policies
and asks an `IdentityMapper` for the local account. The storage package
implements `IdentityMapper` (expression and external-program mappings) and
opens connector sessions confined to the location's root. `resolve_guest` does the
same for a guest collection and a caller, deciding with the access rules Transfer
keeps (asked through `core.access_rules`) what they may do at a path.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy.orm import Session

from isthmus.connect import guest_access, guests
from isthmus.connect.errors import gcs_error, not_found
from isthmus.connect.models import Collection, StorageGateway
from isthmus.core.access_rules import READ_WRITE, AccessRules
from isthmus.core.groups import GroupMembership


@dataclass(frozen=True)
class CollectionLocation:
    collection_id: uuid.UUID
    collection_type: str
    storage_gateway_id: uuid.UUID
    connector_id: uuid.UUID
    # Absolute, in the connector's namespace; a guest's lies inside its mapped collection's.
    root_path: str
    default_directory: str | None
    allowed_domains: tuple[str, ...]
    identity_mappings: tuple[Mapping[str, Any], ...]
    users_allow: tuple[str, ...] | None
    users_deny: tuple[str, ...]
    restrict_paths: Mapping[str, Any] | None
    sharing_restrict_paths: Mapping[str, Any] | None
    # The gateway's root on the host, and the collection's root in the gateway's namespace
    # (where path restrictions are written): root_path is the one joined to the other.
    gateway_root: str = "/"
    base_path: str = "/"
    # The POSIX gateway's group policies, by group name.
    groups_allow: tuple[str, ...] = ()
    groups_deny: tuple[str, ...] = ()


class IdentityMapper(Protocol):
    def map_identity(
        self, location: CollectionLocation, identity: Mapping[str, Any]
    ) -> str | None:
        """The local account ``identity`` (id, username, email, ...) maps to, or None."""


@dataclass(frozen=True)
class ResolvedAccess:
    location: CollectionLocation
    local_username: str
    # For a guest collection (`resolve_guest`): what the caller may do at the path asked
    # about, "" (nothing), "r" or "rw", and the same decision for other paths of the
    # collection (a listing's entries, a tree's) without asking Transfer again. A mapped
    # collection leaves it to the location's path restrictions.
    permissions: str = READ_WRITE
    guest: guest_access.GuestDecision | None = None


def collection_root(gateway: StorageGateway, *base_paths: str) -> str:
    """The gateway's root joined with collection base paths (mapped, then guest)."""
    root = str(gateway.document.get("root") or "/")
    for base in base_paths:
        root = posixpath.join(root, base.lstrip("/"))
    return posixpath.normpath(root)


def _base_path(*base_paths: str) -> str:
    """Collection base paths (mapped, then guest) joined in the gateway's namespace."""
    joined = "/"
    for base in base_paths:
        joined = posixpath.join(joined, base.lstrip("/"))
    return posixpath.normpath(joined)


def locate(session: Session, collection_id: uuid.UUID) -> CollectionLocation:
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise not_found("Collection", collection_id)
    gateway = session.get(StorageGateway, collection.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    bases = [str(collection.document.get("collection_base_path") or "/")]
    sharing = collection.document.get("sharing_restrict_paths")
    if collection.mapped_collection_id is not None:
        mapped = session.get(Collection, collection.mapped_collection_id)
        assert mapped is not None  # guests go with their mapped collection
        bases.insert(0, str(mapped.document.get("collection_base_path") or "/"))
        sharing = mapped.document.get("sharing_restrict_paths")
    document = gateway.document
    policies = document.get("policies") or {}
    return CollectionLocation(
        collection_id=collection.id,
        collection_type=collection.collection_type,
        storage_gateway_id=gateway.id,
        connector_id=gateway.connector_id,
        root_path=collection_root(gateway, *bases),
        default_directory=collection.document.get("default_directory"),
        allowed_domains=tuple(document.get("allowed_domains") or ()),
        identity_mappings=tuple(document.get("identity_mappings") or ()),
        users_allow=(tuple(document["users_allow"])
                     if document.get("users_allow") is not None else None),
        users_deny=tuple(document.get("users_deny") or ()),
        restrict_paths=document.get("restrict_paths"),
        sharing_restrict_paths=sharing,
        gateway_root=posixpath.normpath(str(document.get("root") or "/")),
        base_path=_base_path(*bases),
        groups_allow=tuple(policies.get("groups_allow") or ()),
        groups_deny=tuple(policies.get("groups_deny") or ()),
    )


def resolve(
    session: Session, collection_id: uuid.UUID, identity: Mapping[str, Any],
    mapper: IdentityMapper,
) -> ResolvedAccess:
    """The collection's location and the local account ``identity`` acts as there.

    Refuses (403, with the GCS detail documents) an identity outside the
    gateway's allowed domains, one that maps to no account, and a mapped
    account the gateway's ``users_allow``/``users_deny`` exclude.
    """
    location = locate(session, collection_id)
    username = str(identity.get("username") or "")
    domain = username.rpartition("@")[2].lower()
    if location.allowed_domains and domain not in location.allowed_domains:
        raise gcs_error(403, f"Identity {username} is not from a domain this storage gateway "
                        "allows", {"DATA_TYPE": "not_from_allowed_domain#1.0.0",
                                   "allowed_domains": list(location.allowed_domains)})
    local = mapper.map_identity(location, identity)
    if not local:
        raise gcs_error(403, f"Identity {username} maps to no local account on this "
                        "storage gateway")
    if local in location.users_deny or (
        location.users_allow is not None and local not in location.users_allow
    ):
        raise gcs_error(403, f"The local account {local} may not use this storage gateway",
                        {"DATA_TYPE": "invalid_user#1.0.0", "usernames": [local]})
    return ResolvedAccess(location, local)


def resolve_guest(
    session: Session, collection_id: uuid.UUID, identity_ids: Iterable[uuid.UUID], path: str,
    rules: AccessRules, groups: GroupMembership,
) -> ResolvedAccess:
    """A guest collection for a caller (``identity_ids`` empty: anonymous) at ``path``
    (absolute in the collection), decided by `guest_access.effective_permission`.

    Files are reached as the guest owner's account (their user credential's). The
    returned ``permissions`` is the final word: it includes the owner's gateway path
    restrictions and the sharing restrictions, so the location carries none to apply
    again. 404 for an unknown collection, 400 for one that is not a guest; 403 (with the
    GCS detail document) when the owner may no longer share it: credential deleted or
    invalid, account now denied, guests no longer allowed on the mapped collection.
    """
    location = locate(session, collection_id)
    guest = session.get(Collection, collection_id)
    if guest is None or guest.mapped_collection_id is None:
        raise gcs_error(400, f"Collection {collection_id} is not a guest collection")
    policy, credential = guests.policy_for(session, guest)
    callers = frozenset(identity_ids)
    group_ids = groups.groups_of(callers) if callers else frozenset()
    decision = guest_access.GuestDecision(
        policy, tuple(rules.rules_for(collection_id, callers, group_ids)), callers, group_ids)
    gateway = session.get(StorageGateway, location.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    return ResolvedAccess(
        replace(location, restrict_paths=None, sharing_restrict_paths=None,
                root_path=collection_root(gateway, policy.area.mapped_base,
                                          policy.guest_base)),
        credential.username, decision.permission(path), decision)
