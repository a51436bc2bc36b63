"""Pausing tasks as an endpoint manager: pause rules on an endpoint (or one collection) and
pauses of single tasks. A paused task is INACTIVE with nice_status PAUSED_BY_ADMIN; the
runner claims only ACTIVE tasks, and a worker holding a task stops at its next flush."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from isthmus.core.db import utcnow
from isthmus.transfer import notifications
from isthmus.transfer.models import RegistryEntity
from isthmus.transfer.task_models import PauseRule, Task

ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
PAUSED_BY_ADMIN = "PAUSED_BY_ADMIN"


def endpoint_of(session: Session, collection_id: uuid.UUID | None) -> uuid.UUID | None:
    """The endpoint hosting a collection, as the registry knows it."""
    if collection_id is None:
        return None
    return session.scalar(select(RegistryEntity.endpoint_id).where(
        RegistryEntity.id == collection_id))


def matching_rules(session: Session, task: Task, now: datetime | None = None
                   ) -> list[tuple[PauseRule, str]]:
    """The rules in force on the task, each with the side it pauses (SOURCE or
    DESTINATION)."""
    now = now or utcnow()
    sides: list[tuple[str, uuid.UUID, str]] = []
    if task.type == "DELETE":
        sides.append(("SOURCE", task.source_endpoint_id, "pause_task_delete"))
    else:
        sides.append(("SOURCE", task.source_endpoint_id, "pause_task_transfer_read"))
        if task.destination_endpoint_id is not None:
            sides.append(("DESTINATION", task.destination_endpoint_id,
                          "pause_task_transfer_write"))
    found: list[tuple[PauseRule, str]] = []
    for side, collection_id, flag in sides:
        targets = [collection_id]
        endpoint_id = endpoint_of(session, collection_id)
        if endpoint_id is not None:
            targets.append(endpoint_id)
        rules = session.scalars(select(PauseRule).where(
            PauseRule.endpoint_id.in_(targets),
            or_(PauseRule.identity_id.is_(None), PauseRule.identity_id == task.owner_id),
            or_(PauseRule.start_time.is_(None), PauseRule.start_time <= now),
            getattr(PauseRule, flag).is_(True),
        ).order_by(PauseRule.id))
        found.extend((rule, side) for rule in rules)
    return found


def is_paused(task: Task) -> bool:
    return task.status == INACTIVE and task.nice_status == PAUSED_BY_ADMIN


def paused_condition() -> ColumnElement[bool]:
    """`is_paused` in SQL."""
    return and_(Task.status == INACTIVE, Task.nice_status == PAUSED_BY_ADMIN)


def refresh(session: Session, task: Task) -> bool:
    """Pause or resume the unfinished task as its rules and admin pause now say; whether it
    is paused."""
    if task.status not in (ACTIVE, INACTIVE):
        return False
    paused = task.admin_pause_message is not None or bool(matching_rules(session, task))
    if paused and task.status == ACTIVE:
        task.status, task.nice_status = INACTIVE, PAUSED_BY_ADMIN
        notifications.due(session, task)
    elif not paused and is_paused(task):
        task.status = ACTIVE
        task.nice_status = "OK" if task.admitted else "Queued"
    return paused


def refresh_unfinished(session: Session, collection_ids: set[uuid.UUID] | None = None) -> None:
    """Refresh every unfinished task (using one of these collections, when given): after a
    rule changed."""
    query = select(Task).where(Task.status.in_((ACTIVE, INACTIVE)))
    if collection_ids is not None:
        ids = list(collection_ids)
        query = query.where(or_(Task.source_endpoint_id.in_(ids),
                                Task.destination_endpoint_id.in_(ids)))
    for task in session.scalars(query.with_for_update()):
        refresh(session, task)


def collections_of(session: Session, entity_id: uuid.UUID) -> set[uuid.UUID]:
    """The entity and, for an endpoint, every collection on it."""
    return {entity_id, *session.scalars(select(RegistryEntity.id).where(
        RegistryEntity.endpoint_id == entity_id))}
