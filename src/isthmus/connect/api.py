"""The GCS Manager API routes, under /api: parse, call the domain, wrap in the envelope."""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from isthmus.connect import (
    audit,
    collection_admin,
    collections,
    credentials,
    documents,
    domains,
    endpoints,
    gateways,
    nodes,
    oidc_servers,
    openapi,
    paging,
    roles,
    schemas,
    sharing,
    webdav_gateways,
)
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.errors import error_document, gcs_error
from isthmus.connect.models import Endpoint
from isthmus.connect.results import envelope
from isthmus.connect.service import ConnectService, ReadWork, WriteWork
from isthmus.core import work
from isthmus.core.db import reading
from isthmus.core.errors import APIError
from isthmus.core.http import bearer_token, read_body, read_json_object

API_PREFIX = "/api"
router = APIRouter(prefix=API_PREFIX)

Document = dict[str, Any]


def render_error(error: APIError) -> JSONResponse:
    """An error in the Manager API's envelope (`errors.error_document`)."""
    return JSONResponse(error_document(error), status_code=error.status, headers=error.headers)


def _service(request: Request) -> ConnectService:
    service: ConnectService = request.app.state.connect
    return service


def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params.items())
    if any("\x00" in value for value in params.values()):
        raise gcs_error(400, "Query parameters must not contain NUL characters")
    return params


async def _read(request: Request, run: ReadWork[Any]) -> Any:
    service = _service(request)
    token = bearer_token(request)
    return await work.in_thread(request, lambda: service.read(token, run))


async def _write(request: Request, run: WriteWork[Any]) -> Any:
    service = _service(request)
    token = bearer_token(request)
    return await work.in_thread(request, lambda: service.write(token, run))


async def _body(request: Request) -> Document:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise gcs_error(415, f"Expected an application/json body, not {content_type}")
    return await read_json_object(request)


def _page(page: paging.Page) -> Document:
    return envelope(list(page.items), marker=page.marker, has_next_page=page.has_next_page)


def _one(document: Document, status: int = 200, message: str | None = None) -> JSONResponse:
    detail = "created" if status == 201 else "success"
    return JSONResponse(envelope([document], status=status, detail=detail, message=message),
                        status_code=status)


def _done(message: str) -> Document:
    return envelope([], message=message)


# The list, create and update routes of each kind of document have one shape each.
Lister = Callable[[Session, Endpoint, Caller, dict[str, str]], paging.Page]
Creator = Callable[[Session, Endpoint, Caller, Document, Changes], Document]
Updater = Callable[[Session, Endpoint, Caller, Document, Changes, bool], Document]


async def _listed(request: Request, list_documents: Lister) -> Document:
    """A page of documents, filtered and paged by the query parameters."""
    params = _params(request)
    return _page(await _read(request, lambda session, endpoint, caller:
                             list_documents(session, endpoint, caller, params)))


async def _created(request: Request, kind: str, create: Creator, *,
                   status: int = 201) -> JSONResponse:
    """The document ``create`` makes of the request's body, "Created <kind> <id>"."""
    body = await _body(request)
    document = await _write(request, lambda session, endpoint, caller, changes:
                            create(session, endpoint, caller, body, changes))
    return _one(document, status, f"Created {kind} {document['id']}")


async def _updated(request: Request, kind: str, update: Updater) -> JSONResponse:
    """``update`` with the request's body (all of the document for PUT, replace=True; the
    fields given for PATCH), "Updated <kind> <id>"."""
    body = await _body(request)
    replace = request.method == "PUT"
    document = await _write(request, lambda session, endpoint, caller, changes:
                            update(session, endpoint, caller, body, changes, replace))
    return _one(document, message=f"Updated {kind} {document['id']}")


# --- info and endpoint ---------------------------------------------------------------


@router.get("/info")
async def get_info(request: Request) -> Document:
    """Unauthenticated: the SDK learns the endpoint's client id (its resource server) here."""
    service = _service(request)

    def run() -> Document:
        with reading(service.sessions) as session:
            endpoint = service.endpoint(session)
            return envelope(documents.info_documents(
                endpoint, endpoint.custom_domain or service.domain_name))

    return await work.in_thread(request, run)


