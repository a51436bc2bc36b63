"""The endpoint manager: tasks and pause rules as the holders of an endpoint's activity roles
see them. ``activity_monitor`` reads every task using a collection of the endpoint (and its
pause rules); ``activity_manager`` (and an administrator or the owner) also cancels and pauses
them. Roles come from the registry: a collection's grants already include what its endpoint's
roles imply, so a task is visible through a grant on its source or destination collection."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.identities import IdentityDirectory
from isthmus.core.registry import GCSV5_ENDPOINT
from isthmus.transfer import access_rules, filters, pauses, registry, tasks
from isthmus.transfer.filters import bad_request
from isthmus.transfer.models import RegistryEntity, RegistryGrant, RegistryOwner
from isthmus.transfer.registry import Caller
from isthmus.transfer.task_models import AdminCancel, PauseRule, Task

MONITOR_ROLES = ("activity_monitor", "activity_manager", "administrator")
MANAGER_ROLES = ("activity_manager", "administrator")
PAGE_LIMIT = 1000
MAX_TASK_IDS = 50
_RUNNING = {"ACTIVE", "INACTIVE"}
_STATUSES = {"ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED"}
_TASK_FLAGS = ("pause_task_transfer_read", "pause_task_transfer_write", "pause_task_delete")
# Pausing file operations is not offered: a rule asking for it is refused, not ignored.
_UNSUPPORTED_FLAGS = ("pause_ls", "pause_mkdir", "pause_rename", "pause_symlink")


def permission_denied(message: str) -> APIError:
    return APIError(403, "PermissionDenied", message)


# --- roles ---------------------------------------------------------------------------------


def holds(caller: Caller, entity_id: Any, roles: Iterable[str]) -> ColumnElement[bool]:
    """The caller holds one of ``roles`` on the entity (a column or id), or owns its
    endpoint."""
    entity = aliased(RegistryEntity)
    return or_(
        exists().where(RegistryGrant.entity_id == entity_id,
                       RegistryGrant.principal.in_(caller.principals),
                       RegistryGrant.role.in_(list(roles))),
        # The endpoint's own client identity, or its owner.
        exists().where(entity.id == entity_id,
                       or_(entity.endpoint_id.in_(caller.identities),
                           exists().where(RegistryOwner.entity_id == entity.endpoint_id,
                                          RegistryOwner.identity_id.in_(caller.identities)))))


def _sees(caller: Caller, roles: Iterable[str]) -> ColumnElement[bool]:
    return or_(holds(caller, Task.source_endpoint_id, roles),
               holds(caller, Task.destination_endpoint_id, roles))


def _has(session: Session, caller: Caller, entity_id: uuid.UUID | None,
         roles: Iterable[str]) -> bool:
    return entity_id is not None and bool(session.scalar(select(holds(caller, entity_id,
                                                                      roles))))


# --- tasks ---------------------------------------------------------------------------------


def _document(session: Session, task: Task, usernames: Mapping[uuid.UUID, str]
              ) -> dict[str, Any]:
    document = tasks.task_document(task)
    document["owner_string"] = usernames.get(task.owner_id, tasks.username_of(task.owner_id))
    for side, collection_id in (("source", task.source_endpoint_id),
                                ("destination", task.destination_endpoint_id)):
        host = pauses.endpoint_of(session, collection_id)
        document[f"{side}_host_endpoint_id"] = str(host) if host else None
        document[f"{side}_host_endpoint"] = str(host) if host else None
    return document


def _usernames(identities: IdentityDirectory, found: Iterable[Task]) -> dict[uuid.UUID, str]:
    records = identities.lookup_identities({task.owner_id for task in found})
    return {identity: record.username for identity, record in records.items()}


def _parse_ids(value: str, what: str) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(part) for part in value.split(",") if part]
    except ValueError:
        raise bad_request(f"Invalid {what}: '{value}'") from None


def _parse_id(value: str, what: str) -> uuid.UUID:
    """The one id a filter or field names (``","`` names none: refused)."""
    ids = _parse_ids(value, what)
    if len(ids) != 1:
        raise bad_request(f"Invalid {what}: '{value[:100]}' (one id)")
    return ids[0]


def _task_conditions(session: Session, params: Mapping[str, str]) -> list[ColumnElement[bool]]:
    statuses = {part for part in params.get("filter_status", "").split(",") if part}
    if statuses - _STATUSES:
        raise bad_request(f"Invalid filter_status: '{params['filter_status']}'")
    conditions: list[ColumnElement[bool]] = []
    if params.get("filter_task_id"):
        if any(name.startswith("filter_") and name != "filter_task_id" and value
               for name, value in params.items()):
            raise bad_request("filter_task_id can't be combined with other filters")
        ids = _parse_ids(params["filter_task_id"], "filter_task_id")
        if len(ids) > MAX_TASK_IDS:
            raise bad_request(f"At most {MAX_TASK_IDS} task ids may be given")
        return [Task.id.in_(ids)]
    running_only = bool(statuses) and statuses <= _RUNNING
    if not running_only and not params.get("filter_endpoint"):
        raise bad_request("filter_endpoint or filter_task_id is required unless "
                          "filter_status is a subset of ACTIVE,INACTIVE")
    if statuses:
        conditions.append(Task.status.in_(statuses))
    if params.get("filter_owner_id"):
        conditions.append(Task.owner_id.in_(_parse_ids(params["filter_owner_id"],
                                                       "filter_owner_id")))
    if params.get("filter_endpoint"):
        endpoint_id = _parse_id(params["filter_endpoint"], "filter_endpoint")
        used = list(pauses.collections_of(session, endpoint_id))
        use = params.get("filter_endpoint_use")
        if use not in (None, "", "source", "destination"):
            raise bad_request(f"Invalid filter_endpoint_use: '{use}'")
        conditions.append(Task.source_endpoint_id.in_(used) if use == "source" else
                          Task.destination_endpoint_id.in_(used) if use == "destination" else
                          or_(Task.source_endpoint_id.in_(used),
                              Task.destination_endpoint_id.in_(used)))
    elif params.get("filter_endpoint_use"):
        raise bad_request("filter_endpoint_use needs filter_endpoint")
    if params.get("filter_is_paused"):
        if not running_only:
            raise bad_request("filter_is_paused needs filter_status of ACTIVE and/or INACTIVE")
        paused = filters.parse_bool(params["filter_is_paused"], "filter_is_paused")
        conditions.append(pauses.paused_condition() if paused else ~pauses.paused_condition())
    if params.get("filter_completion_time"):
        start, end = filters.parse_range(params["filter_completion_time"],
                                         "filter_completion_time")
        if end is None:  # an open end takes in the tasks still running: they complete later
            conditions.append(or_(Task.completion_time.is_(None), Task.completion_time >= start))
        else:
            conditions.append(Task.completion_time <= end)
            if start is not None:
                conditions.append(Task.completion_time >= start)
    if params.get("filter_min_faults"):
        conditions.append(Task.faults >= filters.int_param(params, "filter_min_faults", 0))
    if params.get("filter_local_user"):
        raise bad_request("filter_local_user is not supported by this server")
    return conditions


def _last_key(task: Task) -> str:
    return f"{task.request_time.isoformat()},{task.id}"


def _after(last_key: str) -> ColumnElement[bool]:
    time_text, _, id_text = last_key.rpartition(",")
    when = filters.parse_datetime(time_text, "last_key")
    try:
        key = uuid.UUID(id_text)
    except ValueError:
        raise bad_request(f"Invalid last_key: '{last_key[:100]}'") from None
    return or_(Task.request_time < when, and_(Task.request_time == when, Task.id < key))


def task_list(session: Session, caller: Caller, params: Mapping[str, str],
              identities: IdentityDirectory) -> dict[str, Any]:
    conditions = _task_conditions(session, params)
    limit = filters.int_param(params, "limit", PAGE_LIMIT, low=1, high=PAGE_LIMIT)
    query = select(Task).where(*conditions)
    if params.get("filter_task_id"):
        # Naming a task the caller may not see is refused, not silently left out.
        if session.scalar(select(Task.id).where(*conditions, ~_sees(caller, MONITOR_ROLES))):
            raise permission_denied("You do not have the activity_monitor role on the "
                                    "endpoints of every task named")
    else:
        query = query.where(_sees(caller, MONITOR_ROLES))
    if params.get("last_key"):
        query = query.where(_after(params["last_key"]))
    found = list(session.scalars(query.order_by(Task.request_time.desc(), Task.id.desc())
                                 .limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    usernames = _usernames(identities, found)
    return {"DATA_TYPE": "task_list", "DATA": [_document(session, task, usernames)
                                               for task in found],
            "length": len(found), "limit": limit, "has_next_page": more,
            "last_key": _last_key(found[-1]) if more else None}


def require_task(session: Session, caller: Caller, task_id: str,
                 roles: Iterable[str] = MONITOR_ROLES, *, for_update: bool = False) -> Task:
    """The task, when the caller holds one of ``roles`` on its source or destination: 404 for
    no such task, 403 for another's task on endpoints they hold no role on."""
    try:
        key = uuid.UUID(task_id)
    except ValueError:
        raise tasks.task_not_found(task_id) from None
    query = select(Task).where(Task.id == key)
    task = session.scalar(query.with_for_update() if for_update else query)
    if task is None:
        raise tasks.task_not_found(task_id)
    if not session.scalar(select(_sees(caller, roles)).where(Task.id == key).select_from(Task)):
        role = "activity_manager" if tuple(roles) == MANAGER_ROLES else "activity_monitor"
        raise permission_denied(f"You do not have the {role} role on the source or "
                                f"destination endpoint of task '{task_id}'")
    return task


