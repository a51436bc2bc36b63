"""Doing one task item: expand a directory, copy a file (hashing while it streams, verified
before it becomes visible), create a link, delete a path. What was done goes into the
slice's batch; errors are retried with backoff when transient, skipped when the task says
so, and otherwise end the task (`TaskFailed`)."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import posixpath
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from isthmus.core.collection_access import CollectionSession
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.storage.connector import AtomicWriter, Entry, EntryType, ReadStream, WriteOptions
from isthmus.storage.digests import Chunk, canonical_algorithm, digest_from_hex
from isthmus.storage.errors import (
    AlreadyExists,
    ChecksumMismatch,
    IntegrityError,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotSupported,
    PermissionDenied,
    QuotaExceeded,
    StorageError,
)
from isthmus.transfer import checkpoints
from isthmus.transfer.progress import Event
from isthmus.transfer.task_models import (
    DELETE,
    DELETE_EXTRA,
    DONE,
    FAILED,
    FILE,
    SKIPPED,
    SKIPPED_ERROR,
    SYMLINK,
    TREE,
    WorkItem,
)

if TYPE_CHECKING:
    from isthmus.transfer.engine import Batch, Slice

T = TypeVar("T")

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0
# A file this large is written down as soon as it is done (a crash never copies it twice).
LARGE_FILE = 8 * 1024 * 1024
# Files up to this size are copied in runs (`Worker.prepare_small`), shared by this many threads
# when they are read over the network (S3, WebDAV), whose waits the threads overlap. Local files
# are read by one thread: more only contend for the GIL (10,000 files of 4 KiB: 9.1 s with one,
# 9.9 s with two, 10.9 s with four).
SMALL_FILE = 1024 * 1024
PARALLEL_SMALL = 4
# How long a run goes on taking files before it is committed.
SMALL_RUN_SECONDS = 2.0
# A large file is read in buffers this big, each handed to two hashing threads: with 256 KiB
# the hand-offs cost 0.7 s more CPU per 2 GiB, with 2-4 MiB the kernel's copies cost
# 0.4-0.8 s more (the buffers no longer fit the CPU's cache). At most half a checkpoint step.
LARGE_CHUNK = 1024 * 1024
GLOB_CHARACTERS = "*?["


@dataclass
class _Prepared:
    """A small file written under its temporary name, waiting for its run's commit."""

    item: WorkItem
    writer: AtomicWriter
    algorithm: str


@dataclass
class SmallRun:
    """A run of small files written under their temporary names (`Worker.prepare_small`),
    and the items that must go the general way."""

    prepared: list[_Prepared]
    left: list[WorkItem]

    def abort(self) -> None:
        for ready in self.prepared:
            ready.writer.abort()


def _read_whole(stream: ReadStream, size: int) -> bytes:
    """The whole file, in as few reads as the storage gives it: a byte more is asked for,
    so a file that grew is noticed by the writer's size check, and a read that returns
    less than asked for has reached the end."""
    first = stream.read(size + 1)
    if len(first) >= size:
        return first
    pieces = [first]
    got = len(first)
    while got <= size and (more := stream.read(size + 1 - got)):
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


class TaskFailed(Exception):  # noqa: N818  (it carries the event that ends the task)
    def __init__(self, event: Event) -> None:
        super().__init__(event[2])
        self.event = event


class Stopped(Exception):  # noqa: N818  (control flow)
    """The task was canceled or its deadline passed, or the runner is stopping."""


class LeaseLost(Exception):  # noqa: N818  (control flow: another runner has the task)
    pass


class Transient(Exception):  # noqa: N818
    """An error worth trying again (storage hiccups, a verification that failed)."""

    def __init__(self, event: Event) -> None:
        super().__init__(event[2])
        self.event = event


class SourceError(Exception):
    """The source path is missing or unreadable: skipped with skip_source_errors."""

    def __init__(self, event: Event) -> None:
        super().__init__(event[2])
        self.event = event


def _event(code: str, what: str, path: str, message: str) -> Event:
    return (code, code.lower().replace("_", " "), f"Error ({what})\nFile: {path}\n{message}")


