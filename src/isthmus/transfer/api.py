"""Transfer's routes under /v0.10: the registry, access rules on guest collections, file
operations, bookmarks and tasks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from isthmus.core import work
from isthmus.core.collection_access import CollectionSession
from isthmus.core.errors import APIError
from isthmus.core.http import bearer_token, read_json_object
from isthmus.transfer import (
    access_rules,
    bookmarks,
    file_ops,
    openapi,
    registry,
    roles,
    routing,
    submission,
    tasks,
)
from isthmus.transfer.errors import API_PREFIX, error_document, request_id
from isthmus.transfer.registry import Caller

router = APIRouter(prefix=API_PREFIX)

Document = routing.Document
CANCEL_WAIT_SECONDS = 5.0
T = TypeVar("T")


def render_error(path: str, error: APIError) -> JSONResponse:
    """An error answering a request for ``path``, in Transfer's body (`errors.error_document`)."""
    return JSONResponse(error_document(path, error), status_code=error.status,
                        headers=error.headers)


@router.get("/endpoint/{endpoint_id}")
async def get_endpoint(request: Request, endpoint_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              registry.get_document(session, caller, endpoint_id))


@router.get("/endpoint_search")
async def endpoint_search(request: Request) -> Document:
    params = routing.params(request)
    return await routing.read(request, lambda session, caller:
                              registry.search(session, caller, registry.parse_search(params)))


# --- access rules on guest collections ------------------------------------------------------


@router.get("/endpoint/{endpoint_id}/access_list")
async def endpoint_acl_list(request: Request, endpoint_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              access_rules.list_rules(session, caller, endpoint_id))


@router.get("/endpoint/{endpoint_id}/access/{rule_id}")
async def get_endpoint_acl_rule(request: Request, endpoint_id: str, rule_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              access_rules.get_rule(session, caller, endpoint_id, rule_id))


@router.post("/endpoint/{endpoint_id}/access")
async def add_endpoint_acl_rule(request: Request, endpoint_id: str) -> JSONResponse:
    service = routing.service(request)
    token = bearer_token(request)
    body = await read_json_object(request)

    def prepare() -> tuple[Caller, access_rules.RuleInput]:
        # Who asks first: only then whether the identity a rule names exists.
        caller = service.caller(token)
        return caller, access_rules.parse_new(body, service.identities)

    caller, rule = await work.in_thread(request, prepare)
    created = await routing.write(request, lambda session, known: access_rules.add_rule(
        session, known, endpoint_id, rule), caller)
    return JSONResponse(created, status_code=201)


@router.put("/endpoint/{endpoint_id}/access/{rule_id}")
async def update_endpoint_acl_rule(request: Request, endpoint_id: str,
                                   rule_id: str) -> Document:
    body = await read_json_object(request)
    return await routing.write(request, lambda session, caller: access_rules.update_rule(
        session, caller, endpoint_id, rule_id, body))


@router.delete("/endpoint/{endpoint_id}/access/{rule_id}")
async def delete_endpoint_acl_rule(request: Request, endpoint_id: str,
                                   rule_id: str) -> Document:
    return await routing.write(request, lambda session, caller:
                               access_rules.delete_rule(session, caller, endpoint_id, rule_id))


# --- roles (read here; made and removed through the GCS Manager API) ------------------------


@router.get("/endpoint/{endpoint_id}/role_list")
async def endpoint_role_list(request: Request, endpoint_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              roles.list_roles(session, caller, endpoint_id))


@router.get("/endpoint/{endpoint_id}/role/{role_id}")
async def get_endpoint_role(request: Request, endpoint_id: str, role_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              roles.get_role(session, caller, endpoint_id, role_id))


# --- file operations -------------------------------------------------------------------------


async def _on_collection(request: Request, endpoint_id: str,
                         operation: Callable[[CollectionSession], T]) -> T:
    """``operation`` on the caller's session on a collection, in a worker thread."""
    service = routing.service(request)
    token = bearer_token(request)

    def run() -> T:
        with service.open_collection(token, endpoint_id) as collection:
            return operation(collection)

    return await work.in_thread(request, run)


def _result(request: Request, data_type: str, code: str, message: str) -> Document:
    return {"DATA_TYPE": data_type, "code": code, "message": message,
            "request_id": request_id(), "resource": request.url.path[len(API_PREFIX):]}


@router.get("/operation/endpoint/{endpoint_id}/ls")
async def operation_ls(request: Request, endpoint_id: str) -> Document:
    query = file_ops.ListQuery(routing.params(request), request.query_params.getlist("filter"))
    return await _on_collection(request, endpoint_id, lambda collection: file_ops.ls(
        collection, str(registry.parse_entity_id(endpoint_id)), query))


@router.get("/operation/endpoint/{endpoint_id}/stat")
async def operation_stat(request: Request, endpoint_id: str) -> Document:
    path = file_ops.check_path(routing.params(request).get("path"), "path")
    return await _on_collection(request, endpoint_id,
                                lambda collection: file_ops.stat(collection, path))


@router.post("/operation/endpoint/{endpoint_id}/mkdir")
async def operation_mkdir(request: Request, endpoint_id: str) -> JSONResponse:
    path = file_ops.parse_mkdir(await read_json_object(request))
    await _on_collection(request, endpoint_id,
                         lambda collection: file_ops.mkdir(collection, path))
    return JSONResponse(_result(request, "mkdir_result", "DirectoryCreated",
                                "The directory was created successfully"), status_code=202)


