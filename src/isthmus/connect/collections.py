"""Collections: mapped collections on a storage gateway (and guest ones on a mapped collection).

Who sees what: every collection of a public endpoint that is public, and any
collection the caller holds a role on (endpoint roles reach all of them).
Anything else answers 404, so a private collection's existence never leaks.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from isthmus.connect import access, authz, documents, guests, paging, s3_gateways, schemas
from isthmus.connect.authz import ADMINISTRATOR, Caller, CallerRoles, identity_principal
from isthmus.connect.changes import Changes
from isthmus.connect.endpoints import require_visible
from isthmus.connect.errors import (
    bad_request,
    conflict,
    gcs_error,
    invalid_input,
    missing_role,
    not_found,
)
from isthmus.connect.gateways import includes
from isthmus.connect.models import Collection, Endpoint, Role, StorageGateway
from isthmus.connect.schemas import InvalidValueError
from isthmus.core.errors import APIError

# What a mapped collection document has before anyone sets it. Since GCS 5.4.69
# new mapped collections are delete-protected.
MAPPED_DEFAULTS: dict[str, Any] = {
    "collection_base_path": "/", "default_directory": None, "contact_email": None,
    "contact_info": None, "department": None, "description": None, "info_link": None,
    "organization": None, "keywords": [], "disable_verify": False, "force_encryption": False,
    "force_verify": False, "enable_https": True, "https_methods": list(schemas.HTTPS_METHODS),
    "acl_expiration_mins": None, "associated_flow_policy": None,
    "preserve_modtime": None, "domain_name": None, "user_message": None,
    "user_message_link": None, "allow_guest_collections": False,
    "sharing_restrict_paths": None, "sharing_users_allow": None, "sharing_users_deny": None,
    "policies": None, "disable_anonymous_writes": False, "guest_auth_policy_id": None,
    "delete_protected": True, "restrict_transfers_to_high_assurance": None,
    "auto_delete_timeout": None,
}
# Each connector's collection policy document.
POLICY_SCHEMAS = {documents.POSIX_CONNECTOR_ID: schemas.posix_collection_policies,
                  documents.S3_CONNECTOR_ID: schemas.s3_collection_policies,
                  documents.ACTIVESCALE_CONNECTOR_ID: schemas.s3_collection_policies}
COLLECTION_TYPES = ("mapped", "guest")


def defaults_for(kind: str) -> dict[str, Any]:
    return {key: copy.deepcopy(value) for key, value in MAPPED_DEFAULTS.items()
            if kind in schemas.COLLECTION.fields[key].applies}
_SIMPLE_FILTERS = ("mapped_collections", "guest_collections", "managed_by_me", "created_by_me")
_DATE_FILTER = re.compile(r"^(created_at|last_access)(<=|>=|<|>|=)(\d{4}-\d{2}-\d{2})$")


def require_collection(session: Session, endpoint: Endpoint,
                       collection_id: str) -> Collection:
    """The endpoint's collection with this id (404 for anything else)."""
    try:
        key = uuid.UUID(collection_id)
    except ValueError:
        raise not_found("Collection", collection_id) from None
    collection = session.get(Collection, key)
    if collection is None or collection.endpoint_id != endpoint.id:
        raise not_found("Collection", collection_id)
    return collection


def _visible_to(endpoint: Endpoint, roles: CallerRoles) -> ColumnElement[bool] | None:
    """The SQL condition for collections the caller may see; None: all of them."""
    if roles.endpoint:
        return None
    with_roles = [key for key, held in roles.collections.items() if held]
    condition = or_(Collection.id.in_(with_roles),
                    Collection.mapped_collection_id.in_(with_roles))
    return or_(Collection.public.is_(True), condition) if endpoint.public else condition


def _require_visible_collection(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str
) -> tuple[Collection, CallerRoles]:
    roles = authz.caller_roles(session, endpoint, caller)
    collection = require_collection(session, endpoint, collection_id)
    if not (collection.public and endpoint.public) and not roles.on(collection):
        raise not_found("Collection", collection_id)
    return collection, roles


