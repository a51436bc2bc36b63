"""Access rules on guest collections: Transfer's permissions API and `core.access_rules`.

Rules are managed by the guest collection's owner and whoever holds an effective
``administrator`` or ``access_manager`` role on it, as Connect publishes them in the
registry; the list also shows those roles' implicit ``rw`` on ``/`` (with ``role_type``
and no ``id``), as Globus does. A rule names an identity, a group,
``all_authenticated_users`` or ``anonymous`` (principal ``""``), gives ``r`` or ``rw`` on
a folder (its path normalised to end in ``/``) and everything below it, and may expire.
Connect asks `rules_for` when it serves data; expired rules no longer apply or show.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from isthmus.core.access_rules import (
    ALL_AUTHENTICATED_USERS,
    ANONYMOUS,
    GROUP,
    IDENTITY,
    PERMISSIONS,
    PRINCIPAL_TYPES,
    AccessRule,
)
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.identities import IdentityDirectory
from isthmus.core.registry import GCSV5_GUEST_COLLECTION, GROUP_PRINCIPAL, IDENTITY_PRINCIPAL
from isthmus.storage import paths
from isthmus.storage.errors import InvalidPath
from isthmus.transfer import registry
from isthmus.transfer.errors import request_id
from isthmus.transfer.models import EndpointAccessRule, RegistryEntity
from isthmus.transfer.registry import Caller, bad_request

MAX_RULES = 1000  # per guest collection, as Globus allows
MAX_PATH = 2000
_UNCHANGEABLE = ("principal_type", "principal", "path")


def rule_not_found(rule_id: str) -> APIError:
    return APIError(404, "AccessRuleNotFound", f"Access rule '{rule_id}' not found")


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def rule_document(rule: EndpointAccessRule) -> dict[str, Any]:
    return {"DATA_TYPE": "access", "id": str(rule.id), "principal_type": rule.principal_type,
            "principal": rule.principal, "path": rule.path, "permissions": rule.permissions,
            "create_time": _time(rule.created), "expiration_date": _time(rule.expiration_date),
            "role_id": None, "role_type": None}


def _role_documents(entity: RegistryEntity) -> list[dict[str, Any]]:
    """The implicit rules of managing roles: ``rw`` on ``/`` for each holder."""
    found = []
    for grant in sorted(entity.grants, key=lambda grant: (grant.principal, grant.role)):
        if grant.role not in registry.RULE_MANAGING_ROLES:
            continue
        for prefix, kind in ((IDENTITY_PRINCIPAL, IDENTITY), (GROUP_PRINCIPAL, GROUP)):
            if grant.principal.startswith(prefix):
                found.append({"DATA_TYPE": "access", "id": None, "principal_type": kind,
                              "principal": grant.principal[len(prefix):], "path": "/",
                              "permissions": "rw", "create_time": None,
                              "expiration_date": None, "role_id": None,
                              "role_type": grant.role})
    return found


# --- reading input ------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInput:
    principal_type: str
    principal: str
    path: str
    permissions: str
    expiration_date: datetime | None


def _text(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string")
    return value


def _check_data_type(body: Mapping[str, Any]) -> None:
    if body.get("DATA_TYPE", "access") != "access":
        raise bad_request("DATA_TYPE must be 'access'")


def _permissions(value: str) -> str:
    if value.lower() not in PERMISSIONS:
        raise bad_request(f"Invalid permissions '{value[:20]}': 'r' or 'rw'")
    return value.lower()


def _path(value: str) -> str:
    if not value.startswith("/") or len(value) > MAX_PATH:
        raise bad_request(f"Invalid path: it must be absolute in the guest collection "
                          f"(start with '/') and at most {MAX_PATH} characters")
    try:
        canonical = paths.normalize(value)
    except InvalidPath as error:
        raise bad_request(f"Invalid path: {error}") from None
    return canonical if canonical == "/" else canonical + "/"


def _expiration(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("'expiration_date' must be an ISO 8601 date and time")
    try:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = datetime.combine(date.fromisoformat(value.strip()), datetime.min.time())
        when = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(f"Invalid expiration_date '{value[:40]}': an ISO 8601 date and "
                          "time") from None
    if when <= utcnow():
        raise bad_request("expiration_date must be in the future")
    return when


def _principal(principal_type: str, value: str | None, directory: IdentityDirectory) -> str:
    if principal_type in (ALL_AUTHENTICATED_USERS, ANONYMOUS):
        if value:
            raise bad_request(f"A rule for {principal_type} has the principal \"\"")
        return ""
    try:
        principal = uuid.UUID(value or "")
    except ValueError:
        raise bad_request(f"Invalid principal '{(value or '')[:40]}': an {principal_type} "
                          "id") from None
    if principal_type == IDENTITY and not directory.lookup_identities([principal]):
        raise bad_request(f"Invalid principal '{principal}': no such identity")
    return str(principal)


def parse_new(body: Mapping[str, Any], directory: IdentityDirectory) -> RuleInput:
    """A rule to add; every mistake a 400 naming the field. Unknown fields are ignored, as
    Transfer does (the CLI may send ``notify_email``/``notify_message``)."""
    _check_data_type(body)
    principal_type = _text(body, "principal_type", required=True) or ""
    if principal_type not in PRINCIPAL_TYPES:
        raise bad_request(f"Invalid principal_type '{principal_type[:40]}': one of "
                          f"{', '.join(PRINCIPAL_TYPES)}")
    for name in ("notify_email", "notify_message"):
        _text(body, name, required=False)
    return RuleInput(
        principal_type=principal_type,
        principal=_principal(principal_type, _text(body, "principal", required=False),
                             directory),
        path=_path(_text(body, "path", required=True) or ""),
        permissions=_permissions(_text(body, "permissions", required=True) or ""),
        expiration_date=_expiration(body.get("expiration_date")),
    )


# --- the routes' domain -------------------------------------------------------------------


def _guest(session: Session, caller: Caller, entity_id: str) -> RegistryEntity:
    """A guest collection whose rules the caller manages (404 unseen, 403 not managed)."""
    entity = require_guest(registry.require_visible(session, caller, entity_id))
    if not registry.manages_rules(caller, entity):
        raise APIError(403, "PermissionDenied", f"You may not manage the access rules of "
                       f"'{entity.id}': that takes its owner, or the administrator or "
                       "access_manager role on it")
    return entity


def require_guest(entity: RegistryEntity) -> RegistryEntity:
    if entity.entity_type != GCSV5_GUEST_COLLECTION:
        raise APIError(400, "NotSupported", f"'{entity.id}' is not a guest collection: "
                       "access rules apply to guest collections only")
    return entity


def _unexpired(now: datetime) -> ColumnElement[bool]:
    return or_(EndpointAccessRule.expiration_date.is_(None),
               EndpointAccessRule.expiration_date > now)


def _rule(session: Session, entity: RegistryEntity, rule_id: str) -> EndpointAccessRule:
    try:
        key = uuid.UUID(rule_id)
    except ValueError:
        raise rule_not_found(rule_id) from None
    rule = session.scalar(select(EndpointAccessRule).where(
        EndpointAccessRule.id == key, EndpointAccessRule.entity_id == entity.id,
        _unexpired(utcnow())))
    if rule is None:
        raise rule_not_found(rule_id)
    return rule


def list_rules(session: Session, caller: Caller, entity_id: str) -> dict[str, Any]:
    return rule_list_document(session, _guest(session, caller, entity_id))


def rule_list_document(session: Session, entity: RegistryEntity) -> dict[str, Any]:
    """The ``access_list`` of a guest collection: its roles, then its unexpired rules."""
    rules = session.scalars(select(EndpointAccessRule).where(
        EndpointAccessRule.entity_id == entity.id, _unexpired(utcnow()))
        .order_by(EndpointAccessRule.created, EndpointAccessRule.id))
    found = [*_role_documents(entity), *(rule_document(rule) for rule in rules)]
    return {"DATA_TYPE": "access_list", "endpoint": str(entity.id), "length": len(found),
            "DATA": found}


def get_rule(session: Session, caller: Caller, entity_id: str, rule_id: str) -> dict[str, Any]:
    return rule_document(_rule(session, _guest(session, caller, entity_id), rule_id))


def _result(code: str, message: str, resource: str, **extra: Any) -> dict[str, Any]:
    return {"DATA_TYPE": "result", "code": code, "message": message,
            "request_id": request_id(), "resource": resource, **extra}


def add_rule(session: Session, caller: Caller, entity_id: str,
             rule: RuleInput) -> dict[str, Any]:
    entity = _guest(session, caller, entity_id)
    now = utcnow()
    session.execute(delete(EndpointAccessRule).where(
        EndpointAccessRule.entity_id == entity.id,
        EndpointAccessRule.expiration_date <= now))
    duplicate = session.scalar(select(EndpointAccessRule.id).where(
        EndpointAccessRule.entity_id == entity.id,
        EndpointAccessRule.principal_type == rule.principal_type,
        EndpointAccessRule.principal == rule.principal, EndpointAccessRule.path == rule.path))
    if duplicate is not None:
        raise APIError(409, "Exists", f"A rule for this principal on '{rule.path}' already "
                       f"exists (access rule '{duplicate}')")
    count = session.scalar(select(func.count()).select_from(EndpointAccessRule).where(
        EndpointAccessRule.entity_id == entity.id)) or 0
    if count >= MAX_RULES:
        raise APIError(409, "LimitExceeded", f"'{entity.id}' already has {MAX_RULES} access "
                       "rules")
    created = EndpointAccessRule(
        id=uuid.uuid4(), entity_id=entity.id, principal_type=rule.principal_type,
        principal=rule.principal, path=rule.path, permissions=rule.permissions,
        expiration_date=rule.expiration_date, created=now, created_by=caller.identity_id)
    session.add(created)
    session.flush()
    result = _result("Created", "Access rule created successfully.",
                     f"/endpoint/{entity.id}/access", access_id=str(created.id))
    result["DATA_TYPE"] = "access_create_result"
    return result


def _same(name: str, value: Any, rule: EndpointAccessRule) -> bool:
    """Whether a field sent back with an update says what the rule already says."""
    if not isinstance(value, str):
        return value is None and name == "principal" and rule.principal == ""
    if name == "path":
        try:
            return _path(value) == rule.path
        except APIError:
            return False
    if name == "principal":
        return value.lower() == rule.principal
    return value == rule.principal_type


def update_rule(session: Session, caller: Caller, entity_id: str, rule_id: str,
                body: Mapping[str, Any]) -> dict[str, Any]:
    """Permissions and expiration change; whom and where a rule is for do not."""
    _check_data_type(body)
    entity = _guest(session, caller, entity_id)
    rule = _rule(session, entity, rule_id)
    for name in _UNCHANGEABLE:
        if name in body and not _same(name, body[name], rule):
            raise bad_request(f"'{name}' of an access rule cannot be changed; delete the "
                              "rule and add another")
    permissions = _text(body, "permissions", required=False)
    if permissions is not None:
        rule.permissions = _permissions(permissions)
    if "expiration_date" in body:
        rule.expiration_date = _expiration(body["expiration_date"])
    session.flush()
    return _result("Updated", f"Access rule '{rule.id}' updated successfully",
                   f"/endpoint/{entity.id}/access/{rule.id}")


def delete_rule(session: Session, caller: Caller, entity_id: str,
                rule_id: str) -> dict[str, Any]:
    entity = _guest(session, caller, entity_id)
    rule = _rule(session, entity, rule_id)
    session.delete(rule)
    session.flush()
    return _result("Deleted", f"Access rule '{rule.id}' deleted successfully",
                   f"/endpoint/{entity.id}/access/{rule.id}")


# --- for Connect (core.access_rules) ----------------------------------------------------------


def rules_for(session: Session, collection_id: uuid.UUID,
              identity_ids: Collection[uuid.UUID],
              group_ids: Collection[uuid.UUID]) -> tuple[AccessRule, ...]:
    named: list[ColumnElement[bool]] = [EndpointAccessRule.principal_type == ANONYMOUS]
    if identity_ids:
        named += [EndpointAccessRule.principal_type == ALL_AUTHENTICATED_USERS,
                  and_(EndpointAccessRule.principal_type == IDENTITY,
                       EndpointAccessRule.principal.in_([str(i) for i in identity_ids]))]
    if group_ids:
        named.append(and_(EndpointAccessRule.principal_type == GROUP,
                          EndpointAccessRule.principal.in_([str(g) for g in group_ids])))
    rows = session.scalars(select(EndpointAccessRule).join(
        RegistryEntity, RegistryEntity.id == EndpointAccessRule.entity_id).where(
        EndpointAccessRule.entity_id == collection_id, RegistryEntity.deleted.is_(False),
        _unexpired(utcnow()), or_(*named)))
    return tuple(AccessRule(row.principal_type, row.principal, row.path, row.permissions)
                 for row in rows)
