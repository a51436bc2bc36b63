"""What the GCS Manager's routes read and answer, described for the OpenAPI document.

The handlers read their bodies and query strings themselves (one error envelope, the
SDK's DATA_TYPE versions), so FastAPI cannot infer them. Each route's ``openapi_extra``
comes from here: its query parameters, its body as the `schemas.Schema` that checks it,
and its answers, the ``result#1.0.0`` envelope whether it succeeds or not.
`describe` fills them in and refuses a route it has no description for, so the document
(and the schemathesis test that fuzzes it) always covers the whole API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from isthmus.connect import schemas

Schema = dict[str, Any]

TEXT: Schema = {"type": "string"}
UUID: Schema = {"type": "string", "format": "uuid"}

RESULT: Schema = {
    "type": "object",
    "properties": {
        "DATA_TYPE": {"type": "string", "pattern": r"^result#1\.[0-9]+\.0$"},
        "code": TEXT, "http_response_code": {"type": "integer"},
        "message": {"anyOf": [TEXT, {"type": "null"}]},
        "has_next_page": {"type": "boolean"},
        "marker": {"anyOf": [TEXT, {"type": "null"}]},
        "data": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["DATA_TYPE", "code", "http_response_code", "data"],
}
ERROR: Schema = {**RESULT, "required": ["DATA_TYPE", "code", "http_response_code", "message",
                                        "detail", "data"]}

PAGING = {"page_size": {"type": "integer", "minimum": 1}, "marker": TEXT}


def _answers(success: int) -> Schema:
    return {
        str(success): {"description": "Done: the result envelope",
                       "content": {"application/json": {"schema": RESULT}}},
        "4XX": {"description": "Refused, in the result envelope with the GCS error code",
                "content": {"application/json": {"schema": ERROR}}},
    }


def operation(*, body: Schema | None = None, query: dict[str, Schema] | None = None,
              success: int = 200, public: bool = False) -> Schema:
    extra: Schema = {"responses": _answers(success)}
    if query:
        extra["parameters"] = [{"name": name, "in": "query", "required": False,
                                "schema": schema} for name, schema in query.items()]
    if body is not None:
        extra["requestBody"] = {"required": True,
                                "content": {"application/json": {"schema": body}}}
    extra["security"] = [] if public else [{"bearer": []}]
    return extra


def _document(schema: schemas.Schema, *, creating: bool) -> Schema:
    return schema.json_schema(creating=creating)


def _collection(*, creating: bool) -> Schema:
    document = _document(schemas.COLLECTION, creating=creating)
    document["properties"]["collection_type"] = {"type": "string",
                                                 "enum": ["mapped", "guest"]}
    return document


def _writes(schema: schemas.Schema, **query: Schema) -> dict[str, Schema]:
    """PATCH (fields left out stay) and PUT (the whole document) of one resource."""
    return {"PATCH": operation(body=_document(schema, creating=False), query=query),
            "PUT": operation(body=_document(schema, creating=True), query=query)}


def _page(success: str, what: str, *, body: Schema | None = None,
          query: dict[str, Schema] | None = None, public: bool = False) -> Schema:
    """A route a browser follows: a redirect or an HTML page, and a page saying why not."""
    html = {"text/html": {"schema": TEXT}}
    extra: Schema = {"responses": {success: {"description": what},
                                   "4XX": {"description": "A page saying why not",
                                           "content": html}},
                     "security": [] if public else [{"bearer": []}]}
    if query:
        extra["parameters"] = [{"name": name, "in": "query", "required": False,
                                "schema": schema} for name, schema in query.items()]
    if body is not None:
        extra["requestBody"] = {"required": True, "content": body}
    return extra


INCLUDE = {"include": TEXT}
ONE = operation()
DONE = operation()
OWNER_STRING = operation(body=_document(schemas.OWNER_STRING, creating=True))

OPERATIONS: dict[str, dict[str, Schema]] = {
    "/api/info": {"GET": operation(query=PAGING, public=True)},
    "/api/endpoint": {"GET": ONE, **_writes(schemas.ENDPOINT, **INCLUDE)},
    "/api/endpoint/owner": {"PUT": operation(
        body=_document(schemas.ENDPOINT_OWNER, creating=True))},
    "/api/endpoint/owner_string": {"PUT": OWNER_STRING, "DELETE": DONE},
    "/api/endpoint/subscription_id": {"PUT": operation(
        body=_document(schemas.ENDPOINT_SUBSCRIPTION, creating=True))},
    "/api/endpoint/domains": {
        "GET": ONE, "POST": operation(body=_document(schemas.DOMAIN, creating=True),
                                      success=201)},
    "/api/endpoint/domains/{domain_name}": {"GET": ONE, "DELETE": DONE},
    "/api/storage_gateways": {
        "GET": operation(query={**PAGING, **INCLUDE}),
        "POST": operation(body=_document(schemas.STORAGE_GATEWAY, creating=True),
                          success=201)},
    "/api/storage_gateways/{gateway_id}": {
        "GET": operation(query=INCLUDE), **_writes(schemas.STORAGE_GATEWAY), "DELETE": DONE},
    "/api/collections": {
        "GET": operation(query={**PAGING, **INCLUDE, "filter": TEXT,
                                "mapped_collection_id": UUID, "storage_gateway_id": UUID}),
        "POST": operation(body=_collection(creating=True), success=201)},
    "/api/collections/check": {"GET": ONE},
    "/api/collections/batch_delete": {"POST": operation(
        body=_document(schemas.BATCH, creating=True), success=202)},
    "/api/collections/{collection_id}": {
        "GET": operation(query=INCLUDE),
        "PATCH": operation(body=_collection(creating=False)),
        "PUT": operation(body=_collection(creating=True)), "DELETE": DONE},
    "/api/collections/{collection_id}/check": {"GET": ONE},
    "/api/collections/{collection_id}/domain": {
        "GET": ONE, "PUT": operation(body=_document(schemas.DOMAIN, creating=True)),
        "DELETE": DONE},
    "/api/collections/{collection_id}/owner_string": {"PUT": OWNER_STRING, "DELETE": DONE},
    "/api/collections/{collection_id}/owner": {"PUT": operation(
        body=_document(schemas.COLLECTION_OWNER, creating=True))},
    "/api/collections/{collection_id}/subscription_admin_verified": {"PUT": operation(
        body=_document(schemas.SUBSCRIPTION_ADMIN_VERIFIED, creating=True))},
    "/api/roles": {
        "GET": operation(query={**PAGING, **INCLUDE, "collection_id": UUID}),
        "POST": operation(body=_document(schemas.ROLE, creating=True))},
    "/api/roles/{role_id}": {"GET": ONE, "DELETE": DONE},
    # The endpoint's audit records (owner and administrators): oldest first, filtered.
    "/api/audit": {"GET": operation(query={
        **PAGING, "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"}, "username": TEXT,
        "identity_id": UUID, "collection_id": UUID, "path": TEXT, "operation": TEXT,
        "result": TEXT})},
    "/api/audit/summary": {"GET": ONE},
    "/api/nodes": {"GET": operation(query=PAGING),
                   "POST": operation(body=_document(schemas.NODE, creating=True))},
    "/api/nodes/{node_id}": {"GET": ONE, **_writes(schemas.NODE, **INCLUDE), "DELETE": DONE},
    # The endpoint's own OpenID Connect provider (Isthmus: `oidc ...`), its owner and
    # administrators only.
    "/api/oidc": {
        "GET": ONE, "POST": operation(body=_document(schemas.OIDC_SERVER, creating=True),
                                      success=201),
        "PATCH": operation(body=_document(schemas.OIDC_SERVER, creating=False)),
        "DELETE": DONE},
    "/api/oidc/register": {"POST": operation(
        body=_document(schemas.OIDC_REGISTRATION, creating=True))},
    "/api/user_credentials": {
        "GET": operation(query={**PAGING, **INCLUDE, "storage_gateway": UUID}),
        "POST": operation(body=_document(schemas.USER_CREDENTIAL, creating=True),
                          success=201)},
    "/api/user_credentials/{credential_id}": {
        "GET": ONE, **_writes(schemas.USER_CREDENTIAL), "DELETE": DONE},
    "/api/sharing_policies": {
        "GET": operation(query={**PAGING, "collection_id": UUID, "username": TEXT}),
        "POST": operation(body=_document(schemas.SHARING_POLICY, creating=True),
                          success=201)},
    "/api/sharing_policies/{policy_id}": {"GET": ONE, "DELETE": DONE},
    # The browser's part of `user-credentials oauth-create` (WebDAV gateways): redirects
    # and pages, not the result envelope, so the Manager's fuzz test leaves them out.
    "/api/v1/user_credentials": {"POST": _page(
        "303", "To the upstream's authorize page", body={
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object", "properties": {
                    "storage_gateway": UUID, "identity_id": UUID, "login_hint": TEXT,
                    "redirect_uri": TEXT}}}})},
    "/api/v1/authcallback": {"GET": _page(
        "302", "The credential is made: to the page redirect_uri named",
        query={"code": TEXT, "state": TEXT, "error": TEXT}, public=True)},
    "/api/v1/authclicomplete": {"GET": _page(
        "200", "A page saying the credential is ready", query={"user_credential_id": UUID},
        public=True)},
}


def describe(router: APIRouter) -> None:
    """Give each of the Manager's routes its description (a route without one is a bug)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                route.openapi_extra = OPERATIONS[route.path][method]