@router.post("/operation/endpoint/{endpoint_id}/rename")
async def operation_rename(request: Request, endpoint_id: str) -> Document:
    old_path, new_path = file_ops.parse_rename(await read_json_object(request))
    await _on_collection(request, endpoint_id,
                         lambda collection: file_ops.rename(collection, old_path, new_path))
    return _result(request, "result", "FileRenamed", "File or directory renamed successfully")


@router.post("/operation/endpoint/{endpoint_id}/symlink")
async def operation_symlink(request: Request, endpoint_id: str) -> Document:
    target, path = file_ops.parse_symlink(await read_json_object(request))
    await _on_collection(request, endpoint_id,
                         lambda collection: file_ops.symlink(collection, target, path))
    return _result(request, "result", "SymlinkCreated", "Symlink created successfully")


# --- bookmarks -------------------------------------------------------------------------------


@router.get("/bookmark_list")
async def bookmark_list(request: Request) -> Document:
    return await routing.read(request, bookmarks.list_bookmarks)


@router.post("/bookmark")
async def create_bookmark(request: Request) -> Document:
    body = await read_json_object(request)
    return await routing.write(request, lambda session, caller:
                               bookmarks.create(session, caller, body))


@router.get("/bookmark/{bookmark_id}")
async def get_bookmark(request: Request, bookmark_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              bookmarks.get(session, caller, bookmark_id))


@router.put("/bookmark/{bookmark_id}")
async def update_bookmark(request: Request, bookmark_id: str) -> Document:
    body = await read_json_object(request)
    return await routing.write(request, lambda session, caller:
                               bookmarks.update(session, caller, bookmark_id, body))


@router.delete("/bookmark/{bookmark_id}")
async def delete_bookmark(request: Request, bookmark_id: str) -> Document:
    return await routing.write(request, lambda session, caller:
                               bookmarks.delete(session, caller, bookmark_id))


# --- tasks -----------------------------------------------------------------------------


@router.get("/submission_id")
async def get_submission_id(request: Request) -> Document:
    await routing.caller(request)
    return {"DATA_TYPE": "submission_id", "value": str(uuid.uuid4())}


async def _submit(request: Request, kind: str) -> JSONResponse:
    body = await read_json_object(request)
    service, token, caller = await routing.caller(request)
    new = submission.parse_transfer(body) if kind == "transfer" else submission.parse_delete(body)
    assert token is not None  # `caller` refused a request without one
    submitted = await work.in_thread(request, lambda: service.submit(token, caller, new))
    document = submission.result_document(kind, submitted, request_id())
    return JSONResponse(document, status_code=200 if submitted.duplicate else 202)


@router.post("/transfer")
async def submit_transfer(request: Request) -> JSONResponse:
    return await _submit(request, "transfer")


@router.post("/delete")
async def submit_delete(request: Request) -> JSONResponse:
    return await _submit(request, "delete")


@router.get("/task_list")
async def task_list(request: Request) -> Document:
    params = routing.params(request)
    return await routing.read(request, lambda session, caller:
                              tasks.task_list(session, caller, params))


@router.get("/task/{task_id}")
async def get_task(request: Request, task_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              tasks.get_task(session, caller, task_id))


@router.put("/task/{task_id}")
async def update_task(request: Request, task_id: str) -> Document:
    body = await read_json_object(request)
    return await routing.write_result(request, lambda session, caller: tasks.update_task(
        session, caller, task_id, body))


@router.post("/task/{task_id}/cancel")
async def cancel_task(request: Request, task_id: str) -> Document:
    service, _, caller = await routing.caller(request)
    key, running = await work.in_transaction(
        request, service.sessions, lambda session: tasks.request_cancel(session, caller,
                                                                        task_id))
    # The real service answers once the cancel took effect; a worker stops within seconds.
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while running and time.monotonic() < deadline:
        stopped = await work.read_only(request, service.sessions,
                                       lambda session: tasks.cancel_outcome(session, key))
        if stopped:
            break
        await anyio.sleep(0.1)
    return {**tasks.cancel_result(key, running), "request_id": request_id()}


@router.get("/task/{task_id}/event_list")
async def task_event_list(request: Request, task_id: str) -> Document:
    params = routing.params(request)
    return await routing.read(request, lambda session, caller:
                              tasks.event_list(session, caller, task_id, params))


@router.get("/task/{task_id}/successful_transfers")
async def task_successful_transfers(request: Request, task_id: str) -> Document:
    params = routing.params(request)
    return await routing.read(request, lambda session, caller:
                              tasks.successful_transfers(session, caller, task_id, params))


@router.get("/task/{task_id}/skipped_errors")
async def task_skipped_errors(request: Request, task_id: str) -> Document:
    params = routing.params(request)
    return await routing.read(request, lambda session, caller:
                              tasks.skipped_errors(session, caller, task_id, params))


@router.get("/task/{task_id}/pause_info")
async def task_pause_info(request: Request, task_id: str) -> Document:
    return await routing.read(request, lambda session, caller:
                              tasks.pause_info(session, caller, task_id))


openapi.describe(router)