@router.get("/endpoint")
async def get_endpoint(request: Request) -> JSONResponse:
    document = await _read(request, lambda session, endpoint, caller:
                           endpoints.get_document(session, endpoint, caller))
    return _one(document)


@router.patch("/endpoint")
@router.put("/endpoint")
async def update_endpoint(request: Request) -> Document:
    body = await _body(request)
    replace = request.method == "PUT"
    include = _params(request).get("include", "").split(",")

    def run(session: Session, endpoint: Endpoint, caller: Caller, changes: Changes) -> Document:
        return endpoints.update(session, endpoint, caller, body, changes, replace=replace)

    document = await _write(request, run)
    message = f"Updated endpoint {document['id']}"
    return envelope([document] if "endpoint" in include else [], message=message)


# --- storage gateways ----------------------------------------------------------------------


@router.get("/storage_gateways")
async def list_storage_gateways(request: Request) -> Document:
    return await _listed(request, gateways.list_documents)


@router.post("/storage_gateways")
async def create_storage_gateway(request: Request) -> JSONResponse:
    box = _service(request).secret_box
    return await _created(request, "Storage Gateway", lambda session, endpoint, caller, body,
                          _changes: gateways.create(session, endpoint, caller, body, box))


@router.get("/storage_gateways/{gateway_id}")
async def get_storage_gateway(request: Request, gateway_id: str) -> JSONResponse:
    params = _params(request)
    return _one(await _read(request, lambda session, endpoint, caller: gateways.get_document(
        session, endpoint, caller, gateway_id, params)))


@router.patch("/storage_gateways/{gateway_id}")
@router.put("/storage_gateways/{gateway_id}")
async def update_storage_gateway(request: Request, gateway_id: str) -> JSONResponse:
    box = _service(request).secret_box
    return await _updated(request, "Storage Gateway", lambda session, endpoint, caller, body,
                          changes, replace: gateways.update(
                              session, endpoint, caller, gateway_id, body, changes,
                              replace=replace, box=box))


@router.delete("/storage_gateways/{gateway_id}")
async def delete_storage_gateway(request: Request, gateway_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, _changes:
                 gateways.delete(session, endpoint, caller, gateway_id))
    return _done(f"Deleted Storage Gateway {gateway_id}")


# --- collections ---------------------------------------------------------------------------


@router.get("/collections")
async def list_collections(request: Request) -> Document:
    return await _listed(request, collections.list_documents)


@router.post("/collections")
async def create_collection(request: Request) -> JSONResponse:
    return await _created(request, "Collection", collections.create)


@router.get("/collections/check")
async def check_collections(request: Request) -> Document:
    """Configuration problems of every collection the caller administers (before the
    /collections/{collection_id} route, which would take "check" for an id)."""
    return envelope(await _read(request, lambda session, endpoint, caller:
                                collection_admin.check(session, endpoint, caller, None)))


@router.post("/collections/batch_delete")
async def batch_delete_collections(request: Request) -> JSONResponse:
    body = await _body(request)
    deleted = await _write(request, lambda session, endpoint, caller, changes:
                           collection_admin.batch_delete(session, endpoint, caller, body,
                                                         changes))
    return JSONResponse(envelope([{"DATA_TYPE": "batch#1.0.0", "ids": deleted}], status=202,
                                 detail="accepted",
                                 message=f"Deleting {len(deleted)} collection(s)"),
                        status_code=202)


@router.get("/collections/{collection_id}")
async def get_collection(request: Request, collection_id: str) -> JSONResponse:
    params = _params(request)
    return _one(await _read(request, lambda session, endpoint, caller:
                            collections.get_document(session, endpoint, caller, collection_id,
                                                     params)))


