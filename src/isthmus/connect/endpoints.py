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
from isthmus.connect.models import (
    Collection,
    Endpoint,
    Node,
    OIDCCode,
    OIDCLoginFailure,
    OIDCServer,
    Role,
    SharingPolicy,
    StorageGateway,
    UserCredential,
)

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


def create_endpoint(
    session: Session, display_name: str, fields: Mapping[str, Any], *, public: bool,
    owner: tuple[uuid.UUID, str], advertise_owner: bool,
) -> Endpoint:
    """A new endpoint (`endpoint setup`): its document from ``fields`` (checked as a PATCH
    would be), ``owner`` (identity id, username) holding the owner role, and no Manager
    URL until a node serves it."""
    values = schemas.ENDPOINT.parse(
        {"DATA_TYPE": schemas.ENDPOINT.data_type, "display_name": display_name,
         "public": public, **fields}, creating=True)
    endpoint_id = uuid.uuid4()
    document = copy.deepcopy(DEFAULTS)
    document.update({key: value for key, value in values.items()
                     if key not in ("display_name", "public") and value is not None})
    endpoint = Endpoint(id=endpoint_id, display_name=values["display_name"],
                        public=values["public"], owner_identity_id=None,
                        owner_string=client_owner_string(endpoint_id), manager_url="",
                        document=document)
    session.add(endpoint)
    session.flush()
    identity_id, username = owner
    set_owner(session, endpoint, identity_id,
              username if advertise_owner else client_owner_string(endpoint_id))
    return endpoint


def delete_endpoint(session: Session, endpoint: Endpoint) -> list[uuid.UUID]:
    """Remove the endpoint with its roles, sharing policies, collections, user credentials,
    gateways, nodes and OIDC server (`endpoint cleanup`); the ids of the collections that
    went, whose Auth clients (and Transfer entries, with a guest's access rules) must go
    too."""
    collections = list(session.scalars(select(Collection).where(
        Collection.endpoint_id == endpoint.id)))
    for policy in session.scalars(select(SharingPolicy).where(
            SharingPolicy.endpoint_id == endpoint.id)):
        session.delete(policy)
    for role in session.scalars(select(Role).where(Role.endpoint_id == endpoint.id)):
        session.delete(role)
    session.flush()
    # Guests before the mapped collections they lie on, collections before gateways.
    for collection in sorted(collections, key=lambda row: row.mapped_collection_id is None):
        session.delete(collection)
        session.flush()
    for model in (UserCredential, StorageGateway, Node, OIDCCode, OIDCLoginFailure, OIDCServer):
        for row in session.scalars(select(model).where(model.endpoint_id == endpoint.id)):
            session.delete(row)
    session.flush()
    session.delete(endpoint)
    session.flush()
    return [collection.id for collection in collections]


# --- owner, advertised owner and subscription (their own Manager routes) -----------------


def owner_identity(body: Mapping[str, Any], schema: schemas.Schema) -> uuid.UUID:
    """The ``identity_id`` of an ``endpoint_owner`` or ``owner_string`` document."""
    return uuid.UUID(schema.parse(body, creating=True)["identity_id"])


def transfer_ownership(
    session: Session, endpoint: Endpoint, caller: Caller, owner: tuple[uuid.UUID, str],
    changes: Changes,
) -> None:
    """The owner role moves to ``owner`` (identity id, username); an advertised person
    follows it, an advertised client (the endpoint's own) stays."""
    authz.require_endpoint_admin(session, endpoint, caller, "set the endpoint's owner")
    identity_id, username = owner
    advertised = endpoint.owner_string
    set_owner(session, endpoint, identity_id,
              advertised if advertised == client_owner_string(endpoint.id) else username)
    changes.all_collections = True


def advertise_owner(
    session: Session, endpoint: Endpoint, caller: Caller, owner: tuple[uuid.UUID, str] | None,
    changes: Changes,
) -> None:
    """Transfer shows ``owner``'s username as the owner (one of the caller's own linked
    identities), or the endpoint's client when ``owner`` is None."""
    authz.require_endpoint_admin(session, endpoint, caller, "set the advertised owner")
    if owner is None:
        endpoint.owner_string = client_owner_string(endpoint.id)
    else:
        identity_id, username = owner
        if identity_id not in caller.identities:
            raise gcs_error(403, f"Identity {identity_id} is not one of your linked "
                            "identities; advertise one of your own")
        endpoint.owner_string = username
    session.flush()
    changes.all_collections = True


def set_subscription(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    changes: Changes,
) -> None:
    """Store the subscription id (or clear it). Isthmus has no subscriptions to check it
    against: every endpoint has every feature."""
    authz.require_endpoint_admin(session, endpoint, caller, "set the subscription")
    values = schemas.ENDPOINT_SUBSCRIPTION.parse(body, creating=True)
    if "subscription_id" not in values:
        raise invalid_input("endpoint_subscription", [("subscription_id", "is required")])
    endpoint.document = {**endpoint.document, "subscription_id": values["subscription_id"]}
    session.flush()
    changes.all_collections = True
