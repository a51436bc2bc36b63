"""Reading and steering tasks: the task document (spec §6.1), `task_list` with its filters,
orderings and paging, `update_task`, `cancel_task`, and the event, successful-transfer,
skipped-error and pause lists. A caller sees only their own tasks; any other id is 404."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.transfer import checkpoints, filters, pauses
from isthmus.transfer.filters import bad_request
from isthmus.transfer.progress import finish
from isthmus.transfer.registry import Caller
from isthmus.transfer.task_models import (
    DONE,
    FILE,
    SKIPPED_ERROR,
    PauseRule,
    Task,
    TaskEvent,
    TaskItem,
)

ACTIVE, SUCCEEDED, FAILED = "ACTIVE", "SUCCEEDED", "FAILED"
FINISHED = (SUCCEEDED, FAILED)
TASK_LIST_LIMIT = 1000
DEFAULT_TASK_LIST_LIMIT = 10
MARKER_PAGE = 1000

_TASK_FILTERS = {"task_id": "text", "type": "text", "status": "text", "label": "text",
                 "request_time": "date", "completion_time": "date", "deadline": "date",
                 "source_endpoint_id": "text", "destination_endpoint_id": "text",
                 "is_paused": "bool"}
_TASK_ORDER: dict[str, Any] = {
    "request_time": Task.request_time, "completion_time": Task.completion_time,
    "deadline": Task.deadline, "label": Task.label, "status": Task.status, "type": Task.type,
    "task_id": Task.id}


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def username_of(identity_id: uuid.UUID) -> str:
    """Transfer's legacy username for an identity: ``u_`` and the id in base32."""
    return "u_" + base64.b32encode(identity_id.bytes).decode().rstrip("=").lower()


def effective_speed(task: Task, now: datetime) -> int:
    if task.started_time is None:
        return 0
    seconds = ((task.completion_time or now) - task.started_time).total_seconds()
    return int(task.bytes_transferred / seconds) if seconds > 0 else task.bytes_transferred