@router.patch("/collections/{collection_id}")
@router.put("/collections/{collection_id}")
async def update_collection(request: Request, collection_id: str) -> JSONResponse:
    return await _updated(request, "Collection", lambda session, endpoint, caller, body,
                          changes, replace: collections.update(
                              session, endpoint, caller, collection_id, body, changes,
                              replace=replace))


@router.delete("/collections/{collection_id}")
async def delete_collection(request: Request, collection_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 collections.delete(session, endpoint, caller, collection_id, changes))
    return _done(f"Deleted Collection {collection_id}")


# --- roles ------------------------------------------------------------------------------


@router.get("/roles")
async def list_roles(request: Request) -> Document:
    return await _listed(request, roles.list_documents)


@router.post("/roles")
async def create_role(request: Request) -> JSONResponse:
    return await _created(request, "Role", roles.create, status=200)


@router.get("/roles/{role_id}")
async def get_role(request: Request, role_id: str) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            roles.get_document(session, endpoint, caller, role_id)))


@router.delete("/roles/{role_id}")
async def delete_role(request: Request, role_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 roles.delete(session, endpoint, caller, role_id, changes))
    return _done(f"Deleted Role {role_id}")


# --- the endpoint's owner, advertised owner and subscription ------------------------------


async def _named_identity(request: Request, body: Document,
                          schema: schemas.Schema) -> tuple[uuid.UUID, str]:
    service = _service(request)
    token = bearer_token(request)
    return await work.in_thread(request, lambda: service.known_identity(
        token, endpoints.owner_identity(body, schema)))


@router.put("/endpoint/owner")
async def set_endpoint_owner(request: Request) -> Document:
    owner = await _named_identity(request, await _body(request), schemas.ENDPOINT_OWNER)
    await _write(request, lambda session, endpoint, caller, changes:
                 endpoints.transfer_ownership(session, endpoint, caller, owner, changes))
    return _done(f"Set the owner of the endpoint to {owner[1]}")


@router.put("/endpoint/owner_string")
async def set_endpoint_owner_string(request: Request) -> Document:
    owner = await _named_identity(request, await _body(request), schemas.OWNER_STRING)
    await _write(request, lambda session, endpoint, caller, changes:
                 endpoints.advertise_owner(session, endpoint, caller, owner, changes))
    return _done(f"Set the advertised owner of the endpoint to {owner[1]}")


@router.delete("/endpoint/owner_string")
async def reset_endpoint_owner_string(request: Request) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 endpoints.advertise_owner(session, endpoint, caller, None, changes))
    return _done("Reset the advertised owner of the endpoint to its client")


@router.put("/endpoint/subscription_id")
async def set_endpoint_subscription(request: Request) -> Document:
    body = await _body(request)
    await _write(request, lambda session, endpoint, caller, changes:
                 endpoints.set_subscription(session, endpoint, caller, body, changes))
    return _done(f"Set the subscription id of the endpoint to {body.get('subscription_id')}")


# --- custom domains --------------------------------------------------------------------------


@router.get("/endpoint/domains")
async def list_endpoint_domains(request: Request) -> Document:
    return envelope(await _read(request, lambda session, endpoint, caller:
                                domains.list_endpoint_domains(session, endpoint, caller)))


@router.post("/endpoint/domains")
async def create_endpoint_domain(request: Request) -> JSONResponse:
    body = await _body(request)
    box = _service(request).secret_box
    document = await _write(request, lambda session, endpoint, caller, changes:
                            domains.create_endpoint_domain(session, endpoint, caller, body,
                                                           box, changes))
    return _one(document, 201, f"Created Domain {document['domain_name']}")


@router.get("/endpoint/domains/{domain_name}")
async def get_endpoint_domain(request: Request, domain_name: str) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            domains.get_endpoint_domain(session, endpoint, caller,
                                                        domain_name)))


@router.delete("/endpoint/domains/{domain_name}")
async def delete_endpoint_domain(request: Request, domain_name: str) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 domains.delete_endpoint_domain(session, endpoint, caller, domain_name,
                                                changes))
    return _done(f"Deleted Domain {domain_name}")


