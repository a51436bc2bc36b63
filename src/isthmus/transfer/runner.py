"""The task runner: worker threads that claim tasks from the database and work on them.

Nothing lives only in memory. A claim is a lease on the task row (``claimed_by``,
``lease_until``) renewed while a worker works on it (`Slice.holding_lease`) and with every
progress write; a runner that dies stops renewing, and
once the lease lapses any runner takes the task over and goes on from its durable items. On
PostgreSQL any number of runner processes share the tasks (``SELECT … FOR UPDATE SKIP
LOCKED``); on SQLite one process runs them, so at start it takes over every claim at once.

Fair sharing: a user's tasks beyond their share of active ones (per type) wait queued, and a
worker serves a task for a short slice and then hands it back, the least recently served
task going next, so one huge task does not starve small ones.
"""

from __future__ import annotations

import logging
import resource
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Engine, Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.collection_access import CollectionAccess
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.encryption import SecretBox
from isthmus.core.tokens import DependentTokens
from isthmus.transfer import submission
from isthmus.transfer.engine import DESCRIPTORS_PER_WORKER, SliceContext, work_on
from isthmus.transfer.task_models import Task

logger = logging.getLogger("isthmus.transfer.runner")

# How long a worker with nothing to do waits before looking again (unless a task is
# submitted in this process meanwhile).
IDLE_POLL_SECONDS = 0.25
# Serializes admission (queued -> admitted) across runner processes on PostgreSQL.
_ADMISSION_LOCK = 0x7A5C_0001
_QUEUED_BATCH = 1000
_TASKS = cast(Table, Task.__table__)
# An active task no runner holds. Asked by each idle worker several times a second, so on
# the connection: through the ORM it cost a few milliseconds of CPU.
_WAITING = select(_TASKS.c.id).where(
    _TASKS.c.status == "ACTIVE",
    or_(_TASKS.c.claimed_by.is_(None), _TASKS.c.lease_until < bindparam("now"))).limit(1)


def admit_queued(session: Session, limits: Mapping[str, int]) -> None:
    """Admit queued tasks, oldest first, while their owner has fewer than the limit of
    active tasks of that type."""
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMISSION_LOCK})
    queued = session.execute(
        select(Task.id, Task.owner_id, Task.type).where(
            Task.status == "ACTIVE", Task.admitted.is_(False), Task.cancel_requested.is_(False),
        ).order_by(Task.request_time).limit(_QUEUED_BATCH)).all()
    if not queued:
        return
    running = {(owner, kind): count for owner, kind, count in session.execute(
        select(Task.owner_id, Task.type, func.count()).where(
            Task.status == "ACTIVE", Task.admitted.is_(True),
        ).group_by(Task.owner_id, Task.type))}
    admitted = []
    for task_id, owner, kind in queued:
        if running.get((owner, kind), 0) < limits.get(kind, 3):
            running[(owner, kind)] = running.get((owner, kind), 0) + 1
            admitted.append(task_id)
    if admitted:
        session.execute(update(Task).where(Task.id.in_(admitted)).values(
            admitted=True, nice_status="OK"))


def claim(session: Session, worker: str, now: datetime, lease: timedelta) -> uuid.UUID | None:
    """Claim the runnable task served least recently (or a queued one that was canceled or
    whose deadline passed, to end it)."""
    query = select(Task.id).where(
        Task.status == "ACTIVE",
        or_(Task.admitted.is_(True), Task.cancel_requested.is_(True), Task.deadline < now),
        or_(Task.claimed_by.is_(None), Task.lease_until < now),
    ).order_by(Task.last_served.asc().nulls_first(), Task.request_time).limit(1)
    task_id = session.scalar(query.with_for_update(skip_locked=True))
    if task_id is not None:
        session.execute(update(Task).where(Task.id == task_id).values(
            claimed_by=worker, lease_until=now + lease))
    return task_id


def release_all_claims(session: Session) -> None:
    """Forget every claim: at the start of the only runner (SQLite), they are all stale."""
    session.execute(update(Task).where(Task.claimed_by.is_not(None)).values(
        claimed_by=None, lease_until=None))


def _allow_descriptors(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (within the hard
    limit): a worker copying a run of small files holds two descriptors per file."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted + 1024  # and the server's own: sockets, the database, logs
        if hard != resource.RLIM_INFINITY:
            target = min(target, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        logger.warning("could not raise the limit on open files; runs of small files may "
                       "fall back to copying one file at a time")


@dataclass
class RunnerSettings:
    workers: int = 4
    lease_seconds: int = 30
    limits: Mapping[str, int] | None = None


class TaskRunner:
    def __init__(self, sessions: sessionmaker[Session], access: CollectionAccess,
                 secret_box: SecretBox, dependent_tokens: DependentTokens,
                 settings: RunnerSettings) -> None:
        self.sessions = sessions
        self.access = access
        self.secret_box = secret_box
        self.dependent_tokens = dependent_tokens
        self.settings = settings
        self.limits = dict(settings.limits or {"TRANSFER": 3, "DELETE": 3})
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._name = f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"

    def start(self) -> None:
        _allow_descriptors(self.settings.workers * DESCRIPTORS_PER_WORKER)
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
            with transaction(self.sessions) as session:
                release_all_claims(session)
        for number in range(self.settings.workers):
            thread = threading.Thread(target=self._work, args=(f"{self._name}/{number}",),
                                      name=f"isthmus-task-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def _work(self, worker: str) -> None:
        lease = timedelta(seconds=self.settings.lease_seconds)
        while not self.stopping.is_set():
            # Cleared before looking: a task submitted after the look sets it again.
            submission.submitted.clear()
            try:
                # Looking costs a read; claiming takes the write lock only when there is work.
                with reading(self.sessions) as session:
                    waiting = session.connection().scalar(_WAITING, {"now": utcnow()})
                task_id = None
                if waiting is not None:
                    with transaction(self.sessions) as session:
                        admit_queued(session, self.limits)
                        task_id = claim(session, worker, utcnow(), lease)
                if task_id is None:
                    submission.submitted.wait(IDLE_POLL_SECONDS)
                    continue
                work_on(SliceContext(self.sessions, self.access, self.secret_box,
                                     self.dependent_tokens, worker, lease, self.stopping),
                        task_id)
            except Exception:
                # A database hiccup or a bug in one task must not end the worker.
                logger.exception("task worker %s failed; going on", worker)
                self.stopping.wait(1.0)
