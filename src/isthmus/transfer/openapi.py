"""What Transfer's routes read and answer, described for the OpenAPI document.

The handlers read their query strings and bodies themselves (bounded bodies, Transfer's
error body, the SDK's field names), so FastAPI cannot infer them. Each route's
``openapi_extra`` comes from here: its query parameters, its body and its answers, a
document on success and Transfer's error (``code``, ``message``, ``request_id``,
``resource``) on a 4xx. `describe` fills them in and refuses a route it has no description
for, so the document (and the schemathesis test that fuzzes it) covers the whole API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from isthmus.transfer.errors import API_PREFIX

Schema = dict[str, Any]

TEXT: Schema = {"type": "string"}
UUID: Schema = {"type": "string", "format": "uuid"}
FLAG: Schema = {"type": "boolean"}
COUNT: Schema = {"type": "integer"}
WHEN: Schema = {"type": "string", "format": "date-time"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], *required: str) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def data_type(*names: str) -> Schema:
    return {"type": "string", "enum": list(names)}


# --- answers ---------------------------------------------------------------------------

ERROR: Schema = obj({"code": TEXT, "message": TEXT, "request_id": TEXT, "resource": TEXT},
                    "code", "message", "request_id", "resource")
DOCUMENT: Schema = obj({"DATA_TYPE": TEXT}, "DATA_TYPE")


STORAGE_FAILURE = {"502": {
    "description": "The storage refused (ExternalError.*, e.g. MkdirFailed.Exists), in "
                   "Transfer's error body: not retried by the SDK",
    "content": {"application/json": {"schema": ERROR}}}}


def operation(*, body: Schema | None = None, query: dict[str, Schema] | None = None,
              required: tuple[str, ...] = (), on_storage: bool = False) -> Schema:
    extra: Schema = {
        "responses": {
            "2XX": {"description": "Done: a Transfer document",
                    "content": {"application/json": {"schema": DOCUMENT}}},
            "4XX": {"description": "Refused, in Transfer's error body",
                    "content": {"application/json": {"schema": ERROR}}},
            **(STORAGE_FAILURE if on_storage else {}),
        },
        "security": [{"bearer": []}],
    }
    if query:
        extra["parameters"] = [{"name": name, "in": "query", "required": name in required,
                                "schema": schema} for name, schema in query.items()]
    if body is not None:
        extra["requestBody"] = {"required": True,
                                "content": {"application/json": {"schema": body}}}
    return extra


# --- what the routes read --------------------------------------------------------------

SEARCH = {"filter_scope": {"type": "string", "enum": [
              "all", "my-endpoints", "my-gcp-endpoints", "recently-used", "in-use",
              "shared-by-me", "shared-with-me", "administered-by-me"]},
          "filter_fulltext": TEXT, "filter_owner_id": TEXT, "filter_host_endpoint": UUID,
          "filter_entity_type": TEXT, "filter_non_functional": TEXT,
          "limit": COUNT, "offset": COUNT}
LS = {"path": TEXT, "show_hidden": TEXT, "orderby": TEXT, "filter": TEXT, "limit": COUNT,
      "offset": COUNT, "local_user": TEXT}
TASK_LIST = {"filter": TEXT, "orderby": TEXT, "limit": COUNT, "offset": COUNT, "fields": TEXT}
EVENTS = {"filter": TEXT, "limit": COUNT, "offset": COUNT}
MARKER = {"marker": COUNT}
MANAGER_TASK_LIST = {
    "filter_status": TEXT, "filter_task_id": TEXT, "filter_owner_id": TEXT,
    "filter_endpoint": TEXT, "filter_endpoint_use": {"type": "string",
                                                     "enum": ["source", "destination"]},
    "filter_is_paused": TEXT, "filter_completion_time": TEXT, "filter_min_faults": COUNT,
    "filter_local_user": TEXT, "last_key": TEXT, "limit": COUNT}

PERMISSIONS: Schema = {"type": "string", "enum": ["r", "rw"]}
NEW_ACCESS = obj({
    "DATA_TYPE": data_type("access"),
    "principal_type": {"type": "string", "enum": [
        "identity", "group", "all_authenticated_users", "anonymous"]},
    "principal": TEXT, "path": TEXT, "permissions": PERMISSIONS,
    "notify_email": nullable(TEXT), "notify_message": nullable(TEXT),
    "expiration_date": nullable(WHEN)}, "principal_type", "path", "permissions")
ACCESS_CHANGE = obj({"DATA_TYPE": data_type("access"), "permissions": PERMISSIONS,
                     "expiration_date": nullable(WHEN)})

MKDIR = obj({"DATA_TYPE": data_type("mkdir"), "path": TEXT, "local_user": TEXT}, "path")
RENAME = obj({"DATA_TYPE": data_type("rename"), "old_path": TEXT, "new_path": TEXT,
              "local_user": TEXT}, "old_path", "new_path")
SYMLINK = obj({"DATA_TYPE": data_type("symlink"), "symlink_target": TEXT, "path": TEXT},
              "symlink_target", "path")

NEW_BOOKMARK = obj({"DATA_TYPE": data_type("bookmark"), "name": TEXT, "endpoint_id": UUID,
                    "path": TEXT, "pinned": FLAG}, "name", "endpoint_id", "path")
BOOKMARK_CHANGE = obj({"DATA_TYPE": data_type("bookmark"), "name": TEXT, "pinned": FLAG})

_TASK_COMMON = {"submission_id": UUID, "label": nullable(TEXT), "deadline": nullable(WHEN),
                "notify_on_succeeded": FLAG, "notify_on_failed": FLAG,
                "notify_on_inactive": FLAG}
TRANSFER_ITEM = obj({
    "DATA_TYPE": data_type("transfer_item", "transfer_symlink_item"), "source_path": TEXT,
    "destination_path": TEXT, "recursive": FLAG, "checksum_algorithm": TEXT,
    "external_checksum": TEXT}, "source_path", "destination_path")
TRANSFER = obj({
    "DATA_TYPE": data_type("transfer"), **_TASK_COMMON, "source_endpoint": UUID,
    "destination_endpoint": UUID, "DATA": {"type": "array", "items": TRANSFER_ITEM},
    "sync_level": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 3},
                             {"type": "string",
                              "enum": ["exists", "size", "mtime", "checksum"]}]},
    "verify_checksum": FLAG, "preserve_timestamp": FLAG, "encrypt_data": FLAG,
    "skip_source_errors": FLAG, "fail_on_quota_errors": FLAG,
    "delete_destination_extra": FLAG,
    "recursive_symlinks": {"type": "string", "enum": ["ignore", "keep", "copy"]},
    "filter_rules": {"type": "array", "items": obj({
        "DATA_TYPE": data_type("filter_rule"), "method": {"type": "string",
                                                          "enum": ["include", "exclude"]},
        "name": TEXT, "type": {"type": "string", "enum": ["file", "dir"]}}, "name")},
    "source_local_user": TEXT, "destination_local_user": TEXT,
}, "submission_id", "source_endpoint", "destination_endpoint", "DATA")
DELETE = obj({
    "DATA_TYPE": data_type("delete"), **_TASK_COMMON, "endpoint": UUID,
    "DATA": {"type": "array", "items": obj({"DATA_TYPE": data_type("delete_item"),
                                            "path": TEXT}, "path")},
    "recursive": FLAG, "ignore_missing": FLAG, "interpret_globs": FLAG, "local_user": TEXT,
}, "submission_id", "endpoint", "DATA")
TASK_CHANGE = obj({"DATA_TYPE": data_type("task"), "label": nullable(TEXT),
                   "deadline": WHEN})

TASK_IDS = {"type": "array", "items": UUID}
ADMIN_TASKS = obj({"task_id_list": TASK_IDS, "message": TEXT}, "task_id_list", "message")
RESUME_TASKS = obj({"task_id_list": TASK_IDS}, "task_id_list")
_PAUSE_RULE = {"DATA_TYPE": data_type("pause_rule"), "message": TEXT, "endpoint_id": UUID,
               "identity_id": nullable(UUID), "start_time": nullable(WHEN),
               "pause_task_transfer_read": FLAG, "pause_task_transfer_write": FLAG,
               "pause_task_delete": FLAG}
NEW_PAUSE_RULE = obj(_PAUSE_RULE, "message", "endpoint_id")
PAUSE_RULE_CHANGE = obj({name: schema for name, schema in _PAUSE_RULE.items()
                         if name != "endpoint_id"})

READ = operation()

# By path under /v0.10 and method.
OPERATIONS: dict[str, dict[str, Schema]] = {
    "/endpoint/{endpoint_id}": {"GET": READ},
    "/endpoint_search": {"GET": operation(query=SEARCH)},
    "/endpoint/{endpoint_id}/access_list": {"GET": READ},
    "/endpoint/{endpoint_id}/access/{rule_id}": {
        "GET": READ, "PUT": operation(body=ACCESS_CHANGE), "DELETE": READ},
    "/endpoint/{endpoint_id}/access": {"POST": operation(body=NEW_ACCESS)},
    "/endpoint/{endpoint_id}/role_list": {"GET": READ},
    "/endpoint/{endpoint_id}/role/{role_id}": {"GET": READ},
    "/operation/endpoint/{endpoint_id}/ls": {"GET": operation(query=LS, on_storage=True)},
    "/operation/endpoint/{endpoint_id}/stat": {"GET": operation(
        query={"path": TEXT, "local_user": TEXT}, required=("path",), on_storage=True)},
    "/operation/endpoint/{endpoint_id}/mkdir": {"POST": operation(body=MKDIR,
                                                                  on_storage=True)},
    "/operation/endpoint/{endpoint_id}/rename": {"POST": operation(body=RENAME,
                                                                   on_storage=True)},
    "/operation/endpoint/{endpoint_id}/symlink": {"POST": operation(body=SYMLINK,
                                                                    on_storage=True)},
    "/bookmark_list": {"GET": READ},
    "/bookmark": {"POST": operation(body=NEW_BOOKMARK)},
    "/bookmark/{bookmark_id}": {
        "GET": READ, "PUT": operation(body=BOOKMARK_CHANGE), "DELETE": READ},
    "/submission_id": {"GET": READ},
    "/transfer": {"POST": operation(body=TRANSFER)},
    "/delete": {"POST": operation(body=DELETE)},
    "/task_list": {"GET": operation(query=TASK_LIST)},
    "/task/{task_id}": {"GET": READ, "PUT": operation(body=TASK_CHANGE)},
    "/task/{task_id}/cancel": {"POST": READ},
    "/task/{task_id}/event_list": {"GET": operation(query=EVENTS)},
    "/task/{task_id}/successful_transfers": {"GET": operation(query=MARKER)},
    "/task/{task_id}/skipped_errors": {"GET": operation(query=MARKER)},
    "/task/{task_id}/pause_info": {"GET": READ},
    # The endpoint manager's (activity_monitor / activity_manager roles).
    "/endpoint_manager/monitored_endpoints": {"GET": READ},
    "/endpoint_manager/endpoint/{endpoint_id}": {"GET": READ},
    "/endpoint_manager/endpoint/{endpoint_id}/hosted_endpoint_list": {"GET": READ},
    "/endpoint_manager/endpoint/{endpoint_id}/access_list": {"GET": READ},
    "/endpoint_manager/task_list": {"GET": operation(query=MANAGER_TASK_LIST)},
    "/endpoint_manager/task/{task_id}": {"GET": READ},
    "/endpoint_manager/task/{task_id}/event_list": {"GET": operation(query=EVENTS)},
    "/endpoint_manager/task/{task_id}/successful_transfers": {
        "GET": operation(query=MARKER)},
    "/endpoint_manager/task/{task_id}/skipped_errors": {"GET": operation(query=MARKER)},
    "/endpoint_manager/task/{task_id}/pause_info": {"GET": READ},
    "/endpoint_manager/admin_cancel": {"POST": operation(body=ADMIN_TASKS)},
    "/endpoint_manager/admin_cancel/{cancel_id}": {"GET": READ},
    "/endpoint_manager/admin_pause": {"POST": operation(body=ADMIN_TASKS)},
    "/endpoint_manager/admin_resume": {"POST": operation(body=RESUME_TASKS)},
    "/endpoint_manager/pause_rule_list": {"GET": operation(query={"filter_endpoint": TEXT})},
    "/endpoint_manager/pause_rule": {"POST": operation(body=NEW_PAUSE_RULE)},
    "/endpoint_manager/pause_rule/{rule_id}": {
        "GET": READ, "PUT": operation(body=PAUSE_RULE_CHANGE), "DELETE": READ},
}


def describe(router: APIRouter) -> None:
    """Give each of Transfer's routes its description (a route without one is a bug)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            path = route.path.removeprefix(API_PREFIX)
            for method in route.methods or ():
                try:
                    route.openapi_extra = OPERATIONS[path][method]
                except KeyError:
                    raise LookupError(f"transfer/openapi.py does not describe {method} "
                                      f"{route.path}") from None
