"""A collection's administration beside its document: configuration checks, its advertised
owner and its owner, the subscription-admin flag, and deleting guest collections in batches.

The advertised owner and the flag are kept with the collection's stored fields; the Manager
document shows the flag as ``subscription_admin_verified`` and never the owner string, which
only Transfer advertises.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import access, authz, collections, documents, schemas
from isthmus.connect.authz import ADMINISTRATOR, Caller, identity_principal
from isthmus.connect.changes import Changes
from isthmus.connect.endpoints import client_owner_string, require_visible
from isthmus.connect.errors import gcs_error, missing_role, not_found
from isthmus.connect.models import Collection, Endpoint, Role

OWNER_STRING = documents.COLLECTION_OWNER_STRING
VERIFIED = documents.COLLECTION_VERIFIED
_PER_USER = ("$USER", "$HOME", "~")


def owner_string(endpoint: Endpoint, collection: Collection) -> str:
    """What Transfer shows as the collection's owner."""
    advertised = collection.document.get(OWNER_STRING)
    return str(advertised) if advertised else client_owner_string(endpoint.id)


def _administered(session: Session, endpoint: Endpoint, caller: Caller,
                  collection_id: str, action: str) -> Collection:
    try:
        key = uuid.UUID(collection_id)
    except ValueError:
        raise not_found("Collection", collection_id) from None
    return collections.require_administered(session, endpoint, caller, key, action)


# --- check ----------------------------------------------------------------------------


def _problems(session: Session, collection: Collection) -> list[str]:
    location = access.locate(session, collection.id)
    if location.connector_id != documents.POSIX_CONNECTOR_ID:
        return []
    root = location.root_path
    # A per-user root ($USER, $HOME, ~) exists per account: check the directory above it.
    cut = min((root.index(marker) for marker in _PER_USER if marker in root), default=None)
    prefix = root if cut is None else root[:cut]
    checked = Path(prefix) if cut is None or prefix.endswith("/") else Path(prefix).parent
    if not checked.exists():
        return [f"{checked} does not exist on this node"]
    if not checked.is_dir():
        return [f"{checked} is not a directory"]
    if cut is None and not os.access(checked, os.R_OK | os.X_OK):
        return [f"{checked} is not readable by the GCS Manager"]
    return []


def _result(session: Session, collection: Collection) -> dict[str, Any]:
    problems = _problems(session, collection)
    return {"DATA_TYPE": "check_result#1.0.0", "id": str(collection.id),
            "message": "; ".join(problems) or "No problems found", "error": bool(problems)}


def check(session: Session, endpoint: Endpoint, caller: Caller,
          collection_id: str | None) -> list[dict[str, Any]]:
    """Configuration problems of one collection, or of every one the caller administers."""
    if collection_id is not None:
        return [_result(session, _administered(session, endpoint, caller, collection_id,
                                               "check the collection"))]
    require_visible(session, endpoint, caller, "check collections")
    roles = authz.caller_roles(session, endpoint, caller)
    found = session.scalars(select(Collection).where(Collection.endpoint_id == endpoint.id)
                            .order_by(Collection.created, Collection.id))
    return [_result(session, collection) for collection in found
            if roles.administers(collection)]


# --- owners ----------------------------------------------------------------------------


def advertise_owner(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str,
    owner: tuple[uuid.UUID, str] | None, changes: Changes,
) -> None:
    """Transfer shows ``owner``'s username (one of the caller's linked identities) as the
    collection's owner, or the endpoint's client when ``owner`` is None."""
    collection = _administered(session, endpoint, caller, collection_id,
                               "set the advertised owner")
    stored = dict(collection.document)
    if owner is None:
        stored.pop(OWNER_STRING, None)
    else:
        identity_id, username = owner
        if identity_id not in caller.identities:
            raise gcs_error(403, f"Identity {identity_id} is not one of your linked "
                            "identities; advertise one of your own")
        stored[OWNER_STRING] = username
    collection.document = stored
    session.flush()
    changes.published.add(collection.id)


def transfer_ownership(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str,
    owner: uuid.UUID, changes: Changes,
) -> None:
    """A mapped collection's new owner, who administers it for good; the previous owner
    stays an administrator whose role may now be deleted."""
    collection = _administered(session, endpoint, caller, collection_id, "set the owner")
    authz.require_endpoint_admin(session, endpoint, caller, "set a collection's owner")
    if collection.collection_type != "mapped":
        raise gcs_error(422, "Only a mapped collection's owner can be set")
    if owner == endpoint.id:
        raise gcs_error(422, "The endpoint's own client cannot own a collection")
    principal = identity_principal(owner)
    roles = list(session.scalars(select(Role).where(
        Role.collection_id == collection.id, Role.role == ADMINISTRATOR)))
    for role in roles:
        role.protected = role.principal == principal
    if not any(role.principal == principal for role in roles):
        session.add(Role(endpoint_id=endpoint.id, collection_id=collection.id,
                         principal=principal, role=ADMINISTRATOR, protected=True))
    collection.identity_id = owner
    session.flush()
    changes.collection_saved(collection.id, collection.display_name)


def set_verified(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str,
    body: Mapping[str, Any], changes: Changes,
) -> None:
    """The subscription administrator's mark; Isthmus has no subscriptions, so the
    endpoint's owner and administrators set it."""
    collection = _administered(session, endpoint, caller, collection_id,
                               "verify the collection")
    authz.require_endpoint_admin(session, endpoint, caller, "verify a collection")
    verified = schemas.SUBSCRIPTION_ADMIN_VERIFIED.parse(body, creating=True)[VERIFIED]
    collection.document = {**collection.document, VERIFIED: verified}
    session.flush()
    changes.published.add(collection.id)


# --- batch delete ------------------------------------------------------------------------


def batch_delete(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    changes: Changes,
) -> list[str]:
    """Delete these guest collections; ids of unknown (or already deleted) ones are skipped,
    and any mapped collection refuses the whole batch. The ids deleted."""
    wanted = list(dict.fromkeys(schemas.BATCH.parse(body, creating=True)["ids"]))
    roles = authz.caller_roles(session, endpoint, caller)
    found: list[Collection] = []
    for collection_id in wanted:
        collection = session.get(Collection, uuid.UUID(collection_id))
        if collection is None or collection.endpoint_id != endpoint.id or not (
                (collection.public and endpoint.public) or roles.on(collection)):
            continue
        found.append(collection)
    mapped = [str(collection.id) for collection in found
              if collection.collection_type == "mapped"]
    if mapped:
        raise gcs_error(403, "Only guest collections are deleted in batches: "
                        f"{', '.join(mapped)} are mapped collections",
                        {"DATA_TYPE": "batch#1.0.0", "ids": mapped})
    refused = [str(collection.id) for collection in found if not roles.administers(collection)]
    if refused:
        raise missing_role(f"Could not delete {', '.join(refused)}. Insufficient permissions",
                           (ADMINISTRATOR,))
    for collection in found:
        collections.delete(session, endpoint, caller, str(collection.id), changes)
    return [str(collection.id) for collection in found]