def classify(error: Exception, what: str, path: str, *, on_source: bool,
             fail_on_quota: bool) -> Exception:
    """The error to raise for a storage or access failure of ``what`` on ``path``."""
    message = getattr(error, "message", str(error))
    if isinstance(error, NotFound):
        event = _event("FILE_NOT_FOUND", what, path, message)
        return SourceError(event) if on_source else TaskFailed(event)
    if isinstance(error, NotSupported):  # a link on S3 or WebDAV: no retry will make one
        return TaskFailed(_event("NOT_SUPPORTED", what, path, message))
    if isinstance(error, PermissionDenied) or (isinstance(error, APIError)
                                               and error.status in (401, 403)):
        event = _event("PERMISSION_DENIED", what, path, message)
        return SourceError(event) if on_source else TaskFailed(event)
    if isinstance(error, QuotaExceeded):
        event = _event("QUOTA_EXCEEDED", what, path, message)
        return TaskFailed(event) if fail_on_quota else Transient(event)
    if isinstance(error, IntegrityError):
        return Transient(_event("VERIFY_CHECKSUM", what, path, message))
    if isinstance(error, (NotADirectory, IsADirectory, AlreadyExists)):
        return TaskFailed(_event("FILE_EXISTS" if isinstance(error, AlreadyExists)
                                 else "INVALID_PATH", what, path, message))
    if isinstance(error, APIError):
        return TaskFailed(_event("ENDPOINT_ERROR", what, path, message))
    return Transient(_event("ENDPOINT_ERROR", what, path, message))


def _matches(rule: dict[str, Any], entry: Entry) -> bool:
    kind = rule.get("type")
    if (kind == "dir" and not entry.is_dir()) or (kind == "file" and entry.is_dir()):
        return False
    return fnmatch.fnmatchcase(entry.name, str(rule["name"]))


def included(rules: Iterable[dict[str, Any]] | None, entry: Entry) -> bool:
    """First matching rule wins; an entry no rule matches is included."""
    for rule in rules or ():
        if _matches(rule, entry):
            return bool(rule["method"] == "include")
    return True


