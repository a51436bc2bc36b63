"""The browser side of Auth: authorize, login, consent and the native-app code page."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from isthmus.auth import authorize, consents, identities, openapi, sessions, throttle
from isthmus.auth.api import in_transaction, service
from isthmus.auth.authorize import AuthorizationRequest, AuthorizeRedirectError, with_params
from isthmus.auth.models import BrowserSession, Identity
from isthmus.core.config import Settings
from isthmus.core.errors import APIError
from isthmus.core.http import read_form
from isthmus.core.secrets import new_secret

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

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
        context = {"csrf_token": csrf, **result.context}
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
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _login_page(
    session: Session, request: AuthorizationRequest, *, error: str | None = None,
    username: str = "", status: int = 200,
) -> PageResult:
    return PageResult(template="login.html", status=status, context={
        "client_name": request.client.name,
        "authorize": request.query,
        "action": "/v2/web/login",
        "error": error,
        "username": username,
        "domain": identities.local_domain(session),
    })


def _continue(
    session: Session, request: AuthorizationRequest, browser_session: BrowserSession,
    code_lifetime: int,
) -> PageResult:
    identity = session.get(Identity, browser_session.primary_identity_id)
    assert identity is not None
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


def _signed_in(
    session: Session, identity: Identity, cookie: str | None, settings: Settings,
    proceed: Callable[[BrowserSession], PageResult],
) -> PageResult:
    """Record the sign-in in the browser's session (a new one if it has none), then proceed."""
    existing = sessions.find(session, cookie)
    browser_session, new_cookie = sessions.login(
        session, identity, existing, settings.browser_session_lifetime
    )
    result = proceed(browser_session)
    result.new_session_cookie = new_cookie
    return result


def _authenticated(
    session: Session, request: AuthorizationRequest, identity: Identity, cookie: str | None,
    settings: Settings,
) -> PageResult:
    """Every way of signing in to an authorization request (password, upstream) ends here."""
    return _signed_in(session, identity, cookie, settings, lambda browser_session: _continue(
        session, request, browser_session, settings.authorization_code_lifetime))


def _password_login(
    session: Session, username: str, password: str, address: str | None,
    *, login_page: Callable[[str, int], PageResult], signed_in: Callable[[Identity], PageResult],
) -> PageResult:
    """The login form's check, throttled per account and address, shared by every form."""
    account = identities.canonical_username(session, username)
    locked = throttle.check(session, account, address)
    if locked is not None:
        return login_page(locked.message, 429)
    identity = identities.check_password(session, username, password)
    if identity is None:
        throttle.record_failure(session, account, address)
        return login_page("Invalid username or password.", 401)
    throttle.record_success(session, account)
    return signed_in(identity)


def _action_urls(request: Request, result: PageResult) -> PageResult:
    # Form actions are relative to the public base, which may carry a path prefix.
    if result.template is not None and "action" in result.context:
        base = service(request).settings.public_url
        result.context["action"] = base + result.context["action"].lstrip("/")
    return result


async def _run(request: Request, work: Any) -> Response:
    try:
        result = await in_transaction(request, work)
    except AuthorizeRedirectError as error:
        result = PageResult(redirect=error.location)
    except APIError as error:
        result = PageResult(template="error.html", status=error.status,
                            context={"message": error.message})
    return _render(request, _action_urls(request, result))


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


@router.post("/v2/web/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    query = form.get("authorize", "")
    username = form.get("username", "")
    password = form.get("password", "")
    address = request.client.host if request.client else None

    def work(session: Session) -> PageResult:
        parsed = authorize.parse_request(session, dict(parse_qsl(query)), query, settings)
        return _password_login(
            session, username, password, address,
            login_page=lambda error, status: _login_page(
                session, parsed, error=error, username=username, status=status),
            signed_in=lambda identity: _authenticated(session, parsed, identity, cookie,
                                                      settings),
        )

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
