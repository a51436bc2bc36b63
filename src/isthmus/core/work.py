"""Running a route's unit of work in a worker thread, bounded by the connection pool.

Every service's routes share one limiter per application: at most as many units
of work in threads as the pool has connections. More threads would only queue
for a connection (or, past the pool, open and close one per request) and take
turns at the GIL; fewer switches serve more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from isthmus.core.db import POOL_SIZE, reading, transaction

T = TypeVar("T")


def database_threads(request: Request) -> anyio.CapacityLimiter:
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "db_threads", None)
    if limiter is None:
        limiter = request.app.state.db_threads = anyio.CapacityLimiter(POOL_SIZE)
    return limiter


async def in_transaction(
    request: Request, sessions: sessionmaker[Session], work: Callable[[Session], T]
) -> T:
    def run() -> T:
        with transaction(sessions) as session:
            return work(session)

    return await anyio.to_thread.run_sync(run, limiter=database_threads(request))


async def read_only(
    request: Request, sessions: sessionmaker[Session], work: Callable[[Session], T]
) -> T:
    def run() -> T:
        with reading(sessions) as session:
            return work(session)

    return await anyio.to_thread.run_sync(run, limiter=database_threads(request))


async def in_thread(request: Request, work: Callable[[], T]) -> T:
    """Blocking work that opens its own units of work (or none)."""
    return await anyio.to_thread.run_sync(work, limiter=database_threads(request))