class Worker:
    def __init__(self, current: Slice, source: CollectionSession,
                 destination: CollectionSession, options: dict[str, Any]) -> None:
        self.slice = current
        self.source = source
        self.destination = destination
        self.options = options
        self.known_dirs: set[str] = set()
        self.retrying = False

    @property
    def batch(self) -> Batch:
        return self.slice.batch

    # --- recording ------------------------------------------------------------------

    def _record(self, item: WorkItem, state: str, **fields: Any) -> None:
        row = {"id": item.id, "state": state, "size": item.size, "checksum": None,
               "checksum_algorithm": item.checksum_algorithm, "error_code": None,
               "error_details": None, "error_time": None}
        row.update(fields)
        self.batch.record(row, {DONE: "subtasks_succeeded", SKIPPED: "subtasks_succeeded",
                                SKIPPED_ERROR: "subtasks_skipped_errors",
                                FAILED: "subtasks_failed"}[state])

    def _add(self, kind: str, source_path: str, destination_path: str | None,
             size: int | None = None) -> None:
        self.batch.add({
            "kind": kind, "state": "pending", "source_path": source_path,
            "destination_path": destination_path, "submitted": False, "size": size,
            "checksum": None, "checksum_algorithm": None, "external_checksum": None,
            "error_code": None, "error_details": None, "error_time": None})

    # --- doing an item --------------------------------------------------------------

    def do(self, item: WorkItem) -> None:
        action: Callable[[WorkItem], None] = {
            FILE: self._copy, TREE: self._expand, SYMLINK: self._symlink,
            DELETE: self._delete, DELETE_EXTRA: self._delete_extra}[item.kind]
        try:
            self._with_retries(lambda: action(item))
        except SourceError as error:
            if not self.options.get("skip_source_errors") or self.slice.type != "TRANSFER":
                self._record(item, FAILED, error_code=error.event[0],
                             error_details=error.event[2], error_time=utcnow())
                raise TaskFailed(error.event) from None
            self._record(item, SKIPPED_ERROR, error_code=error.event[0],
                         error_details=error.event[2], error_time=utcnow())
        except TaskFailed as failed:
            self._record(item, FAILED, error_code=failed.event[0],
                         error_details=failed.event[2], error_time=utcnow())
            raise

    def _with_retries(self, action: Callable[[], None]) -> None:
        """Run ``action``, again after a transient error (with exponential backoff, each
        failure a fault and an event) until it succeeds or `MAX_ATTEMPTS` have failed."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                action()
            except Transient as error:
                self.batch.fault(error.event)
                self.retrying = True
                if attempt + 1 == MAX_ATTEMPTS:
                    raise TaskFailed(error.event) from None
                self._sleep(min(BACKOFF_SECONDS * 2 ** attempt, MAX_BACKOFF_SECONDS))
            else:
                if self.retrying:
                    self.batch.status("OK")
                    self.retrying = False
                return

    def _sleep(self, seconds: float) -> None:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            if self.slice.checkpoint():
                raise Stopped
            time.sleep(max(0.0, min(0.1, ends - time.monotonic())))

    def _guard(self, what: str, path: str, call: Callable[[], T], *,
               on_source: bool = False) -> T:
        try:
            return call()
        except (StorageError, APIError) as error:
            raise classify(error, what, path, on_source=on_source,
                           fail_on_quota=bool(self.options.get("fail_on_quota_errors"))
                           ) from None

    # --- directories ----------------------------------------------------------------

    def _ensure_dir(self, path: str) -> None:
        """``mkdir -p`` on the destination."""
        if path in self.known_dirs:
            return
        found = self._guard("make directories", path, lambda: self.destination.find(path))
        if found is None:
            parent = posixpath.dirname(path)
            if parent != path:
                self._ensure_dir(parent)
            try:
                self._guard("make directories", path, lambda: self.destination.mkdir(path))
            except TaskFailed:
                again = self.destination.find(path)  # made meanwhile: fine
                if again is None or not again.is_dir():
                    raise
        elif not found.is_dir():
            raise TaskFailed(_event("INVALID_PATH", "make directories", path,
                                    "A file is in the way of a directory"))
        self.known_dirs.add(path)

    def _expand(self, item: WorkItem) -> None:
        source = self._guard("list", item.source_path,
                             lambda: self.source.path(item.source_path), on_source=True)
        target = self._guard("make directories", str(item.destination_path),
                             lambda: self.destination.path(str(item.destination_path)))
        entry = self._guard("stat", source, lambda: self.source.stat(source), on_source=True)
        if not entry.is_dir():
            raise TaskFailed(_event("INVALID_PATH", "list", source,
                                    "A recursive item must name a directory"))
        children = self._guard("list", source, lambda: self._children(source), on_source=True)
        self._ensure_dir(target)
        if self.options.get("delete_destination_extra"):
            self._mark_extras(target, children)
        # No storage call from here on: a retry never counts anything twice.
        if item.submitted:
            self.batch.count("directories")
        rules = self.options.get("filter_rules")
        for child_path, child in children:
            if child.type is EntryType.SYMLINK:
                self.batch.count("symlinks")  # found while recursing: not followed
                continue
            if not included(rules, child):
                continue
            destination = posixpath.join(target, child.name)
            if child.is_dir():
                self.batch.count("directories")
                self._add(TREE, child_path, destination)
            elif child.is_file():
                self.batch.count("files")
                self._add(FILE, child_path, destination, child.size)
        self._record(item, DONE)

    def _children(self, path: str) -> list[tuple[str, Entry]]:
        return sorted(self.source.list(path, links=True), key=lambda pair: pair[1].name)

    def _mark_extras(self, target: str, children: list[tuple[str, Entry]]) -> None:
        present = {child.name: child for _, child in children
                   if child.type is not EntryType.SYMLINK}
        existing = self._guard("list", target, lambda: self.destination.list(target,
                                                                             links=True))
        for path, entry in existing:
            twin = present.get(entry.name)
            if twin is None or twin.is_dir() != entry.is_dir():
                self._add(DELETE_EXTRA, path, path)

    # --- files ----------------------------------------------------------------------

    def _algorithm(self, item: WorkItem) -> str:
        named = item.checksum_algorithm or ("MD5" if item.external_checksum else "SHA256")
        return canonical_algorithm(named)

    def _current(self, item: WorkItem, entry: Entry, destination: str,
                 algorithm: str) -> bool:
        """Whether the sync level finds the destination already current."""
        level = self.options.get("sync_level")
        if level is None:
            return False
        existing = self._guard("stat", destination, lambda: self.destination.find(destination))
        if existing is None or not existing.is_file():
            return False
        if level == 0:
            return True
        if existing.size != entry.size:
            return False
        if level == 1:
            return True
        if level == 2:
            return existing.mtime >= entry.mtime
        source_digest = self._guard("checksum", item.source_path, lambda: self.source.digests(
            item.source_path, [algorithm]), on_source=True)
        destination_digest = self._guard("checksum", destination, lambda: self.destination
                                         .digests(destination, [algorithm]))
        self.batch.count("bytes_checksummed", 2 * entry.size)
        return source_digest == destination_digest

    def _copy(self, item: WorkItem) -> None:
        source = self._guard("stat", item.source_path,
                             lambda: self.source.path(item.source_path), on_source=True)
        destination = self._guard("make directories", str(item.destination_path),
                                  lambda: self.destination.path(str(item.destination_path)))
        entry = self._guard("stat", source, lambda: self.source.stat(source), on_source=True)
        if entry.is_dir():
            raise TaskFailed(_event("INVALID_PATH", "transfer", source,
                                    "The source is a directory: transfer it recursively"))
        algorithm = self._algorithm(item)
        if self._current(item, entry, destination, algorithm):
            if item.submitted:
                self.batch.count("files")
            self.batch.count("files_skipped")
            self._record(item, SKIPPED, size=entry.size)
            return
        self._ensure_dir(posixpath.dirname(destination))
        size, checksum = self._stream(item, source, destination, algorithm, entry)
        if item.submitted:
            self.batch.count("files")
        self.batch.count("files_transferred")
        if self.options.get("verify_checksum"):
            self.batch.count("bytes_checksummed", size)
        self._record(item, DONE, size=size, checksum=checksum,
                     checksum_algorithm=algorithm.upper())
        if size >= LARGE_FILE:
            self.slice.flush()

    def _stream(self, item: WorkItem, source: str, destination: str, algorithm: str,
                entry: Entry) -> tuple[int, str]:
        """Copy, hashing the bytes as they pass; the file appears only once the size (and,
        with verify_checksum, the digest re-read from the destination) matches. A large file
        is hashed and verified in threads beside the copy, and checkpointed as it goes: after
        a crash it resumes from its last durable checkpoint (`checkpoints`)."""
        large = entry.size >= LARGE_FILE
        # Checked at submission: it parses.
        expected = ({algorithm: digest_from_hex(algorithm, item.external_checksum)}
                    if item.external_checksum else None)
        options = WriteOptions(
            expected_size=entry.size, expected_digests=expected, algorithms=(algorithm,),
            mtime=entry.mtime if self.options.get("preserve_timestamp") else None,
            overwrite=True, verify_on_disk=bool(self.options.get("verify_checksum")),
            resume_key=checkpoints.part_key(self.slice.task_id, item.id), background=large)
        writer = self._guard("transfer", destination,
                             lambda: self.destination.begin_write(destination, options))
        with writer:
            offset = self._resume(item, writer, source, destination, entry)
            stream = self._guard("transfer", source, lambda: self.source.open_read(
                source, offset), on_source=True)
            with stream:
                if large:
                    try:
                        self._pump_checkpointed(item, stream, writer, source, destination,
                                                entry)
                    except (Stopped, LeaseLost):
                        # Paused, the server stopping, or the task taken over after this
                        # runner stalled: kept as a crash would keep it, so the copy goes on
                        # from its last checkpoint (a task that ends instead has it swept).
                        writer.suspend()
                        raise
                else:
                    self._pump(stream, writer, source, destination, stream.chunk_size)
            try:
                result = writer.commit()
            except ChecksumMismatch as error:
                if item.external_checksum:
                    raise TaskFailed(_event("CHECKSUM_MISMATCH", "transfer", source,
                                            error.message)) from None
                raise
            except (StorageError, APIError) as error:
                raise classify(error, "transfer", destination, on_source=False,
                               fail_on_quota=bool(self.options.get(
                                   "fail_on_quota_errors"))) from None
        if large:
            checkpoints.forget(self.slice.context.sessions, [item.id])
        return result.size, result.hexdigest(algorithm)

    # --- small files ------------------------------------------------------------------
    #
    # A run of small files costs mostly per-file overhead, not bytes: each is read whole,
    # hashed and written under its temporary name in a tight loop (the pool's threads share
    # the run), then the whole run is committed in one durable step (`commit_all`: verified
    # and renamed, two syncfs instead of two fsyncs per file) and only then recorded. The
    # engine prepares the next run while one commits, so the disk's waits hide the work.
    # Anything unusual about a file (an error, a file that changed) sends it back to `do`,
    # which copies it alone with retries, skipping or failing exactly as for any file.

    def small(self, item: WorkItem) -> bool:
        """Whether ``item`` may go through `prepare_small` (which holds a run's writers open
        together: storage that cannot, S3 and WebDAV, copies its small files one by one)."""
        return (item.kind == FILE and item.size is not None and item.size <= SMALL_FILE
                and self.options.get("sync_level") is None
                and self.destination.holds_many_writers)

    def prepare_small(self, items: list[WorkItem], pool: Executor) -> SmallRun:
        """Read, hash and write a run of small files under their temporary names (see above;
        `commit_small` ends the run). Files not reached within `SMALL_RUN_SECONDS` (a slow
        storage) stay pending for a later run, so a run never keeps a cancel waiting long."""
        until = time.monotonic() + SMALL_RUN_SECONDS
        # Storage that holds many writers open is local files (see above).
        threads = 1 if self.source.holds_many_writers else PARALLEL_SMALL
        shares = [items[start::threads] for start in range(threads)]
        shared = list(pool.map(lambda share: self._prepare_share(share, until), shares))
        return SmallRun([ready for share, _ in shared for ready in share],
                        [item for _, failed in shared for item in failed])

    def commit_small(self, run: SmallRun) -> list[WorkItem]:
        """Commit a prepared run durably in one step and record its files; the items left
        for `do` (those that could not be prepared or committed)."""
        left = list(run.left)
        if not run.prepared:
            return left
        try:
            outcomes = self.destination.commit_all([ready.writer for ready in run.prepared])
        except BaseException:
            run.abort()
            raise
        verified = bool(self.options.get("verify_checksum"))
        for ready, outcome in zip(run.prepared, outcomes, strict=True):
            if isinstance(outcome, StorageError):
                left.append(ready.item)
                continue
            if ready.item.submitted:
                self.batch.count("files")
            self.batch.count("files_transferred")
            self.batch.count("bytes_transferred", outcome.size)
            if verified:
                self.batch.count("bytes_checksummed", outcome.size)
            self._record(ready.item, DONE, size=outcome.size,
                         checksum=outcome.hexdigest(ready.algorithm),
                         checksum_algorithm=ready.algorithm.upper())
        return left

    def _prepare_share(self, items: list[WorkItem], until: float
                       ) -> tuple[list[_Prepared], list[WorkItem]]:
        """The files of ``items`` written under their temporary names, and those that must
        go the general way; the rest once ``until`` has passed are left pending."""
        prepared, failed = [], []
        try:
            for index, item in enumerate(items):
                if index and time.monotonic() > until:
                    break
                ready = self._prepare_small(item)
                if ready is None:
                    failed.append(item)
                else:
                    prepared.append(ready)
        except BaseException:
            for ready in prepared:
                ready.writer.abort()
            raise
        return prepared, failed

    def _prepare_small(self, item: WorkItem) -> _Prepared | None:
        """Read, hash and write one small file under its temporary name; None when it must
        go the general way."""
        try:
            source = self.source.path(item.source_path)
            destination = self.destination.path(str(item.destination_path))
            algorithm = self._algorithm(item)
            self._ensure_dir(posixpath.dirname(destination))
            with self.source.open_read(source) as stream:
                size = stream.entry.size
                if size > SMALL_FILE:
                    return None
                data = _read_whole(stream, size)
                expected = ({algorithm: digest_from_hex(algorithm, item.external_checksum)}
                            if item.external_checksum else None)
                options = WriteOptions(
                    expected_size=size, expected_digests=expected, algorithms=(algorithm,),
                    mtime=stream.entry.mtime if self.options.get("preserve_timestamp") else None,
                    overwrite=True, verify_on_disk=bool(self.options.get("verify_checksum")),
                    resume_key=checkpoints.part_key(self.slice.task_id, item.id))
            writer = self.destination.begin_write(destination, options)
        except (StorageError, APIError, TaskFailed, Transient):
            return None
        try:
            writer.write(data)  # a failed write discards the temporary file
        except StorageError:
            return None
        return _Prepared(item, writer, algorithm)

    def _pump(self, stream: ReadStream, writer: AtomicWriter, source: str, destination: str,
              chunk_size: int, after: Callable[[int], None] | None = None,
              buffers: Sequence[memoryview] = ()) -> None:
        """Move the stream's bytes into the writer (``after`` is told the writer's size after
        each chunk), read into ``buffers`` in turn when there are any (more than the writer's
        `chunks_held`), else into new ones."""
        turn = 0

        def read() -> Chunk:
            nonlocal turn
            if not buffers:
                return stream.read(chunk_size)
            buffer = buffers[turn % len(buffers)]
            turn += 1
            return buffer[:stream.readinto(buffer)]

        while chunk := self._guard("transfer", source, read, on_source=True):
            self._guard("transfer", destination, partial(writer.write, chunk))
            self.batch.count("bytes_transferred", len(chunk))
            if after is not None:
                after(writer.size)
            # Stopping is looked at every buffer: a server asked to stop waits for no flush.
            if (self.slice.due() and self.slice.checkpoint()) or self.slice.must_stop():
                raise Stopped  # see `_stream`: a large file's copy is kept, others discarded

    def _pump_checkpointed(self, item: WorkItem, stream: ReadStream, writer: AtomicWriter,
                           source: str, destination: str, entry: Entry) -> None:
        """`_pump` a large file, taking checkpoints beside the copy, one at a time, every half
        step: the copy never gets more than a step past the last one written down (its
        buffers are at most half a step)."""
        half_step = checkpoints.step_for(entry.size) // 2
        due = writer.size + half_step
        taking: Future[None] | None = None
        # Buffers reused from chunk to chunk: new memory for every 4 MiB read cost more than
        # the reading (the writer may still be hashing `chunks_held` of them).
        buffers = [memoryview(bytearray(LARGE_CHUNK)) for _ in range(writer.chunks_held + 1)]
        with ThreadPoolExecutor(1, thread_name_prefix="isthmus-checkpoint") as pool:

            def after(written: int) -> None:
                nonlocal due, taking
                if written >= due < entry.size:
                    if taking is not None:
                        taking.result()
                    taking = pool.submit(self._checkpoint, item, writer, destination, entry)
                    due = written + half_step

            self._pump(stream, writer, source, destination, LARGE_CHUNK, after, buffers)
            if taking is not None:
                taking.result()

    def _resume(self, item: WorkItem, writer: AtomicWriter, source: str, destination: str,
                entry: Entry) -> int:
        """Where the copy starts: after the durable part of what a copy of this item that a
        crash cut short left, when the source has not changed since (else from the start).
        The kept bytes are not sent again: the source's are hashed, the destination's are
        read back by the verification."""
        found = writer.resumable
        if not found:
            return 0
        offset = 0
        if entry.size >= LARGE_FILE:
            offset = min(found, checkpoints.find(self.slice.context.sessions, item.id, entry))
        if offset:
            prefix = self._guard("transfer", source, lambda: self.source.open_read(
                source, 0, offset), on_source=True)
            with prefix:
                self._guard("transfer", destination, lambda: writer.resume(offset, prefix))
        else:
            self._guard("transfer", destination, lambda: writer.resume(0, ()))
        # What the earlier copy wrote beyond the offset is written again: say how much.
        self.batch.note(("RESUMED", "resumed", json.dumps({
            "file": destination, "size": entry.size, "found": found, "offset": offset})))
        self.slice.flush()  # written down now: another crash may come before the next flush
        return offset

    def _checkpoint(self, item: WorkItem, writer: AtomicWriter, destination: str,
                    entry: Entry) -> None:
        durable = self._guard("transfer", destination, writer.checkpoint)
        if durable:
            checkpoints.save(self.slice.context.sessions, self.slice.task_id, item.id,
                             destination, durable, entry)

    def discard_part(self, item_id: int, destination: str) -> None:
        """Remove what a crash left of an item's copy (its temporary file), if anything."""
        options = WriteOptions(algorithms=(), resume_key=checkpoints.part_key(
            self.slice.task_id, item_id))
        with contextlib.suppress(StorageError, APIError):
            self.destination.begin_write(destination, options).abort()

    def _symlink(self, item: WorkItem) -> None:
        source = self._guard("stat", item.source_path,
                             lambda: self.source.path(item.source_path), on_source=True)
        parent, name = posixpath.split(source)
        found = [entry for _, entry in self._guard("list", parent, lambda: self.source.list(
            parent, links=True), on_source=True) if entry.name == name]
        if not found or found[0].type is not EntryType.SYMLINK or not found[0].link_target:
            raise SourceError(_event("FILE_NOT_FOUND", "symlink", source,
                                     "The source is not a symlink"))
        destination = self.destination.path(str(item.destination_path))
        self._ensure_dir(posixpath.dirname(destination))
        target = str(found[0].link_target)
        self._guard("symlink", destination, lambda: self.destination.symlink(destination,
                                                                             target))
        self.batch.count("symlinks")
        self._record(item, DONE)

    # --- deleting ---------------------------------------------------------------------

    def _delete(self, item: WorkItem) -> None:
        path = self._guard("delete", item.source_path,
                           lambda: self.source.path(item.source_path), on_source=True)
        parent, name = posixpath.split(path)
        if self.options.get("interpret_globs") and any(c in name for c in GLOB_CHARACTERS):
            listed = self._guard("list", parent, lambda: self.source.list(parent, links=True),
                                 on_source=True)
            for child_path, child in listed:
                if fnmatch.fnmatchcase(child.name, name):
                    self._add(DELETE, child_path, None)
            self._record(item, DONE)
            return
        entry = self._find_any(path)
        if entry is None:
            if self.options.get("ignore_missing"):
                self._record(item, DONE)
                return
            raise TaskFailed(_event("FILE_NOT_FOUND", "delete", path, f"'{path}' not found"))
        if entry.type is EntryType.DIR and not self.options.get("recursive"):
            raise TaskFailed(_event("INVALID_PATH", "delete", path,
                                    "A directory is deleted only by a recursive delete"))
        self.batch.count("directories" if entry.type is EntryType.DIR else "files")
        self._guard("delete", path, lambda: self.source.delete(path))
        self._record(item, DONE)

    def _find_any(self, path: str) -> Entry | None:
        """The entry at ``path`` itself (a link as a link, dangling ones too)."""
        parent, name = posixpath.split(path)
        if not name:
            raise TaskFailed(_event("INVALID_PATH", "delete", path,
                                    "A collection's root cannot be deleted"))
        try:
            listed = self.source.list(parent, links=True)
        except NotFound:
            return None
        except (StorageError, APIError) as error:
            raise classify(error, "delete", path, on_source=False,
                           fail_on_quota=False) from None
        return next((entry for _, entry in listed if entry.name == name), None)

    def _delete_extra(self, item: WorkItem) -> None:
        path = str(item.destination_path)
        try:
            self.destination.delete(path)
        except NotFound:
            pass  # gone already
        except (StorageError, APIError) as error:
            raise classify(error, "delete", path, on_source=False,
                           fail_on_quota=False) from None
        self._record(item, DONE)