def get_task(session: Session, caller: Caller, task_id: str,
             identities: IdentityDirectory) -> dict[str, Any]:
    task = require_task(session, caller, task_id)
    return _document(session, task, _usernames(identities, [task]))


def pause_info(session: Session, caller: Caller, task_id: str) -> dict[str, Any]:
    document = tasks.pause_info_document(session, require_task(session, caller, task_id))
    return {**document, "DATA_TYPE": "pause_info"}


# --- cancel, pause, resume -----------------------------------------------------------------


def _task_ids_and_message(body: Mapping[str, Any], *, needs_message: bool
                          ) -> tuple[list[str], str | None]:
    ids = body.get("task_id_list")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise bad_request("task_id_list must be a non-empty list of task ids")
    if len(ids) > MAX_TASK_IDS:
        raise bad_request(f"At most {MAX_TASK_IDS} task ids may be given")
    message = body.get("message")
    if needs_message and (not isinstance(message, str) or not message.strip()):
        raise bad_request("message is required")
    return list(dict.fromkeys(ids)), message


def _managed(session: Session, caller: Caller, ids: list[str]) -> list[Task]:
    return [require_task(session, caller, task_id, MANAGER_ROLES, for_update=True)
            for task_id in ids]


def _side(session: Session, caller: Caller, task: Task) -> str:
    source = _has(session, caller, task.source_endpoint_id, MANAGER_ROLES)
    destination = _has(session, caller, task.destination_endpoint_id, MANAGER_ROLES)
    return "BOTH" if source and destination else "SOURCE" if source else "DESTINATION"


