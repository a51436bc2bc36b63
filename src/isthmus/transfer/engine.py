"""One slice of work on one task: open its collections as its owner, take its pending items in
order, do them (`copying`), and write down what was done in batches.

Durability: an item is done once its batch is committed, and a batch is committed at least
every `FLUSH_SECONDS`, after every large file, and before the slice ends. A worker killed in
between redoes at most the files of its last uncommitted batch; a destination file appears
only complete and verified (`AtomicWriter`), so no partial file is ever visible. Every flush
renews the worker's lease and reads whether the task was canceled or its deadline moved.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.collection_access import CollectionAccess, CollectionSession
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.errors import APIError
from isthmus.core.tokens import DependentToken, DependentTokens
from isthmus.transfer import checkpoints, credentials, pauses, tasks
from isthmus.transfer.copying import (
    PARALLEL_SMALL,
    LeaseLost,
    SmallRun,
    Stopped,
    TaskFailed,
    Worker,
)
from isthmus.transfer.progress import SUCCEEDED_EVENT, Event, add_event, finish
from isthmus.transfer.task_models import (
    FILE,
    PENDING,
    WORK_ITEM_COLUMNS,
    Task,
    TaskCredential,
    TaskItem,
    WorkItem,
)

logger = logging.getLogger("isthmus.transfer.engine")

# How often progress is written (and the lease renewed, and cancel noticed) at the least.
FLUSH_SECONDS = 0.5
# A slice ends after this long (at the next item boundary), so other tasks get their turn.
SLICE_SECONDS = 3.0
# Several runs of small files per fetch: one is prepared while the one before commits.
ITEMS_PER_FETCH = 4000
# Files of one task copied at once.
PARALLEL_FILES = 4
MAX_BATCH_ITEMS = 1000
# A run of small files committed together: at most this many files or bytes (a run is
# durable, verified and recorded as one, so it also bounds how long a cancel waits).
SMALL_RUN_FILES = 1000
SMALL_RUN_BYTES = 32 * 1024 * 1024
# What a worker may hold open at once: two per file of two runs (one committing, the next
# being prepared), and the connectors' own.
DESCRIPTORS_PER_WORKER = 4 * SMALL_RUN_FILES + 64
_COUNTERS = ("files", "directories", "symlinks", "files_transferred", "files_skipped",
             "bytes_transferred", "bytes_checksummed", "faults", "subtasks_total",
             "subtasks_succeeded", "subtasks_failed", "subtasks_skipped_errors")


_ITEMS = cast(Table, TaskItem.__table__)
# The columns to set come from each row's keys (all rows of a batch have the same ones).
_UPDATE_ITEM = update(_ITEMS).where(_ITEMS.c.id == bindparam("item_id"))
_PENDING_ITEMS = (select(*(_ITEMS.c[column.key] for column in WORK_ITEM_COLUMNS))
                  .where(_ITEMS.c.task_id == bindparam("task_id"), _ITEMS.c.state == PENDING)
                  .order_by(_ITEMS.c.id).limit(ITEMS_PER_FETCH))


@dataclass
class SliceContext:
    sessions: sessionmaker[Session]
    access: CollectionAccess
    secret_box: SecretBox
    # Renews the task's data_access grants (`credentials`) as they near their end.
    dependent_tokens: DependentTokens
    worker: str
    lease: timedelta
    stopping: threading.Event


@dataclass
class Batch:
    """What a slice did since its last flush. Files are copied in parallel: every change
    goes through the lock, and `drain` takes what is there at once."""

    items: list[dict[str, Any]] = field(default_factory=list)
    new_items: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    events: list[tuple[Event, bool]] = field(default_factory=list)
    nice_status: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + amount

    def record(self, row: dict[str, Any], counter: str) -> None:
        with self.lock:
            self.items.append(row)
            self.counters[counter] = self.counters.get(counter, 0) + 1

    def add(self, item: dict[str, Any]) -> None:
        with self.lock:
            self.new_items.append(item)
            self.counters["subtasks_total"] = self.counters.get("subtasks_total", 0) + 1

    def fault(self, event: Event) -> None:
        with self.lock:
            self.counters["faults"] = self.counters.get("faults", 0) + 1
            self.events.append((event, True))
            self.nice_status = event[0]

    def note(self, event: Event) -> None:
        """An event that is not an error."""
        with self.lock:
            self.events.append((event, False))

    def status(self, nice_status: str) -> None:
        with self.lock:
            self.nice_status = nice_status

    def drain(self) -> Batch:
        with self.lock:
            taken = Batch(self.items, self.new_items, self.counters, self.events,
                          self.nice_status)
            self.items, self.new_items, self.counters, self.events = [], [], {}, []
            self.nice_status = None
        return taken

    def __len__(self) -> int:
        return len(self.items) + len(self.new_items)


@dataclass
class TaskState:
    """What a flush learns of the task: whether to stop."""

    cancel_requested: bool
    deadline: datetime
    paused: bool = False


class Slice:
    def __init__(self, context: SliceContext, task: Task) -> None:
        self.context = context
        self.task_id = task.id
        self.type = task.type
        self.batch = Batch()
        self.state = TaskState(task.cancel_requested, task.deadline)
        self.flushed = time.monotonic()
        self.ended = False  # the task had ended: the slice only cleans up after it

    # --- writing down -----------------------------------------------------------------

    def flush(self) -> None:
        batch = self.batch.drain()
        now = utcnow()
        with transaction(self.context.sessions) as session:
            task = session.scalar(select(Task).where(Task.id == self.task_id)
                                  .with_for_update())
            if task is None or task.claimed_by != self.context.worker or task.status not in (
                    "ACTIVE", "INACTIVE"):
                raise LeaseLost
            # What was done before a pause is kept: resumed, the task goes on from there.
            self._apply(session, task, batch)
            task.lease_until = now + self.context.lease
            self.state = TaskState(task.cancel_requested, task.deadline,
                                   pauses.refresh(session, task))
        self.flushed = time.monotonic()

    @staticmethod
    def _apply(session: Session, task: Task, batch: Batch) -> None:
        # Plain executemany statements on the table: thousands of rows a second are
        # written down, and the ORM's bulk paths cost several times as much per row.
        if batch.items:
            session.execute(_UPDATE_ITEM, [{"item_id": row["id"], **{
                key: value for key, value in row.items() if key != "id"}}
                for row in batch.items])
        if batch.new_items:
            session.execute(insert(_ITEMS), [{"task_id": task.id, **item}
                                             for item in batch.new_items])
        for name, amount in batch.counters.items():
            setattr(task, name, getattr(task, name) + amount)
        for event, is_error in batch.events:
            add_event(session, task.id, event, is_error=is_error)
        if batch.nice_status is not None:
            task.nice_status = batch.nice_status
            task.subtasks_retrying = 0 if batch.nice_status == "OK" else 1

    def due(self) -> bool:
        return (time.monotonic() - self.flushed >= FLUSH_SECONDS
                or len(self.batch) >= MAX_BATCH_ITEMS)

    def checkpoint(self) -> bool:
        """Flush when due; whether the task must stop (canceled, past its deadline, or the
        runner is stopping)."""
        if self.due():
            self.flush()
        return self.must_stop()

    def must_stop(self) -> bool:
        return (self.state.cancel_requested or self.state.deadline < utcnow()
                or self.state.paused or self.context.stopping.is_set())

    @contextmanager
    def holding_lease(self) -> Iterator[None]:
        """Renew the task's lease every third of it while the slice runs, whatever its worker
        is waiting on (a slow disk's syncs, a large file's verifying re-read, S3 assembling
        its parts, a dependent token): only a runner that died lets it lapse and the task be
        taken over. Progress is written by the worker's own flushes."""
        done = threading.Event()
        interval = self.context.lease.total_seconds() / 3

        def beat() -> None:
            while not done.wait(interval):
                try:
                    with transaction(self.context.sessions) as session:
                        session.execute(update(Task).where(
                            Task.id == self.task_id, Task.claimed_by == self.context.worker,
                        ).values(lease_until=utcnow() + self.context.lease))
                except SQLAlchemyError:
                    logger.warning("task %s: could not renew its lease", self.task_id,
                                   exc_info=True)

        beating = threading.Thread(target=beat, name="isthmus-lease", daemon=True)
        beating.start()
        try:
            yield
        finally:
            done.set()
            beating.join()