@router.get("/collections/{collection_id}/domain")
async def get_collection_domain(request: Request, collection_id: str) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            domains.get_collection_domain(session, endpoint, caller,
                                                          collection_id)))


@router.put("/collections/{collection_id}/domain")
async def set_collection_domain(request: Request, collection_id: str) -> JSONResponse:
    body = await _body(request)
    box = _service(request).secret_box
    document = await _write(request, lambda session, endpoint, caller, changes:
                            domains.set_collection_domain(session, endpoint, caller,
                                                          collection_id, body, box, changes))
    return _one(document, message=f"Set the domain of Collection {collection_id} to "
                                  f"{document['domain_name']}")


@router.delete("/collections/{collection_id}/domain")
async def delete_collection_domain(request: Request, collection_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 domains.delete_collection_domain(session, endpoint, caller, collection_id,
                                                  changes))
    return _done(f"Deleted the domain of Collection {collection_id}")


# --- audit records --------------------------------------------------------------------------


async def _flushed(request: Request) -> None:
    """This node's records still waiting in memory, written first so a query sees them."""
    log: audit.AuditLog = request.app.state.audit
    await work.in_thread(request, log.flush)


@router.get("/audit")
async def query_audit(request: Request) -> Document:
    params = _params(request)
    await _flushed(request)
    return _page(await _read(request, lambda session, endpoint, caller:
                             audit.query(session, endpoint, caller, params)))


@router.get("/audit/summary")
async def audit_summary(request: Request) -> JSONResponse:
    await _flushed(request)
    kept: int = request.app.state.audit.retention_days
    return _one(await _read(request, lambda session, endpoint, caller:
                            audit.summary(session, endpoint, caller, kept)))


# --- nodes ----------------------------------------------------------------------------------


@router.get("/nodes")
async def list_nodes(request: Request) -> Document:
    return await _listed(request, nodes.list_documents)


@router.post("/nodes")
async def create_node(request: Request) -> JSONResponse:
    return await _created(request, "Node", lambda session, endpoint, caller, body, _changes:
                          nodes.create(session, endpoint, caller, body), status=200)


@router.get("/nodes/{node_id}")
async def get_node(request: Request, node_id: str) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            nodes.get_document(session, endpoint, caller, node_id)))


@router.patch("/nodes/{node_id}")
@router.put("/nodes/{node_id}")
async def update_node(request: Request, node_id: str) -> Document:
    body = await _body(request)
    replace = request.method == "PUT"
    include = _params(request).get("include", "").split(",")
    document = await _write(request, lambda session, endpoint, caller, _changes:
                            nodes.update(session, endpoint, caller, node_id, body,
                                         replace=replace))
    return envelope([document] if "node" in include else [],
                    message=f"Updated Node {document['id']}")


@router.delete("/nodes/{node_id}")
async def delete_node(request: Request, node_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 nodes.delete(session, endpoint, caller, node_id, changes))
    return _done(f"Deleted Node {node_id}")


# --- a collection's administration -----------------------------------------------------------


@router.get("/collections/{collection_id}/check")
async def check_collection(request: Request, collection_id: str) -> Document:
    return envelope(await _read(request, lambda session, endpoint, caller:
                                collection_admin.check(session, endpoint, caller,
                                                       collection_id)))


@router.put("/collections/{collection_id}/owner_string")
async def set_collection_owner_string(request: Request, collection_id: str) -> Document:
    owner = await _named_identity(request, await _body(request), schemas.OWNER_STRING)
    await _write(request, lambda session, endpoint, caller, changes:
                 collection_admin.advertise_owner(session, endpoint, caller, collection_id,
                                                  owner, changes))
    return _done(f"Set the advertised owner of Collection {collection_id} to {owner[1]}")


@router.delete("/collections/{collection_id}/owner_string")
async def reset_collection_owner_string(request: Request, collection_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, changes:
                 collection_admin.advertise_owner(session, endpoint, caller, collection_id,
                                                  None, changes))
    return _done(f"Reset the advertised owner of Collection {collection_id}")