def admin_cancel(session: Session, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    ids, message = _task_ids_and_message(body, needs_message=True)
    assert message is not None
    for task in _managed(session, caller, ids):
        if task.status not in tasks.FINISHED:
            task.canceled_by_admin = _side(session, caller, task)
            task.canceled_by_admin_message = message
            tasks.cancel(session, task)
    record = AdminCancel(id=uuid.uuid4(), created_by=caller.identity_id, message=message,
                         task_ids=[str(uuid.UUID(i)) for i in ids], start_time=utcnow())
    session.add(record)
    session.flush()
    return _cancel_document(session, record)


def _cancel_document(session: Session, record: AdminCancel) -> dict[str, Any]:
    keys = [uuid.UUID(i) for i in record.task_ids]
    running = session.scalar(select(Task.id).where(Task.id.in_(keys),
                                                   Task.status.in_(_RUNNING)).limit(1))
    return {"DATA_TYPE": "admin_cancel", "id": str(record.id), "done": running is None,
            "message": record.message, "task_id_list": record.task_ids,
            "start_time": record.start_time.isoformat(timespec="seconds"),
            "created_by_identity_id": str(record.created_by)}


def cancel_status(session: Session, caller: Caller, cancel_id: str) -> dict[str, Any]:
    try:
        key = uuid.UUID(cancel_id)
    except ValueError:
        key = None
    record = session.get(AdminCancel, key) if key else None
    if record is None or record.created_by not in caller.identities:
        raise APIError(404, "ClientError.NotFound", f"No admin cancel with id '{cancel_id}'")
    return _cancel_document(session, record)


def admin_pause(session: Session, caller: Caller, body: Mapping[str, Any],
                *, pause: bool) -> dict[str, Any]:
    ids, message = _task_ids_and_message(body, needs_message=pause)
    found = _managed(session, caller, ids)
    for task in found:
        task.admin_pause_message = message if pause else None
        pauses.refresh(session, task)
    verb = "paused" if pause else "resumed"
    return {"DATA_TYPE": "result", "code": verb.capitalize(),
            "message": f"{len(found)} task(s) {verb}",
            "resource": "/endpoint_manager/admin_" + ("pause" if pause else "resume")}


# --- pause rules ---------------------------------------------------------------------------


def _rule_document(rule: PauseRule, session: Session, caller: Caller) -> dict[str, Any]:
    return {**tasks.pause_rule_limited(rule), "DATA_TYPE": "pause_rule",
            "editable": _has(session, caller, rule.endpoint_id, MANAGER_ROLES)}


def _rule_fields(body: Mapping[str, Any], rule: PauseRule) -> None:
    for flag in _UNSUPPORTED_FLAGS:
        if body.get(flag):
            raise bad_request(f"{flag} is not supported: pause rules pause tasks only")
    if "message" in body:
        if not isinstance(body["message"], str) or not body["message"].strip():
            raise bad_request("message must be a non-empty string")
        rule.message = body["message"]
    for flag in _TASK_FLAGS:
        if flag in body:
            if not isinstance(body[flag], bool):
                raise bad_request(f"{flag} must be a boolean")
            setattr(rule, flag, body[flag])
    if "start_time" in body:
        value = body["start_time"]
        if value is not None and not isinstance(value, str):
            raise bad_request("start_time must be a date-time or null")
        rule.start_time = filters.parse_datetime(value, "start_time") if value else None


def _managed_entity(session: Session, caller: Caller, value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise bad_request("endpoint_id is required")
    entity = registry.require_visible(session, caller, value)
    if not _has(session, caller, entity.id, MANAGER_ROLES):
        raise permission_denied(f"You do not have the activity_manager role on '{value}'")
    return entity.id


def create_rule(session: Session, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    if body.get("DATA_TYPE", "pause_rule") != "pause_rule":
        raise bad_request("DATA_TYPE must be 'pause_rule'")
    if "message" not in body:
        raise bad_request("message is required")
    identity = body.get("identity_id")
    if identity is not None and not isinstance(identity, str):
        raise bad_request("identity_id must be an identity id or null")
    rule = PauseRule(id=uuid.uuid4(),
                     endpoint_id=_managed_entity(session, caller, body.get("endpoint_id")),
                     identity_id=_parse_id(identity, "identity_id") if identity else None,
                     modified_by_id=caller.identity_id, start_time=None,
                     pause_task_transfer_read=True, pause_task_transfer_write=True,
                     pause_task_delete=True)
    _rule_fields(body, rule)
    session.add(rule)
    session.flush()
    pauses.refresh_unfinished(session, pauses.collections_of(session, rule.endpoint_id))
    return _rule_document(rule, session, caller)


def _require_rule(session: Session, caller: Caller, rule_id: str,
                  roles: Iterable[str]) -> PauseRule:
    try:
        key = uuid.UUID(rule_id)
    except ValueError:
        key = None
    rule = session.get(PauseRule, key) if key else None
    if rule is None or not _has(session, caller, rule.endpoint_id, MONITOR_ROLES):
        raise APIError(404, "ClientError.NotFound", f"No pause rule with id '{rule_id}'")
    if not _has(session, caller, rule.endpoint_id, roles):
        raise permission_denied(f"You do not have the activity_manager role on the "
                                f"endpoint of pause rule '{rule_id}'")
    return rule


def get_rule(session: Session, caller: Caller, rule_id: str) -> dict[str, Any]:
    return _rule_document(_require_rule(session, caller, rule_id, MANAGER_ROLES), session,
                          caller)


def update_rule(session: Session, caller: Caller, rule_id: str,
                body: Mapping[str, Any]) -> dict[str, Any]:
    rule = _require_rule(session, caller, rule_id, MANAGER_ROLES)
    _rule_fields(body, rule)
    rule.modified_by_id = caller.identity_id
    session.flush()
    pauses.refresh_unfinished(session, pauses.collections_of(session, rule.endpoint_id))
    return _rule_document(rule, session, caller)


def delete_rule(session: Session, caller: Caller, rule_id: str) -> dict[str, Any]:
    rule = _require_rule(session, caller, rule_id, MANAGER_ROLES)
    endpoint_id = rule.endpoint_id
    session.delete(rule)
    session.flush()
    pauses.refresh_unfinished(session, pauses.collections_of(session, endpoint_id))
    return {"DATA_TYPE": "result", "code": "Deleted", "message": "Pause rule deleted",
            "resource": f"/endpoint_manager/pause_rule/{rule_id}"}


def rule_list(session: Session, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    query = select(PauseRule).where(holds(caller, PauseRule.endpoint_id, MONITOR_ROLES))
    if params.get("filter_endpoint"):
        endpoint_id = _parse_id(params["filter_endpoint"], "filter_endpoint")
        query = query.where(PauseRule.endpoint_id.in_(pauses.collections_of(session,
                                                                            endpoint_id)))
    rules = session.scalars(query.order_by(PauseRule.id))
    return {"DATA_TYPE": "pause_rule_list",
            "DATA": [_rule_document(rule, session, caller) for rule in rules]}


# --- endpoints and collections ------------------------------------------------------------


def monitored_entity(session: Session, caller: Caller, entity_id: str) -> RegistryEntity:
    """An endpoint or collection the caller monitors: 404 for one they may not even see,
    403 for one they see without an activity role on it."""
    key = registry.parse_entity_id(entity_id)
    entity = session.get(RegistryEntity, key)
    if entity is not None and not entity.deleted and _has(session, caller, key,
                                                          MONITOR_ROLES):
        return entity
    registry.require_visible(session, caller, entity_id)
    raise permission_denied(f"You do not have the activity_monitor role on '{entity_id}'")


def get_endpoint(session: Session, caller: Caller, entity_id: str) -> dict[str, Any]:
    return registry.document(session, caller, monitored_entity(session, caller, entity_id))


def hosted_endpoint_list(session: Session, caller: Caller, entity_id: str) -> dict[str, Any]:
    """What the entity hosts: an endpoint's collections, a mapped collection's guests."""
    host = monitored_entity(session, caller, entity_id)
    column = (RegistryEntity.endpoint_id if host.entity_type == GCSV5_ENDPOINT
              else RegistryEntity.host_endpoint_id)
    hosted = list(session.scalars(select(RegistryEntity).where(
        column == host.id, RegistryEntity.id != host.id, RegistryEntity.deleted.is_(False),
    ).order_by(RegistryEntity.display_name, RegistryEntity.id)))
    return {"DATA_TYPE": "endpoint_list", "length": len(hosted),
            "DATA": [registry.document(session, caller, entity) for entity in hosted]}


def acl_list(session: Session, caller: Caller, entity_id: str) -> dict[str, Any]:
    """A guest collection's access rules, for the monitors of its endpoint."""
    entity = access_rules.require_guest(monitored_entity(session, caller, entity_id))
    return access_rules.rule_list_document(session, entity)


def monitored_endpoints(session: Session, caller: Caller) -> dict[str, Any]:
    ids = session.scalars(select(RegistryEntity.id).where(
        RegistryEntity.deleted.is_(False), holds(caller, RegistryEntity.id, MONITOR_ROLES),
    ).order_by(RegistryEntity.display_name, RegistryEntity.id))
    return {"DATA_TYPE": "endpoint_list",
            "DATA": [registry.get_document(session, caller, str(key)) for key in ids]}
