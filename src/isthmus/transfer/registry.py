"""The registry of endpoints and collections: what Connect publishes, what callers may find.

An entity is visible to a caller when it is public, when one of the caller's
identities owns it or holds a role on it, or when an access rule names them.
`get_endpoint` answers 404 for what the caller may not see, so a private
entity's existence never leaks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from isthmus.core.access_rules import ALL_AUTHENTICATED_USERS, ANONYMOUS, GROUP, IDENTITY
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.registry import (
    GCSV5_ENDPOINT,
    GCSV5_GUEST_COLLECTION,
    GCSV5_MAPPED_COLLECTION,
    GROUP_PRINCIPAL,
    IDENTITY_PRINCIPAL,
    RegistryEntry,
)
from isthmus.transfer.documents import canonical_name, endpoint_document
from isthmus.transfer.models import (
    EndpointAccessRule,
    RegistryEntity,
    RegistryGrant,
    RegistryOwner,
    RegistryUsage,
)
from isthmus.transfer.task_models import Task

ADMIN_ROLES = ("owner", "administrator")
# Roles whose holders manage a guest collection's access rules (and may use all of it).
RULE_MANAGING_ROLES = ("administrator", "access_manager")
# What "recently used" reaches back to.
RECENT_USE = timedelta(days=30)


@dataclass(frozen=True)
class Caller:
    """Whoever presented a transfer token: the identity and those linked to it."""

    identity_id: uuid.UUID
    identities: frozenset[uuid.UUID]
    # The groups any of them is an active member of (access rules may name groups).
    group_ids: frozenset[uuid.UUID] = frozenset()

    @property
    def principals(self) -> list[str]:
        """The role principals naming the caller: their identities and groups."""
        return [*(f"{IDENTITY_PRINCIPAL}{identity}" for identity in sorted(self.identities)),
                *(f"{GROUP_PRINCIPAL}{group}" for group in sorted(self.group_ids))]


def endpoint_not_found(entity_id: str) -> APIError:
    return APIError(404, "EndpointNotFound", f"No such endpoint '{entity_id}'")


# --- publishing (Connect's side of core.registry) ---------------------------------


def publish(session: Session, entries: Iterable[RegistryEntry]) -> None:
    for entry in entries:
        entity = session.get(RegistryEntity, entry.id)
        if entity is None:
            entity = RegistryEntity(id=entry.id)
            session.add(entity)
        entity.entity_type = entry.entity_type
        entity.endpoint_id = entry.endpoint_id
        entity.host_endpoint_id = entry.host_endpoint_id
        entity.display_name = entry.display_name
        entity.public = entry.public
        entity.owner_string = entry.owner_string
        entity.attributes = dict(entry.attributes)
        entity.deleted = False
        entity.search_text = _search_text(entity)
        entity.grants = [RegistryGrant(principal=grant.principal, role=grant.role)
                         for grant in dict.fromkeys(entry.grants)]
        entity.owners = [RegistryOwner(identity_id=owner) for owner in sorted(entry.owners)]
        session.flush()


def withdraw(session: Session, entity_ids: Iterable[uuid.UUID]) -> None:
    entity_ids = list(entity_ids)
    for entity_id in entity_ids:
        entity = session.get(RegistryEntity, entity_id)
        if entity is not None:
            entity.deleted = True
            entity.grants = []
            entity.owners = []
    session.execute(delete(RegistryUsage).where(RegistryUsage.entity_id.in_(entity_ids)))
    # A deleted guest collection's access rules go with it.
    session.execute(delete(EndpointAccessRule).where(
        EndpointAccessRule.entity_id.in_(entity_ids)))
    session.flush()


def reconcile(session: Session, endpoint_id: uuid.UUID, entries: Sequence[RegistryEntry]) -> None:
    publish(session, entries)
    wanted = {entry.id for entry in entries}
    published = session.scalars(select(RegistryEntity.id).where(
        RegistryEntity.endpoint_id == endpoint_id, RegistryEntity.deleted.is_(False)))
    withdraw(session, [entity_id for entity_id in published if entity_id not in wanted])


def _search_text(entity: RegistryEntity) -> str:
    attributes = entity.attributes
    keywords = attributes.get("keywords") or []
    parts = [entity.display_name, canonical_name(entity), str(entity.id), entity.owner_string,
             *(str(attributes.get(key) or "") for key in
               ("description", "organization", "department")),
             *(str(keyword) for keyword in keywords if isinstance(keywords, list))]
    return " ".join(part for part in parts if part).lower()


# --- use in tasks -------------------------------------------------------------------


def record_use(
    session: Session, identity_id: uuid.UUID, entity_ids: Iterable[uuid.UUID], *,
    now: datetime | None = None,
) -> None:
    """A task of this identity used these entities now (the recently-used search)."""
    for entity_id in set(entity_ids):
        usage = session.get(RegistryUsage, (identity_id, entity_id))
        if usage is None:
            if session.get(RegistryEntity, entity_id) is None:
                continue
            usage = RegistryUsage(identity_id=identity_id, entity_id=entity_id)
            session.add(usage)
        usage.last_used = now or utcnow()
    session.flush()


# --- reading ------------------------------------------------------------------------


def _visible(caller: Caller) -> ColumnElement[bool]:
    return or_(RegistryEntity.public.is_(True), _has_grant(caller), _owned_by(caller),
               _has_rule(caller))


def _has_rule(caller: Caller) -> ColumnElement[bool]:
    """An unexpired access rule on the entity names the caller (or everyone)."""
    now = utcnow()
    return exists().where(
        EndpointAccessRule.entity_id == RegistryEntity.id,
        or_(EndpointAccessRule.expiration_date.is_(None),
            EndpointAccessRule.expiration_date > now),
        or_(and_(EndpointAccessRule.principal_type == IDENTITY,
                 EndpointAccessRule.principal.in_([str(i) for i in caller.identities])),
            and_(EndpointAccessRule.principal_type == GROUP,
                 EndpointAccessRule.principal.in_([str(g) for g in caller.group_ids])),
            EndpointAccessRule.principal_type.in_((ALL_AUTHENTICATED_USERS, ANONYMOUS))))


def _has_grant(caller: Caller, roles: Sequence[str] | None = None) -> ColumnElement[bool]:
    condition = and_(RegistryGrant.entity_id == RegistryEntity.id,
                     RegistryGrant.principal.in_(caller.principals))
    if roles is not None:
        condition = and_(condition, RegistryGrant.role.in_(roles))
    return exists().where(condition)


def _owned_by(caller: Caller) -> ColumnElement[bool]:
    return or_(
        exists().where(RegistryOwner.entity_id == RegistryEntity.id,
                       RegistryOwner.identity_id.in_(caller.identities)),
        # A client that set an endpoint up acts as the endpoint's own identity.
        RegistryEntity.endpoint_id.in_(caller.identities),
    )


def document(session: Session, caller: Caller, entity: RegistryEntity) -> dict[str, Any]:
    principals = set(caller.principals)
    roles = sorted({grant.role for grant in entity.grants if grant.principal in principals})
    in_use = bool(session.scalar(select(_in_use_by(caller, entity.id))))
    shown = endpoint_document(entity, roles, in_use)
    shown["acl_editable"] = (entity.entity_type == GCSV5_GUEST_COLLECTION
                             and manages_rules(caller, entity))
    return shown


def manages_rules(caller: Caller, entity: RegistryEntity) -> bool:
    """Whether the caller may manage the entity's access rules: its owner, or an effective
    administrator or access manager."""
    principals = set(caller.principals)
    return any(owner.identity_id in caller.identities for owner in entity.owners) or any(
        grant.principal in principals and grant.role in RULE_MANAGING_ROLES
        for grant in entity.grants)


def parse_entity_id(entity_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(entity_id)
    except ValueError:
        raise endpoint_not_found(entity_id) from None


def require_visible(session: Session, caller: Caller, entity_id: str) -> RegistryEntity:
    """The entity, when the caller may see it: 404 (never 403) otherwise."""
    key = parse_entity_id(entity_id)
    entity = session.scalar(select(RegistryEntity).where(RegistryEntity.id == key))
    if entity is None:
        raise endpoint_not_found(entity_id)
    if entity.deleted:
        raise APIError(404, "EndpointDeleted", f"Endpoint '{key}' has been deleted")
    visible = session.scalar(select(RegistryEntity.id).where(
        RegistryEntity.id == key, _visible(caller)))
    if visible is None:
        raise endpoint_not_found(entity_id)
    return entity


@dataclass(frozen=True)
class CollectionTarget:
    """What opening a collection for file operations needs to know of it."""

    id: uuid.UUID
    entity_type: str
    high_assurance: bool


def collection_target(session: Session, caller: Caller, entity_id: str) -> CollectionTarget:
    """A collection the caller may see, for file operations (an endpoint has no files)."""
    entity = require_visible(session, caller, entity_id)
    if entity.entity_type not in (GCSV5_MAPPED_COLLECTION, GCSV5_GUEST_COLLECTION):
        raise APIError(400, "NotSupported",
                       f"'{entity.id}' is a {entity.entity_type}, not a collection: use one "
                       f"of its collections")
    return CollectionTarget(entity.id, entity.entity_type,
                            bool(entity.attributes.get("high_assurance")))


def get_document(session: Session, caller: Caller, entity_id: str) -> dict[str, Any]:
    return document(session, caller, require_visible(session, caller, entity_id))


# --- endpoint_search ------------------------------------------------------------------

ENTITY_TYPES = ("GCP_mapped_collection", "GCP_guest_collection", GCSV5_ENDPOINT,
                "GCSv5_mapped_collection", GCSV5_GUEST_COLLECTION)
SCOPES = ("all", "my-endpoints", "my-gcp-endpoints", "recently-used", "in-use",
          "shared-by-me", "shared-with-me", "administered-by-me", "hide-no-permissions")
_OWNER_SCOPES = ("my-endpoints", "my-gcp-endpoints", "shared-by-me")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_RESULTS = 1000


def bad_request(message: str) -> APIError:
    return APIError(400, "ClientError.BadRequest", message)


@dataclass(frozen=True)
class SearchQuery:
    scope: str = "all"
    fulltext: str | None = None
    owner_id: uuid.UUID | None = None
    host_endpoint: uuid.UUID | None = None
    entity_type: str | None = None
    non_functional: bool | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _uuid_param(params: dict[str, str], name: str) -> uuid.UUID | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_request(f"Invalid {name} '{value}': must be a UUID") from None


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit():
        raise bad_request(f"Invalid {name} '{value}': must be a non-negative integer")
    return int(value)


def parse_search(params: dict[str, str]) -> SearchQuery:
    """The query string of `endpoint_search`, checked; every mistake a 400."""
    if any("\x00" in value for value in params.values()):
        raise bad_request("Query parameters must not contain NUL characters")
    scope = params.get("filter_scope") or "all"
    if scope not in SCOPES:
        raise bad_request(f"Invalid filter_scope '{scope}': one of {', '.join(SCOPES)}")
    fulltext = (params.get("filter_fulltext") or "").strip() or None
    if scope == "all" and fulltext is None:
        raise bad_request("filter_fulltext is required when filter_scope is 'all'")
    if fulltext is not None and len(fulltext) > 1000:
        raise bad_request("filter_fulltext is longer than 1000 characters")
    owner_id = _uuid_param(params, "filter_owner_id")
    if owner_id is not None and scope in _OWNER_SCOPES:
        raise bad_request(f"filter_owner_id cannot be combined with filter_scope '{scope}'")
    entity_type = params.get("filter_entity_type") or None
    if entity_type is not None and entity_type not in ENTITY_TYPES:
        raise bad_request(
            f"Invalid filter_entity_type '{entity_type}': one of {', '.join(ENTITY_TYPES)}")
    non_functional_text = params.get("filter_non_functional")
    non_functional = None
    if non_functional_text not in (None, ""):
        if non_functional_text not in ("0", "1", "true", "false", "True", "False"):
            raise bad_request("filter_non_functional must be 0 or 1")
        non_functional = non_functional_text in ("1", "true", "True")
        if entity_type is not None:
            raise bad_request("filter_non_functional and filter_entity_type are exclusive")
    limit = _int_param(params, "limit", DEFAULT_LIMIT)
    offset = _int_param(params, "offset", 0)
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}")
    if offset + limit > MAX_RESULTS:
        raise bad_request(f"offset + limit cannot exceed {MAX_RESULTS}")
    return SearchQuery(scope=scope, fulltext=fulltext, owner_id=owner_id,
                       host_endpoint=_uuid_param(params, "filter_host_endpoint"),
                       entity_type=entity_type, non_functional=non_functional,
                       limit=limit, offset=offset)


def _in_use_by(caller: Caller, entity_id: Any) -> ColumnElement[bool]:
    """Whether an active task of the caller reads from or writes to the entity: asked of the
    tasks themselves, so concurrent starts and ends cannot leave a count behind."""
    return exists().where(
        Task.owner_id.in_(caller.identities), Task.status == "ACTIVE",
        or_(Task.source_endpoint_id == entity_id, Task.destination_endpoint_id == entity_id))


def _like_escaped(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _scope_conditions(caller: Caller, scope: str, now: datetime) -> list[ColumnElement[bool]]:
    used_by_caller = and_(RegistryUsage.entity_id == RegistryEntity.id,
                          RegistryUsage.identity_id.in_(caller.identities))
    guest = RegistryEntity.entity_type == GCSV5_GUEST_COLLECTION
    by_scope: dict[str, list[ColumnElement[bool]]] = {
        "all": [],
        "my-endpoints": [_owned_by(caller)],
        # Isthmus hosts no Globus Connect Personal endpoints.
        "my-gcp-endpoints": [_owned_by(caller), RegistryEntity.entity_type.like("GCP\\_%",
                                                                                 escape="\\")],
        "recently-used": [exists().where(used_by_caller,
                                         RegistryUsage.last_used >= now - RECENT_USE)],
        "in-use": [_in_use_by(caller, RegistryEntity.id)],
        "shared-by-me": [guest, _owned_by(caller)],
        "shared-with-me": [guest, or_(_has_grant(caller), _has_rule(caller)),
                           ~_owned_by(caller)],
        "administered-by-me": [_has_grant(caller, ADMIN_ROLES)],
        # Nobody moves data through an endpoint entity itself, only its collections.
        "hide-no-permissions": [RegistryEntity.entity_type != GCSV5_ENDPOINT],
    }
    return by_scope[scope]


def search(session: Session, caller: Caller, query: SearchQuery) -> dict[str, Any]:
    """One page of `endpoint_search`; ``has_next_page`` says whether another follows."""
    conditions = [RegistryEntity.deleted.is_(False), _visible(caller),
                  *_scope_conditions(caller, query.scope, utcnow())]
    for term in (query.fulltext or "").lower().split():
        conditions.append(RegistryEntity.search_text.like(_like_escaped(term), escape="\\"))
    if query.owner_id is not None:
        conditions.append(or_(RegistryEntity.endpoint_id == query.owner_id, exists().where(
            RegistryOwner.entity_id == RegistryEntity.id,
            RegistryOwner.identity_id == query.owner_id)))
    if query.host_endpoint is not None:
        conditions.append(RegistryEntity.host_endpoint_id == query.host_endpoint)
    if query.entity_type is not None:
        conditions.append(RegistryEntity.entity_type == query.entity_type)
    if query.non_functional is not None:
        is_endpoint = RegistryEntity.entity_type == GCSV5_ENDPOINT
        conditions.append(is_endpoint if query.non_functional else ~is_endpoint)
    statement = select(RegistryEntity).where(*conditions)
    if query.scope == "recently-used":
        last_used = (select(func.max(RegistryUsage.last_used))
                     .where(RegistryUsage.entity_id == RegistryEntity.id,
                            RegistryUsage.identity_id.in_(caller.identities))
                     .scalar_subquery())
        statement = statement.order_by(last_used.desc(), RegistryEntity.id)
    else:
        statement = statement.order_by(func.lower(RegistryEntity.display_name),
                                       RegistryEntity.id)
    rows = list(session.scalars(statement.offset(query.offset).limit(query.limit + 1)))
    page = rows[:query.limit]
    return {
        "DATA_TYPE": "endpoint_list",
        "DATA": [document(session, caller, entity) for entity in page],
        "has_next_page": len(rows) > query.limit and query.offset + query.limit < MAX_RESULTS,
        "offset": query.offset,
        "limit": query.limit,
        "length": len(page),
    }
