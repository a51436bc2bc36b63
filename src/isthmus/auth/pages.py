"""The browser side of Auth: authorize, consent, logout and the native-app code page.

The other page modules build on the pieces here: `PageResult`, `respond`/`_run`,
`_check_csrf`, `login_page`, `_login_page` and `_continue`. Every way of
signing in (password, second factor, upstream provider, linking) ends in
`login_pages._authenticated`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from isthmus.auth import (
    authorize,
    consents,
    identities,
    mfa,
    openapi,
    session_requirements,
    sessions,
    upstream,
)
from isthmus.auth.api import in_transaction, service
from isthmus.auth.authorize import AuthorizationRequest, AuthorizeRedirectError, with_params
from isthmus.auth.models import BrowserSession, Identity
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.http import read_form
from isthmus.core.secrets import new_secret

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

PAGE_PREFIXES = ("/v2/web/", "/v2/oauth2/authorize")
SESSION_COOKIE = "isthmus_session"
CSRF_COOKIE = "isthmus_csrf"


@dataclass
class PageResult:
    """What a unit of work decided: redirect somewhere, or show a page."""

    redirect: str | None = None
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    new_session_cookie: str | None = None
    # Short-lived cookies to set (until the browser closes) or to remove.
    set_cookies: dict[str, str] = field(default_factory=dict)
    delete_cookies: list[str] = field(default_factory=list)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _csrf(request: Request) -> tuple[str, bool]:
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing, False
    return new_secret(), True


def _check_csrf(request: Request, form: dict[str, str]) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    submitted = form.get("csrf_token", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), submitted.encode()):
        raise APIError(403, "FORBIDDEN", "The form has expired or was not sent by this site; "
                       "go back, reload the page and try again.")


def _render(request: Request, result: PageResult) -> Response:
    settings = service(request).settings
    secure = settings.public_url.startswith("https://")
    cookie_path = urlsplit(settings.public_url).path or "/"
    response: Response
    if result.redirect is not None:
        # 303 so a POSTed form is not re-sent to the client's redirect URI.
        response = RedirectResponse(result.redirect, status_code=303)
    else:
        assert result.template is not None
        csrf, fresh = _csrf(request)
        context = {"csrf_token": csrf, "base": settings.public_url, **result.context}
        response = templates.TemplateResponse(
            request, result.template, context, status_code=result.status
        )
        if fresh:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, secure=secure,
                                samesite="strict", path=cookie_path)
    if result.new_session_cookie is not None:
        response.set_cookie(
            SESSION_COOKIE, result.new_session_cookie, httponly=True, secure=secure,
            samesite="lax", path=cookie_path, max_age=settings.browser_session_lifetime,
        )
    for name, value in result.set_cookies.items():
        response.set_cookie(name, value, httponly=True, secure=secure, samesite="lax",
                            path=cookie_path)
    for name in result.delete_cookies:
        response.delete_cookie(name, path=cookie_path)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def is_page(path: str) -> bool:
    """Routes a person's browser shows: their errors are pages, not JSON."""
    return path.startswith(PAGE_PREFIXES)


def error_page(request: Request, error: APIError) -> Response:
    return _render(request, PageResult(template="error.html", status=error.status,
                                       context={"message": error.message}))


def login_page(
    session: Session, *, heading: str, action: str, purpose: str, hidden: dict[str, str],
    error: str | None = None, notices: list[dict[str, str]] | None = None,
    session_message: str | None = None, username: str = "", status: int = 200,
) -> PageResult:
    """The login form, and a "Sign in with ..." button per upstream provider.

    `hidden` fields go with both; `purpose` tells the upstream sign-in where to
    return (see `sign_in.PURPOSES`). `notices` say what the sign-in must achieve,
    each ``{"text": ...}`` with an optional ``link`` (below the base URL) and
    ``link_text``.
    """
    return PageResult(template="login.html", status=status, context={
        "heading": heading,
        "action": action,
        "hidden": hidden,
        "purpose": purpose,
        "provider_action": "/v2/web/oidc/start",
        "providers": upstream.sign_in_choices(session),
        "error": error,
        "notices": notices or [],
        "session_message": session_message,
        "username": username,
        "domain": identities.local_domain(session),
    })


def _login_page(
    session: Session, request: AuthorizationRequest, *, error: str | None = None,
    username: str = "", status: int = 200, notices: list[dict[str, str]] | None = None,
) -> PageResult:
    """The login form for an authorize request. Without `notices`, it says who must log
    in (``session_required_identities``) and fills the form in with them."""
    if notices is None:
        before = session_requirements.unmet_before_login(request.requirements)
        notices = [{"text": item.reason} for item in before]
        username = username or next((name for item in before for name in item.usernames), "")
    return login_page(
        session, heading=f"Log in to use {request.client.name}", action="/v2/web/login",
        purpose="authorize", hidden={"authorize": request.query}, error=error,
        notices=notices, session_message=request.requirements.message, username=username,
        status=status,
    )