def _grant(context: SliceContext, session: Session, task: Task,
           collection_id: uuid.UUID) -> DependentToken:
    """What the task's owner reaches ``collection_id`` with (sealed at submission)."""
    credential = session.get(TaskCredential, (task.id, collection_id))
    try:
        if credential is None:
            raise SealedValueError("no credential")
        return credentials.unseal(context.secret_box, credential)
    except SealedValueError:
        raise TaskFailed(("PERMISSION_DENIED", "permission denied",
                          f"No usable credential for collection {collection_id}")) from None


def _tokens(context: SliceContext, task_id: uuid.UUID,
            grants: dict[uuid.UUID, DependentToken]) -> dict[uuid.UUID, str]:
    """The access token for each collection, grants near their end renewed first (outside
    any transaction: Auth may share the database) and kept only while the task is still
    ours (an ended task keeps no grant). A grant Auth no longer renews (its consent was
    revoked) fails the task."""
    tokens = {}
    for collection_id, grant in grants.items():
        if credentials.due(grant):
            assert grant.refresh_token is not None  # `due` says so
            renewed = context.dependent_tokens.refresh(grant.refresh_token)
            if renewed is None:
                raise TaskFailed(("PERMISSION_DENIED", "permission denied",
                                  f"Collection {collection_id}: the task owner's consent "
                                  "for Globus Transfer to access it was revoked"))
            with transaction(context.sessions) as session:
                task = session.scalar(select(Task).where(Task.id == task_id)
                                      .with_for_update())
                if task is None or task.claimed_by != context.worker:
                    raise LeaseLost
                credentials.store(session, context.secret_box, task_id, collection_id,
                                  renewed)
            grant = renewed
        tokens[collection_id] = grant.access_token
    return tokens


