"""Roles on the endpoint and on collections: granting, listing and revoking them.

Endpoint roles are managed by the endpoint's owner and administrators;
a collection's roles also by the collection's administrators. A caller always
sees their own roles; ``include=all_roles`` shows everyone's to those who
manage them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.connect import authz, collections, documents, paging, schemas
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.endpoints import require_visible
from isthmus.connect.errors import bad_request, conflict, exists, gcs_error, invalid_input
from isthmus.connect.errors import not_found as gcs_not_found
from isthmus.connect.models import Collection, Endpoint, Role
from isthmus.core.registry import GROUP_PRINCIPAL, IDENTITY_PRINCIPAL

ENDPOINT_ROLES = (authz.ADMINISTRATOR, authz.ACTIVITY_MANAGER, authz.ACTIVITY_MONITOR)
COLLECTION_ROLES = (authz.ADMINISTRATOR, authz.ACCESS_MANAGER, authz.ACTIVITY_MANAGER,
                    authz.ACTIVITY_MONITOR, authz.ACCESS_MONITOR)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PRINCIPAL = re.compile(
    rf"^urn:globus:(auth:identity|groups:id|auth:group):({_UUID})$")


def normalize_principal(principal: str) -> str:
    """``urn:globus:auth:identity:<id>`` or ``urn:globus:groups:id:<id>`` (lower-case id)."""
    match = _PRINCIPAL.match(principal)
    if match is None:
        raise invalid_input("role", [("principal", "must be urn:globus:auth:identity:<uuid> or "
                                                   "urn:globus:groups:id:<uuid>")])
    kind, principal_id = match.groups()
    prefix = IDENTITY_PRINCIPAL if kind == "auth:identity" else GROUP_PRINCIPAL
    return f"{prefix}{uuid.UUID(principal_id)}"


def _require_managed(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: uuid.UUID | None,
    action: str,
) -> Collection | None:
    """The resource a role is on, when the caller manages its roles (403 otherwise)."""
    if collection_id is None:
        authz.require_endpoint_admin(session, endpoint, caller, action)
        return None
    return collections.require_administered(session, endpoint, caller, collection_id, action)


def _collection_param(params: Mapping[str, str]) -> uuid.UUID | None:
    value = params.get("collection_id")
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_request("collection_id must be a UUID") from None


def _note_change(session: Session, changes: Changes, collection_id: uuid.UUID | None) -> None:
    # Transfer shows each caller's effective roles; endpoint roles reach every collection,
    # a mapped collection's reach its guests.
    if collection_id is None:
        changes.all_collections = True
        return
    changes.published.add(collection_id)
    changes.published.update(session.scalars(select(Collection.id).where(
        Collection.mapped_collection_id == collection_id)))


def list_documents(
    session: Session, endpoint: Endpoint, caller: Caller, params: Mapping[str, str]
) -> paging.Page:
    require_visible(session, endpoint, caller, "list roles")
    collection_id = _collection_param(params)
    include = {value.strip() for value in params.get("include", "").split(",") if value.strip()}
    if include - {"all_roles"}:
        raise bad_request("include accepts only all_roles")
    if collection_id is not None:
        collections.get_document(session, endpoint, caller, str(collection_id), {})
    statement = select(Role).where(
        Role.endpoint_id == endpoint.id,
        Role.collection_id == collection_id if collection_id else Role.collection_id.is_(None))
    if "all_roles" in include:
        _require_managed(session, endpoint, caller, collection_id, "list all roles")
    else:
        statement = statement.where(Role.principal.in_(caller.principals))
    request = paging.page_request(params)
    rows: list[Role] = list(session.scalars(
        paging.paged(statement, Role.created, Role.id, request)))
    page = paging.page_of(rows, request)
    return paging.Page([documents.role_document(role) for role in page.items], page.marker)


def create(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    changes: Changes,
) -> dict[str, Any]:
    values = schemas.ROLE.parse(body, creating=True)
    principal = normalize_principal(values["principal"])
    collection_id = uuid.UUID(values["collection"]) if values.get("collection") else None
    role = values["role"]
    if collection_id is None and role == authz.OWNER:
        raise gcs_error(422, "An endpoint has exactly one owner; the owner role cannot be "
                        "granted through the roles API")
    allowed = ENDPOINT_ROLES if collection_id is None else COLLECTION_ROLES
    if role not in allowed:
        where = "an endpoint" if collection_id is None else "a collection"
        raise invalid_input("role", [("role", f"on {where} must be one of "
                                              f"{', '.join(allowed)}")])
    _require_managed(session, endpoint, caller, collection_id, "create the role")
    duplicate = session.scalar(select(Role.id).where(
        Role.endpoint_id == endpoint.id, Role.principal == principal, Role.role == role,
        Role.collection_id == collection_id if collection_id
        else Role.collection_id.is_(None)))
    if duplicate is not None:
        raise exists(f"{principal} already has the role {role} (role {duplicate})")
    created = Role(id=uuid.uuid4(), endpoint_id=endpoint.id, collection_id=collection_id,
                   principal=principal, role=role)
    session.add(created)
    session.flush()
    _note_change(session, changes, collection_id)
    return documents.role_document(created)


def _require_role(session: Session, endpoint: Endpoint, role_id: str) -> Role:
    try:
        key = uuid.UUID(role_id)
    except ValueError:
        raise gcs_not_found("Role", role_id) from None
    role = session.get(Role, key)
    if role is None or role.endpoint_id != endpoint.id:
        raise gcs_not_found("Role", role_id)
    return role


def get_document(
    session: Session, endpoint: Endpoint, caller: Caller, role_id: str
) -> dict[str, Any]:
    role = _require_role(session, endpoint, role_id)
    if role.principal not in caller.principals:
        roles = authz.caller_roles(session, endpoint, caller)
        collection = session.get(Collection, role.collection_id) if role.collection_id else None
        manages = roles.administers(collection) if collection else roles.endpoint_admin
        if not manages:
            raise gcs_not_found("Role", role_id)
    return documents.role_document(role)


def delete(
    session: Session, endpoint: Endpoint, caller: Caller, role_id: str, changes: Changes
) -> None:
    role = _require_role(session, endpoint, role_id)
    get_document(session, endpoint, caller, role_id)  # 404 for what the caller cannot see
    _require_managed(session, endpoint, caller, role.collection_id, "delete the role")
    if role.protected:
        what = ("the endpoint's owner role" if role.role == authz.OWNER
                else "the administrator role of the collection's owner")
        raise conflict(f"Role {role.id} is {what} and cannot be deleted", [str(role.id)])
    session.delete(role)
    session.flush()
    _note_change(session, changes, role.collection_id)