def _root_path(session: Session, collection: Collection, gateway: StorageGateway) -> str:
    bases = [str(collection.document.get("collection_base_path") or "/")]
    if collection.mapped_collection_id is not None:
        mapped = session.get(Collection, collection.mapped_collection_id)
        if mapped is not None:
            bases.insert(0, str(mapped.document.get("collection_base_path") or "/"))
    return access.collection_root(gateway, *bases)


def document_for(
    session: Session, endpoint: Endpoint, collection: Collection, roles: CallerRoles, *,
    include_private: bool,
) -> dict[str, Any]:
    gateway = session.get(StorageGateway, collection.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    admin = roles.administers(collection)
    # A local path on the server: for the collection's administrators only (and a guest's
    # root for those who also administer its mapped collection).
    shows_root = admin
    if collection.mapped_collection_id is not None:
        mapped = session.get(Collection, collection.mapped_collection_id)
        shows_root = admin and mapped is not None and roles.administers(mapped)
    return documents.collection_document(
        endpoint, gateway, collection, private=include_private and admin,
        root_path=_root_path(session, collection, gateway) if shows_root else None,
    )


# --- listing -------------------------------------------------------------------------


def _date_condition(field: str, operator: str, day: str) -> ColumnElement[bool]:
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise bad_request(f"Invalid date {day!r} in filter") from None
    start = datetime.combine(parsed, time.min, tzinfo=UTC)
    end = datetime.combine(parsed, time.max, tzinfo=UTC)
    column = Collection.created if field == "created_at" else Collection.last_access
    conditions: dict[str, ColumnElement[bool]] = {
        "<": column < start, "<=": column <= end, ">": column > end, ">=": column >= start,
        "=": and_(column >= start, column <= end),
    }
    return conditions[operator]


def _filtered(
    statement: Select[Any], params: Mapping[str, str], caller: Caller,
    roles: CallerRoles,
) -> Select[Any]:
    for item in (value.strip() for value in params.get("filter", "").split(",")):
        if not item:
            continue
        if item == "mapped_collections":
            statement = statement.where(Collection.collection_type == "mapped")
        elif item == "guest_collections":
            statement = statement.where(Collection.collection_type == "guest")
        elif item == "created_by_me":
            statement = statement.where(Collection.identity_id.in_(caller.identities))
        elif item == "managed_by_me":
            if not roles.endpoint:
                managed = [key for key, held in roles.collections.items() if held]
                statement = statement.where(or_(Collection.id.in_(managed),
                                                Collection.mapped_collection_id.in_(managed)))
        elif match := _DATE_FILTER.match(item):
            statement = statement.where(_date_condition(*match.groups()))
        else:
            raise bad_request(f"Unknown filter {item!r}: one of {', '.join(_SIMPLE_FILTERS)}, "
                              "created_at<op>YYYY-MM-DD, last_access<op>YYYY-MM-DD")
    for name, column in (("mapped_collection_id", Collection.mapped_collection_id),
                         ("storage_gateway_id", Collection.storage_gateway_id)):
        value = params.get(name)
        if value:
            try:
                statement = statement.where(column == uuid.UUID(value))
            except ValueError:
                raise bad_request(f"{name} must be a UUID") from None
    return statement


def list_documents(
    session: Session, endpoint: Endpoint, caller: Caller, params: Mapping[str, str]
) -> paging.Page:
    require_visible(session, endpoint, caller, "list collections")
    roles = authz.caller_roles(session, endpoint, caller)
    include_private = "private_policies" in includes(params)
    request = paging.page_request(params)
    statement = select(Collection).where(Collection.endpoint_id == endpoint.id)
    visible = _visible_to(endpoint, roles)
    if visible is not None:
        statement = statement.where(visible)
    statement = _filtered(statement, params, caller, roles)
    rows: list[Collection] = list(session.scalars(
        paging.paged(statement, Collection.created, Collection.id, request)))
    page = paging.page_of(rows, request)
    return paging.Page([document_for(session, endpoint, collection, roles,
                                     include_private=include_private)
                        for collection in page.items], page.marker)


def get_document(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str,
    params: Mapping[str, str],
) -> dict[str, Any]:
    collection, roles = _require_visible_collection(session, endpoint, caller, collection_id)
    return document_for(session, endpoint, collection, roles,
                        include_private="private_policies" in includes(params))


# --- writing ---------------------------------------------------------------------------


def _collection_type(body: Mapping[str, Any]) -> str:
    kind = body.get("collection_type")
    if kind not in COLLECTION_TYPES:
        raise invalid_input("collection", [("collection_type", "must be mapped or guest")])
    return str(kind)


def _check_policies(gateway: StorageGateway, policies: Any) -> dict[str, Any] | None:
    if policies is None:
        return None
    try:
        checked: dict[str, Any] = POLICY_SCHEMAS[gateway.connector_id](policies)
    except InvalidValueError as error:
        raise invalid_input("collection", [("policies", str(error))]) from None
    return checked


def _apply(collection: Collection, gateway: StorageGateway, stored: dict[str, Any],
           values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key == "display_name":
            collection.display_name = value
        elif key == "public":
            collection.public = value
        elif key == "identity_id":
            collection.identity_id = uuid.UUID(value)
        elif key == "policies":
            stored[key] = _check_policies(gateway, value)
        elif key not in ("storage_gateway_id", "mapped_collection_id"):
            stored[key] = defaults_for(collection.collection_type).get(key) if value is None \
                else value
    collection.document = stored


def _referenced_mapped(session: Session, endpoint: Endpoint, caller: Caller,
                       collection_id: str) -> Collection:
    """The collection a new guest names as its mapped collection (422 when unseen)."""
    try:
        collection, _ = _require_visible_collection(session, endpoint, caller, collection_id)
    except APIError as error:
        if error.status != 404:
            raise
        raise gcs_error(422, f"Collection {collection_id} not found",
                        {"DATA_TYPE": "collection_not_found#1.0.0",
                         "collection_id": collection_id}) from None
    return collection


def _new_guest(session: Session, endpoint: Endpoint, caller: Caller,
               values: dict[str, Any]) -> tuple[Collection, StorageGateway]:
    if "mapped_collection_id" not in values:
        raise invalid_input("collection", [("mapped_collection_id", "is required")])
    mapped = _referenced_mapped(session, endpoint, caller, values["mapped_collection_id"])
    mapped_gateway = session.get(StorageGateway, mapped.storage_gateway_id)
    if mapped_gateway is not None and mapped_gateway.connector_id in documents.S3_CONNECTORS:
        raise gcs_error(422, "Guest collections on S3 and ActiveScale storage gateways are "
                        "not available on this server")
    prepared = guests.prepare(session, caller, mapped, values)
    values["collection_base_path"] = prepared.base_path
    values.pop("identity_id", None)
    collection = Collection(id=uuid.uuid4(), endpoint_id=endpoint.id, collection_type="guest",
                            storage_gateway_id=prepared.gateway.id,
                            mapped_collection_id=mapped.id,
                            identity_id=prepared.credential.identity_id, public=False)
    return collection, prepared.gateway


def _new_mapped(session: Session, endpoint: Endpoint, caller: Caller,
                values: dict[str, Any]) -> tuple[Collection, StorageGateway]:
    authz.require_endpoint_admin(session, endpoint, caller, "create a collection")
    if "storage_gateway_id" not in values:
        raise invalid_input("collection", [("storage_gateway_id", "is required")])
    gateway = session.get(StorageGateway, uuid.UUID(values["storage_gateway_id"]))
    if gateway is None or gateway.endpoint_id != endpoint.id:
        raise gcs_error(422, f"Storage Gateway {values['storage_gateway_id']} not found",
                        {"DATA_TYPE": "storage_gateway_not_found#1.0.0",
                         "storage_gateway_id": values["storage_gateway_id"]})
    if gateway.connector_id in documents.S3_CONNECTORS:
        s3_gateways.bucket_and_prefix(access.collection_root(
            gateway, str(values.get("collection_base_path") or "/")))
    owner = uuid.UUID(values.get("identity_id") or str(caller.identity_id))
    collection = Collection(id=uuid.uuid4(), endpoint_id=endpoint.id, collection_type="mapped",
                            storage_gateway_id=gateway.id, identity_id=owner, public=False)
    return collection, gateway


def create(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    changes: Changes,
) -> dict[str, Any]:
    """A mapped collection (endpoint administrators) or a guest one (any user allowed to
    share from its mapped collection, with their user credential)."""
    kind = _collection_type(body)
    values = schemas.COLLECTION.parse(body, creating=True, kind=kind)
    make = _new_guest if kind == "guest" else _new_mapped
    collection, gateway = make(session, endpoint, caller, values)
    _apply(collection, gateway, defaults_for(kind), values)
    session.add(collection)
    session.flush()
    # The owner administers the collection, for good (the role cannot be deleted).
    assert collection.identity_id is not None
    session.add(Role(endpoint_id=endpoint.id, collection_id=collection.id,
                     principal=identity_principal(collection.identity_id),
                     role=ADMINISTRATOR, protected=True))
    session.flush()
    changes.collection_saved(collection.id, collection.display_name)
    roles = authz.caller_roles(session, endpoint, caller)
    return document_for(session, endpoint, collection, roles, include_private=True)


def update(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str,
    body: Mapping[str, Any], changes: Changes, *, replace: bool,
) -> dict[str, Any]:
    """PATCH (absent unchanged, null clears) or PUT (the whole document)."""
    collection, roles = _require_visible_collection(session, endpoint, caller, collection_id)
    authz.require_any(roles.on(collection), (ADMINISTRATOR,), "update the collection",
                      collection.id)
    if _collection_type(body) != collection.collection_type:
        raise invalid_input("collection", [(
            "collection_type", f"must stay {collection.collection_type}")])
    current = document_for(session, endpoint, collection, roles, include_private=True)
    values = schemas.COLLECTION.parse(body, creating=False, stored=current,
                                      kind=collection.collection_type)
    if replace and "display_name" not in values:
        raise invalid_input("collection", [("display_name", "is required")])
    if collection.mapped_collection_id is not None:
        mapped = session.get(Collection, collection.mapped_collection_id)
        assert mapped is not None  # guests go with their mapped collection
        guests.check_update(session, caller, collection, mapped, values)
    gateway = session.get(StorageGateway, collection.storage_gateway_id)
    assert gateway is not None  # a foreign key keeps it
    # PUT replaces the document, but what only creation sets stays.
    base = defaults_for(collection.collection_type)
    for key in ("collection_base_path", "domain_name", "user_credential_id",
                *documents.COLLECTION_KEPT_FIELDS):
        if key in collection.document:
            base[key] = collection.document[key]
    _apply(collection, gateway, base if replace else dict(collection.document), values)
    session.flush()
    changes.collection_saved(collection.id, collection.display_name)
    return document_for(session, endpoint, collection, roles, include_private=True)


def delete(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str, changes: Changes
) -> None:
    """Delete a collection with its roles; a mapped one takes its guest collections along."""
    collection, roles = _require_visible_collection(session, endpoint, caller, collection_id)
    if collection.collection_type == "mapped":
        authz.require_any(roles.endpoint, authz.ENDPOINT_ADMINS, "delete the collection")
    else:
        authz.require_any(roles.on(collection), (ADMINISTRATOR,), "delete the collection",
                          collection.id)
    if collection.document.get("delete_protected"):
        raise conflict(f"Collection {collection.id} is delete-protected: set delete_protected "
                       "to false first", [str(collection.id)])
    guests = list(session.scalars(select(Collection).where(
        Collection.mapped_collection_id == collection.id)))
    for doomed in [*guests, collection]:
        changes.collection_deleted(doomed.id)
        session.delete(doomed)
    session.flush()


def require_administered(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: uuid.UUID, action: str
) -> Collection:
    """A collection the caller administers (roles on it are managed by its administrators)."""
    collection, roles = _require_visible_collection(session, endpoint, caller,
                                                    str(collection_id))
    if not roles.administers(collection):
        raise missing_role(f"Could not {action}. Insufficient permissions", (ADMINISTRATOR,),
                           str(collection.id))
    return collection
