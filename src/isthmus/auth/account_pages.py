"""The account page: the signed-in person's linked identities, linking and unlinking them.

Other account pages (MFA, sessions, consents, developers) hang off the same
navigation (`account_nav.html`); this module owns only the identities.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from isthmus.auth import identity_sets, sessions, throttle
from isthmus.auth.api import service
from isthmus.auth.models import BrowserSession, Identity
from isthmus.auth.pages import (
    SESSION_COOKIE,
    PageResult,
    _check_csrf,
    _run,
    client_address,
    login_page,
)
from isthmus.core.config import Settings
from isthmus.core.errors import APIError
from isthmus.core.http import read_form

router = APIRouter()

ACCOUNT_PATH = "v2/web/account"
LOGIN_PATH = "v2/web/account/login"
LINK_PATH = "v2/web/account/link"
DONE_MESSAGES = {
    "unlinked": "The identity was unlinked; it is now an account of its own.",
    "already": "That identity is already linked to your account.",
}


def account_url(settings: Settings, **params: str) -> str:
    url = settings.public_url + ACCOUNT_PATH
    return url + "?" + urlencode(params) if params else url


def _account_view(
    session: Session, settings: Settings, browser_session: BrowserSession, holder: Identity, *,
    notice: str | None = None, error: str | None = None, status: int = 200,
) -> PageResult:
    rows = identity_sets.members(session, holder.account_id) if holder.account_id else [holder]
    primary = rows[0].id  # members() puts the primary first
    authenticated = {auth.identity_id for auth in browser_session.authentications}
    return PageResult(template="account.html", status=status, context={
        "base": settings.public_url,
        "username": holder.username,
        "identities": [{
            "id": str(row.id),
            "username": row.username,
            "provider": row.identity_provider.name,
            "primary": row.id == primary,
            "current": row.id == holder.id,
            "in_session": row.id in authenticated,
            "unlinkable": row.id not in (primary, holder.id),
        } for row in rows],
        "unlink_action": "/v2/web/account/unlink",
        "notice": notice,
        "error": error,
    })


def _done_notice(session: Session, holder: Identity, done: str, identity_id: str) -> str | None:
    if done != "linked":
        return DONE_MESSAGES.get(done)
    try:
        linked = session.get(Identity, uuid.UUID(identity_id))
    except ValueError:
        linked = None
    if linked is None or linked.account_id is None or linked.account_id != holder.account_id:
        return "The identity was linked to your account."
    return f"{linked.username} is now linked to your account."


def _account_login_page(
    session: Session, *, error: str | None = None, username: str = "", status: int = 200
) -> PageResult:
    return login_page(session, heading="Log in to your account", action="/" + LOGIN_PATH,
                      purpose="account", hidden={}, error=error, username=username,
                      status=status)


def _link_page(
    session: Session, holder: Identity, *, error: str | None = None, username: str = "",
    status: int = 200,
) -> PageResult:
    return login_page(
        session, heading="Link another identity", action="/" + LINK_PATH, purpose="link",
        hidden={}, error=error, username=username, status=status,
        notice=f"You are signed in as {holder.username}. Log in with the identity to link "
               "to this account.",
    )


def complete_link(
    session: Session, settings: Settings, browser_session: BrowserSession, holder: Identity,
    joining: Identity,
) -> PageResult:
    """After `joining` proved itself in this browser: put it in the holder's identity set."""
    try:
        changed = identity_sets.link(session, holder, joining)
    except identity_sets.LinkRefusedError as refusal:
        return _account_view(session, settings, browser_session, holder, error=refusal.message,
                             status=refusal.status)
    sessions.login(session, joining, browser_session, settings.browser_session_lifetime,
                   acting=False)
    if not changed:
        return PageResult(redirect=account_url(settings, done="already"))
    return PageResult(redirect=account_url(settings, done="linked", identity=str(joining.id)))


@router.get("/v2/web/account")
async def account_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    done = request.query_params.get("done", "")
    identity_param = request.query_params.get("identity", "")

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        browser_session, holder = signed_in
        notice = _done_notice(session, holder, done, identity_param) if done else None
        return _account_view(session, settings, browser_session, holder, notice=notice)

    return await _run(request, work)


@router.get("/v2/web/account/login")
async def account_login_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings

    def work(session: Session) -> PageResult:
        if sessions.signed_in(session, cookie) is not None:
            return PageResult(redirect=account_url(settings))
        return _account_login_page(session)

    return await _run(request, work)


@router.post("/v2/web/account/login")
async def account_login(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    username, password = form.get("username", ""), form.get("password", "")
    address = client_address(request)

    def work(session: Session) -> PageResult:
        identity = throttle.password_login(session, username, password, address)
        if isinstance(identity, throttle.LoginRefused):
            return _account_login_page(session, error=identity.message, username=username,
                                       status=identity.status)
        _, new_cookie = sessions.login(session, identity, sessions.find(session, cookie),
                                       settings.browser_session_lifetime)
        return PageResult(redirect=account_url(settings), new_session_cookie=new_cookie)

    return await _run(request, work)


@router.get("/v2/web/account/link")
async def link_page(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        return _link_page(session, signed_in[1])

    return await _run(request, work)


@router.post("/v2/web/account/link")
async def link_with_password(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    username, password = form.get("username", ""), form.get("password", "")
    address = client_address(request)

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        browser_session, holder = signed_in
        joining = throttle.password_login(session, username, password, address)
        if isinstance(joining, throttle.LoginRefused):
            return _link_page(session, holder, error=joining.message, username=username,
                              status=joining.status)
        return complete_link(session, settings, browser_session, holder, joining)

    return await _run(request, work)


@router.post("/v2/web/account/unlink")
async def unlink(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    cookie = request.cookies.get(SESSION_COOKIE)
    settings = service(request).settings
    identity_field = form.get("identity", "")

    def work(session: Session) -> PageResult:
        signed_in = sessions.signed_in(session, cookie)
        if signed_in is None:
            return PageResult(redirect=settings.public_url + LOGIN_PATH)
        browser_session, holder = signed_in
        try:
            target = identity_sets.unlink(session, holder, _identity_id(identity_field))
        except APIError as refusal:  # checked before anything is written
            return _account_view(session, settings, browser_session, holder,
                                 error=refusal.message, status=refusal.status)
        sessions.forget(session, browser_session, target.id)
        return PageResult(redirect=account_url(settings, done="unlinked"))

    return await _run(request, work)


def _identity_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise APIError(404, "NOT_FOUND", "That identity is not linked to your account") from None
