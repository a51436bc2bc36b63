"""The developer page: a signed-in user's projects, clients, secrets and scopes, as HTML forms.

Every action calls the domain functions the management API (`manage_api`)
calls, with the signed-in user as the caller, so the page and the API share
every rule (who administers what, what a valid client or scope is). A refused
action is shown on the page as a message with the API's words and status.

Also here: ``GET /v2/web/login?next=PATH``, a sign-in that is not part of an
OAuth authorization and returns to a path on this site (never elsewhere).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from isthmus.auth import clients, identities, management, projects, scopes, sessions
from isthmus.auth.api import in_transaction, read_only, service
from isthmus.auth.management import Caller
from isthmus.auth.models import ClientCredential, Identity, Scope
from isthmus.auth.pages import (
    SESSION_COOKIE,
    PageResult,
    _check_csrf,
    _password_login,
    _render,
    _run,
    _signed_in,
)
from isthmus.core.config import Settings
from isthmus.core.errors import APIError, bad_request
from isthmus.core.http import read_form

router = APIRouter(prefix="/v2/web")

DEVELOPER_PATH = "v2/web/developer"
LOGIN_PATH = "v2/web/login"
LOGIN_RETURN_PATH = "v2/web/login/return"
MAX_NEXT_LENGTH = 2000

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


# --- where a sign-in may return to ------------------------------------------------


def _site_prefix(settings: Settings) -> str:
    """The path every page of this deployment starts with (``/`` unless behind a prefix)."""
    return urlsplit(settings.public_url).path or "/"


def _origin(settings: Settings) -> str:
    parts = urlsplit(settings.public_url)
    return f"{parts.scheme}://{parts.netloc}"


def same_site_path(value: str, settings: Settings) -> str | None:
    """``value`` if it is a path on this site, else None: a sign-in never redirects elsewhere.

    Only a path is accepted (no scheme, host, ``//`` or ``\\``, no control or
    space characters), and the redirect is built from our own origin anyway.
    """
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith(_site_prefix(settings)):
        return None
    if value.startswith("//") or "\\" in value or not all(33 <= ord(char) < 127 for char in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _return_path(settings: Settings, value: str | None) -> str:
    if value is None or value == "":
        return _site_prefix(settings) + DEVELOPER_PATH
    path = same_site_path(value, settings)
    if path is None:
        raise bad_request("next must be a path on this site, such as /v2/web/developer")
    return path


def _login_url(settings: Settings, next_path: str) -> str:
    return f"{settings.public_url}{LOGIN_PATH}?{urlencode({'next': next_path})}"


def _login_form(
    session: Session, next_path: str, *, error: str | None = None,
    username: str = "", status: int = 200,
) -> PageResult:
    return PageResult(template="login.html", status=status, context={
        "next": next_path,
        "action": LOGIN_RETURN_PATH,  # `_run` puts the public base in front
        "error": error,
        "username": username,
        "domain": identities.local_domain(session),
    })


@router.get("/login")
async def login_page(request: Request) -> Response:
    settings = service(request).settings
    cookie = request.cookies.get(SESSION_COOKIE)
    wanted = request.query_params.get("next")

    def work(session: Session) -> PageResult:
        next_path = _return_path(settings, wanted)
        if sessions.find(session, cookie) is not None:
            return PageResult(redirect=_origin(settings) + next_path)
        return _login_form(session, next_path)

    return await _run(request, work)


@router.post("/login/return")
async def login_and_return(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    settings = service(request).settings
    cookie = request.cookies.get(SESSION_COOKIE)
    username = form.get("username", "")
    password = form.get("password", "")
    address = request.client.host if request.client else None

    def work(session: Session) -> PageResult:
        next_path = _return_path(settings, form.get("next"))
        return _password_login(
            session, username, password, address,
            login_page=lambda error, status: _login_form(
                session, next_path, error=error, username=username, status=status),
            signed_in=lambda identity: _signed_in(
                session, identity, cookie, settings,
                lambda _browser_session: PageResult(redirect=_origin(settings) + next_path)),
        )

    return await _run(request, work)


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


def _viewer(session: Session, cookie: str | None) -> Viewer | None:
    browser_session = sessions.find(session, cookie)
    if browser_session is None:
        return None
    identity = session.get(Identity, browser_session.primary_identity_id)
    if identity is None:
        return None
    return Viewer(identity.username, management.signed_in_caller(session, identity.id))


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


def _with_base(request: Request, result: PageResult) -> PageResult:
    # Form actions and links are built on the public URL: it may carry a path prefix.
    if result.template is not None:
        result.context["base"] = service(request).settings.public_url
    return result


@router.get("/developer")
async def developer_page(request: Request) -> Response:
    settings = service(request).settings
    cookie = request.cookies.get(SESSION_COOKIE)
    notice = NOTICES.get(request.query_params.get("done", ""))

    def work(session: Session) -> PageResult:
        viewer = _viewer(session, cookie)
        if viewer is None:
            return PageResult(redirect=_login_url(settings, _site_prefix(settings)
                                                  + DEVELOPER_PATH))
        return _developer_page(session, viewer, notice=notice)

    return await _page(request, work)


async def _page(request: Request, work: Callable[[Session], PageResult]) -> Response:
    try:
        result = await read_only(request, work)
    except APIError as error:
        result = PageResult(template="error.html", status=error.status,
                            context={"message": error.message})
    return _render(request, _with_base(request, result))


Action = Callable[[Session, Viewer, dict[str, str]], PageResult]


async def _act(request: Request, action: Action) -> Response:
    """Run one form's action in a transaction; a refusal is shown on the page, rolled back."""
    form = await read_form(request)
    _check_csrf(request, form)
    settings = service(request).settings
    cookie = request.cookies.get(SESSION_COOKIE)
    to_login = PageResult(redirect=_login_url(settings, _site_prefix(settings) + DEVELOPER_PATH))

    def work(session: Session) -> PageResult:
        viewer = _viewer(session, cookie)
        return to_login if viewer is None else action(session, viewer, form)

    try:
        result = await in_transaction(request, work)
    except APIError as error:
        # The action's writes are rolled back; the page is read afresh with the message.
        result = await read_only(request, _refused(cookie, to_login, error))
    return _render(request, _with_base(request, result))


def _refused(
    cookie: str | None, to_login: PageResult, error: APIError
) -> Callable[[Session], PageResult]:
    def page(session: Session) -> PageResult:
        viewer = _viewer(session, cookie)
        if viewer is None:
            return to_login
        return _developer_page(session, viewer, error=error.message, status=error.status)

    return page


def _done(request: Request, notice: str) -> PageResult:
    base = service(request).settings.public_url
    return PageResult(redirect=f"{base}{DEVELOPER_PATH}?{urlencode({'done': notice})}")


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
            "client_id": str(client.id), "client_name": client.name,
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
