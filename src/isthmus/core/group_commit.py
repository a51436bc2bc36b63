"""Group commit: many small write units of work share one transaction and one commit.

The token endpoint writes a row or two per request. Alone, each request pays
for a connection, ``BEGIN IMMEDIATE`` (SQLite's write lock, see ``db``), the
commit and two thread hand-offs, which cost more than the inserts. Here one
writer thread takes every unit waiting in the queue, runs each in its own
savepoint (a failing unit rolls back alone and gets its own exception), and
commits once; each caller's result is delivered only after that commit, so an
answer never reports a write that could still be lost. On PostgreSQL the same
batching turns many commit flushes into one.

Only short units belong here: everything queued waits for the slowest one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.db import CommitThenRaise, transaction

T = TypeVar("T")


MAX_BATCH = 64

_Unit = tuple[Callable[[Session], Any], "Future[Any]"]


class GroupCommitter:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._queue: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a shared transaction; its result once that has committed."""
        future: Future[T] = Future()
        self._ensure_started()
        self._queue.put((work, future))
        return await asyncio.wrap_future(future)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write_forever, name="isthmus-group-commit", daemon=True
                )
                self._thread.start()

    def _write_forever(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Unit]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with transaction(self._factory) as session:
                for work, future in batch:
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        with session.begin_nested():
                            try:
                                outcomes.append((future, work(session), None))
                            except CommitThenRaise as kept:
                                outcomes.append((future, None, kept.error))
                    except Exception as error:  # handed to its caller below
                        outcomes.append((future, None, error))
        except Exception as error:  # the commit failed: nothing was written
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for future, result, failure in outcomes:
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(result)