def task_document(task: Task, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    # A paused (INACTIVE) task is unfinished too: it says why it waits.
    active = task.status in (ACTIVE, pauses.INACTIVE)
    pending = task.subtasks_total - (task.subtasks_succeeded + task.subtasks_failed
                                     + task.subtasks_canceled + task.subtasks_expired
                                     + task.subtasks_skipped_errors)
    options = task.options
    transfer = task.type == "TRANSFER"
    fatal = ({"code": task.fatal_error_code, "description": task.fatal_error_description}
             if task.fatal_error_code else None)
    source_id = str(task.source_endpoint_id)
    destination_id = str(task.destination_endpoint_id) if task.destination_endpoint_id else None
    return {
        "DATA_TYPE": "task", "task_id": str(task.id), "type": task.type,
        "status": task.status, "label": task.label, "owner_id": str(task.owner_id),
        "username": username_of(task.owner_id),
        "request_time": _time(task.request_time), "completion_time": _time(task.completion_time),
        "deadline": _time(task.deadline), "command": "API 0.10",
        "source_endpoint": source_id, "source_endpoint_id": source_id,
        "source_endpoint_display_name": task.source_display_name,
        "destination_endpoint": destination_id, "destination_endpoint_id": destination_id,
        "destination_endpoint_display_name": task.destination_display_name,
        "sync_level": options.get("sync_level"),
        "verify_checksum": options.get("verify_checksum", False),
        "encrypt_data": options.get("encrypt_data", False),
        "preserve_timestamp": options.get("preserve_timestamp", False),
        "delete_destination_extra": options.get("delete_destination_extra", False),
        "skip_source_errors": options.get("skip_source_errors", False),
        "fail_on_quota_errors": options.get("fail_on_quota_errors", False),
        "recursive_symlinks": options.get("recursive_symlinks", "ignore") if transfer else None,
        "filter_rules": options.get("filter_rules"),
        "files": task.files, "directories": task.directories, "symlinks": task.symlinks,
        "files_transferred": task.files_transferred, "files_skipped": task.files_skipped,
        "bytes_transferred": task.bytes_transferred,
        "bytes_checksummed": task.bytes_checksummed,
        "effective_bytes_per_second": effective_speed(task, now), "faults": task.faults,
        "subtasks_total": task.subtasks_total, "subtasks_pending": max(pending, 0),
        "subtasks_retrying": task.subtasks_retrying,
        "subtasks_succeeded": task.subtasks_succeeded, "subtasks_failed": task.subtasks_failed,
        "subtasks_canceled": task.subtasks_canceled, "subtasks_expired": task.subtasks_expired,
        "subtasks_skipped_errors": task.subtasks_skipped_errors,
        "nice_status": task.nice_status if active else None,
        "nice_status_short_description": task.nice_status if active else None,
        "nice_status_details": None,
        "nice_status_expires_in": -1 if active else None,
        "is_ok": (task.nice_status in ("Queued", "OK")) if active else None,
        "is_paused": pauses.is_paused(task), "fatal_error": fatal,
        "canceled_by_admin": task.canceled_by_admin,
        "canceled_by_admin_message": task.canceled_by_admin_message,
        "history_deleted": False,
        "source_local_user": options.get("source_local_user", options.get("local_user")),
        "destination_local_user": options.get("destination_local_user"),
        "source_base_path": None, "destination_base_path": None,
        "notify_on_succeeded": options.get("notify_on_succeeded", True),
        "notify_on_failed": options.get("notify_on_failed", True),
        "notify_on_inactive": options.get("notify_on_inactive", True),
    }


def task_not_found(task_id: str) -> APIError:
    return APIError(404, "ClientError.NotFound", f"No task found with id '{task_id}'")


def require_task(session: Session, caller: Caller, task_id: str, *,
                 for_update: bool = False) -> Task:
    """The caller's task (any identity of theirs may own it); 404 for anything else."""
    try:
        key = uuid.UUID(task_id)
    except ValueError:
        raise task_not_found(task_id) from None
    query = select(Task).where(Task.id == key, Task.owner_id.in_(caller.identities))
    if for_update:
        query = query.with_for_update()
    task = session.scalar(query)
    if task is None:
        raise task_not_found(task_id)
    return task


def get_task(session: Session, caller: Caller, task_id: str) -> dict[str, Any]:
    return task_document(require_task(session, caller, task_id))


# --- task_list -------------------------------------------------------------------------


def _text_condition(column: Any, value: str, *, ids: bool = False) -> ColumnElement[bool]:
    terms = filters.parse_terms(value)
    positives, negatives = [], []
    for term in terms:
        if ids:
            # An id that is not a UUID matches nothing (and is never sent to the database).
            try:
                text: Any = uuid.UUID(term.value)
            except ValueError:
                condition: ColumnElement[bool] = false()
            else:
                condition = column == text
        elif term.operator.endswith("~"):
            condition = func.lower(column).like(filters.glob_to_like(term.value.lower()),
                                                escape="\\")
        else:
            condition = column == term.value
        if term.negated:
            negatives.append(or_(column.is_(None), ~condition))
        else:
            positives.append(condition)
    parts = ([or_(*positives)] if positives else []) + negatives
    return and_(true(), *parts)


def _task_conditions(clauses: list[tuple[str, str]]) -> list[ColumnElement[bool]]:
    conditions = []
    for field, value in clauses:
        kind = _TASK_FILTERS[field]
        if kind == "date":
            column = getattr(Task, field)
            start, end = filters.parse_range(value, field)
            if start is not None:
                conditions.append(column >= start)
            if end is not None:
                conditions.append(column <= end)
        elif kind == "bool":
            paused = pauses.paused_condition()
            conditions.append(paused if filters.parse_bool(value, field) else ~paused)
        elif field == "task_id":
            conditions.append(_text_condition(Task.id, value, ids=True))
        elif field.endswith("_endpoint_id"):
            conditions.append(_text_condition(getattr(Task, field), value, ids=True))
        else:
            if field in ("status", "type"):
                value = value.upper()
            conditions.append(_text_condition(getattr(Task, field), value))
    return conditions


def task_list(session: Session, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    clauses = filters.parse_filter(params.get("filter"), _TASK_FILTERS)
    order = filters.parse_orderby(params.get("orderby"), set(_TASK_ORDER))
    limit = filters.int_param(params, "limit", DEFAULT_TASK_LIST_LIMIT, low=1,
                              high=TASK_LIST_LIMIT)
    offset = filters.int_param(params, "offset", 0)
    base: Select[Any] = select(Task).where(Task.owner_id.in_(caller.identities),
                                           *_task_conditions(clauses))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    ordering: list[Any] = [(_TASK_ORDER[name].desc() if descending
                            else _TASK_ORDER[name].asc())
                           for name, descending in order] or [Task.request_time.desc()]
    tasks = session.scalars(base.order_by(*ordering, Task.id).limit(limit).offset(offset)).all()
    now = utcnow()
    documents = [task_document(task, now) for task in tasks]
    wanted = [name.strip() for name in params.get("fields", "").split(",") if name.strip()]
    if wanted:
        documents = [{key: value for key, value in document.items()
                      if key in wanted or key in ("DATA_TYPE", "task_id")}
                     for document in documents]
    return {"DATA_TYPE": "task_list", "DATA": documents, "length": len(documents),
            "limit": limit, "offset": offset, "total": total}


# --- steering --------------------------------------------------------------------------


def update_task(session: Session, caller: Caller, task_id: str,
                body: Mapping[str, Any]) -> dict[str, Any]:
    data_type = body.get("DATA_TYPE", "task")
    if data_type != "task":
        raise bad_request(f"Invalid 'DATA_TYPE' {data_type!r}: expected 'task'")
    unknown = sorted(set(body) - {"DATA_TYPE", "label", "deadline"})
    if unknown:
        raise bad_request(f"Only a task's label and deadline may be updated, not "
                          f"{', '.join(repr(name) for name in unknown)}")
    label = body.get("label")
    if "label" in body and label is not None and (
            not isinstance(label, str) or len(label) > 128 or any(c in label for c in "\r\n")):
        raise bad_request("Invalid 'label': at most 128 characters without line breaks")
    deadline = body.get("deadline")
    if "deadline" in body and not isinstance(deadline, str):
        raise bad_request("Invalid 'deadline': expected a date such as "
                          "'2030-01-02 03:04:05+00:00'")
    new_deadline = filters.parse_datetime(deadline, "deadline") if isinstance(deadline,
                                                                              str) else None
    task = require_task(session, caller, task_id, for_update=True)
    if task.status in FINISHED:
        raise APIError(409, "Conflict", f"Task '{task.id}' has already completed")
    changed = []
    if new_deadline is not None:
        task.deadline = new_deadline
        changed.append("deadline")
    if "label" in body:
        task.label = label
        changed.append("label")
    what = " and ".join(changed) or "nothing"
    return {"DATA_TYPE": "result", "code": "Updated",
            "message": f"Updated task {what} successfully", "resource": f"/task/{task.id}"}


def request_cancel(session: Session, caller: Caller, task_id: str) -> tuple[uuid.UUID, bool]:
    """Ask the task's worker to stop; (task id, whether it was still running). A task no
    worker holds ends at once."""
    return cancel(session, require_task(session, caller, task_id, for_update=True))


def cancel(session: Session, task: Task) -> tuple[uuid.UUID, bool]:
    """Ask the (locked) task's worker to stop; see `request_cancel`."""
    if task.status in FINISHED:
        return task.id, False
    task.cancel_requested = True
    # A task that left a large file's copy unfinished ends in a runner, which removes it.
    if (task.claimed_by is None or task.lease_until is None or task.lease_until < utcnow()
            ) and not checkpoints.any_for(session, task.id):
        finish_canceled(session, task)
    return task.id, True


def finish_canceled(session: Session, task: Task) -> None:
    details = (f"Canceled by an endpoint manager: {task.canceled_by_admin_message}"
               if task.canceled_by_admin else "Canceled by the task owner")
    pending = task.subtasks_total - (task.subtasks_succeeded + task.subtasks_failed
                                     + task.subtasks_expired + task.subtasks_skipped_errors
                                     + task.subtasks_canceled)
    task.subtasks_canceled += max(pending, 0)
    finish(session, task, FAILED, ("CANCELED", "canceled", details))


def cancel_outcome(session: Session, task_id: uuid.UUID) -> bool:
    """Whether the canceled task has stopped (ended FAILED)."""
    status = session.scalar(select(Task.status).where(Task.id == task_id))
    return status in FINISHED


def cancel_result(task_id: uuid.UUID, canceled: bool) -> dict[str, Any]:
    resource = f"/task/{task_id}/cancel"
    if canceled:
        return {"DATA_TYPE": "result", "code": "Canceled",
                "message": "The task has been cancelled successfully.", "resource": resource}
    return {"DATA_TYPE": "result", "code": "TaskComplete",
            "message": "The task completed before the cancel request was processed.",
            "resource": resource}


# --- what a task did ---------------------------------------------------------------------


def event_list(session: Session, caller: Caller, task_id: str,
               params: Mapping[str, str]) -> dict[str, Any]:
    return event_list_of(session, require_task(session, caller, task_id), params)


def event_list_of(session: Session, task: Task, params: Mapping[str, str]) -> dict[str, Any]:
    clauses = dict(filters.parse_filter(params.get("filter"), {"is_error": "bool"}))
    limit = filters.int_param(params, "limit", 10, low=1, high=TASK_LIST_LIMIT)
    offset = filters.int_param(params, "offset", 0)
    base = select(TaskEvent).where(TaskEvent.task_id == task.id)
    if "is_error" in clauses:
        base = base.where(TaskEvent.is_error.is_(filters.parse_bool(clauses["is_error"],
                                                                    "is_error")))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    events = session.scalars(base.order_by(TaskEvent.id.desc()).limit(limit).offset(offset))
    data = [{"DATA_TYPE": "event", "code": event.code, "description": event.description,
             "details": event.details, "is_error": event.is_error, "time": _time(event.time)}
            for event in events]
    return {"DATA_TYPE": "event_list", "DATA": data, "length": len(data), "limit": limit,
            "offset": offset, "total": total}


def _marker_page(session: Session, task: Task, params: Mapping[str, str],
                 condition: ColumnElement[bool]) -> tuple[list[TaskItem], int, int | None]:
    marker = filters.int_param(params, "marker", 0)
    items = list(session.scalars(select(TaskItem).where(
        TaskItem.task_id == task.id, condition, TaskItem.id > marker,
    ).order_by(TaskItem.id).limit(MARKER_PAGE + 1)))
    more = len(items) > MARKER_PAGE
    items = items[:MARKER_PAGE]
    return items, marker, (items[-1].id if more else None)


def successful_transfers(session: Session, caller: Caller, task_id: str,
                         params: Mapping[str, str]) -> dict[str, Any]:
    return successful_transfers_of(session, require_task(session, caller, task_id), params)


def successful_transfers_of(session: Session, task: Task,
                            params: Mapping[str, str]) -> dict[str, Any]:
    items, marker, next_marker = _marker_page(
        session, task, params, and_(TaskItem.kind == FILE, TaskItem.state == DONE))
    data = [{"DATA_TYPE": "successful_transfer", "source_path": item.source_path,
             "destination_path": item.destination_path, "size": item.size,
             "checksum": item.checksum, "checksum_algorithm": item.checksum_algorithm,
             "dynamic": not item.submitted} for item in items]
    return {"DATA_TYPE": "successful_transfers", "marker": marker,
            "next_marker": next_marker, "DATA": data}


def skipped_errors(session: Session, caller: Caller, task_id: str,
                   params: Mapping[str, str]) -> dict[str, Any]:
    return skipped_errors_of(session, require_task(session, caller, task_id), params)


def skipped_errors_of(session: Session, task: Task, params: Mapping[str, str]) -> dict[str, Any]:
    items, marker, next_marker = _marker_page(session, task, params,
                                              TaskItem.state == SKIPPED_ERROR)
    data = [{"DATA_TYPE": "skipped_error", "source_path": item.source_path,
             "destination_path": item.destination_path, "error_code": item.error_code,
             "error_details": item.error_details, "error_time": _time(item.error_time),
             "is_directory": item.kind == "tree", "is_symlink": item.kind == "symlink",
             "is_delete_destination_extra": item.kind == "delete_extra",
             "external_checksum": item.external_checksum,
             "checksum_algorithm": item.checksum_algorithm} for item in items]
    return {"DATA_TYPE": "skipped_errors", "marker": marker, "next_marker": next_marker,
            "DATA": data}


def pause_info(session: Session, caller: Caller, task_id: str) -> dict[str, Any]:
    return pause_info_document(session, require_task(session, caller, task_id))


def pause_info_document(session: Session, task: Task) -> dict[str, Any]:
    """What pauses the task: the rules in force on it, and an admin pause of it alone."""
    rules = pauses.matching_rules(session, task) if task.status not in FINISHED else []
    messages: dict[str, str | None] = {"SOURCE": None, "DESTINATION": None}
    for rule, side in rules:
        messages[side] = messages[side] or rule.message
    if task.admin_pause_message is not None and task.status not in FINISHED:
        messages["SOURCE"] = messages["SOURCE"] or task.admin_pause_message
    return {"DATA_TYPE": "pause_info_limited",
            "pause_rules": [pause_rule_limited(rule) for rule in
                            {rule.id: rule for rule, _ in rules}.values()],
            "source_pause_message": messages["SOURCE"],
            "destination_pause_message": messages["DESTINATION"],
            "source_pause_message_share": None, "destination_pause_message_share": None}


def pause_rule_limited(rule: PauseRule) -> dict[str, Any]:
    return {"DATA_TYPE": "pause_rule_limited", "id": str(rule.id), "message": rule.message,
            "start_time": _time(rule.start_time), "endpoint_id": str(rule.endpoint_id),
            "identity_id": str(rule.identity_id) if rule.identity_id else None,
            "modified_by_id": str(rule.modified_by_id), "created_by_host_manager": False,
            "pause_ls": False, "pause_mkdir": False, "pause_rename": False,
            "pause_task_delete": rule.pause_task_delete,
            "pause_task_transfer_read": rule.pause_task_transfer_read,
            "pause_task_transfer_write": rule.pause_task_transfer_write}
