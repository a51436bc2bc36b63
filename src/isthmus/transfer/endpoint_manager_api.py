"""Transfer's endpoint manager routes under /v0.10/endpoint_manager, for the holders of an
endpoint's activity_monitor and activity_manager roles (logic in `endpoint_manager`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from isthmus.core import work
from isthmus.core.http import bearer_token, read_json_object
from isthmus.transfer import endpoint_manager, tasks
from isthmus.transfer.errors import API_PREFIX, request_id
from isthmus.transfer.registry import Caller
from isthmus.transfer.service import TransferService

router = APIRouter(prefix=f"{API_PREFIX}/endpoint_manager")

Document = dict[str, Any]


def _service(request: Request) -> TransferService:
    service: TransferService = request.app.state.transfer
    return service


async def _read(request: Request, run: Any) -> Document:
    service = _service(request)
    token = bearer_token(request)
    result: Document = await work.read_only(
        request, service.sessions, lambda session: run(session, service.caller(token),
                                                       service))
    return result


async def _write(request: Request, run: Any) -> Document:
    service = _service(request)
    token = bearer_token(request)
    # Introspection reads the database: authenticate before taking the write lock.
    caller: Caller = await work.in_thread(request, lambda: service.caller(token))
    result: Document = await work.in_transaction(request, service.sessions,
                                                 lambda session: run(session, caller))
    return {**result, "request_id": request_id()}


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params.items())


@router.get("/monitored_endpoints")
async def monitored_endpoints(request: Request) -> Document:
    return await _read(request, lambda session, caller, _:
                       endpoint_manager.monitored_endpoints(session, caller))


@router.get("/task_list")
async def task_list(request: Request) -> Document:
    params = _params(request)
    return await _read(request, lambda session, caller, service: endpoint_manager.task_list(
        session, caller, params, service.identities))


@router.get("/task/{task_id}")
async def get_task(request: Request, task_id: str) -> Document:
    return await _read(request, lambda session, caller, service: endpoint_manager.get_task(
        session, caller, task_id, service.identities))


def _task_view(task_id: str, view: Any, params: dict[str, str]) -> Any:
    def run(session: Session, caller: Caller, _: TransferService) -> Document:
        result: Document = view(session, endpoint_manager.require_task(session, caller,
                                                                       task_id), params)
        return result
    return run


@router.get("/task/{task_id}/event_list")
async def task_event_list(request: Request, task_id: str) -> Document:
    return await _read(request, _task_view(task_id, tasks.event_list_of, _params(request)))


@router.get("/task/{task_id}/successful_transfers")
async def task_successful_transfers(request: Request, task_id: str) -> Document:
    return await _read(request, _task_view(task_id, tasks.successful_transfers_of,
                                           _params(request)))


@router.get("/task/{task_id}/skipped_errors")
async def task_skipped_errors(request: Request, task_id: str) -> Document:
    return await _read(request, _task_view(task_id, tasks.skipped_errors_of,
                                           _params(request)))


@router.get("/task/{task_id}/pause_info")
async def task_pause_info(request: Request, task_id: str) -> Document:
    return await _read(request, lambda session, caller, _:
                       endpoint_manager.pause_info(session, caller, task_id))


@router.post("/admin_cancel")
async def admin_cancel(request: Request) -> Document:
    body = await read_json_object(request)
    return await _write(request, lambda session, caller:
                        endpoint_manager.admin_cancel(session, caller, body))


@router.get("/admin_cancel/{cancel_id}")
async def cancel_status(request: Request, cancel_id: str) -> Document:
    return await _read(request, lambda session, caller, _:
                       endpoint_manager.cancel_status(session, caller, cancel_id))


@router.post("/admin_pause")
async def admin_pause(request: Request) -> Document:
    body = await read_json_object(request)
    return await _write(request, lambda session, caller:
                        endpoint_manager.admin_pause(session, caller, body, pause=True))


@router.post("/admin_resume")
async def admin_resume(request: Request) -> Document:
    body = await read_json_object(request)
    return await _write(request, lambda session, caller:
                        endpoint_manager.admin_pause(session, caller, body, pause=False))


@router.get("/pause_rule_list")
async def pause_rule_list(request: Request) -> Document:
    params = _params(request)
    return await _read(request, lambda session, caller, _:
                       endpoint_manager.rule_list(session, caller, params))


@router.post("/pause_rule")
async def create_pause_rule(request: Request) -> Document:
    body = await read_json_object(request)
    return await _write(request, lambda session, caller:
                        endpoint_manager.create_rule(session, caller, body))


@router.get("/pause_rule/{rule_id}")
async def get_pause_rule(request: Request, rule_id: str) -> Document:
    return await _read(request, lambda session, caller, _:
                       endpoint_manager.get_rule(session, caller, rule_id))


@router.put("/pause_rule/{rule_id}")
async def update_pause_rule(request: Request, rule_id: str) -> Document:
    body = await read_json_object(request)
    return await _write(request, lambda session, caller:
                        endpoint_manager.update_rule(session, caller, rule_id, body))


@router.delete("/pause_rule/{rule_id}")
async def delete_pause_rule(request: Request, rule_id: str) -> Document:
    return await _write(request, lambda session, caller:
                        endpoint_manager.delete_rule(session, caller, rule_id))
