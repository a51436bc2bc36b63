"""Transfer's endpoint manager routes under /v0.10/endpoint_manager, for the holders of an
endpoint's activity_monitor and activity_manager roles (logic in `endpoint_manager`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from isthmus.core.http import read_json_object
from isthmus.core.identities import IdentityDirectory
from isthmus.transfer import endpoint_manager, openapi, routing, tasks
from isthmus.transfer.errors import API_PREFIX
from isthmus.transfer.task_models import Task

router = APIRouter(prefix=f"{API_PREFIX}/endpoint_manager")

Document = routing.Document


def _identities(request: Request) -> IdentityDirectory:
    return routing.service(request).identities


@router.get("/monitored_endpoints")
async def monitored_endpoints(request: Request) -> Document:
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.monitored_endpoints(session, caller))


@router.get("/endpoint/{endpoint_id}")
async def get_endpoint(request: Request, endpoint_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.get_endpoint(session, caller, endpoint_id))


@router.get("/endpoint/{endpoint_id}/hosted_endpoint_list")
async def hosted_endpoint_list(request: Request, endpoint_id: str) -> Document:
    return await routing.read(request, lambda session, caller: endpoint_manager
                              .hosted_endpoint_list(session, caller, endpoint_id))


@router.get("/endpoint/{endpoint_id}/access_list")
async def endpoint_acl_list(request: Request, endpoint_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.acl_list(session, caller, endpoint_id))


@router.get("/task_list")
async def task_list(request: Request) -> Document:
    params = routing.params(request)
    identities = _identities(request)
    return await routing.read(request, lambda session, caller: endpoint_manager.task_list(
        session, caller, params, identities))


@router.get("/task/{task_id}")
async def get_task(request: Request, task_id: str) -> Document:
    identities = _identities(request)
    return await routing.read(request, lambda session, caller: endpoint_manager.get_task(
        session, caller, task_id, identities))


TaskView = Callable[[Session, Task, Mapping[str, str]], Document]


def _task_view(task_id: str, view: TaskView, params: dict[str, str]) -> routing.Run:
    """One of a task's lists, for a monitor of its source or destination."""
    return lambda session, caller: view(
        session, endpoint_manager.require_task(session, caller, task_id), params)


@router.get("/task/{task_id}/event_list")
async def task_event_list(request: Request, task_id: str) -> Document:
    return await routing.read(request, _task_view(task_id, tasks.event_list_of,
                                                  routing.params(request)))


@router.get("/task/{task_id}/successful_transfers")
async def task_successful_transfers(request: Request, task_id: str) -> Document:
    return await routing.read(request, _task_view(task_id, tasks.successful_transfers_of,
                                                  routing.params(request)))


@router.get("/task/{task_id}/skipped_errors")
async def task_skipped_errors(request: Request, task_id: str) -> Document:
    return await routing.read(request, _task_view(task_id, tasks.skipped_errors_of,
                                                  routing.params(request)))


@router.get("/task/{task_id}/pause_info")
async def task_pause_info(request: Request, task_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.pause_info(session, caller, task_id))


@router.post("/admin_cancel")
async def admin_cancel(request: Request) -> Document:
    body = await read_json_object(request)
    return await routing.write_result(request, lambda session, caller: (
        endpoint_manager.admin_cancel(session, caller, body)))


@router.get("/admin_cancel/{cancel_id}")
async def cancel_status(request: Request, cancel_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.cancel_status(session, caller, cancel_id))


@router.post("/admin_pause")
async def admin_pause(request: Request) -> Document:
    body = await read_json_object(request)
    return await routing.write_result(request, lambda session, caller: (
        endpoint_manager.admin_pause(session, caller, body, pause=True)))


@router.post("/admin_resume")
async def admin_resume(request: Request) -> Document:
    body = await read_json_object(request)
    return await routing.write_result(request, lambda session, caller: (
        endpoint_manager.admin_pause(session, caller, body, pause=False)))


@router.get("/pause_rule_list")
async def pause_rule_list(request: Request) -> Document:
    params = routing.params(request)
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.rule_list(session, caller, params))


@router.post("/pause_rule")
async def create_pause_rule(request: Request) -> Document:
    body = await read_json_object(request)
    return await routing.write_result(request, lambda session, caller: (
        endpoint_manager.create_rule(session, caller, body)))


@router.get("/pause_rule/{rule_id}")
async def get_pause_rule(request: Request, rule_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              endpoint_manager.get_rule(session, caller, rule_id))


@router.put("/pause_rule/{rule_id}")
async def update_pause_rule(request: Request, rule_id: str) -> Document:
    body = await read_json_object(request)
    return await routing.write_result(request, lambda session, caller: (
        endpoint_manager.update_rule(session, caller, rule_id, body)))


@router.delete("/pause_rule/{rule_id}")
async def delete_pause_rule(request: Request, rule_id: str) -> Document:
    return await routing.write_result(request, lambda session, caller: (
        endpoint_manager.delete_rule(session, caller, rule_id)))


openapi.describe(router)
