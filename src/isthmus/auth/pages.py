"""The browser side of Auth: authorize, login, consent and the native-app code page."""

from __future__ import annotations

import hmac
import re
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
    session_requirements,
    sessions,
    throttle,
)
from isthmus.auth.api import in_transaction, service
from isthmus.auth.authorize import AuthorizationRequest, AuthorizeRedirectError, with_params
from isthmus.auth.models import BrowserSession, Identity
from isthmus.core.config import Settings
from isthmus.core.db import utcnow
from isthmus.core.errors import APIError
from isthmus.core.http import read_form
from isthmus.core.secrets import new_secret

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

SESSION_COOKIE = "isthmus_session"
CSRF_COOKIE = "isthmus_csrf"
# A password login waiting for its second factor (see `mfa.start_pending_login`).
PENDING_LOGIN_COOKIE = "isthmus_pending_login"
# Pages of this site a sign-in may return to, as paths below the public base URL.
_LOCAL_NEXT = re.compile(r"v2/(web/account(/[a-z]+)*|oauth2/authorize)(\?[^\s#\\]*)?")


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


def local_next(value: str) -> str:
    """``value`` if it names a page of this site a sign-in may return to, else ``""``."""
    return value if len(value) <= 8000 and _LOCAL_NEXT.fullmatch(value) else ""


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


def _login_page(
    session: Session, request: AuthorizationRequest | None, *, error: str | None = None,
    username: str = "", status: int = 200, next_path: str = "",
    notices: list[dict[str, str]] | None = None,
) -> PageResult:
    return PageResult(template="login.html", status=status, context={
        "client_name": request.client.name if request else None,
        "authorize": request.query if request else "",
        "next": next_path,
        "action": "/v2/web/login",
        "error": error,
        "username": username,
        "domain": identities.local_domain(session),
        "session_message": request.requirements.message if request else None,
        "notices": notices or [],
    })


def second_factor_page(
    request: AuthorizationRequest | None, *, error: str | None = None, status: int = 200
) -> PageResult:
    return PageResult(template="mfa_login.html", status=status, context={
        "client_name": request.client.name if request else None,
        "session_message": request.requirements.message if request else None,
        "action": "/v2/web/login/mfa",
        "error": error,
    })


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
    suggested = next((name for item in unmet for name in item.usernames), identity.username)
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


def _authenticated(
    session: Session, request: AuthorizationRequest | None, identity: Identity,
    cookie: str | None, settings: Settings, *, mfa_used: bool = False, next_path: str = "",
) -> PageResult:
    """Every way of signing in (password, upstream provider, second factor) ends here.

    An identity with an authenticator is not signed in on its first factor: the
    login waits, server-side and bound to this browser, for a code.
    """
    if not mfa_used and mfa.is_enabled(session, identity.id):
        pending = mfa.start_pending_login(
            session, identity.id, authorize=request.query if request else "",
            next_path=next_path, now=utcnow(),
        )
        result = second_factor_page(request)
        result.set_cookies[PENDING_LOGIN_COOKIE] = pending
        return result
    # Only a complete sign-in clears the failures: a known password alone must
    # not reset the count of wrong second-factor codes.
    throttle.record_success(session, identity.username)
    existing = sessions.find(session, cookie)
    browser_session, new_cookie = sessions.login(
        session, identity, existing, settings.browser_session_lifetime, mfa=mfa_used
    )
    if request is None:
        result = PageResult(redirect=settings.public_url + next_path)
    else:
        result = _continue(session, request, browser_session,
                           settings.authorization_code_lifetime)
    result.new_session_cookie = new_cookie
    return result


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


@router.get("/v2/oauth2/authorize")
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


@router.get("/v2/web/login")
async def login_page(request: Request) -> Response:
    """Signing in to this site's own pages (``next``), rather than for an application."""
    next_path = local_next(request.query_params.get("next", "")) or "v2/web/account/sessions"
    return await _run(request, lambda session: _login_page(session, None, next_path=next_path))


@router.post("/v2/web/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    query = form.get("authorize", "")
    next_path = local_next(form.get("next", ""))
    username = form.get("username", "")
    password = form.get("password", "")
    address = request.client.host if request.client else None

    def work(session: Session) -> PageResult:
        parsed = (
            authorize.parse_request(session, dict(parse_qsl(query)), query, settings)
            if query or not next_path else None
        )
        account = identities.canonical_username(session, username)
        locked = throttle.check(session, account, address)
        if locked is not None:
            return _login_page(session, parsed, error=locked.message, username=username,
                               status=429, next_path=next_path)
        identity = identities.check_password(session, username, password)
        if identity is None:
            throttle.record_failure(session, account, address)
            return _login_page(session, parsed, error="Invalid username or password.",
                               username=username, status=401, next_path=next_path)
        return _authenticated(session, parsed, identity, cookie, settings,
                              next_path=next_path)

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