def _open(context: SliceContext, collection_id: uuid.UUID, token: str) -> CollectionSession:
    try:
        return context.access.open(collection_id, token)
    except APIError as error:
        code = "ENDPOINT_NOT_FOUND" if error.status == 404 else "PERMISSION_DENIED"
        raise TaskFailed((code, code.lower().replace("_", " "),
                          f"Collection {collection_id}: {error.message}")) from None


def _start(context: SliceContext, task_id: uuid.UUID
           ) -> tuple[Slice, dict[str, Any], dict[uuid.UUID, DependentToken]] | None:
    """Begin a slice: None when the task ended (canceled, expired) or is not ours, unless
    it ended with a large file's copy left unfinished (then the slice only removes it)."""
    with transaction(context.sessions) as session:
        task = session.get(Task, task_id)
        if task is None or task.claimed_by != context.worker:
            return None
        # Read before the task may end here: an ended task keeps no grant.
        try:
            grants: dict[uuid.UUID, DependentToken] | TaskFailed = _grants(context, session,
                                                                           task)
        except TaskFailed as failed:
            grants = failed
        leftovers = checkpoints.any_for(session, task.id)
        if _end_if_stopped(session, task):
            if isinstance(grants, TaskFailed) or not leftovers:
                return None
            ended = Slice(context, task)
            ended.ended = True
            return ended, dict(task.options), grants
        if pauses.refresh(session, task):
            # Handed back at once: resumed, any runner may take it up without waiting.
            task.claimed_by, task.lease_until = None, None
            return None
        if task.started_time is None:
            task.started_time = utcnow()
            task.nice_status = "OK"
            add_event(session, task.id, ("STARTED", "started", '{"type": "Isthmus Transfer"}'),
                      is_error=False)
        if isinstance(grants, TaskFailed):
            _fail(session, task, grants.event)
            return None
        return Slice(context, task), dict(task.options), grants


def _grants(context: SliceContext, session: Session, task: Task
            ) -> dict[uuid.UUID, DependentToken]:
    collections = [task.source_endpoint_id]
    if task.destination_endpoint_id not in (None, task.source_endpoint_id):
        collections.append(task.destination_endpoint_id)
    return {collection: _grant(context, session, task, collection)
            for collection in collections}


