"""Writing down what happens to a task: its events, and its end (status, fatal error, the
registry's in-use count, its grants deleted, its owner mailed)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from isthmus.core.db import utcnow
from isthmus.transfer import credentials, notifications, registry
from isthmus.transfer.task_models import Task, TaskEvent

# (code, description, details)
Event = tuple[str, str, str]

SUCCEEDED_EVENT: Event = ("SUCCEEDED", "succeeded", "")


def add_event(session: Session, task_id: uuid.UUID, event: Event, *, is_error: bool) -> None:
    code, description, details = event
    session.add(TaskEvent(task_id=task_id, code=code, description=description,
                          details=details, is_error=is_error, time=utcnow()))


def finish(session: Session, task: Task, status: str, event: Event) -> None:
    """End the task SUCCEEDED or FAILED (``event`` then says why, and is its fatal error)."""
    now = utcnow()
    failed = status == "FAILED"
    task.status = status
    task.completion_time = now
    task.nice_status = None
    task.claimed_by = None
    task.lease_until = None
    task.subtasks_retrying = 0
    if failed:
        task.fatal_error_code, task.fatal_error_description = event[0], event[1]
    add_event(session, task.id, event, is_error=failed)
    credentials.forget(session, task.id)
    notifications.due(session, task)
    entities = [task.source_endpoint_id]
    if task.destination_endpoint_id is not None:
        entities.append(task.destination_endpoint_id)
    registry.record_use(session, task.owner_id, entities, now=now)