@router.put("/collections/{collection_id}/owner")
async def set_collection_owner(request: Request, collection_id: str) -> Document:
    owner = await _named_identity(request, await _body(request), schemas.COLLECTION_OWNER)
    await _write(request, lambda session, endpoint, caller, changes:
                 collection_admin.transfer_ownership(session, endpoint, caller, collection_id,
                                                     owner[0], changes))
    return _done(f"Set the owner of Collection {collection_id} to {owner[1]}")


@router.put("/collections/{collection_id}/subscription_admin_verified")
async def set_collection_verified(request: Request, collection_id: str) -> Document:
    body = await _body(request)
    await _write(request, lambda session, endpoint, caller, changes:
                 collection_admin.set_verified(session, endpoint, caller, collection_id, body,
                                               changes))
    return _done(f"Updated subscription_admin_verified of Collection {collection_id}")


# --- user credentials ---------------------------------------------------------------------


@router.get("/user_credentials")
async def list_user_credentials(request: Request) -> Document:
    return await _listed(request, credentials.list_documents)


@router.post("/user_credentials")
async def create_user_credential(request: Request) -> JSONResponse:
    service = _service(request)
    return await _created(request, "User Credential", lambda session, endpoint, caller, body,
                          _changes: credentials.create(session, endpoint, caller, body,
                                                       service.identities, service.secret_box))


@router.get("/user_credentials/{credential_id}")
async def get_user_credential(request: Request, credential_id: str) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            credentials.get_document(session, endpoint, caller, credential_id)))


@router.patch("/user_credentials/{credential_id}")
@router.put("/user_credentials/{credential_id}")
async def update_user_credential(request: Request, credential_id: str) -> JSONResponse:
    box = _service(request).secret_box
    return await _updated(request, "User Credential", lambda session, endpoint, caller, body,
                          _changes, replace: credentials.update(
                              session, endpoint, caller, credential_id, body, box,
                              replace=replace))


@router.delete("/user_credentials/{credential_id}")
async def delete_user_credential(request: Request, credential_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, _changes:
                 credentials.delete(session, endpoint, caller, credential_id))
    return _done(f"Deleted User Credential {credential_id}")


# --- sharing policies ---------------------------------------------------------------------


@router.get("/sharing_policies")
async def list_sharing_policies(request: Request) -> Document:
    return await _listed(request, sharing.list_documents)


@router.post("/sharing_policies")
async def create_sharing_policy(request: Request) -> JSONResponse:
    return await _created(request, "Sharing Policy", lambda session, endpoint, caller, body,
                          _changes: sharing.create(session, endpoint, caller, body))


@router.get("/sharing_policies/{policy_id}")
async def get_sharing_policy(request: Request, policy_id: str) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            sharing.get_document(session, endpoint, caller, policy_id)))


@router.delete("/sharing_policies/{policy_id}")
async def delete_sharing_policy(request: Request, policy_id: str) -> Document:
    await _write(request, lambda session, endpoint, caller, _changes:
                 sharing.delete(session, endpoint, caller, policy_id))
    return _done(f"Deleted Sharing Policy {policy_id}")


# --- the endpoint's own OIDC server (`oidc ...`) --------------------------------------------


@router.get("/oidc")
async def get_oidc_server(request: Request) -> JSONResponse:
    return _one(await _read(request, lambda session, endpoint, caller:
                            oidc_servers.get_document(session, endpoint, caller)))


@router.post("/oidc")
async def create_oidc_server(request: Request) -> JSONResponse:
    body = await _body(request)
    service = _service(request)
    document = await _write(request, lambda session, endpoint, caller, _changes:
                            oidc_servers.create(session, endpoint, caller, body,
                                                service.secret_box, service.public_url))
    return _one(document, 201, f"Created OIDC server {document['issuer']}")


@router.patch("/oidc")
async def update_oidc_server(request: Request) -> JSONResponse:
    body = await _body(request)
    document = await _write(request, lambda session, endpoint, caller, _changes:
                            oidc_servers.update(session, endpoint, caller, body))
    return _one(document, message="Updated the OIDC server")


