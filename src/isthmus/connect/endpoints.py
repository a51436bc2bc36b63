"""The endpoint: reading and changing its document, and who owns it."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import authz, documents, schemas
from isthmus.connect.authz import OWNER, Caller, identity_principal
from isthmus.connect.changes import Changes
from isthmus.connect.errors import gcs_error, invalid_input, missing_role, not_found
from isthmus.connect.models import Endpoint, Role

CLIENTS_DOMAIN = "clients.auth.globus.org"
# What an endpoint document has before anyone sets it.
DEFAULTS: dict[str, Any] = {
    "network_use": "normal", "allow_udt": False, "subscription_id": None,
    "gridftp_control_channel_port": None, "keywords": [], "contact_email": None,
    "contact_info": None, "department": None, "description": None, "info_link": None,
    "organization": None, "max_concurrency": None, "preferred_concurrency": None,
    "max_parallelism": None, "preferred_parallelism": None,
}


def require_endpoint(session: Session, endpoint_id: uuid.UUID) -> Endpoint:
    endpoint = session.get(Endpoint, endpoint_id)
    if endpoint is None:
        raise not_found("Endpoint", endpoint_id)
    return endpoint


def client_owner_string(endpoint_id: uuid.UUID) -> str:
    return f"{endpoint_id}@{CLIENTS_DOMAIN}"


def require_visible(session: Session, endpoint: Endpoint, caller: Caller, action: str) -> None:
    """A public endpoint, or a caller holding a role on it or on one of its collections."""
    if not endpoint.public and not authz.caller_roles(session, endpoint, caller).any:
        raise missing_role(f"Could not {action}. Insufficient permissions", authz.ENDPOINT_ADMINS)


def get_document(session: Session, endpoint: Endpoint, caller: Caller) -> dict[str, Any]:
    require_visible(session, endpoint, caller, "read the endpoint")
    return documents.endpoint_document(endpoint)


def update(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    changes: Changes, *, replace: bool,
) -> dict[str, Any]:
    """PATCH (absent fields unchanged, null clears) or PUT (the whole document)."""
    authz.require_endpoint_admin(session, endpoint, caller, "update the endpoint")
    values = schemas.ENDPOINT.parse(body, creating=replace,
                                    stored=documents.endpoint_document(endpoint))
    if replace:
        missing = [key for key in ("display_name", "public", "network_use") if key not in values]
        if missing:
            raise invalid_input("endpoint", [(key, "is required") for key in missing])
        stored: dict[str, Any] = copy.deepcopy(DEFAULTS)
    else:
        stored = dict(endpoint.document)
    for key, value in values.items():
        if key == "display_name":
            endpoint.display_name = value
            changes.endpoint_renamed = True
        elif key == "public":
            endpoint.public = value
        else:
            stored[key] = DEFAULTS.get(key) if value is None else value
    if stored.get("network_use") == "custom" and any(
        stored.get(key) is None for key in ("max_concurrency", "preferred_concurrency",
                                            "max_parallelism", "preferred_parallelism")
    ):
        raise gcs_error(422, "network_use custom needs max_concurrency, preferred_concurrency, "
                        "max_parallelism and preferred_parallelism")
    endpoint.document = stored
    # Every collection document in Transfer names the endpoint.
    changes.all_collections = True
    session.flush()
    return documents.endpoint_document(endpoint)


def set_owner(session: Session, endpoint: Endpoint, identity_id: uuid.UUID,
              owner_string: str) -> None:
    """Make ``identity_id`` the endpoint's owner (and an administrator): the owner role moves."""
    for role in session.scalars(select(Role).where(
            Role.endpoint_id == endpoint.id, Role.collection_id.is_(None), Role.role == OWNER)):
        session.delete(role)
    principal = identity_principal(identity_id)
    session.add(Role(endpoint_id=endpoint.id, principal=principal, role=OWNER, protected=True))
    has_admin = session.scalar(select(Role.id).where(
        Role.endpoint_id == endpoint.id, Role.collection_id.is_(None),
        Role.principal == principal, Role.role == authz.ADMINISTRATOR))
    if has_admin is None:
        session.add(Role(endpoint_id=endpoint.id, principal=principal,
                         role=authz.ADMINISTRATOR))
    endpoint.owner_identity_id = identity_id
    endpoint.owner_string = owner_string
    session.flush()