def _requirements_page(
    session: Session, request: AuthorizationRequest, identity: Identity,
    unmet: list[session_requirements.Unmet],
) -> PageResult:
    """The login page again, saying what this application needs of the session."""
    notices = [{"text": item.reason} for item in unmet]
    if any(item.needs_mfa for item in unmet) and not mfa.is_enabled(session, identity.id):
        back = quote("v2/oauth2/authorize?" + request.query, safe="")
        notices.append({
            "text": f"{identity.username} has no two-factor authentication set up yet. "
                    "Set it up, then continue to the application.",
            "link": f"v2/web/account/mfa?next={back}",
            "link_text": "Set up two-factor authentication",
        })
    # Filled in with whom a requirement names; else the person acting, if they may answer.
    acting = identity.username if request.requirements.accepts(identity.id) else ""
    suggested = next((name for item in unmet for name in item.usernames), acting)
    return _login_page(session, request, username=suggested, notices=notices)


def _continue(
    session: Session, request: AuthorizationRequest, browser_session: BrowserSession,
    code_lifetime: int,
) -> PageResult:
    identity = session.get(Identity, browser_session.primary_identity_id)
    assert identity is not None
    unmet = session_requirements.unmet(
        session_requirements.authentications_of(session, browser_session), identity.id,
        request.requirements, utcnow(),
    )
    if unmet:
        return _requirements_page(session, request, identity, unmet)
    if consents.is_consented(session, identity.id, request.client.id, request.roots):
        return PageResult(redirect=authorize.issue_code(
            session, request, identity, browser_session, code_lifetime))
    return PageResult(template="consent.html", context={
        "client_name": request.client.name,
        "username": identity.username,
        "roots": request.roots,
        "authorize": request.query,
        "action": "/v2/web/consent",
    })


def _action_urls(request: Request, result: PageResult) -> PageResult:
    # Form actions (context keys ending in "action") are relative to the public
    # base, which may carry a path prefix.
    if result.template is not None:
        base = service(request).settings.public_url
        for key, value in result.context.items():
            if key.endswith("action") and isinstance(value, str):
                result.context[key] = base + value.lstrip("/")
    return result


async def respond(request: Request, produce: Callable[[], Awaitable[PageResult]]) -> Response:
    """Render what `produce` decides; a refused request becomes its error page."""
    try:
        result = await produce()
    except AuthorizeRedirectError as error:
        result = PageResult(redirect=error.location)
    except APIError as error:
        return error_page(request, error)
    return _render(request, _action_urls(request, result))


async def _run(request: Request, work: Callable[[Session], PageResult]) -> Response:
    return await respond(request, lambda: in_transaction(request, work))


@router.get("/v2/oauth2/authorize", openapi_extra=openapi.AUTHORIZE)
async def authorize_page(request: Request) -> Response:
    params = dict(request.query_params)
    query = request.url.query
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings

    def work(session: Session) -> PageResult:
        parsed = authorize.parse_request(session, params, query, settings)
        browser_session = sessions.find(session, cookie)
        if browser_session is None or parsed.prompt_login:
            return _login_page(session, parsed)
        return _continue(session, parsed, browser_session, settings.authorization_code_lifetime)

    return await _run(request, work)


@router.post("/v2/web/consent")
async def consent(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    query = form.get("authorize", "")
    decision = form.get("decision")

    def work(session: Session) -> PageResult:
        parsed = authorize.parse_request(session, dict(parse_qsl(query)), query, settings)
        browser_session = sessions.find(session, cookie)
        if browser_session is None:
            return _login_page(session, parsed)
        if decision != "allow":
            return PageResult(redirect=with_params(
                parsed.redirect_uri, error="access_denied",
                error_description="The user denied the request", state=parsed.state,
            ))
        consents.record(session, browser_session.primary_identity_id, parsed.client.id,
                        parsed.roots)
        return _continue(session, parsed, browser_session, settings.authorization_code_lifetime)

    return await _run(request, work)


@router.get("/v2/web/auth-code", response_class=HTMLResponse)
async def auth_code(request: Request) -> Response:
    params = request.query_params
    return _render(request, PageResult(template="auth_code.html", context={
        "code": params.get("code"),
        "state": params.get("state"),
        "error": params.get("error"),
        "error_description": params.get("error_description"),
    }))


@router.get("/v2/web/logout")
async def logout_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)

    def work(session: Session) -> PageResult:
        browser_session = sessions.find(session, cookie)
        identity = (
            session.get(Identity, browser_session.primary_identity_id)
            if browser_session else None
        )
        return PageResult(template="logout.html", context={
            "username": identity.username if identity else None,
            "action": "/v2/web/logout",
        })

    return await _run(request, work)


@router.post("/v2/web/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)

    def work(session: Session) -> PageResult:
        browser_session = sessions.find(session, cookie)
        if browser_session is not None:
            sessions.logout(session, browser_session)
        return PageResult(template="logout.html", context={"logged_out": True})

    response = await _run(request, work)
    response.delete_cookie(SESSION_COOKIE, path=urlsplit(service(request).settings.public_url).path)
    return response
