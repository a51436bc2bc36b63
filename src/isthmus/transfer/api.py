"""Transfer's routes under /v0.10 (so far: `get_endpoint` and `endpoint_search`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from isthmus.core import work
from isthmus.core.http import bearer_token
from isthmus.transfer import registry
from isthmus.transfer.errors import API_PREFIX
from isthmus.transfer.service import TransferService

router = APIRouter(prefix=API_PREFIX)

Document = dict[str, Any]


def _service(request: Request) -> TransferService:
    service: TransferService = request.app.state.transfer
    return service


def _query(request: Request) -> dict[str, str]:
    # A repeated parameter: the last one counts, as for the real service's forms.
    return dict(request.query_params.items())


@router.get("/endpoint/{endpoint_id}")
async def get_endpoint(request: Request, endpoint_id: str) -> Document:
    service = _service(request)
    token = bearer_token(request)

    def run(session: Session) -> Document:
        return registry.get_document(session, service.caller(token), endpoint_id)

    return await work.read_only(request, service.sessions, run)


@router.get("/endpoint_search")
async def endpoint_search(request: Request) -> Document:
    service = _service(request)
    token = bearer_token(request)
    params = _query(request)

    def run(session: Session) -> Document:
        caller = service.caller(token)
        return registry.search(session, caller, registry.parse_search(params))

    return await work.read_only(request, service.sessions, run)