def _sweep(current: Slice, worker: Worker) -> None:
    """Once a task has ended, however it ended, remove what crashes left of its large files'
    copies (a finished copy leaves nothing; an interrupted one keeps its temporary file to
    resume from)."""
    left = checkpoints.of_task(current.context.sessions, current.task_id)
    if not left:
        return
    with reading(current.context.sessions) as session:
        status = session.scalar(select(Task.status).where(Task.id == current.task_id))
    if status in ("ACTIVE", "INACTIVE"):
        return
    for item_id, destination in left:
        worker.discard_part(item_id, destination)
    checkpoints.forget(current.context.sessions, [item_id for item_id, _ in left])


def work_on(context: SliceContext, task_id: uuid.UUID) -> None:
    """Work on a claimed task for one slice, then hand it back (or end it)."""
    started = _start(context, task_id)
    if started is None:
        return
    current, options, grants = started
    try:
        with current.holding_lease():
            _work(context, current, options, grants)
    except TaskFailed as failed:  # a collection could not be reached
        _finish_failed(current, failed.event)
    except LeaseLost:
        logger.info("task %s: another runner took it over", task_id)
    finally:
        _hand_back(context, task_id)


def _work(context: SliceContext, current: Slice, options: dict[str, Any],
          grants: dict[uuid.UUID, DependentToken]) -> None:
    tokens = _tokens(context, current.task_id, grants)
    with ExitStack() as opened:
        sessions = [opened.enter_context(_open(context, collection, token))
                    for collection, token in tokens.items()]
        worker = Worker(current, sessions[0], sessions[-1], options)
        if not current.ended:
            _run(current, worker)
        _sweep(current, worker)


def _run(current: Slice, worker: Worker) -> None:
    with (ThreadPoolExecutor(max(PARALLEL_FILES, PARALLEL_SMALL),
                             thread_name_prefix="isthmus-copy") as pool,
          ThreadPoolExecutor(1, thread_name_prefix="isthmus-commit") as commits):
        _run_in(current, worker, pool, Committing(commits))


