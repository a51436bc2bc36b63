"""The developer page: a signed-in user's projects, clients, secrets and scopes, as HTML forms.

Every action calls the domain functions the management API (`manage_api`)
calls, with the signed-in user as the caller, so the page and the API share
every rule (who administers what, what a valid client or scope is). A refused
action is shown on the page as a message with the API's words and status.

Signing in is the site's own (`login_pages`, ``/v2/web/login?next=``), so the
page gets the second factor and everything else a sign-in asks for.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from isthmus.auth import clients, management, projects, scopes, sessions
from isthmus.auth.api import in_transaction, read_only, service
from isthmus.auth.management import Caller
from isthmus.auth.models import ClientCredential, Scope
from isthmus.auth.pages import SESSION_COOKIE, PageResult, _check_csrf, respond
from isthmus.auth.sign_in import DEVELOPER_PAGE, login_url
from isthmus.core.errors import APIError, bad_request
from isthmus.core.groups import GroupMembership
from isthmus.core.http import read_form

router = APIRouter(prefix="/v2/web")

# What a successful action says on the page it redirects to (fixed texts: a
# message taken from the query string would let anyone put words on the page).
NOTICES = {
    "project_created": "Project created.",
    "project_deleted": "Project deleted.",
    "client_created": "Client created.",
    "client_deleted": "Client deleted, with its secrets and scopes.",
    "credential_deleted": "Client secret deleted: it no longer authenticates.",
    "scope_created": "Scope created.",
    "scope_deleted": "Scope deleted.",
}


def _to_login(request: Request) -> PageResult:
    """The site's sign-in, coming back to this page afterwards."""
    settings = service(request).settings
    return PageResult(redirect=login_url(settings.public_url,
                                         settings.site_path + DEVELOPER_PAGE))


# --- the page ---------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, and the caller the management rules see them as."""

    username: str
    caller: Caller


# What the templates show: plain values, read inside the unit of work (the
# rows are detached once it ends, and the page is rendered after).


@dataclass(frozen=True)
class CredentialView:
    id: str
    name: str
    created: str

    @classmethod
    def of(cls, credential: ClientCredential) -> CredentialView:
        return cls(str(credential.id), credential.name,
                   credential.created.strftime("%Y-%m-%d %H:%M UTC"))


@dataclass(frozen=True)
class ScopeView:
    id: str
    scope_string: str
    name: str
    # (scope string, optional) of each scope this one depends on
    dependencies: list[tuple[str, bool]]

    @classmethod
    def of(cls, scope: Scope) -> ScopeView:
        return cls(str(scope.id), scope.scope_string, scope.name, [
            (dependency.dependent_scope.scope_string, dependency.optional)
            for dependency in scope.dependencies
        ])


@dataclass(frozen=True)
class ClientView:
    id: str
    name: str
    client_type: str
    redirect_uris: list[str]
    credentials: list[CredentialView]
    scopes: list[ScopeView]
    has_secrets: bool
    owns_scopes: bool


@dataclass(frozen=True)
class ProjectView:
    id: str
    display_name: str
    contact_email: str
    clients: list[ClientView]


def _viewer(session: Session, cookie: str | None, groups: GroupMembership) -> Viewer | None:
    signed_in = sessions.signed_in(session, cookie)
    if signed_in is None:
        return None
    identity = signed_in[1]
    return Viewer(identity.username,
                  management.signed_in_caller(session, identity.id, groups))


def _project_views(session: Session, caller: Caller) -> list[ProjectView]:
    owned_scopes: dict[uuid.UUID | None, list[ScopeView]] = defaultdict(list)
    for scope in management.find_scopes(session, ids=None, scope_strings=None, caller=caller):
        owned_scopes[scope.client_id].append(ScopeView.of(scope))
    by_project: dict[uuid.UUID | None, list[ClientView]] = defaultdict(list)
    for client in management.clients_of(session, caller):
        by_project[client.project_id].append(ClientView(
            id=str(client.id),
            name=client.name,
            client_type=client.client_type,
            redirect_uris=list(client.redirect_uris),
            credentials=[CredentialView.of(credential)
                         for credential in management.credentials_of(session, client)],
            scopes=sorted(owned_scopes[client.id], key=lambda scope: scope.scope_string),
            has_secrets=clients.has_secrets(client),
            owns_scopes=not client.public_client,
        ))
    return [
        ProjectView(str(project.id), project.display_name, project.contact_email,
                    by_project[project.id])
        for project in projects.projects_of(session, set(caller.principals))
    ]


def _developer_page(
    session: Session, viewer: Viewer, *, notice: str | None = None, error: str | None = None,
    status: int = 200,
) -> PageResult:
    return PageResult(template="developer.html", status=status, context={
        "username": viewer.username,
        "projects": _project_views(session, viewer.caller),
        "client_types": clients.CLIENT_TYPES,
        "notice": notice,
        "error": error,
    })


@router.get("/developer")
async def developer_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    groups = service(request).groups
    notice = NOTICES.get(request.query_params.get("done", ""))

    def work(session: Session) -> PageResult:
        viewer = _viewer(session, cookie, groups)
        if viewer is None:
            return _to_login(request)
        return _developer_page(session, viewer, notice=notice)

    return await respond(request, lambda: read_only(request, work))


Action = Callable[[Session, Viewer, dict[str, str]], PageResult]


