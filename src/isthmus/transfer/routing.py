"""What Transfer's route handlers share: who is asking, the query string, and running the
route's domain call on a database session in a worker thread, so each handler stays one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from isthmus.core import work
from isthmus.core.http import bearer_token
from isthmus.transfer import filters
from isthmus.transfer.errors import request_id
from isthmus.transfer.registry import Caller
from isthmus.transfer.service import TransferService

Document = dict[str, Any]
Run = Callable[[Session, Caller], Document]


def service(request: Request) -> TransferService:
    found: TransferService = request.app.state.transfer
    return found


def params(request: Request) -> dict[str, str]:
    """The query string, checked for what no database can hold (every repeat of a name).
    A repeated parameter: the last one counts, as for the real service's forms."""
    filters.reject_nul(request.query_params.multi_items())
    return dict(request.query_params.items())


async def caller(request: Request) -> tuple[TransferService, str | None, Caller]:
    """The service, the bearer token and who it speaks for (401 without a valid one)."""
    transfer = service(request)
    token = bearer_token(request)
    # Introspection reads the database: never on the event loop.
    who = await work.in_thread(request, lambda: transfer.caller(token))
    return transfer, token, who


async def read(request: Request, run: Run) -> Document:
    """``run`` on a read-only session, as the caller the token names."""
    transfer = service(request)
    token = bearer_token(request)
    result: Document = await work.read_only(
        request, transfer.sessions, lambda session: run(session, transfer.caller(token)))
    return result


async def write(request: Request, run: Run, known: Caller | None = None) -> Document:
    """``run`` in a transaction, as the caller (authenticated before the write lock is
    taken: introspection reads the database too)."""
    transfer = service(request)
    who = known if known is not None else (await caller(request))[2]
    result: Document = await work.in_transaction(request, transfer.sessions,
                                                 lambda session: run(session, who))
    return result


async def write_result(request: Request, run: Run) -> Document:
    """`write` for a ``result`` document, which carries the request's id."""
    return {**await write(request, run), "request_id": request_id()}