@router.delete("/oidc")
async def delete_oidc_server(request: Request) -> Document:
    service = _service(request)
    # Auth stops offering it first: no sign-in is sent to a provider about to vanish.
    if await _read(request, oidc_servers.registered_provider):
        await work.in_thread(request, lambda: service.identity_providers.unregister_provider(
            service.endpoint_id))
    await _write(request, lambda session, endpoint, caller, _changes:
                 oidc_servers.delete(session, endpoint, caller))
    return _done("Deleted the OIDC server")


@router.post("/oidc/register")
async def register_oidc_server(request: Request) -> JSONResponse:
    """Make the OIDC server an identity provider of Auth (a fresh client secret each time)."""
    body = await _body(request)
    service = _service(request)
    registrar = service.identity_providers
    provider = await _read(request, lambda session, endpoint, caller:
                           oidc_servers.prepare_registration(session, endpoint, caller, body,
                                                             registrar.redirect_uri()))
    provider_id = await work.in_thread(request, lambda: registrar.register_provider(provider))
    document = await _write(request, lambda session, endpoint, caller, _changes:
                            oidc_servers.record_registration(session, endpoint, caller,
                                                             provider, provider_id))
    return _one(document, message=f"Registered the OIDC server with Auth for the domain "
                                  f"{document['domain']}")


# --- OAuth2 user credentials (browser flow, WebDAV gateways) -------------------------------
# Pages and redirects a browser follows, not the Manager's JSON API (`openapi._page`;
# their bad input is tested in tests/e2e/test_connect_webdav.py).

MAX_FORM_BYTES = 16 * 1024


@router.post("/v1/user_credentials")
async def start_oauth_credential(request: Request) -> Response:
    """A credential-to-be: 303 to the upstream's authorize page (``oauth-create``)."""
    try:
        text = (await read_body(request, MAX_FORM_BYTES)).decode("utf-8")
        form = {key: values[0] for key, values in parse_qs(text, strict_parsing=bool(text),
                                                           max_num_fields=16).items()}
    except (UnicodeDecodeError, ValueError):
        raise gcs_error(400, "Expected a form-encoded body") from None
    box = _service(request).secret_box
    directory = _service(request).identities
    location = await _read(request, lambda session, endpoint, caller: webdav_gateways.start(
        session, endpoint, caller, form, box, directory))
    return Response(status_code=303, headers={"Location": location})


@router.get("/v1/authcallback")
async def oauth_callback(request: Request) -> Response:
    """Where the upstream sends the user's browser back: the credential is made (302 to
    the page ``redirect_uri`` named), or a page says why not, and nothing is made."""
    service = _service(request)
    query = _params(request)
    try:
        box = _service(request).secret_box
        _, location = await work.in_thread(request, lambda: webdav_gateways.finish(
            service.sessions, service.endpoint_id, box, query))
    except webdav_gateways.CallbackError as error:
        return _page_response(400, "The credential was not created", str(error))
    except APIError as error:
        return _page_response(error.status, "The credential was not created", error.message)
    return Response(status_code=302, headers={"Location": location})


@router.get("/v1/authclicomplete")
async def oauth_complete(request: Request) -> Response:
    try:
        credential_id = uuid.UUID(request.query_params.get("user_credential_id", ""))
    except ValueError:
        return _page_response(400, "Unknown credential", "This page needs a credential id.")
    return _page_response(200, "Credential created", f"User credential {credential_id} is "
                          "ready: collections of its storage gateway now reach your files. "
                          "You may close this window.")


def _page_response(status: int, title: str, message: str) -> HTMLResponse:
    body = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head><body><h1 id=\"title\">"
            f"{html.escape(title)}</h1><p id=\"message\">{html.escape(message)}</p>"
            f"</body></html>")
    return HTMLResponse(body, status_code=status, headers={
        "Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer"})


openapi.describe(router)