async def _act(request: Request, action: Action) -> Response:
    """Run one form's action in a transaction; a refusal is shown on the page, rolled back."""
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    groups = service(request).groups

    def work(session: Session) -> PageResult:
        viewer = _viewer(session, cookie, groups)
        return _to_login(request) if viewer is None else action(session, viewer, form)

    def refused(error: APIError) -> Callable[[Session], PageResult]:
        def page(session: Session) -> PageResult:
            viewer = _viewer(session, cookie, groups)
            if viewer is None:
                return _to_login(request)
            return _developer_page(session, viewer, error=error.message, status=error.status)

        return page

    async def produce() -> PageResult:
        try:
            return await in_transaction(request, work)
        except APIError as error:
            # The action's writes are rolled back; the page is read afresh with the message.
            return await read_only(request, refused(error))

    return await respond(request, produce)


def _done(request: Request, notice: str) -> PageResult:
    base = service(request).settings.public_url
    return PageResult(redirect=f"{base}{DEVELOPER_PAGE}?{urlencode({'done': notice})}")


# --- projects -----------------------------------------------------------------------


@router.post("/developer/projects")
async def create_project(request: Request) -> Response:
    def action(session: Session, viewer: Viewer, form: dict[str, str]) -> PageResult:
        projects.create_project(session, {
            "display_name": form.get("display_name"),
            "contact_email": form.get("contact_email"),
        }, viewer.caller.identity_id)
        return _done(request, "project_created")

    return await _act(request, action)


@router.post("/developer/projects/{project_id}/delete")
async def delete_project(request: Request, project_id: str) -> Response:
    def action(session: Session, viewer: Viewer, _form: dict[str, str]) -> PageResult:
        project = projects.require_project(session, project_id, set(viewer.caller.principals))
        projects.delete_project(session, project)
        return _done(request, "project_deleted")

    return await _act(request, action)


# --- clients and their secrets ------------------------------------------------------------


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@router.post("/developer/projects/{project_id}/clients")
async def create_client(request: Request, project_id: str) -> Response:
    def action(session: Session, viewer: Viewer, form: dict[str, str]) -> PageResult:
        management.create_client(session, {
            "project": project_id,
            "name": form.get("name"),
            "client_type": form.get("client_type"),
            "redirect_uris": _lines(form.get("redirect_uris")),
        }, viewer.caller)
        return _done(request, "client_created")

    return await _act(request, action)


@router.post("/developer/clients/{client_id}/delete")
async def delete_client(request: Request, client_id: str) -> Response:
    def action(session: Session, viewer: Viewer, _form: dict[str, str]) -> PageResult:
        clients.delete_client(session, management.manageable_client(
            session, client_id, viewer.caller))
        return _done(request, "client_deleted")

    return await _act(request, action)


@router.post("/developer/clients/{client_id}/credentials")
async def create_credential(request: Request, client_id: str) -> Response:
    def action(session: Session, viewer: Viewer, form: dict[str, str]) -> PageResult:
        client = management.manageable_client(session, client_id, viewer.caller)
        credential, secret = management.create_credential(session, client,
                                                          {"name": form.get("name")})
        # The one time the secret exists outside its owner's hands: only its digest is kept.
        return PageResult(template="developer_secret.html", context={
            "username": viewer.username, "client_id": str(client.id), "client_name": client.name,
            "credential": CredentialView.of(credential), "secret": secret,
        })

    return await _act(request, action)


@router.post("/developer/clients/{client_id}/credentials/{credential_id}/delete")
async def delete_credential(request: Request, client_id: str, credential_id: str) -> Response:
    def action(session: Session, viewer: Viewer, _form: dict[str, str]) -> PageResult:
        client = management.manageable_client(session, client_id, viewer.caller)
        management.delete_credential(
            session, management.require_credential(session, client, credential_id))
        return _done(request, "credential_deleted")

    return await _act(request, action)


# --- scopes ---------------------------------------------------------------------------


def _dependent_scopes(session: Session, text: str | None) -> list[dict[str, Any]]:
    """One scope per line, by id or scope string; a leading ``*`` makes it optional."""
    dependencies = []
    for line in _lines(text):
        optional = line.startswith("*")
        reference = line.lstrip("*").strip()
        try:
            scope_id = str(uuid.UUID(reference))
        except ValueError:
            found = scopes.scope_by_string(session, reference)
            if found is None:
                raise bad_request(f"Unknown dependent scope {reference}") from None
            scope_id = str(found.id)
        dependencies.append({"scope": scope_id, "optional": optional,
                             "requires_refresh_token": False})
    return dependencies


@router.post("/developer/clients/{client_id}/scopes")
async def create_scope(request: Request, client_id: str) -> Response:
    def action(session: Session, viewer: Viewer, form: dict[str, str]) -> PageResult:
        client = management.manageable_client(session, client_id, viewer.caller)
        management.create_scope(session, client, {
            "scope_suffix": form.get("scope_suffix"),
            "name": form.get("name"),
            "description": form.get("description"),
            "dependent_scopes": _dependent_scopes(session, form.get("dependent_scopes")),
        })
        return _done(request, "scope_created")

    return await _act(request, action)


@router.post("/developer/scopes/{scope_id}/delete")
async def delete_scope(request: Request, scope_id: str) -> Response:
    def action(session: Session, viewer: Viewer, _form: dict[str, str]) -> PageResult:
        management.delete_scope(session, management.manageable_scope(
            session, scope_id, viewer.caller))
        return _done(request, "scope_deleted")

    return await _act(request, action)
