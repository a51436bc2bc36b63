"""Group commit: many small write units of work share one transaction and one commit.

The token endpoint writes a row or two per request. Alone, each request pays
for a connection, ``BEGIN IMMEDIATE`` (SQLite's write lock, see ``db``), the
commit and two thread hand-offs, which cost more than the inserts. Here one
writer thread takes every unit waiting in the queue, runs them in one
transaction (a failing unit rolls back alone and gets its own exception, see
``_write``) and commits once; each caller's result is delivered only after
that commit, so an answer never reports a write that could still be lost. On
PostgreSQL the same batching turns many commit flushes into one.

Only short units belong here: everything queued waits for the slowest one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.db import CommitThenRaise, transaction

T = TypeVar("T")
MAX_BATCH = 64


@dataclass
class _Unit:
    work: Callable[[Session], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    result: Any = None
    error: BaseException | None = None


class _UnitFailed(Exception):  # noqa: N818  (control flow: retry the batch unit by unit)
    pass


class GroupCommitter:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._queue: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a shared transaction; its result once that has committed.

        ``work`` may run twice (see ``_write``): it must touch nothing but the session.
        """
        loop = asyncio.get_running_loop()
        unit = _Unit(work, loop.create_future(), loop)
        self._ensure_started()
        self._queue.put(unit)
        result: T = await unit.future
        return result

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
            self._deliver(batch)

    def _write(self, batch: list[_Unit]) -> None:
        """Commit the batch. Nearly every unit succeeds, so first all run in one plain
        transaction; only if one fails is it rolled back and the batch run again with
        a savepoint per unit, so that the failure undoes its own writes alone."""
        try:
            with transaction(self._factory) as session:
                for unit in batch:
                    try:
                        unit.result = unit.work(session)
                    except Exception as error:
                        raise _UnitFailed from error
            return
        except _UnitFailed:
            pass
        except Exception as error:  # the commit failed: nothing was written
            for unit in batch:
                unit.error = error
            return
        try:
            with transaction(self._factory) as session:
                for unit in batch:
                    unit.result, unit.error = None, None
                    try:
                        with session.begin_nested():
                            try:
                                unit.result = unit.work(session)
                            except CommitThenRaise as kept:
                                unit.error = kept.error
                    except Exception as error:  # handed to its caller
                        unit.error = error
        except Exception as error:  # the commit failed: nothing was written
            for unit in batch:
                unit.error = error

    @staticmethod
    def _deliver(batch: list[_Unit]) -> None:
        # One wake-up per event loop for the whole batch, not one per unit.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
        for unit in batch:
            by_loop.setdefault(unit.loop, []).append(unit)
        for loop, units in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(_settle, units)


def _settle(units: list[_Unit]) -> None:
    for unit in units:
        if unit.future.done():  # the caller went away (cancelled)
            continue
        if unit.error is not None:
            unit.future.set_exception(unit.error)
        else:
            unit.future.set_result(unit.result)
