"""The Groups v2 routes, under ``<public_url>groups/`` (``GLOBUS_SDK_SERVICE_URL_GROUPS``).

Handlers stay thin: authenticate by introspection, run one unit of work in a
worker thread, shape the response. The rules live in `groups`, `membership`
and `access`. Errors go out as Groups sends them: ``{"code": ..., "detail": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from isthmus.core import work as work_units
from isthmus.core.db import reading, transaction
from isthmus.core.errors import APIError
from isthmus.core.http import bearer_token, read_json_object
from isthmus.groups import access, groups, membership
from isthmus.groups.documents import Document
from isthmus.groups.service import Caller, GroupsService

PREFIX = "/groups"
router = APIRouter(prefix=PREFIX + "/v2")
T = TypeVar("T")


def service(request: Request) -> GroupsService:
    found: GroupsService = request.app.state.groups
    return found


def render_error(error: APIError) -> JSONResponse:
    """Groups' error body; globus-sdk's GroupsAPIError reads ``code`` and ``detail``."""
    return JSONResponse({"code": error.code, "detail": error.message},
                        status_code=error.status, headers=error.headers)


async def _run(request: Request, work: Callable[[Session, Caller], T], *, write: bool) -> T:
    groups_service = service(request)
    token = bearer_token(request)

    def run() -> T:
        caller = groups_service.caller(token, write=write)
        unit = transaction if write else reading
        with unit(groups_service.sessions) as session:
            return work(session, caller)

    return await work_units.in_thread(request, run)


@router.get("/groups/my_groups")
async def my_groups(request: Request) -> list[Document]:
    statuses = groups.parse_statuses(request.query_params.get("statuses"))
    return await _run(request, lambda session, caller: groups.my_groups(
        session, caller, statuses), write=False)


@router.post("/groups")
async def create_group(request: Request) -> Document:
    body = await read_json_object(request)

    def work(session: Session, caller: Caller) -> Document:
        return groups.view(session, groups.create_group(session, body, caller),
                           {"my_memberships"})

    return await _run(request, work, write=True)


@router.get("/groups/{group_id}")
async def get_group(request: Request, group_id: str) -> Document:
    include = groups.parse_include(request.query_params.get("include"))
    return await _run(request, lambda session, caller: groups.view(
        session, access.find_group(session, group_id, caller), include), write=False)


@router.put("/groups/{group_id}")
async def update_group(request: Request, group_id: str) -> Document:
    body = await read_json_object(request)

    def work(session: Session, caller: Caller) -> Document:
        found = access.find_group(session, group_id, caller, for_update=True)
        return groups.view(session, groups.update_group(session, found, body),
                           {"my_memberships"})

    return await _run(request, work, write=True)


@router.delete("/groups/{group_id}")
async def delete_group(request: Request, group_id: str) -> Document:
    return await _run(request, lambda session, caller: groups.delete_group(
        session, access.find_group(session, group_id, caller, for_update=True)), write=True)


@router.post("/groups/{group_id}")
async def membership_actions(request: Request, group_id: str) -> Document:
    """A batch of membership actions (BatchMembershipActions)."""
    body = await read_json_object(request)
    groups_service = service(request)
    token = bearer_token(request)

    def run() -> Document:
        caller = groups_service.caller(token, write=True)
        actions = membership.parse_actions(body)
        # Looked up before the transaction, so no write lock waits on Auth.
        known = groups_service.identities.lookup_identities(
            membership.identities_named(actions))
        with transaction(groups_service.sessions) as session:
            found = access.find_group(session, group_id, caller, for_update=True)
            return membership.apply_actions(session, found, actions, known)

    return await work_units.in_thread(request, run)


@router.get("/groups/{group_id}/policies")
async def get_policies(request: Request, group_id: str) -> Document:
    return await _run(request, lambda session, caller: groups.policies(
        access.find_group(session, group_id, caller)), write=False)


@router.put("/groups/{group_id}/policies")
async def set_policies(request: Request, group_id: str) -> Document:
    body = await read_json_object(request)
    return await _run(request, lambda session, caller: groups.set_policies(
        session, access.find_group(session, group_id, caller, for_update=True), body),
        write=True)




@router.put("/groups/{group_id}/subscription_admin_verified")
async def set_subscription_admin_verified(request: Request, group_id: str) -> Document:
    body = await read_json_object(request)
    return await _run(request, lambda session, caller: groups.set_subscription_admin_verified(
        access.find_group(session, group_id, caller), body), write=True)


@router.get("/subscription_info/{subscription_id}")
async def subscription_info(request: Request, subscription_id: str) -> Document:
    return await _run(request, lambda _session, _caller: groups.subscription_group(
        subscription_id), write=False)
