"""The Auth management API: projects, policies, clients, credentials and scopes.

Every route here needs a token for auth.globus.org with ``manage_projects``,
and shows a project's resources only to that project's admins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from isthmus.auth import clients, documents, management, openapi, projects
from isthmus.auth.api import auth_token, in_transaction, read_only, service
from isthmus.auth.management import MANAGE_PROJECTS, Caller
from isthmus.core.errors import bad_request, forbidden
from isthmus.core.http import read_json_object

router = APIRouter(prefix="/v2/api")

Document = dict[str, Any]


def _caller(session: Session, request: Request) -> Caller:
    caller = management.caller_of(session, auth_token(session, request),
                                  service(request).groups)
    caller.require(MANAGE_PROJECTS)
    return caller


async def _body(request: Request, key: str) -> Document:
    document = await read_json_object(request)
    inner = document.get(key)
    if not isinstance(inner, dict):
        raise bad_request(f'The body must be {{"{key}": {{...}}}}')
    return inner


def _reading(
    request: Request, work: Callable[[Session, Caller], Document]
) -> Awaitable[Document]:
    return read_only(request, lambda session: work(session, _caller(session, request)))


def _writing(
    request: Request, work: Callable[[Session, Caller], Document]
) -> Awaitable[Document]:
    return in_transaction(request, lambda session: work(session, _caller(session, request)))


# --- projects -------------------------------------------------------------------


@router.get("/projects", openapi_extra=openapi.LIST_PROJECTS)
async def list_projects(request: Request) -> Document:
    return await _reading(request, lambda session, caller: {"projects": [
        documents.project_document(session, project)
        for project in projects.projects_of(session, set(caller.principals))
    ]})


@router.post("/projects", openapi_extra=openapi.CREATE_PROJECT)
async def create_project(request: Request) -> Document:
    body = await _body(request, "project")
    return await _writing(request, lambda session, caller: {
        "project": documents.project_document(
            session, projects.create_project(session, body, caller.identity_id))
    })


@router.get("/projects/{project_id}", openapi_extra=openapi.ONE_PROJECT)
async def get_project(request: Request, project_id: str) -> Document:
    return await _reading(request, lambda session, caller: {
        "project": documents.project_document(
            session, projects.require_project(session, project_id, set(caller.principals)))
    })


@router.put("/projects/{project_id}", openapi_extra=openapi.UPDATE_PROJECT)
@router.post("/projects/{project_id}", openapi_extra=openapi.UPDATE_PROJECT)
async def update_project(request: Request, project_id: str) -> Document:
    body = await _body(request, "project")

    def work(session: Session, caller: Caller) -> Document:
        principals = set(caller.principals)
        project = projects.require_project(session, project_id, principals)
        projects.update_project(session, project, body, principals)
        return {"project": documents.project_document(session, project)}

    return await _writing(request, work)


@router.delete("/projects/{project_id}", openapi_extra=openapi.ONE_PROJECT)
async def delete_project(request: Request, project_id: str) -> Document:
    def work(session: Session, caller: Caller) -> Document:
        project = projects.require_project(session, project_id, set(caller.principals))
        document = documents.project_document(session, project)
        projects.delete_project(session, project)
        return {"project": document}

    return await _writing(request, work)


# --- policies -------------------------------------------------------------------


@router.get("/policies", openapi_extra=openapi.LIST_POLICIES)
async def list_policies(request: Request) -> Document:
    return await _reading(request, lambda session, caller: {"policies": [
        documents.policy_document(policy) for policy in projects.policies_of(
            session, projects.projects_of(session, set(caller.principals)))
    ]})


@router.post("/policies", openapi_extra=openapi.CREATE_POLICY)
async def create_policy(request: Request) -> Document:
    body = await _body(request, "policy")

    def work(session: Session, caller: Caller) -> Document:
        project = projects.require_project(session, body.get("project_id", ""),
                                           set(caller.principals))
        return {"policy": documents.policy_document(
            projects.create_policy(session, project, body))}

    return await _writing(request, work)


@router.get("/policies/{policy_id}", openapi_extra=openapi.ONE_POLICY)
async def get_policy(request: Request, policy_id: str) -> Document:
    return await _reading(request, lambda session, caller: {"policy": documents.policy_document(
        projects.require_policy(session, policy_id, set(caller.principals)))})


@router.put("/policies/{policy_id}", openapi_extra=openapi.UPDATE_POLICY)
@router.post("/policies/{policy_id}", openapi_extra=openapi.UPDATE_POLICY)
async def update_policy(request: Request, policy_id: str) -> Document:
    body = await _body(request, "policy")

    def work(session: Session, caller: Caller) -> Document:
        policy = projects.require_policy(session, policy_id, set(caller.principals))
        if "project_id" in body and body["project_id"] != str(policy.project_id):
            raise bad_request("A policy cannot move between projects")
        projects.apply_policy_fields(policy, body)
        session.flush()
        return {"policy": documents.policy_document(policy)}

    return await _writing(request, work)


@router.delete("/policies/{policy_id}", openapi_extra=openapi.ONE_POLICY)
async def delete_policy(request: Request, policy_id: str) -> Document:
    def work(session: Session, caller: Caller) -> Document:
        policy = projects.require_policy(session, policy_id, set(caller.principals))
        document = documents.policy_document(policy)
        session.delete(policy)
        return {"policy": document}

    return await _writing(request, work)


# --- clients --------------------------------------------------------------------


@router.get("/clients", openapi_extra=openapi.LIST_CLIENTS)
async def list_clients(request: Request) -> Document:
    fqdn = request.query_params.get("fqdn")

    def work(session: Session, caller: Caller) -> Document:
        if fqdn is not None:
            found = management.client_by_fqdn(session, fqdn, caller)
            return {"client": documents.client_document(session, found)}
        return {"clients": [documents.client_document(session, client)
                            for client in management.clients_of(session, caller)]}

    return await _reading(request, work)


@router.post("/clients", openapi_extra=openapi.CREATE_CLIENT)
async def create_client(request: Request) -> Document:
    """Three callers: a native-app instance (no credentials at all, ``template_id``),
    a child of a confidential client (its Basic credentials), or a project admin."""
    body = await _body(request, "client")
    authorization = request.headers.get("authorization")
    if "template_id" in body and not authorization:
        return await in_transaction(request, lambda session: _native_instance(session, body))
    basic = clients.parse_basic(authorization)
    if basic is not None:
        def child(session: Session) -> Document:
            parent = clients.authenticate_confidential(session, *basic)
            return {"client": documents.client_document(
                session, management.create_child_client(session, body, parent))}

        return await in_transaction(request, child)
    return await _writing(request, lambda session, caller: {"client": documents.client_document(
        session, management.create_client(session, body, caller))})


def _native_instance(session: Session, body: Document) -> Document:
    template_id, name = body.get("template_id"), body.get("name")
    if not isinstance(template_id, str) or not isinstance(name, str):
        raise bad_request("template_id and name must be strings")
    template = clients.get_client(session, template_id)
    if template is None or not template.is_template:
        raise bad_request(f"{template_id} is not a native app template")
    created = clients.create_client(
        session, name, "confidential_client", parent_client_id=template.id,
        redirect_uris=list(template.redirect_uris),
    )
    assert created.credential is not None
    return {
        "client": documents.client_document(session, created.client),
        "included": {
            "client_credential": documents.credential_document(created.credential, created.secret)
        },
    }


@router.delete("/clients/{client_id}", openapi_extra=openapi.DELETE_CLIENT)
async def delete_client(request: Request, client_id: str) -> Document:
    """By a project admin, or by the client itself with its own credentials (globus logout)."""
    basic = clients.parse_basic(request.headers.get("authorization"))

    def work(session: Session) -> Document:
        if basic is not None:
            caller_client = clients.authenticate_confidential(session, *basic)
            target = clients.get_client(session, client_id)
            if target is None or target.id != caller_client.id:
                raise forbidden("A client may delete only itself with its own credentials")
        else:
            target = management.manageable_client(
                session, client_id, _caller(session, request))
        document = documents.client_document(session, target)
        clients.delete_client(session, target)
        return {"client": document}

    return await in_transaction(request, work)


@router.get("/clients/{client_id}", openapi_extra=openapi.ONE_CLIENT)
async def get_client(request: Request, client_id: str) -> Document:
    return await _reading(request, lambda session, caller: {"client": documents.client_document(
        session, management.readable_client(session, client_id, caller))})


@router.put("/clients/{client_id}", openapi_extra=openapi.UPDATE_CLIENT)
@router.post("/clients/{client_id}", openapi_extra=openapi.UPDATE_CLIENT)
async def update_client(request: Request, client_id: str) -> Document:
    body = await _body(request, "client")

    def work(session: Session, caller: Caller) -> Document:
        client = management.manageable_client(session, client_id, caller)
        management.update_client(session, client, body)
        return {"client": documents.client_document(session, client)}

    return await _writing(request, work)


@router.get("/clients/{client_id}/credentials", openapi_extra=openapi.LIST_CREDENTIALS)
async def list_credentials(request: Request, client_id: str) -> Document:
    def work(session: Session, caller: Caller) -> Document:
        client = management.manageable_client(session, client_id, caller)
        return {"credentials": [documents.credential_document(credential, None)
                                for credential in management.credentials_of(session, client)]}

    return await _reading(request, work)


@router.post("/clients/{client_id}/credentials", openapi_extra=openapi.CREATE_CREDENTIAL)
async def create_credential(request: Request, client_id: str) -> Document:
    body = await _body(request, "credential")

    def work(session: Session, caller: Caller) -> Document:
        client = management.manageable_client(session, client_id, caller)
        credential, secret = management.create_credential(session, client, body)
        return {"credential": documents.credential_document(credential, secret)}

    return await _writing(request, work)


@router.delete("/clients/{client_id}/credentials/{credential_id}",
               openapi_extra=openapi.ONE_CREDENTIAL)
async def delete_credential(request: Request, client_id: str, credential_id: str) -> Document:
    def work(session: Session, caller: Caller) -> Document:
        client = management.manageable_client(session, client_id, caller)
        credential = management.require_credential(session, client, credential_id)
        document = documents.credential_document(credential, None)
        management.delete_credential(session, credential)
        return {"credential": document}

    return await _writing(request, work)


# --- scopes ---------------------------------------------------------------------


@router.get("/scopes", openapi_extra=openapi.LIST_SCOPES)
async def list_scopes(request: Request) -> Document:
    ids = request.query_params.get("ids")
    scope_strings = request.query_params.get("scope_strings")
    return await _reading(request, lambda session, caller: {"scopes": [
        documents.scope_document(scope) for scope in management.find_scopes(
            session, ids=ids, scope_strings=scope_strings, caller=caller)
    ]})


@router.post("/clients/{client_id}/scopes", openapi_extra=openapi.CREATE_SCOPE)
async def create_scope(request: Request, client_id: str) -> Document:
    body = await _body(request, "scope")

    def work(session: Session, caller: Caller) -> Document:
        client = management.manageable_client(session, client_id, caller)
        return {"scope": documents.scope_document(
            management.create_scope(session, client, body))}

    return await _writing(request, work)


@router.get("/scopes/{scope_id}", openapi_extra=openapi.ONE_SCOPE)
async def get_scope(request: Request, scope_id: str) -> Document:
    return await _reading(request, lambda session, _caller: {"scope": documents.scope_document(
        management.require_scope(session, scope_id))})


@router.put("/scopes/{scope_id}", openapi_extra=openapi.UPDATE_SCOPE)
@router.post("/scopes/{scope_id}", openapi_extra=openapi.UPDATE_SCOPE)
async def update_scope(request: Request, scope_id: str) -> Document:
    body = await _body(request, "scope")

    def work(session: Session, caller: Caller) -> Document:
        scope = management.manageable_scope(session, scope_id, caller)
        return {"scope": documents.scope_document(management.update_scope(session, scope, body))}

    return await _writing(request, work)


@router.delete("/scopes/{scope_id}", openapi_extra=openapi.ONE_SCOPE)
async def delete_scope(request: Request, scope_id: str) -> Document:
    def work(session: Session, caller: Caller) -> Document:
        scope = management.manageable_scope(session, scope_id, caller)
        document = documents.scope_document(scope)
        management.delete_scope(session, scope)
        return {"scope": document}

    return await _writing(request, work)