class Committing:
    """The run of small files being committed in the background (`Worker.commit_small`)
    while the next one is prepared: its syncs and read-backs wait on the disk, the
    preparing mostly on the CPU."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.future: Future[list[WorkItem]] | None = None

    def start(self, worker: Worker, run: SmallRun) -> None:
        self.future = self.executor.submit(worker.commit_small, run)

    def settle(self) -> list[WorkItem]:
        """Wait for the run being committed (its files are then recorded in the batch); its
        items left for `Worker.do`."""
        future, self.future = self.future, None
        return [] if future is None else future.result()


def _run_in(current: Slice, worker: Worker, pool: ThreadPoolExecutor,
            committing: Committing) -> None:
    ends = time.monotonic() + SLICE_SECONDS
    while True:
        with reading(current.context.sessions) as session:
            # On the connection: the ORM's row handling cost 50 us an item.
            items = [WorkItem(*row) for row in session.connection().execute(
                _PENDING_ITEMS, {"task_id": current.task_id})]
        if not items:
            current.flush()
            _succeed(current)
            return
        for item in _groups(items, worker):
            if current.must_stop():
                committing.settle()  # what it could not copy stays pending
                current.flush()
                _stop(current)
                return
            if not _did(current, worker, item, pool, committing):
                return
            if current.checkpoint():
                committing.settle()
                current.flush()
                _stop(current)
                return
            if time.monotonic() > ends:
                break
        # Every item fetched is done (or left pending) before the next fetch sees the table.
        left = committing.settle()
        if left and not _did(current, worker, left, pool, committing):
            return
        current.flush()
        if time.monotonic() > ends:
            return


@dataclass
class SmallFiles:
    """A run of small files, copied and committed together (`Worker.prepare_small`)."""

    items: list[WorkItem]


def _groups(items: list[WorkItem], worker: Worker
            ) -> Iterator[WorkItem | list[WorkItem] | SmallFiles]:
    """The items in order, runs of files (copied in parallel) together, and runs of small
    files together in larger runs."""
    files: list[WorkItem] = []
    small = SmallFiles([])
    small_bytes = 0
    for item in items:
        if worker.small(item):
            if files:
                yield files
                files = []
            small.items.append(item)
            small_bytes += item.size or 0
            if len(small.items) == SMALL_RUN_FILES or small_bytes >= SMALL_RUN_BYTES:
                yield small
                small, small_bytes = SmallFiles([]), 0
            continue
        if small.items:
            yield small
            small, small_bytes = SmallFiles([]), 0
        if item.kind == FILE:
            files.append(item)
            if len(files) == PARALLEL_FILES:
                yield files
                files = []
            continue
        if files:
            yield files
            files = []
        yield item
    if files:
        yield files
    if small.items:
        yield small


def _attempt(worker: Worker, item: WorkItem) -> BaseException | None:
    try:
        worker.do(item)
    except Exception as error:  # handed to `_did`, which decides
        return error
    return None


def _did(current: Slice, worker: Worker, group: WorkItem | list[WorkItem] | SmallFiles,
         pool: ThreadPoolExecutor, committing: Committing) -> bool:
    """Do an item (or a run of files, in parallel); whether the slice goes on. A failure
    ends the task once every file of the run has finished. A run of small files is
    prepared now and committed in the background (`Committing`); the files of the run
    before it that the fast way could not copy are then done one by one, as any file."""
    if isinstance(group, SmallFiles):
        run = worker.prepare_small(group.items, pool)
        try:
            items = committing.settle()
        except BaseException:
            run.abort()
            raise
        committing.start(worker, run)
        if not items:
            return True
    else:
        left = committing.settle()
        if left and not _did(current, worker, left, pool, committing):
            return False
        items = group if isinstance(group, list) else [group]
    if len(items) == 1:
        outcomes = [_attempt(worker, items[0])]
    else:
        outcomes = list(pool.map(lambda item: _attempt(worker, item), items))
    for item, error in zip(items, outcomes, strict=True):
        if error is None:
            continue
        if isinstance(error, (LeaseLost, SQLAlchemyError)):
            raise error  # the runner tries again later (the database is what failed)
        committing.settle()  # its files are recorded before the task stops or fails
        current.flush()
        if isinstance(error, Stopped):
            _stop(current)
        elif isinstance(error, TaskFailed):
            _finish_failed(current, error.event)
        else:
            # A fault of ours on this item: fail the task rather than retry it forever.
            logger.error("task %s: item %s failed unexpectedly", current.task_id, item.id,
                         exc_info=error)
            _finish_failed(current, ("INTERNAL_ERROR", "internal error",
                                     f"An internal error stopped the task at "
                                     f"'{item.source_path}'"))
        return False
    return True


def _end_if_stopped(session: Session, task: Task) -> bool:
    """End a task that was canceled or whose deadline passed; whether it ended."""
    if task.cancel_requested:
        tasks.finish_canceled(session, task)
        return True
    if task.deadline < utcnow():
        pending = task.subtasks_total - (task.subtasks_succeeded + task.subtasks_failed
                                         + task.subtasks_skipped_errors)
        task.subtasks_expired += max(pending, 0)
        finish(session, task, "FAILED", ("DEADLINE_EXCEEDED", "deadline exceeded",
                                         "The task's deadline passed before it completed"))
        return True
    return False


def _stop(current: Slice) -> None:
    """The task was canceled, expired or paused (or the runner is stopping: then hand it
    back)."""
    with transaction(current.context.sessions) as session:
        task = session.get(Task, current.task_id)
        if task is not None and task.status in ("ACTIVE", "INACTIVE"):
            _end_if_stopped(session, task)


def _succeed(current: Slice) -> None:
    with transaction(current.context.sessions) as session:
        task = session.get(Task, current.task_id)
        if task is not None and task.status == "ACTIVE" and not _end_if_stopped(session, task):
            finish(session, task, "SUCCEEDED", SUCCEEDED_EVENT)


def _fail(session: Session, task: Task, event: Event) -> None:
    task.subtasks_failed += 1
    finish(session, task, "FAILED", event)


def _finish_failed(current: Slice, event: Event) -> None:
    with transaction(current.context.sessions) as session:
        task = session.get(Task, current.task_id)
        if task is not None and task.status == "ACTIVE":
            _fail(session, task, event)


def _hand_back(context: SliceContext, task_id: uuid.UUID) -> None:
    with transaction(context.sessions) as session:
        session.execute(update(Task).where(Task.id == task_id,
                                           Task.claimed_by == context.worker).values(
            claimed_by=None, lease_until=None, last_served=utcnow()))

